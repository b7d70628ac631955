"""Readers of the two CIFAR-10 archive formats: the Python pickles and the binary records.

Both take a mapping from a batch's file name (`data_batch_1`, `test_batch.bin`, ...) to its
bytes or path, so the same code reads an extracted folder and the members of a `.tar.gz`.
numpy only; no TensorFlow.
"""

import io
import pathlib
import pickle

import numpy as np

from keras_resnet.cli import one_line

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
PYTHON_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
PYTHON_META = "batches.meta"
BINARY_FILES = tuple(f"{name}.bin" for name in PYTHON_FILES)
BINARY_META = "batches.meta.txt"
_SIDE = 32
_PIXELS = 3 * _SIDE * _SIDE  # one image, channel-major: 1024 red, 1024 green, 1024 blue


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only, no larger than the pickle itself.

    A pickle can run any code it names; a CIFAR batch needs nothing but numpy's array
    reconstruction, so everything else is refused. The array constructors it may call
    would allocate any shape they are given, uninitialized, from a pickle of 200 bytes;
    an array's data is in the pickle, so a shape whose bytes exceed the pickle's is
    refused before anything is allocated.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def __init__(self, data, **kwargs):
        super().__init__(io.BytesIO(data), **kwargs)
        self._max_bytes = len(data)

    def _check_shape(self, shape, dtype):
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        itemsize = np.dtype(dtype).itemsize if dtype is not None else 8
        count = 1
        for dim in shape:
            if not isinstance(dim, int) or dim < 0:
                raise pickle.UnpicklingError(f"an array of shape {shape[:8]}")
            count *= dim
        if count * max(itemsize, 1) > self._max_bytes:
            raise pickle.UnpicklingError(
                f"an array of shape {shape[:8]} ({count * itemsize:,} bytes) declared in "
                f"{self._max_bytes:,} bytes of pickle")

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        found = super().find_class(module, name)
        if name == "_reconstruct":
            def reconstruct(subtype, shape, dtype):
                self._check_shape(shape, None)
                return found(subtype, shape, dtype)
            return reconstruct
        if name == "ndarray":
            check = self._check_shape

            class CheckedArray(np.ndarray):  # called by the pickle, checked; not by numpy
                def __new__(cls, shape, dtype=float, *args, **kwargs):
                    check(shape, dtype)
                    return np.ndarray.__new__(np.ndarray, shape, dtype, *args, **kwargs)
            return CheckedArray
        return found


def _read_bytes(source):
    if isinstance(source, (str, pathlib.Path)):
        if not pathlib.Path(source).is_file():  # a FIFO or device would block or never end
            raise ValueError(f"{source} is not a regular file: expected a CIFAR-10 batch. "
                             f"Received: data_dir={str(source)!r}")
        return pathlib.Path(source).read_bytes()
    return source


def _missing(files, names, where, expected):
    missing = [name for name in names if name not in files]
    if missing:
        raise ValueError(
            f"{where} is missing {', '.join(missing)}: expected {expected}. "
            f"Received: data_dir={str(where)!r}"
        )


def _to_images(flat):
    # Channel-major rows (N, 3072) -> channels-last images (N, 32, 32, 3).
    return np.ascontiguousarray(flat.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1))


def _check_labels(labels, num_classes, where):
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{where} has labels outside [0, {num_classes}): expected CIFAR-10 labels. "
            f"Received: labels in [{labels.min()}, {labels.max()}]"
        )


def read_cifar_python(files, where):
    """Reads CIFAR-10's Python version (`cifar-10-batches-py/`).

    Args:
        files: mapping from file name (`data_batch_1` ... `data_batch_5`, `test_batch`,
            optional `batches.meta`) to its bytes or path.
        where: str. The folder or archive, for error messages.

    Returns:
        `(x_train, y_train, x_test, y_test, class_names)`: uint8 images (N, 32, 32, 3),
        int32 labels, tuple of str.

    Raises:
        ValueError: if a batch is missing or is not a pickled CIFAR-10 batch.
    """
    _missing(files, PYTHON_FILES, where, "CIFAR-10's data_batch_1..5 and test_batch")
    class_names = CIFAR10_CLASSES
    if PYTHON_META in files:
        meta = _unpickle(files[PYTHON_META], f"{where}/{PYTHON_META}")
        names = meta.get(b"label_names") if isinstance(meta, dict) else None
        if names:
            class_names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    parts = []
    for name in PYTHON_FILES:
        batch_where = f"{where}/{name}"
        batch = _unpickle(files[name], batch_where)
        try:
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            labels = np.asarray(batch[b"labels"], dtype=np.int32)
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"{batch_where} is not a CIFAR-10 batch: expected a dict with b'data' and "
                f"b'labels'. Received: {type(batch).__name__}"
            ) from None
        if data.ndim != 2 or data.shape[1] != _PIXELS or len(labels) != len(data):
            raise ValueError(
                f"{batch_where} has data of shape {data.shape} and {len(labels)} labels: "
                f"expected (N, {_PIXELS}) uint8 and N labels."
            )
        _check_labels(labels, len(class_names), batch_where)
        parts.append((_to_images(data), labels))
    x_train = np.concatenate([x for x, _ in parts[:-1]])
    y_train = np.concatenate([y for _, y in parts[:-1]])
    return x_train, y_train, parts[-1][0], parts[-1][1], class_names


def _unpickle(source, where):
    try:
        return _ArrayUnpickler(_read_bytes(source), encoding="bytes").load()
    except Exception as error:  # a damaged pickle can raise almost anything
        reason = one_line(error)
        raise ValueError(
            f"Cannot read {where}: {reason}. Expected a pickled CIFAR-10 batch "
            "(the Python version of the archive)."
        ) from None


def read_cifar_binary(files, where):
    """Reads CIFAR-10's binary version (`cifar-10-batches-bin/`).

    Each record is one label byte followed by 3072 channel-major pixel bytes.

    Args:
        files: mapping from file name (`data_batch_1.bin` ... `test_batch.bin`, optional
            `batches.meta.txt`) to its bytes or path.
        where: str. The folder or archive, for error messages.

    Returns:
        `(x_train, y_train, x_test, y_test, class_names)` as `read_cifar_python`.

    Raises:
        ValueError: if a batch is missing or its size is not a whole number of records.
    """
    _missing(files, BINARY_FILES, where, "CIFAR-10's data_batch_1..5.bin and test_batch.bin")
    class_names = CIFAR10_CLASSES
    if BINARY_META in files:
        lines = _read_bytes(files[BINARY_META]).decode(errors="replace").split("\n")
        names = tuple(line.strip() for line in lines if line.strip())
        if names:
            class_names = names
    parts = []
    for name in BINARY_FILES:
        raw = np.frombuffer(_read_bytes(files[name]), dtype=np.uint8)
        if raw.size == 0 or raw.size % (_PIXELS + 1):
            raise ValueError(
                f"{where}/{name} has {raw.size} bytes: expected a whole number of "
                f"{_PIXELS + 1}-byte CIFAR-10 records."
            )
        records = raw.reshape(-1, _PIXELS + 1)
        labels = records[:, 0].astype(np.int32)
        _check_labels(labels, len(class_names), f"{where}/{name}")
        parts.append((_to_images(records[:, 1:]), labels))
    x_train = np.concatenate([x for x, _ in parts[:-1]])
    y_train = np.concatenate([y for _, y in parts[:-1]])
    return x_train, y_train, parts[-1][0], parts[-1][1], class_names
