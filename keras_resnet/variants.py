"""The registry of published variants (the project spec, SPEC.md) as plain data.

Add a variant with `register_variant`; the tests are parametrized over `VARIANTS`, so it
is tested the day it is added.
"""

import dataclasses

from keras_resnet.config import ResNetConfig


@dataclasses.dataclass(frozen=True)
class Variant:
    """A named architecture with where it comes from.

    Args:
        name: str. Short, lower-case, stable name.
        config: `ResNetConfig`.
        paper: str. The paper (seed number) that published it.
        paper_accuracy: str. The CIFAR-10 test accuracy the paper reports.
        notes: str. How the paper was read, where that needed a choice.
    """

    name: str
    config: ResNetConfig
    paper: str
    paper_accuracy: str
    notes: str = ""


VARIANTS = {}


def register_variant(variant):
    """Adds `variant` to `VARIANTS`.

    Raises:
        ValueError: if a variant of that name exists.
    """
    if variant.name in VARIANTS:
        raise ValueError(f"A variant named {variant.name!r} exists. Received: name={variant.name!r}")
    VARIANTS[variant.name] = variant
    return variant


def get_variant(name, **overrides):
    """Returns the config of a registered variant, with fields overridden.

    Args:
        name: str. A key of `VARIANTS`.
        **overrides: `ResNetConfig` fields to replace; validated like the originals.

    Returns:
        A `ResNetConfig`.

    Raises:
        ValueError: if `name` is not registered or an override is invalid.

    Example:

    >>> get_variant("tiny", channels=(8, 16, 32)).channels
    (8, 16, 32)
    """
    if name not in VARIANTS:
        raise ValueError(
            f"Unknown variant; expected one of {', '.join(VARIANTS)}. Received: variant={name!r}"
        )
    fields = {f.name for f in dataclasses.fields(ResNetConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"Unknown architecture field(s): {', '.join(unknown)}. Received: {unknown}"
        )
    return dataclasses.replace(VARIANTS[name].config, **overrides)


_RESNET18 = ResNetConfig(blocks=(2, 2, 2, 2), channels=(64, 128, 256, 512))
_SHALLOW = ResNetConfig(blocks=(2, 2, 2), channels=(64, 128, 256), pool_size=8)

for _variant in (
    Variant("resnet18", _RESNET18, "baseline of 000, 001, 002", "~89-95%",
            "11.2M parameters: over the 5M budget, kept as the reference."),
    Variant("reduced", dataclasses.replace(_RESNET18, blocks=(2, 1, 1, 1)), "000", "93%"),
    Variant("narrow_deep", dataclasses.replace(
        _RESNET18, blocks=(4, 6, 4, 3), channels=(32, 64, 128, 256)), "001", "90.86%"),
    Variant("efficient", dataclasses.replace(
        _SHALLOW, blocks=(4, 4, 3), se="stem"), "002", "96.04%"),
    Variant("tiny", dataclasses.replace(
        _SHALLOW, channels=(16, 32, 64), skip_kernels=3), "003", "88.3%"),
    Variant("shallow", _SHALLOW, "004", "90.04%"),
    Variant("deep", ResNetConfig(
        blocks=(3, 4, 11, 2), channels=(32, 64, 115, 256), head="avg_max",
        activation="gelu", block_dropout=(0.432, 0.432, 0.287, 0.287)), "004", "88%",
        "Paper 004's table (blocks 3,4,11,5) gives 8.5M parameters, not its 4,999,689. "
        "We keep its channels, GELU, avg+max pooling head and the two dropout rates "
        "(0.432 in the early layers, 0.287 in the late ones, inside the blocks) and cut "
        "the last layer to 2 blocks: 4,986,265 parameters, the closest reading under 5M."),
):
    register_variant(_variant)
