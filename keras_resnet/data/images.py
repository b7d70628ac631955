"""Image-folder source: ROOT/{train,val,test}/<class>/*.{png,jpg,jpeg,bmp}, as a folder or tar.

Images are decoded eagerly, so a corrupt file fails at load, before training starts. PIL
decodes on a thread pool: it releases the GIL inside libjpeg/zlib, though for 32x32 images
most of the ~0.1 ms per image is PIL's Python header parsing, so threads gain little; a
process pool would need fork (unsafe once TensorFlow or JAX run threads) or spawn (breaks
scripts without a `__main__` guard), and all 60,000 CIFAR JPEGs load in well under a minute
on 2 cores without one (benchmarks/results/data_pipeline.md). numpy and PIL only.
"""

import concurrent.futures
import io
import os

import numpy as np
from PIL import Image

from keras_resnet.cli import one_line
from keras_resnet.limits import MAX_IMAGE_PIXELS

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
SPLITS = ("train", "val", "test")
_FORMATS = ("JPEG", "PNG", "BMP")  # skips probing every other format PIL knows
_MODES = {1: "L", 3: "RGB"}
# Pillow modes whose samples are 16 or 32-bit integers: PNG's 16-bit grey opens as these.
_WIDE_INTEGER_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
# Images per pool task: enough to amortise the task overhead over 32x32 images (about
# 0.1 ms each), small enough to keep every core busy to the end.
_CHUNK = 256
_EXPECTED = "an image folder with train/<class>/*.png|jpg|jpeg|bmp and test/<class>/ " \
            "(val/<class>/ optional)"


def is_image_file(name):
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def scan_folder(root):
    """Lists an image folder as `{split: {class: [(name, path), ...]}}`, names sorted."""
    tree = {}
    for split in SPLITS:
        split_dir = os.path.join(root, split)
        if not os.path.isdir(split_dir):
            continue
        classes = tree.setdefault(split, {})
        for entry in sorted(os.scandir(split_dir), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            files = sorted(f.path for f in os.scandir(entry.path)
                           if f.is_file() and is_image_file(f.name))
            classes[entry.name] = [(path, path) for path in files]
    return tree


def tar_tree(files, dirs, where):
    """Arranges tar members as `scan_folder` does, allowing one top-level folder.

    Args:
        files: dict from member name to its bytes.
        dirs: set of directory member names.
        where: str. The archive path, for names in messages.

    Returns:
        `(tree, root)`: the tree, and the archive path plus top-level folder (if any)
        to show in messages; `(None, None)` if the members are not an image folder.
    """
    split = {name: [p for p in name.split("/") if p not in ("", ".")]
             for name in list(files) + list(dirs)}
    tops = {parts[0] for parts in split.values() if parts}
    if tops & set(SPLITS):
        prefix, root = 0, where
    elif len(tops) == 1:
        prefix, root = 1, f"{where}/{next(iter(tops))}"
    else:
        return None, None
    tree = {}
    for name, parts in sorted(split.items()):
        parts = parts[prefix:]
        if not parts or parts[0] not in SPLITS:
            continue
        classes = tree.setdefault(parts[0], {})
        if len(parts) == 2 and name in files:
            continue  # a loose file beside the class folders, not a class
        if len(parts) >= 2 and not parts[1].startswith("."):
            items = classes.setdefault(parts[1], [])
            if len(parts) == 3 and name in files and is_image_file(parts[2]):
                items.append((f"{root}/{'/'.join(parts)}", files[name]))
    return tree, root


def _brief(names, limit=10):
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def read_tree(tree, root, image_size, channels, max_pixels=None):
    """Checks an image-folder tree and decodes it.

    Args:
        tree: `{split: {class: [(name, path_or_bytes), ...]}}` from `scan_folder` or
            `tar_tree`.
        root: str. The folder, as shown in messages.
        image_size: tuple of int. Output height and width.
        channels: int. 3 (RGB) or 1 (grey).
        max_pixels: int or None. Most pixels of one image (see `decode_images`).

    Returns:
        `(splits, class_names)`: `splits` maps each present split to `(x, y)`, uint8
        images (N, height, width, channels) and int32 labels.

    Raises:
        ValueError: if train/ or test/ is missing, a class folder is empty, test/ or val/
            has a class that train/ lacks, or an image cannot be decoded.
    """
    for split in ("train", "test"):
        if split not in tree:
            raise ValueError(
                f"{root} has no {split}/ folder: expected {_EXPECTED}. "
                f"Received: data_dir={root!r}"
            )
    class_names = tuple(sorted(tree["train"]))
    if not class_names:
        raise ValueError(
            f"{root}/train has no class folders: expected train/<class>/ folders of images."
        )
    index = {name: i for i, name in enumerate(class_names)}
    splits = {}
    for split, classes in tree.items():
        if not classes:
            # An empty test/ would train to the end and then fail to evaluate, every resume.
            raise ValueError(f"{root}/{split} has no class folders: expected "
                             f"{split}/<class>/ folders of images. Received: data_dir={root!r}")
        items, labels = [], []
        for name, files in sorted(classes.items()):
            if name not in index:
                raise ValueError(
                    f"{root}/{split}/{name} is a class that {root}/train lacks: the classes "
                    f"of {split}/ must be among train's ({_brief(class_names)})."
                )
            if not files:
                raise ValueError(
                    f"Class folder {root}/{split}/{name} has no images: expected "
                    f"{', '.join('*' + e for e in IMAGE_EXTENSIONS)} files."
                )
            items.extend(files)
            labels.extend([index[name]] * len(files))
        splits[split] = (decode_images(items, image_size, channels, max_pixels=max_pixels),
                         np.asarray(labels, dtype=np.int32))
    return splits, class_names


def _decode(name, source, size, mode, formats=_FORMATS, max_pixels=None):
    max_pixels = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with Image.open(source if isinstance(source, str) else io.BytesIO(source),
                        formats=formats) as image:
            if image.size[0] * image.size[1] > max_pixels:
                raise _Refused(
                    f"Image {name} has {image.size[0]}x{image.size[1]} pixels, over the "
                    f"limit of {max_pixels:,}; shrink it or raise --max-image-pixels.")
            if image.format == "JPEG" and image.size != size:
                # Lets libjpeg decode a large JPEG at 1/2, 1/4 or 1/8 scale directly.
                image.draft(mode, size)
            return _fit(image, size, mode, name)  # decodes here, inside the try
    except _Refused as error:
        raise ValueError(str(error)) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        reason = one_line(error)
        raise ValueError(
            f"Cannot decode image {name}: {reason}. Expected a valid "
            f"{', '.join(formats or ('image',))} file; remove or replace it."
        ) from None


class _Refused(Exception):
    """An image that decodes but is refused (too large, no 8-bit meaning)."""


def _to_mode(image, mode, name="image"):
    """Converts a decoded image to `L` or `RGB` without losing its range.

    Pillow's own `convert` clips 16-bit grey (modes `I`, `I;16`) at 255, which turns every
    pixel brighter than 1/256 of full scale white; these are scaled to 8 bits instead.
    Transparency is dropped (palette images go through RGBA so their colors survive).
    Floating-point images have no agreed range and are refused by name.
    """
    if image.mode == mode:
        return image
    if image.mode in _WIDE_INTEGER_MODES:
        wide = np.asarray(image, dtype=np.float64)
        # 16-bit data scaled by 255/65535 (a value of 257 per level), rounded.
        grey = Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), "L")
        return grey if mode == "L" else grey.convert(mode)
    if image.mode in ("F",):
        raise _Refused(f"Image {name} has floating-point pixels (mode {image.mode}), which "
                         "have no agreed 0-255 range; convert it to 8-bit PNG or JPEG first.")
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    return image.convert(mode)


def _fit(image, size, mode, name="image"):
    image = _to_mode(image, mode, name)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.frombuffer(image.tobytes(), dtype=np.uint8)


def _fill_parallel(out, count, fill_one, workers=None):
    def work(start):
        for i in range(start, min(start + _CHUNK, count)):
            out[i] = fill_one(i).reshape(out.shape[1:])

    workers = workers or min(32, 2 * (os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(work, start) for start in range(0, count, _CHUNK)]
        try:
            for future in futures:  # in order, so the first bad file is the one reported
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return out


def decode_images(items, image_size, channels=3, workers=None, formats=_FORMATS,
                  max_pixels=None):
    """Decodes `[(name, path_or_bytes), ...]` into uint8 (N, height, width, channels).

    Images are converted to RGB (`channels=3`) or grey (`channels=1`), 16-bit grey scaled
    to 8 bits, and resized bilinearly to `image_size` when they differ.

    Args:
        items: list of `(name, path or bytes)`.
        image_size: tuple of int. Output height and width.
        channels: int. 3 or 1. Defaults to `3`.
        workers: int or None. Decoding threads. Defaults to twice the cores (at most 32).
        formats: tuple of str or None. Pillow formats to accept; `None` for any.
            Defaults to PNG, JPEG and BMP.
        max_pixels: int or None. Most pixels of one image; `None` for `MAX_IMAGE_PIXELS`.

    Returns:
        A uint8 array `(len(items), height, width, channels)`.

    Raises:
        ValueError: naming the first file that cannot be decoded, is over `max_pixels`,
            or has floating-point pixels.

    Example:

    >>> import io
    >>> buffer = io.BytesIO()
    >>> Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(buffer, format="PNG")
    >>> int(decode_images([("white16.png", buffer.getvalue())], (4, 4), 1)[0, 0, 0, 0])
    255
    """
    height, width = image_size
    out = np.empty((len(items), height, width, channels), dtype=np.uint8)
    mode = _MODES[channels]
    return _fill_parallel(
        out, len(items),
        lambda i: _decode(*items[i], (width, height), mode, formats, max_pixels), workers)


def convert_images(x, image_size, channels=3):
    """Resizes and converts uint8 images (N, H, W, C) when size or channels differ."""
    height, width = image_size
    if x.shape[1:] == (height, width, channels):
        return x
    source_mode = _MODES[x.shape[-1]]
    out = np.empty((len(x), height, width, channels), dtype=np.uint8)
    mode = _MODES[channels]
    return _fill_parallel(
        out, len(x), lambda i: _fit(Image.fromarray(x[i].squeeze(-1) if source_mode == "L"
                                                    else x[i], source_mode),
                                    (width, height), mode))
