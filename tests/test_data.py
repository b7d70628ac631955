"""Tests of keras_resnet.data: sources, augmentation and pipelines, on tiny generated data."""

import doctest
import importlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import types

import keras
import numpy as np
import pytest
from PIL import Image

from keras_resnet.config import CIFAR10_MEAN, CIFAR10_STD
from keras_resnet.data import (
    AUGMENTATIONS, build_augmentation, build_label_mixing, load_data, parse_augment,
    stratified_split,
)
from keras_resnet.data.cifar import CIFAR10_CLASSES
from keras_resnet.data.batches import build_array_batches
from keras_resnet.data.batches import epoch_order
from keras_resnet.training.step import build_device_training_model

TENSORFLOW = keras.backend.backend() == "tensorflow"
if TENSORFLOW:
    from keras_resnet.data.pipeline import build_dataset
# tf.data is the TensorFlow backend's input path; the other backends use data.batches.
tensorflow_only = pytest.mark.skipif(not TENSORFLOW, reason="tf.data: TensorFlow backend only")

CLASSES = ("cat", "dog", "frog")
IMAGE_AUGMENTATIONS = ("crop", "flip", "cutout", "zoom", "translate", "rotate", "color")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- fixtures: generated data

def _pixels(count, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), np.uint8)


def _write_cifar_python(folder, per_class=2):
    """Writes the five training batches and the test batch in CIFAR-10's pickle format."""
    folder.mkdir(parents=True)
    xs, ys = [], []
    for index, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        labels = np.tile(np.arange(10), per_class)
        x = _pixels(len(labels), seed=index)
        batch = {b"batch_label": name.encode(), b"labels": labels.tolist(),
                 b"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1),
                 b"filenames": [b"f.png"] * len(x)}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        xs.append(x)
        ys.append(labels)
    meta = {b"label_names": [n.encode() for n in CIFAR10_CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5]


def _tar(source, archive, arcname):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=arcname)
    return archive


@pytest.fixture(scope="module")
def cifar_python(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    arrays = _write_cifar_python(root / "cifar-10-batches-py")
    _tar(root / "cifar-10-batches-py", root / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    return root, arrays


def _write_image_folder(root, counts=None, ext="png", size=32, seed=0):
    """Writes root/<split>/<class>/NNNN.<ext>; returns {split: (x, y)} in load order."""
    counts = counts or {"train": 5, "test": 2}
    out = {}
    for s, (split, count) in enumerate(counts.items()):
        xs, ys = [], []
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            x = _pixels(count, size, seed=seed + 10 * s + label)
            for i, image in enumerate(x):
                Image.fromarray(image).save(folder / f"{i:04d}.{ext}")
            xs.append(x)
            ys.append(np.full(count, label))
        out[split] = (np.concatenate(xs), np.concatenate(ys))
    return out


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    arrays = _write_image_folder(root / "pets")
    _tar(root / "pets", root / "pets.tar.gz", "pets")
    return root, arrays


# ---------------------------------------------------------------- sources

def test_cifar_python_folder_archive_and_parent_agree(cifar_python):
    root, (x_train, y_train, x_test, y_test) = cifar_python
    for data_dir in (root / "cifar-10-batches-py", root / "cifar-10-python.tar.gz", root):
        data = load_data(data_dir=data_dir, val_split=0.0)
        np.testing.assert_array_equal(data.x_train, x_train)
        np.testing.assert_array_equal(data.y_train, y_train)
        np.testing.assert_array_equal(data.x_test, x_test)
        np.testing.assert_array_equal(data.y_test, y_test)
        assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int32
        assert data.x_val.shape == (0, 32, 32, 3) and data.y_val.shape == (0,)
        assert data.class_names == CIFAR10_CLASSES and data.num_classes == 10
        assert data.image_shape == (32, 32, 3)
        assert (data.mean, data.std) == (CIFAR10_MEAN, CIFAR10_STD)
        # The source is where the data was found, not only the folder given.
        assert data.source == str(data_dir if data_dir.name.endswith("gz")
                                  else root / "cifar-10-batches-py")


def test_cifar_binary_archive(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    x = _pixels(20)
    labels = np.tile(np.arange(10), 2).astype(np.uint8)
    records = np.concatenate([labels[:, None], x.transpose(0, 3, 1, 2).reshape(20, -1)], 1)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (folder / name).write_bytes(records.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n\n")
    archive = _tar(folder, tmp_path / "cifar-10-binary.tar.gz", "cifar-10-batches-bin")
    for data_dir in (folder, archive):
        data = load_data(data_dir=data_dir, val_split=0.0)
        assert data.x_train.shape == (100, 32, 32, 3) and data.class_names == CIFAR10_CLASSES
        np.testing.assert_array_equal(data.x_test, x)
        np.testing.assert_array_equal(data.y_test, labels)


def test_image_folder_png_is_pixel_exact_and_tar_agrees(image_folder):
    root, arrays = image_folder
    for data_dir in (root / "pets", root / "pets.tar.gz"):
        data = load_data(data_dir=data_dir, val_split=0.0)
        np.testing.assert_array_equal(data.x_train, arrays["train"][0])
        np.testing.assert_array_equal(data.y_train, arrays["train"][1])
        np.testing.assert_array_equal(data.x_test, arrays["test"][0])
        assert data.class_names == CLASSES and data.num_classes == 3
        # User data: statistics come from the training images.
        np.testing.assert_allclose(data.mean, arrays["train"][0].mean((0, 1, 2)) / 255,
                                   atol=1e-4)
        np.testing.assert_allclose(data.std, arrays["train"][0].std((0, 1, 2)) / 255,
                                   atol=1e-4)
    assert data.source == str(root / "pets.tar.gz")
    assert "train=15" in repr(data) and data.summary()["test"] == 6


def test_image_folder_val_folder_replaces_split(tmp_path):
    arrays = _write_image_folder(tmp_path, {"train": 3, "val": 2, "test": 1})
    data = load_data(data_dir=tmp_path, val_split=0.5)
    assert len(data.x_train) == 9 and len(data.x_val) == 6 and len(data.x_test) == 3
    np.testing.assert_array_equal(data.x_val, arrays["val"][0])


def test_jpeg_resize_and_grey(tmp_path):
    _write_image_folder(tmp_path, {"train": 2, "test": 1}, ext="jpg", size=40)
    data = load_data(data_dir=tmp_path, image_size=(24, 16), val_split=0.0)
    assert data.x_train.shape == (6, 24, 16, 3) and data.x_train.dtype == np.uint8
    grey = load_data(data_dir=tmp_path, val_split=0.0, channels=1)
    assert grey.x_train.shape == (6, 32, 32, 1) and len(grey.mean) == 1


def test_stratified_split_is_per_class_disjoint_and_seeded():
    labels = np.repeat(np.arange(4), [10, 20, 30, 1])
    train, val = stratified_split(labels, 0.1, seed=0)
    assert sorted(np.concatenate([train, val])) == list(range(len(labels)))
    assert np.bincount(labels[val], minlength=4).tolist() == [1, 2, 3, 0]
    assert np.bincount(labels[train]).tolist() == [9, 18, 27, 1]  # each class keeps one
    np.testing.assert_array_equal(val, stratified_split(labels, 0.1, seed=0)[1])
    assert not np.array_equal(val, stratified_split(labels, 0.1, seed=1)[1])
    assert len(stratified_split(labels, 0.0)[1]) == 0


def test_load_data_split_is_stratified_and_deterministic(cifar_python):
    root, _ = cifar_python
    first = load_data(data_dir=root, val_split=0.2, seed=3)
    again = load_data(data_dir=root, val_split=0.2, seed=3)
    other = load_data(data_dir=root, val_split=0.2, seed=4)
    assert len(first.x_train) == 80 and np.bincount(first.y_val).tolist() == [2] * 10
    np.testing.assert_array_equal(first.x_val, again.x_val)
    assert not np.array_equal(first.x_val, other.x_val)
    assert len(first.x_test) == 20  # test untouched


def _fake_tfds(monkeypatch, load, online=True):
    from keras_resnet.data import download

    info = types.SimpleNamespace(features={"label": types.SimpleNamespace(names=["a", "b"])})
    module = types.SimpleNamespace(
        load=lambda *args, **kwargs: load(info), as_numpy=lambda split: split)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", module)
    monkeypatch.setattr(download, "reachable", lambda address, timeout=None: online)
    monkeypatch.setenv("TFDS_DATA_DIR", "/nonexistent/tfds")


def test_tfds_source(monkeypatch):
    x, y = _pixels(8), np.arange(8) % 2
    _fake_tfds(monkeypatch, lambda info: (((x, y), (x, y)), info))
    data = load_data("tiny", val_split=0.25)
    assert data.source == "tfds:tiny" and data.class_names == ("a", "b")
    assert len(data.x_train) == 6 and len(data.x_val) == 2


def test_tfds_offline_says_to_pass_data_dir(monkeypatch):
    def fail(info):
        raise ConnectionError("Failed to resolve 'www.cs.toronto.edu'\nmore detail")

    _fake_tfds(monkeypatch, fail)
    with pytest.raises(ValueError, match="tfds:cifar10.*--data-dir.*cifar-10-python.tar.gz") \
            as error:
        load_data()
    assert "\n" not in str(error.value)


def test_tfds_offline_is_told_in_seconds_without_trying_to_download(monkeypatch):
    def download(info):
        raise AssertionError("tfds.load must not be called offline")

    # Were the download tried, its failure would read "Cannot load tfds", not "no network".
    _fake_tfds(monkeypatch, download, online=False)
    with pytest.raises(ValueError, match="no network.*--data-dir") as error:
        load_data()
    assert "../shared" not in str(error.value) and "\n" not in str(error.value)


def test_reachable_answers_within_its_timeout():
    import socket
    import time

    from keras_resnet.data import download

    # A listening socket that never accepts still completes the handshake: reachable.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    assert download.reachable(server.getsockname(), timeout=1.0)
    port = server.getsockname()[1]
    server.close()
    started = time.perf_counter()
    assert not download.reachable(("127.0.0.1", port), timeout=1.0)  # refused
    assert time.perf_counter() - started < 1.5


def _png_bytes():
    buffer = io.BytesIO()
    Image.fromarray(_pixels(1)[0]).save(buffer, format="PNG")
    return buffer.getvalue()


def _make_bad(kind, tmp):
    """Builds one kind of bad input under tmp; returns (data_dir, message pattern)."""
    if kind == "missing":
        return tmp / "nowhere", "does not exist"
    if kind == "empty folder":
        return tmp, "neither a CIFAR-10 archive nor an image folder"
    if kind == "plain file":
        (tmp / "notes.txt").write_text("hello")
        return tmp / "notes.txt", "neither a CIFAR-10 archive nor an image folder"
    if kind == "unreadable archive":
        (tmp / "data.tar.gz").write_bytes(b"\x1f\x8b garbage")
        return tmp / "data.tar.gz", "Cannot read archive .*data.tar.gz"
    if kind == "truncated archive":
        _write_image_folder(tmp / "src", {"train": 2, "test": 1})
        whole = _tar(tmp / "src", tmp / "whole.tar.gz", "src").read_bytes()
        (tmp / "cut.tar.gz").write_bytes(whole[:len(whole) // 2])
        return tmp / "cut.tar.gz", "Cannot read archive .*cut.tar.gz"
    if kind == "missing cifar batch":
        _write_cifar_python(tmp / "cifar-10-batches-py")
        (tmp / "cifar-10-batches-py" / "data_batch_3").unlink()
        return tmp, "is missing data_batch_3"
    _write_image_folder(tmp, {"train": 2, "test": 1})
    if kind == "no train":
        os.rename(tmp / "train", tmp / "training")
        return tmp, "has no train/ folder"
    if kind == "empty class":
        (tmp / "train" / "zebra").mkdir()
        return tmp, "Class folder .*train/zebra has no images"
    if kind == "unknown test class":
        os.rename(tmp / "test" / "frog", tmp / "test" / "toad")
        return tmp, "test/toad is a class that .*train lacks"
    if kind == "corrupt image":
        (tmp / "train" / "dog" / "bad.png").write_bytes(b"not an image at all")
        return tmp, "Cannot decode image .*bad.png"
    if kind == "truncated image":
        (tmp / "test" / "cat" / "half.png").write_bytes(_png_bytes()[:300])
        return tmp, "Cannot decode image .*half.png"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", [
    "missing", "empty folder", "plain file", "unreadable archive", "truncated archive",
    "missing cifar batch", "no train", "empty class", "unknown test class", "corrupt image",
    "truncated image"])
def test_bad_input_is_one_line_naming_the_path(kind, tmp_path):
    data_dir, pattern = _make_bad(kind, tmp_path)
    with pytest.raises(ValueError, match=pattern) as error:
        load_data(data_dir=data_dir)
    message = str(error.value)
    assert "\n" not in message and str(tmp_path) in message


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, True, "0.1"])
def test_val_split_out_of_range(value, image_folder):
    with pytest.raises(ValueError, match=r"`val_split` must be in \[0, 1\)"):
        load_data(data_dir=image_folder[0] / "pets", val_split=value)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"image_size": (32,)}, "image_size"), ({"image_size": (0, 32)}, "image_size"),
    ({"channels": 2}, "channels")])
def test_bad_arguments(kwargs, pattern, image_folder):
    with pytest.raises(ValueError, match=pattern):
        load_data(data_dir=image_folder[0] / "pets", **kwargs)


# The offline copy: unpacked as README says, or the archive itself, which CI has beside the
# repository.
JPEG_COPIES = [os.path.join(REPO, "data", "cifar10-jpeg"),
               os.path.join(os.path.dirname(REPO), "shared", "data", "cifar10-jpeg.tar.gz")]


@pytest.mark.slow
@pytest.mark.skipif(not any(os.path.exists(path) for path in JPEG_COPIES),
                    reason=f"no offline CIFAR-10 JPEG copy at {' or '.join(JPEG_COPIES)}")
def test_full_jpeg_copy_loads():
    data = load_data(data_dir=next(path for path in JPEG_COPIES if os.path.exists(path)))
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (45000, 5000, 10000)
    assert data.class_names == CIFAR10_CLASSES
    # Decoded as RGB in the right order: the training statistics are CIFAR-10's.
    np.testing.assert_allclose(data.mean, CIFAR10_MEAN, atol=0.01)
    # The pixel std; SPEC's CIFAR10_STD is the widely copied mean of per-image stds.
    np.testing.assert_allclose(data.std, (0.2470, 0.2435, 0.2616), atol=0.01)
    assert np.bincount(data.y_test).tolist() == [1000] * 10


# ---------------------------------------------------------------- augmentation

def test_parse_augment():
    assert parse_augment("Crop, flip,,crop") == ("crop", "flip")
    assert parse_augment("none") == parse_augment("") == parse_augment(None) == ()
    assert parse_augment(["mixup"]) == ("mixup",)
    with pytest.raises(ValueError, match="Unknown augmentation 'blur'; valid ones are crop"):
        parse_augment("crop,blur")


@pytest.mark.parametrize("name", IMAGE_AUGMENTATIONS)
def test_image_augmentation(name):
    x = _pixels(8).astype("float32")
    augmentation = build_augmentation(name, (32, 32, 3), seed=1)
    out = keras.ops.convert_to_numpy(augmentation(x, training=True))
    assert out.shape == x.shape and out.dtype == np.float32
    # Interpolation may overshoot by float rounding (255.00002 on JAX).
    assert out.min() >= -1e-3 and out.max() <= 255.0 + 1e-3
    assert not np.array_equal(out, x)
    again = build_augmentation(name, (32, 32, 3), seed=1)(x, training=True)
    np.testing.assert_array_equal(out, keras.ops.convert_to_numpy(again))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmentation(x, training=False)),
                                  x)


def test_crop_offsets_are_per_image_and_cover_the_padding():
    # 1,000 draws leave one of the 81 offsets unseen with probability 81 * (80/81)^1000.
    marked = np.zeros((1000, 32, 32, 1), "float32")
    marked[:, 16, 16, 0] = 1.0
    out = keras.ops.convert_to_numpy(build_augmentation("crop", (32, 32, 1), seed=0)(marked))
    positions = {tuple(np.argwhere(image[..., 0])[0]) for image in out}
    assert len(positions) == 81  # all 9 x 9 offsets of a 4-pixel pad


def test_cutout_erases_a_quarter_with_the_mean():
    x = np.full((4, 32, 32, 3), 255.0, "float32")
    out = keras.ops.convert_to_numpy(
        build_augmentation("cutout", seed=0, mean=(0.1, 0.2, 0.3))(x))
    # The channels' mean, 0.2 of 255, on a quarter of every image.
    assert np.all(np.isclose(out, 51.0).mean(axis=(1, 2, 3)) == 0.25)


def test_build_augmentation_order_and_none():
    augmentation = build_augmentation("cutout,flip,crop,mixup")
    assert [layer.name for layer in augmentation.layers] == [
        "random_pad_crop", "random_flip", "random_cutout"]
    assert build_augmentation("mixup,cutmix") is None and build_augmentation("") is None
    assert set(IMAGE_AUGMENTATIONS) | {"mixup", "cutmix"} == set(AUGMENTATIONS)


@pytest.mark.parametrize("names", ["mixup", "cutmix", "mixup,cutmix"])
def test_label_mixing(names):
    images, labels = _pixels(8).astype("float32"), np.eye(8, dtype="float32")
    mixed_images, mixed = build_label_mixing(names, seed=0)(images, labels)
    mixed = keras.ops.convert_to_numpy(mixed)
    assert tuple(mixed_images.shape) == images.shape and mixed.shape == labels.shape
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.array_equal(mixed, labels)
    assert build_label_mixing("crop,flip") is None


def _recover_partners(mixed):
    """From mixed one-hot labels of sample i = class i: each sample's partner and weight."""
    n = len(mixed)
    own = mixed[np.arange(n), np.arange(n)]
    others = mixed.copy()
    others[np.arange(n), np.arange(n)] = -1
    partner = np.where(own > 1 - 1e-6, np.arange(n), others.argmax(axis=1))
    return partner, own


def test_mixup_is_the_weighted_mean_of_two_images_and_their_labels():
    # Zhang et al. 2018: x = lam x_i + (1 - lam) x_j, y likewise, lam ~ Beta(0.2, 0.2).
    n = 256
    images, labels = _pixels(n).astype("float32"), np.eye(n, dtype="float32")
    out, mixed = build_label_mixing("mixup", seed=0)(images, labels)
    out, mixed = keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(mixed)
    partner, lam = _recover_partners(mixed)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-5)
    assert np.count_nonzero(mixed > 1e-6, axis=1).max() <= 2
    expected = (lam[:, None, None, None] * images
                + (1 - lam[:, None, None, None]) * images[partner])
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-2)
    assert np.mean(partner != np.arange(n)) > 0.9  # mixed with another image
    # Beta(0.2, 0.2) puts about a third of its mass in (0.1, 0.9); Beta(1, 1) would put 0.8.
    assert 0.2 < np.mean((lam > 0.1) & (lam < 0.9)) < 0.45


@pytest.mark.parametrize("path", ["direct", "tf.data"])
def test_cutmix_pastes_a_box_and_weighs_labels_by_its_area(path):
    # Yun et al. 2019: a box of x_j pasted into x_i; y = lam y_i + (1 - lam) y_j with
    # 1 - lam the box's share of the pixels.
    if path == "tf.data" and keras.backend.backend() != "tensorflow":
        pytest.skip("host pipelines are TensorFlow's")
    n = 64
    # Image i is the constant 3 i, so each pixel tells which image it came from.
    images = np.broadcast_to(3.0 * np.arange(n, dtype="float32")[:, None, None, None],
                             (n, 32, 32, 3)).copy()
    if path == "direct":
        out, mixed = build_label_mixing("cutmix", seed=0)(images, np.eye(n, dtype="float32"))
        out, mixed = keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(mixed)
    else:
        batch = next(iter(build_dataset(images.astype(np.uint8), np.arange(n), n, n,
                                        training=True, augment="cutmix", seed=0)))
        # Shuffled, but a pixel still names its image and a label weight its class.
        out, mixed = batch[0].numpy(), batch[1].numpy()
    source = out[..., 0] / 3.0
    assert np.array_equal(source, np.round(source)) and np.all(out == out[..., :1])
    pasted_boxes = 0
    for i in range(n):
        values = np.unique(source[i])
        assert len(values) <= 2
        weights = {int(c): mixed[i, int(c)] for c in np.flatnonzero(mixed[i] > 1e-6)}
        if len(values) == 1:
            assert list(weights) == [int(values[0])] and weights[int(values[0])] == \
                pytest.approx(1.0, abs=1e-5)
            continue
        counts = {int(v): int(np.sum(source[i] == v)) for v in values}
        assert set(weights) == set(counts)
        for value, count in counts.items():
            assert weights[value] == pytest.approx(count / 1024, abs=1e-5)
        # The pasted image fills a rectangle (the other one fills its complement).
        rectangles = []
        for value in values:
            rows, cols = np.nonzero(source[i] == value)
            box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            rectangles.append(box == len(rows))
        assert any(rectangles)
        pasted_boxes += 1
    assert pasted_boxes > n // 2


# ---------------------------------------------------------------- pipelines

def _labels(count, num_classes=3):
    return np.arange(count) % num_classes


@tensorflow_only
def test_build_dataset_shapes_dtypes_one_hot():
    x, y = _pixels(10), _labels(10)
    batches = list(build_dataset(x, y, 3, batch_size=4, training=True, augment="crop,flip",
                                 seed=0))
    assert [len(images) for images, _ in batches] == [4, 4, 2]  # ceil(N / batch) steps
    assert len(list(build_dataset(x, y, 3, 4, True, drop_remainder=True))) == 2
    images, labels = batches[0]
    assert images.shape == (4, 32, 32, 3) and images.dtype.name == "float32"
    assert labels.shape == (4, 3) and labels.dtype.name == "float32"
    assert np.all(labels.numpy().sum(axis=1) == 1)
    assert 0.0 <= images.numpy().min() and images.numpy().max() <= 255.0


@tensorflow_only
def test_build_dataset_evaluation_is_ordered_and_unaugmented():
    x, y = _pixels(10), _labels(10)
    batches = list(build_dataset(x, y, 3, batch_size=4, training=False, augment="crop,flip"))
    assert [len(images) for images, _ in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([i.numpy() for i, _ in batches]), x)
    np.testing.assert_array_equal(np.concatenate([l.numpy() for _, l in batches]).argmax(1),
                                  y)


@tensorflow_only
def test_build_dataset_is_seeded_and_reshuffles_each_epoch():
    x, y = _pixels(32), _labels(32)

    def epochs(dataset):
        return [np.concatenate([i.numpy() for i, _ in dataset]) for _ in range(2)]

    first = epochs(build_dataset(x, y, 3, 8, True, augment="crop,flip,mixup", seed=5))
    again = epochs(build_dataset(x, y, 3, 8, True, augment="crop,flip,mixup", seed=5))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1])


@tensorflow_only
def test_build_dataset_device_mode_leaves_images_alone():
    x, y = _pixels(8), _labels(8)
    dataset = build_dataset(x, y, 3, 8, True, augment="crop,flip", augment_on="device",
                            seed=0)
    images, _ = next(iter(dataset))
    # Shuffled, but every image is one of x, untouched.
    assert sorted(map(bytes, images.numpy().astype(np.uint8))) == sorted(map(bytes, x))


@pytest.mark.parametrize("kwargs, pattern", [
    ({"augment_on": "gpu"}, "augment_on"), ({"batch_size": 0}, "batch_size"),
    ({"augment": "blur"}, "Unknown augmentation"), ({"num_classes": 2}, r"Labels must be")])
@tensorflow_only
def test_build_dataset_bad_arguments(kwargs, pattern):
    arguments = {"x": _pixels(4), "y": _labels(4), "num_classes": 3, "batch_size": 2,
                 "training": True, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        build_dataset(**arguments)


def _epoch(batches):
    return np.concatenate([keras.ops.convert_to_numpy(batches[i][0])
                           for i in range(len(batches))])


def test_array_batches_shuffle_per_epoch_seeded():
    x, y = _pixels(10), _labels(10)
    batches = build_array_batches(x, y, 3, batch_size=4, training=True, seed=0,
                                  drop_remainder=True)
    assert len(batches) == 2
    images, labels = (keras.ops.convert_to_numpy(t) for t in batches[0])
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.float32
    assert labels.shape == (4, 3) and np.all(labels.sum(1) == 1)
    # Batch rows are the images of the epoch's order, with their own labels.
    order = epoch_order(10, 0, 0)[:4]
    np.testing.assert_array_equal(images, x[order])
    np.testing.assert_array_equal(labels.argmax(1), y[order])
    batches.on_epoch_begin()  # Keras begins each epoch (the first keeps the initial order)
    epoch1 = _epoch(batches)
    batches.on_epoch_begin()
    epoch2 = _epoch(batches)
    assert not np.array_equal(epoch1, epoch2)
    # A run resumed at epoch 1 sees epoch 1's batches, not epoch 0's.
    resumed = build_array_batches(x, y, 3, batch_size=4, training=True, seed=0,
                                  drop_remainder=True, initial_epoch=1)
    np.testing.assert_array_equal(_epoch(resumed), epoch2)
    evaluation = build_array_batches(x, y, 3, batch_size=4, training=False)
    assert len(evaluation) == 3
    np.testing.assert_array_equal(_epoch(evaluation), x)
    in_order = build_array_batches(x, y, 3, batch_size=5, training=True, seed=0, shuffle=False)
    np.testing.assert_array_equal(_epoch(in_order), x)
    mixed = build_array_batches(x, y, 3, batch_size=4, training=True, seed=0, augment="mixup")
    assert np.allclose(keras.ops.convert_to_numpy(mixed[0][1]).sum(1), 1.0)


def _tiny_model():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x), name="tiny")


def test_device_training_model_shares_weights():
    model = _tiny_model()
    augmentation = build_augmentation("crop,flip", (32, 32, 3), seed=0)
    wrapper = build_device_training_model(model, augmentation)
    assert build_device_training_model(model, None) is model
    assert all(a is b for a, b in zip(wrapper.trainable_weights, model.trainable_weights))
    x, y = _pixels(16), _labels(16)
    np.testing.assert_allclose(wrapper.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    before = [w.copy() for w in model.get_weights()]
    wrapper.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
    wrapper.fit(build_array_batches(x, y, 3, 8, True, seed=0), epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# ---------------------------------------------------------------- imports and docs

@pytest.mark.slow
def test_data_import_needs_no_tensorflow():
    code = ("import sys, keras_resnet.data as d; d.load_data; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    env = {**os.environ, "KERAS_BACKEND": "numpy"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("module_name", ["keras_resnet.data.augment",
                                         "keras_resnet.data.sources",
                                         "keras_resnet.data.batches",
                                         pytest.param("keras_resnet.data.pipeline",
                                                      marks=tensorflow_only)])
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_and_other_modes_convert_without_clipping(tmp_path, channels):
    from keras_resnet.data.images import decode_images

    def saved(name, image):
        path = str(tmp_path / name)
        image.save(path)
        return (name, path)

    dark = saved("dark16.png", Image.fromarray(np.full((4, 4), 20000, np.uint16)))
    light = saved("light16.png", Image.fromarray(np.full((4, 4), 50000, np.uint16)))
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([10, 200, 30] + [0] * 765)
    rgba = Image.new("RGBA", (4, 4), (10, 200, 30, 0))
    grey_alpha = Image.new("LA", (4, 4), (90, 255))
    decoded = decode_images([dark, light, saved("p.png", palette), saved("rgba.png", rgba),
                             saved("la.png", grey_alpha)], (4, 4), channels)
    # 16-bit levels scale by 255/65535: 20000 -> 78, 50000 -> 195 (Pillow alone gives 255).
    assert decoded[0].min() == decoded[0].max() == 78
    assert decoded[1].min() == decoded[1].max() == 195
    if channels == 3:
        assert decoded[2, 0, 0].tolist() == [10, 200, 30] == decoded[3, 0, 0].tolist()
    assert decoded[4].min() == decoded[4].max() == 90


def test_floating_point_images_are_refused_by_name(tmp_path):
    from keras_resnet.data.images import decode_images

    path = str(tmp_path / "float.tiff")
    Image.fromarray(np.full((4, 4), 0.5, np.float32), "F").save(path)
    with pytest.raises(ValueError, match="float.tiff has floating-point pixels"):
        decode_images([("float.tiff", path)], (4, 4), 3, formats=None)
