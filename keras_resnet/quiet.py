"""Keeps TensorFlow's native start-up logs out of a command's output.

TensorFlow 2.21 writes several lines from C++ to stderr when it loads (oneDNN, CUDA stubs),
ignoring TF_CPP_MIN_LOG_LEVEL, which would bury a command's one-line error. Commands
import Keras inside `quiet_native_logs()`; a failed import still shows everything.
"""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def captured_native_stderr():
    """Redirects file descriptor 2 while the body runs; yields a callable returning its text.

    C++ libraries (TensorFlow, TFLite Micro) write to the descriptor, not to `sys.stderr`,
    so only a descriptor-level redirect catches them. If the body raises, what it wrote is
    replayed to the real stderr.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:

        def text():
            sys.stderr.flush()
            captured.seek(0)
            return captured.read().decode(errors="replace")

        os.dup2(captured.fileno(), 2)
        try:
            yield text
        except BaseException:
            os.dup2(saved, 2)
            sys.stderr.write(text())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def quiet_native_logs():
    """Redirects file descriptor 2 while the body runs; replays it if the body raises."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with captured_native_stderr():
        yield


def import_keras():
    """Imports Keras (and its backend) quietly; returns the module."""
    with quiet_native_logs():
        import keras
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf
            tf.config.list_physical_devices()  # CUDA probing logs happen here.
    return keras
