"""tensorflow-datasets as a source: a data set by name, downloaded once and kept by tfds.

tensorflow-datasets is imported only here and only when a data set is loaded by name, so
the local sources (archives, image folders) work on a machine without it.
"""

import os
import socket

import numpy as np

from keras_resnet.cli import one_line


# Where tensorflow-datasets downloads from; one TCP connection tells offline from online in
# seconds, where tfds itself retries for minutes before failing.
_TFDS_HOST = ("storage.googleapis.com", 443)
_NETWORK_TIMEOUT = 3.0


def reachable(address, timeout=_NETWORK_TIMEOUT):
    """Whether a TCP connection to `(host, port)` opens within `timeout` seconds."""

    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError:
        return False
    return True


def _tfds_data_dir():
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets")


def _tfds_prepared(dataset):
    # tfds keeps DATA_DIR/<name>/<version>/dataset_info.json once a data set is prepared.
    folder = os.path.join(_tfds_data_dir(), dataset.split(":")[0].split("/")[0])
    if not os.path.isdir(folder):
        return False
    return any(os.path.isfile(os.path.join(root, "dataset_info.json"))
               for root, _, _ in os.walk(folder))


def load_tfds(dataset, hint):
    """Loads both splits of a tensorflow-datasets data set as numpy arrays.

    Args:
        dataset: str. A tfds name, e.g. `"cifar10"`.
        hint: str. What the user can do instead, appended to every error.

    Returns:
        `(x_train, y_train, x_test, y_test, class_names)`.

    Raises:
        ValueError: in one line, when offline without a prepared copy (told in seconds,
            before tfds retries for minutes), without tensorflow-datasets, or when loading
            fails.
    """
    # Before importing tfds (seconds) and before its download retries (minutes).
    if not _tfds_prepared(dataset) and not reachable(_TFDS_HOST):
        host, port = _TFDS_HOST
        raise ValueError(
            f"Cannot download tfds:{dataset}: no network ({host}:{port} did not answer within "
            f"{_NETWORK_TIMEOUT:g} s) and no prepared copy in {_tfds_data_dir()}; {hint}. "
            f"Received: dataset={dataset!r}")
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ValueError(
            f"tensorflow-datasets is not installed, so tfds:{dataset} cannot be loaded; "
            f"{hint}. Received: dataset={dataset!r}"
        ) from None
    try:
        (train, test), info = tfds.load(dataset, split=["train", "test"], as_supervised=True,
                                        batch_size=-1, with_info=True)
        (x_train, y_train), (x_test, y_test) = tfds.as_numpy(train), tfds.as_numpy(test)
        class_names = tuple(info.features["label"].names)
    except Exception as error:  # offline, the download can fail in many ways
        reason = one_line(error)[:160]
        raise ValueError(
            f"Cannot load tfds:{dataset} ({type(error).__name__}: {reason}); offline? "
            f"{hint}. Received: dataset={dataset!r}"
        ) from None
    return (np.asarray(x_train, np.uint8), np.asarray(y_train, np.int32),
            np.asarray(x_test, np.uint8), np.asarray(y_test, np.int32), class_names)
