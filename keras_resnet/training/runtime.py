"""Where and how numerics run: device, precision policy, XLA and distribution.

Backend-neutral except for the distribution strategy, which uses tf.distribute on
TensorFlow and `keras.distribution.DataParallel` on JAX.
"""

import contextlib
import os

import keras


def accelerator():
    """Returns `"gpu"`, `"tpu"` or `"cpu"`: the kind of the first device Keras sees."""
    devices = keras.distribution.list_devices()
    kind = devices[0].split(":")[0].lower() if devices else "cpu"
    return "gpu" if kind == "cuda" else kind


def device_description():
    """Returns a short description of the training device, e.g. `"cpu x2 (AMX-BF16)"`.

    On a CPU, the cores this process may run on: a run pinned to one core of two (`taskset
    -c 0`) is `"cpu x1 of 2"`, not the machine's count.

    Example:

    >>> device_description().startswith(("cpu x", "gpu x", "tpu x"))
    True
    """
    kind = accelerator()
    if kind != "cpu":
        name = ""
        if keras.backend.backend() == "jax":  # a results row should say which GPU trained it
            import jax

            name = f" ({jax.devices()[0].device_kind})"
        return f"{kind} x{len(keras.distribution.list_devices())}{name}"
    flags = _cpu_flags()
    extra = " (AMX-BF16)" if "amx_bf16" in flags else " (AVX512-BF16)" if "avx512_bf16" in flags else ""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = "" if cores == os.cpu_count() else f" of {os.cpu_count()}"
    return f"cpu x{cores}{share}{extra}"


def machine_info():
    """Returns what a measured number needs beside it: processor, accelerator, versions.

    Example:

    >>> sorted(machine_info())[:3]
    ['accelerator', 'backend', 'backend_version']
    """
    import importlib
    import importlib.metadata
    import platform

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    backend = keras.backend.backend()
    accelerator_name = None
    if backend == "jax" and accelerator() != "cpu":
        import jax

        accelerator_name = jax.devices()[0].device_kind
    try:  # export's numbers are TensorFlow's whatever the backend; not imported for this
        tensorflow = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        tensorflow = None
    return {"cpu": cpu, "cores": os.cpu_count(), "accelerator": accelerator_name,
            "device": device_description(), "platform": platform.platform(),
            "python": platform.python_version(), "keras": keras.__version__,
            "backend": backend, "tensorflow": tensorflow,
            "backend_version": importlib.import_module(backend).__version__}


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(precision):
    """Resolves `"auto"` into a Keras dtype policy name.

    A GPU trains in `mixed_float16` with Keras' dynamic loss scaling: on the H100,
    `efficient`'s paper step ran at 19,040 images/s against 14,064-15,637 in
    `mixed_bfloat16` (benchmarks/results/gpu_h100.md). On a CPU with native bf16 matrix units (AMX-BF16 or
    AVX512-BF16), `mixed_bfloat16` with the fused batch norm that training uses
    measured 1.8x (`efficient`) and 2.8x (`tiny`) faster than float32
    (benchmarks/results/cpu_vs_torch.md); other CPUs keep float32.

    Args:
        precision: str. `"auto"` or a policy name.

    Returns:
        str, a policy name for `keras.mixed_precision.set_dtype_policy`.
    """
    if precision != "auto":
        return precision
    if accelerator() == "gpu":
        return "mixed_float16"
    return "mixed_bfloat16" if _cpu_flags() & {"amx_bf16", "avx512_bf16"} else "float32"


def resolve_jit(jit):
    """Resolves `"auto"|"on"|"off"` into `jit_compile`: XLA on accelerators only.

    On the 2-core CPU machine XLA made the TensorFlow train step slower
    (benchmarks/results/cpu_levers.md), so `auto` leaves it off there.
    """
    if jit == "auto":
        return accelerator() != "cpu"
    return jit == "on"


@contextlib.contextmanager
def precision_scope(policy):
    """Sets the global Keras dtype policy for the body, then restores the previous one.

    Example:

    >>> with precision_scope("mixed_bfloat16"):
    ...     keras.config.dtype_policy().name
    'mixed_bfloat16'
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def default_compile_cache():
    """Returns the user's cache folder for compiled programs (under `$XDG_CACHE_HOME`)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "keras_resnet", "jax")


def enable_compile_cache(directory):
    """Keeps JAX's compiled programs in `directory`, so a rerun skips XLA compilation.

    Only the JAX backend has a persistent cache; elsewhere this does nothing.

    Args:
        directory: str or None. The cache folder; `"auto"` means `default_compile_cache()`,
            `"off"` or None leave caching off.

    Returns:
        bool, whether the cache is on.
    """
    if directory in (None, "off") or keras.backend.backend() != "jax":
        return False
    import jax

    if directory == "auto":
        directory = default_compile_cache()
    jax.config.update("jax_compilation_cache_dir", directory)
    # Cache every program: the default skips those that compile in under a second.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return True


@contextlib.contextmanager
def distribution_scope(strategy):
    """Context under which the model and optimizer must be created, and fit must run.

    Args:
        strategy: str. `"none"` (one device); `"auto"` (all local GPUs when there are
            several, else one device); `"mirrored"` (all local devices, CPUs included:
            data parallel); `"multi_worker"` (TF_CONFIG on TensorFlow,
            `keras.distribution.initialize()` on JAX).

    Yields:
        int, the number of replicas. The batch size stays global: each of n replicas sees
        `batch_size / n` images per step, so the learning rate needs no scaling when n
        changes (scale it linearly yourself if you grow the global batch).
    """
    backend = keras.backend.backend()
    single = strategy == "none" or (strategy == "auto" and accelerator() == "cpu")
    if single:
        yield 1
    elif backend == "tensorflow":
        import tensorflow as tf

        if strategy == "multi_worker":
            distributed = tf.distribute.MultiWorkerMirroredStrategy()
        else:
            devices = (tf.config.list_logical_devices("GPU")
                       or tf.config.list_logical_devices("CPU"))
            distributed = tf.distribute.MirroredStrategy([d.name for d in devices])
        with distributed.scope():
            yield distributed.num_replicas_in_sync
    elif backend == "jax":
        if strategy == "multi_worker":
            keras.distribution.initialize()
        devices = keras.distribution.list_devices()
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield len(devices)
        finally:
            keras.distribution.set_distribution(previous)
    else:
        raise ValueError("Distribution is supported on the TensorFlow and JAX backends. "
                         f"Received: strategy={strategy!r} on backend={backend!r}")
