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
def quiet_native_logs():
    """Redirects file descriptor 2 while the body runs; replays it if the body raises."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_keras():
    """Imports Keras (and its backend) quietly; returns the module."""
    with quiet_native_logs():
        import keras
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf
            tf.config.list_physical_devices()  # CUDA probing logs happen here.
    return keras
