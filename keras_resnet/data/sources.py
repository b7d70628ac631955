"""Where the data comes from: tensorflow-datasets, a CIFAR-10 archive, or an image folder.

`load_data` returns every split as uint8 numpy arrays in memory (all of CIFAR-10 is 180 MB)
with a stratified validation hold-out and the per-channel statistics the model normalizes
with. numpy and PIL only: TensorFlow is never imported here (tensorflow-datasets is, lazily,
for the tfds source only), so this works on a JAX machine without TensorFlow.
"""

import dataclasses
import os
import tarfile
import zlib

import numpy as np

from keras_resnet.config import CIFAR10_MEAN, CIFAR10_STD
from keras_resnet.data import cifar, download, images
from keras_resnet.limits import MB, ReadLimits  # noqa: F401 - part of this module's API

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
LOCAL_COPIES = ("cifar-10-python.tar.gz, cifar-10-batches-py/, or an image folder "
                "DIR/{train,test}/<class>/*.png|jpg (or a .tar.gz of one)")
_CIFAR_FOLDERS = ("cifar-10-batches-py", "cifar-10-batches-bin")
_CIFAR_ARCHIVES = ("cifar-10-python.tar.gz", "cifar-10-binary.tar.gz")


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class DataSplits:
    """Train, validation and test arrays, with what the model needs to know about them.

    Attributes:
        x_train: uint8 array (N, height, width, channels).
        y_train: int32 array (N,) of class indices.
        x_val: uint8 array; 0 rows when there is no validation split.
        y_val: int32 array.
        x_test: uint8 array.
        y_test: int32 array.
        class_names: tuple of str, indexed by label.
        mean: tuple of float. Per-channel mean of `x_train` as a fraction of 255
            (CIFAR-10's published constants for CIFAR-10).
        std: tuple of float. Per-channel standard deviation, as `mean`.
        source: str. Where the data came from: a path, or `"tfds:<name>"`.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    mean: tuple
    std: tuple
    source: str

    @property
    def num_classes(self):
        """Number of classes."""
        return len(self.class_names)

    @property
    def image_shape(self):
        """Height, width and channels of one image."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    def summary(self):
        """Returns a JSON-safe description (no pixels), for run records."""
        return {"source": self.source, "class_names": list(self.class_names),
                "image_shape": list(self.image_shape), "train": len(self.x_train),
                "val": len(self.x_val), "test": len(self.x_test),
                "mean": list(self.mean), "std": list(self.std)}

    def __repr__(self):
        return (f"DataSplits(source={self.source!r}, train={len(self.x_train)}, "
                f"val={len(self.x_val)}, test={len(self.x_test)}, "
                f"image_shape={self.image_shape}, num_classes={self.num_classes})")


def stratified_split(labels, fraction, seed=0):
    """Splits indices into train and validation, the same fraction from every class.

    Each class keeps at least one training example. Deterministic for a seed.

    Args:
        labels: int array (N,).
        fraction: float in [0, 1). Fraction of each class held out.
        seed: int. Seed of the selection. Defaults to `0`.

    Returns:
        `(train_indices, val_indices)`, sorted int64 arrays.

    Example:

    >>> train, val = stratified_split(np.repeat([0, 1], 10), 0.2, seed=0)
    >>> len(train), len(val)
    (16, 4)
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(len(members) - 1, int(np.floor(len(members) * fraction + 0.5)))
        if count > 0:
            held_out.append(rng.permutation(members)[:count])
    val = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, np.int64)
    keep = np.ones(len(labels), dtype=bool)
    keep[val] = False
    return np.flatnonzero(keep), val


def channel_stats(x):
    """Per-channel mean and standard deviation of uint8 images, as fractions of 255.

    Accumulated in float64 over chunks, so 50,000 images need no 1 GB temporary. The
    deviation is floored at one pixel level so that a constant channel cannot make the
    model's normalization divide by zero.
    """
    channels = x.shape[-1]
    total, squares = np.zeros(channels), np.zeros(channels)
    for start in range(0, len(x), 1024):
        part = x[start:start + 1024].reshape(-1, channels).astype(np.float64)
        total += part.sum(axis=0)
        squares += np.square(part).sum(axis=0)
    count = max(1, x.size // channels)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))
    return (tuple(round(float(m) / 255.0, 4) for m in mean),
            tuple(round(max(float(s), 1.0) / 255.0, 4) for s in std))


def _read_tar(path, limits):
    wanted = set(cifar.PYTHON_FILES + cifar.BINARY_FILES
                 + (cifar.PYTHON_META, cifar.BINARY_META))
    files, dirs, total = {}, set(), 0
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isdir():
                    dirs.add(member.name)
                elif member.isfile() and (base in wanted or images.is_image_file(base)):
                    total += member.size
                    for size, limit, what, flag in (
                            (member.size, limits.max_member_bytes, f"member {member.name}",
                             "--max-member-mb"),
                            (total, limits.max_archive_bytes, "its members together",
                             "--max-archive-mb")):
                        if size > limit:
                            raise ValueError(
                                f"Archive {path}: {what} would inflate to {size / MB:,.0f} MB, "
                                f"over the limit of {limit / MB:,.0f} MB; raise {flag} if "
                                f"you trust the archive. Received: data_dir={path!r}")
                    files[member.name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        reason = (str(error).splitlines() or [""])[0] or type(error).__name__
        raise ValueError(
            f"Cannot read archive {path}: {reason}. Expected a readable .tar.gz of "
            f"CIFAR-10 (cifar-10-python.tar.gz) or of an image folder."
        ) from None
    return files, dirs


def _load_tar(path, image_size, channels, limits):
    files, dirs = _read_tar(path, limits)
    by_base = {name.rsplit("/", 1)[-1]: data for name, data in files.items()}
    if cifar.PYTHON_FILES[0] in by_base or cifar.PYTHON_FILES[-1] in by_base:
        return path, "python", cifar.read_cifar_python(by_base, path)
    if cifar.BINARY_FILES[0] in by_base or cifar.BINARY_FILES[-1] in by_base:
        return path, "binary", cifar.read_cifar_binary(by_base, path)
    image_files = {n: d for n, d in files.items() if images.is_image_file(n.rsplit("/")[-1])}
    tree, root = images.tar_tree(image_files, dirs, path)
    if tree is None:
        raise ValueError(
            f"{path} is neither a CIFAR-10 archive nor an image folder: its members have "
            f"several top-level folders and no train/. Expected {LOCAL_COPIES}."
        )
    return path, "images", images.read_tree(tree, root, image_size, channels,
                                            limits.max_image_pixels)


def _load_folder(path, image_size, channels, limits, depth=0):
    names = set(os.listdir(path))
    for folder in _CIFAR_FOLDERS:
        if os.path.isdir(os.path.join(path, folder)):
            return _load_folder(os.path.join(path, folder), image_size, channels, limits,
                                depth)
    for kind, reader, batches in (("python", cifar.read_cifar_python, cifar.PYTHON_FILES),
                                  ("binary", cifar.read_cifar_binary, cifar.BINARY_FILES)):
        if batches[0] in names or batches[-1] in names:
            return path, kind, reader({n: os.path.join(path, n) for n in names}, path)
    if names & set(images.SPLITS):
        return path, "images", images.read_tree(images.scan_folder(path), path, image_size,
                                                channels, limits.max_image_pixels)
    for archive in _CIFAR_ARCHIVES:
        if archive in names and os.path.isfile(os.path.join(path, archive)):
            return _load_tar(os.path.join(path, archive), image_size, channels, limits)
    visible = [n for n in names if not n.startswith(".")]
    if depth == 0 and len(visible) == 1 and os.path.isdir(os.path.join(path, visible[0])):
        # A folder that only wraps the data, as data/ around the unpacked cifar10-jpeg/.
        return _load_folder(os.path.join(path, visible[0]), image_size, channels, limits, 1)
    raise ValueError(
        f"{path} is neither a CIFAR-10 archive nor an image folder (no train/ folder, no "
        f"data_batch_1): expected {LOCAL_COPIES}."
    )


def _load_path(data_dir, image_size, channels, limits):
    path = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    if not os.path.exists(path):
        raise ValueError(
            f"Data directory {path} does not exist: expected {LOCAL_COPIES}. "
            f"Received: data_dir={os.fspath(data_dir)!r}"
        )
    if os.path.isdir(path):
        return _load_folder(path, image_size, channels, limits)
    if not os.path.isfile(path):
        # A FIFO, socket or device: reading it would block or never end.
        raise ValueError(f"{path} is neither a folder nor a regular file: expected "
                         f"{LOCAL_COPIES}. Received: data_dir={os.fspath(data_dir)!r}")
    if path.lower().endswith(ARCHIVE_SUFFIXES) or tarfile.is_tarfile(path):
        return _load_tar(path, image_size, channels, limits)
    raise ValueError(
        f"{path} is neither a CIFAR-10 archive nor an image folder: expected "
        f"{LOCAL_COPIES}. Received: data_dir={os.fspath(data_dir)!r}"
    )


def load_data(dataset="cifar10", data_dir=None, image_size=(32, 32), val_split=0.1, seed=0,
              channels=3, limits=None):
    """Loads a data set into memory as uint8 arrays, with a stratified validation split.

    Sources, by `data_dir`:
    - `None`: tensorflow-datasets' `dataset` (downloads once; fails offline).
    - CIFAR-10's Python version, `cifar-10-python.tar.gz` or the extracted
      `cifar-10-batches-py/`; or its binary version (`cifar-10-binary.tar.gz`,
      `cifar-10-batches-bin/`).
    - An image folder `DIR/train/<class>/*.{png,jpg,jpeg,bmp}`, `DIR/test/<class>/`, and
      optionally `DIR/val/<class>/`, which then replaces the split of train; or a tar of
      one, possibly inside one top-level folder. Classes are train's sorted folder names.
    A folder that holds just one of these (e.g. `data/` around `cifar10-jpeg/`) works too.

    Args:
        dataset: str. tensorflow-datasets name, used when `data_dir` is None.
            Defaults to `"cifar10"`.
        data_dir: str, path or None. A local copy (see above). Defaults to `None`.
        image_size: tuple of int. Height and width to resize images to.
            Defaults to `(32, 32)`.
        val_split: float in [0, 1). Fraction of each training class held out for
            validation (ignored when the source has a val/ folder). Defaults to `0.1`.
        seed: int. Seed of the hold-out. Defaults to `0`.
        channels: int. 3 for RGB, 1 for grey. Defaults to `3`.
        limits: `ReadLimits` or None. Archive and image size limits; `None` for the
            defaults.

    Returns:
        A `DataSplits`.

    Raises:
        ValueError: one line naming the path and what was expected, for a missing or
            unrecognised path, an unreadable archive, a missing train/ or test/, an empty
            class folder, a test or val class that train lacks, a corrupt image, an
            archive member or image over `limits`; or if tfds cannot load `dataset`
            (within seconds when offline); or for an argument out of range.

    Example:

    >>> data = load_data(data_dir="data/cifar10-jpeg")  # doctest: +SKIP
    >>> load_data(data_dir="no/such/folder")
    Traceback (most recent call last):
        ...
    ValueError: Data directory .../no/such/folder does not exist: expected ...
    """
    if isinstance(val_split, bool) or not isinstance(val_split, (int, float)) \
            or not 0.0 <= val_split < 1.0:
        raise ValueError(f"`val_split` must be in [0, 1). Received: val_split={val_split!r}")
    size = tuple(image_size) if isinstance(image_size, (tuple, list)) else ()
    if len(size) != 2 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1
                             for d in size):
        raise ValueError(
            "`image_size` must be (height, width) of positive integers. "
            f"Received: image_size={image_size!r}"
        )
    if channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 or 3. Received: channels={channels!r}")
    if data_dir is None:
        x_train, y_train, x_test, y_test, class_names = download.load_tfds(
            dataset, hint=f"pass --data-dir pointing to a local copy ({LOCAL_COPIES})")
        source, kind, val = f"tfds:{dataset}", "tfds", None
    else:
        source, kind, loaded = _load_path(data_dir, size, channels, limits or ReadLimits())
        if kind == "images":
            splits, class_names = loaded
            (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
            val = splits.get("val")
        else:
            x_train, y_train, x_test, y_test, class_names = loaded
            val = None
    x_train = images.convert_images(x_train, size, channels)
    x_test = images.convert_images(x_test, size, channels)
    if val is None:
        train_index, val_index = stratified_split(y_train, val_split, seed)
        val = x_train[val_index], y_train[val_index]
        x_train, y_train = x_train[train_index], y_train[train_index]
    is_cifar10 = (kind in ("python", "binary") or dataset == "cifar10" and kind == "tfds") \
        and tuple(class_names) == cifar.CIFAR10_CLASSES
    if is_cifar10 and channels == 3:
        mean, std = CIFAR10_MEAN, CIFAR10_STD
    else:
        mean, std = channel_stats(x_train)
    return DataSplits(x_train, y_train, val[0], val[1], x_test, y_test, tuple(class_names),
                      tuple(mean), tuple(std), source)
