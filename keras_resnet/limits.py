"""Limits on what reading untrusted data may cost; no Keras, so commands check them first."""

import dataclasses

# Pixels one image may have before it is decoded (width x height): a 12000x12000 PNG of a
# few kilobytes would otherwise take 432 MB. Training images are small; 8192x8192 is a
# generous photo. `--max-image-pixels` changes it.
MAX_IMAGE_PIXELS = 8192 * 8192
MB = 1 << 20


@dataclasses.dataclass(frozen=True)
class ReadLimits:
    """How much a data source may make us decode, so a small hostile file cannot take all memory.

    An archive is read into memory: a 10 MB .tar.gz can hold a 2 GB member of zeros. Each
    member's size is known from its header before it is read, so both limits refuse it
    before a byte is inflated.

    Args:
        max_member_bytes: int. Largest archive member read. Defaults to 512 MB (a
            CIFAR-10 batch is 31 MB, CIFAR-100's training file 155 MB).
        max_archive_bytes: int. Largest total of the members read. Defaults to 4 GB
            (all of CIFAR-10 is 178 MB).
        max_image_pixels: int. Most pixels (width x height) of one image, checked from its
            header before decoding. Defaults to `MAX_IMAGE_PIXELS` (8192 x 8192).

    Example:

    >>> ReadLimits(max_member_bytes=10 * MB).max_member_bytes
    10485760
    """

    max_member_bytes: int = 512 * MB
    max_archive_bytes: int = 4096 * MB
    max_image_pixels: int = MAX_IMAGE_PIXELS

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{field.name}` must be a positive integer. "
                                 f"Received: {field.name}={value!r}")


# A run's config.json, a --config or a --space file is a few kilobytes; its values number
# in the tens (a resumed run's history adds some per resume). These bound what a hostile
# file may make parsing, and every message that shows a value, cost.
MAX_CONFIG_BYTES = 4 * MB
MAX_CONFIG_VALUES = 100_000


def read_settings_text(path, flag):
    """Reads a small settings file (JSON or YAML) as text, refusing what is not one.

    Args:
        path: str. The file.
        flag: str. The flag that named it, for the message (`config`, `space`).

    Raises:
        ValueError: if `path` is missing, a folder or another non-regular file (a FIFO or
            device would block or never end), larger than `MAX_CONFIG_BYTES`, or not UTF-8.
    """
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ValueError(f"--{flag} {path} does not exist; expected a JSON or YAML file. "
                         f"Received: {flag}={path!r}") from None
    except OSError as error:
        raise ValueError(f"--{flag} {path} cannot be read ({error.strerror}); expected a JSON "
                         f"or YAML file. Received: {flag}={path!r}") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise ValueError(f"--{flag} {path} is {kind}; expected a JSON or YAML file. "
                         f"Received: {flag}={path!r}")
    with open(path, "rb") as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError(f"--{flag} {path} is over {MAX_CONFIG_BYTES // MB} MB, too large for "
                         f"a settings file. Received: {flag}={path!r}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"--{flag} {path} could not be parsed: it is not UTF-8 text. "
                         f"Received: {flag}={path!r}") from None


def count_values(value, limit=MAX_CONFIG_VALUES):
    """Counts the values in parsed JSON (containers and scalars), stopping past `limit`.

    Raises:
        ValueError: if there are more than `limit`.

    Example:

    >>> count_values({"train": {"epochs": 3, "milestones": [10, 20]}})
    9
    """
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            raise ValueError(f"The settings hold over {limit:,} values; a run's settings are "
                             f"a few dozen. Received: values>{limit}")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count
