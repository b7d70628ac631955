"""Keeps a search's memory flat across trials, and measures it.

Measured (benchmarks/results/tuner_memory.md): with every trial the same size, resident
memory grew by about 50 MB a trial, a leak, not the allocator. Keras's TensorFlow optimizer
sums gradients through `ReplicaContext.all_reduce` even under the default strategy, and that
is a `tf.custom_gradient`, which in graph mode registers its gradient function in
TensorFlow's process-wide gradient registry under a fresh `CustomGradient-<uid>` name and
never removes it. The function's closure holds tensors of the traced train step, so each
trace kept the whole step graph alive, past `keras.backend.clear_session()` and
`gc.collect()`. `TrialMemory` drops the entries a trial registered once it ends, and then
hands freed heap back to the operating system, so a large trial does not leave the
process at its high-water mark for the small ones that follow.
"""

import ctypes
import ctypes.util
import gc

import keras

_CUSTOM_GRADIENT_PREFIX = "CustomGradient-"  # tensorflow/python/ops/custom_gradient.py


def resident_memory_mb():
    """Resident set size of this process in MiB (psutil, else /proc/self/status)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak, the fallback


def _gradient_registry():
    """TensorFlow's gradient registry dict, or None (another backend, or TF moved it)."""
    if keras.backend.backend() != "tensorflow":
        return None
    try:
        from tensorflow.python.framework import ops
    except ImportError:
        return None
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


def _custom_gradient_names():
    registry = _gradient_registry()
    if registry is None:
        return set()
    return {name for name in registry if name.startswith(_CUSTOM_GRADIENT_PREFIX)}


def malloc_trim():
    """Returns free glibc heap to the OS; False where there is no glibc (musl, macOS).

    glibc keeps freed memory in its arenas for reuse, so without this a process stays at
    the high-water mark of its largest trial.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


class TrialMemory:
    """Releases what one trial allocated: call `begin()` before it and `end()` after.

    `end()` unregisters the custom gradients registered since `begin()` (only those: a
    graph traced before the trial keeps its gradients), clears the Keras session, collects
    garbage and trims the C heap. The trial's model must be unreferenced by then, as it is
    after keras-tuner's `run_trial`.
    """

    def __init__(self):
        self._before = set()

    def begin(self):
        self._before = _custom_gradient_names()

    def end(self):
        registry = _gradient_registry()
        for name in _custom_gradient_names() - self._before:
            registry.pop(name, None)
        keras.backend.clear_session()
        gc.collect()
        malloc_trim()
