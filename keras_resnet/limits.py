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
