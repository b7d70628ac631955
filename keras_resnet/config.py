"""Architecture configuration: one frozen, validated dataclass for the whole family.

Every network in this project is described by a `ResNetConfig`, checked in
`__post_init__`, so `dataclasses.replace` validates overrides like the originals. The
published variants and their recipes are plain data in `keras_resnet.variants`.
"""

import dataclasses
import math

from keras_resnet.fields import ConfigDict, check_fields, check_value, option

SE_PLACEMENTS = ("none", "stem", "block")
HEADS = ("avg", "avg_max")
ACTIVATIONS = ("relu", "gelu", "silu", "swish", "elu", "selu", "leaky_relu", "mish", "tanh")
INITIALIZERS = ("he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "random_normal")
# CIFAR-10 statistics used by papers 001 and 002 (fractions of 255).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
DEFAULT_PARAM_BUDGET = 5_000_000


def _per_layer(name, value, num_layers, kind):
    """Expands one value to one per layer; checks a tuple has one per layer."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        value = (value,)
    try:
        if not isinstance(value, (list, tuple)):
            raise ValueError
        values = tuple(check_value(name, v, kind) for v in value)
    except ValueError:
        raise ValueError(
            f"`{name}` must be one number or one per residual layer. Received: {name}={value!r}"
        ) from None
    if len(values) == 1:
        return values * num_layers
    if len(values) != num_layers:
        raise ValueError(
            f"`{name}` must have one value or one per residual layer ({num_layers}). "
            f"Received: {name}={value!r}"
        )
    return values


@dataclasses.dataclass(frozen=True)
class ResNetConfig(ConfigDict):
    """Architecture of a compact CIFAR-style ResNet.

    The family of the project spec (SPEC.md): a 3x3 stem, `len(blocks)` residual layers of basic
    blocks (the first block of every layer but the first has stride 2), average pooling
    and a dense classifier. Per-layer fields accept one value (used for every layer) or
    one value per layer; they are stored as tuples, so configs are hashable and JSON-safe.

    Args:
        blocks: tuple of int. Basic blocks per residual layer (B_i); its length is the
            number of residual layers N.
        channels: tuple of int. Channels per residual layer (C_i); the stem has C_1.
        conv_kernels: int or tuple of int. Kernel size of the block convolutions (F_i).
            Defaults to `3`.
        skip_kernels: int or tuple of int. Kernel size of the projection shortcut (K_i).
            Defaults to `1`.
        pool_size: int or None. Average-pool kernel P before the classifier; `None`
            pools to 1x1. Defaults to `None`.
        head: str. `"avg"`, or `"avg_max"` to concatenate average and max pooling
            (paper 004's deep model). Defaults to `"avg"`.
        se: str. Squeeze-and-excitation placement: `"none"`, `"stem"` (once, after the
            stem, as paper 002) or `"block"` (in every block, as SE-ResNet).
            Defaults to `"none"`.
        se_ratio: int. Channel reduction of SE as a divisor, as in Hu et al. (2018): the
            bottleneck has `channels // se_ratio` units. Not Keras' `se_ratio`, which is a
            fraction (0.25 there is 4 here). Defaults to `16`.
        dropout: float. Dropout rate before the classifier. Defaults to `0.0`.
        block_dropout: float or tuple of float. Dropout rate between the two convolutions
            of each block, per layer. Defaults to `0.0`.
        activation: str. Activation of stem and blocks. Defaults to `"relu"`.
        kernel_initializer: str. Initializer of the stem, block and shortcut convolutions
            and the classifier; SE's two 1x1 convolutions keep Keras' default.
            Defaults to `"he_normal"`.
        num_classes: int. Number of output classes. Defaults to `10`.
        input_shape: tuple of int. Image height, width and channels.
            Defaults to `(32, 32, 3)`.
        mean: tuple of float. Per-channel mean of the data as a fraction of 255; the
            model normalizes raw 0-255 pixels itself. Defaults to CIFAR-10's.
        std: tuple of float. Per-channel standard deviation, as `mean`.

    Raises:
        ValueError: if any field is out of range or inconsistent with the others.

    Example:

    >>> config = ResNetConfig(blocks=(2, 2, 2), channels=(16, 32, 64), skip_kernels=3,
    ...                       pool_size=8)
    >>> config.num_layers, config.skip_kernels
    (3, (3, 3, 3))
    """

    config_name = "architecture"
    blocks: tuple = option((2, 2, 2, 2), "blocks per residual layer, e.g. 4,4,3", item=int)
    channels: tuple = option((64, 128, 256, 512), "channels per layer, e.g. 64,128,256",
                             item=int)
    conv_kernels: tuple = option(3, "block conv kernel: one or one per layer", item=int)
    skip_kernels: tuple = option(1, "shortcut kernel: one or one per layer", item=int)
    pool_size: int | None = option(None, "average-pool kernel before the classifier; none "
                                   "pools to 1x1")
    head: str = option("avg", "classifier pooling", choices=HEADS)
    se: str = option("none", "squeeze-and-excitation placement", choices=SE_PLACEMENTS)
    se_ratio: int = option(16, "SE channel reduction, a divisor (16; Keras' 0.25 is 4)")
    dropout: float = option(0.0, "dropout before the classifier")
    block_dropout: tuple = option(0.0, "dropout inside blocks: one rate or one per layer",
                                  item=float)
    activation: str = option("relu", "activation", choices=ACTIVATIONS)
    kernel_initializer: str = option("he_normal", "initializer", choices=INITIALIZERS,
                                     flag="initializer")
    num_classes: int = 10
    input_shape: tuple = (32, 32, 3)
    mean: tuple = CIFAR10_MEAN
    std: tuple = CIFAR10_STD

    def __post_init__(self):
        set_field = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        check_fields(self)
        blocks = _per_layer("blocks", self.blocks, len(_as_tuple(self.blocks)), int)
        if not blocks or any(b < 1 for b in blocks):
            raise ValueError(
                "`blocks` must be a non-empty list of positive integers. "
                f"Received: blocks={self.blocks!r}"
            )
        set_field("blocks", blocks)
        num_layers = len(blocks)
        channels = _per_layer("channels", self.channels, num_layers, int)
        if any(c < 1 for c in channels):
            raise ValueError(
                f"`channels` must be positive integers. Received: channels={self.channels!r}"
            )
        set_field("channels", channels)
        for name in ("conv_kernels", "skip_kernels"):
            kernels = _per_layer(name, getattr(self, name), num_layers, int)
            if any(k < 1 for k in kernels):
                raise ValueError(
                    f"`{name}` must be positive integers. Received: {name}={getattr(self, name)!r}"
                )
            set_field(name, kernels)
        block_dropout = _per_layer("block_dropout", self.block_dropout, num_layers, float)
        for name, rates in (("dropout", (self.dropout,)), ("block_dropout", block_dropout)):
            if any(not 0.0 <= r < 1.0 for r in rates):
                raise ValueError(
                    f"`{name}` must be in [0, 1). Received: {name}={getattr(self, name)!r}"
                )
        set_field("dropout", float(self.dropout))
        set_field("block_dropout", block_dropout)
        input_shape = _as_tuple(self.input_shape)
        if len(input_shape) != 3 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1
                                        for d in input_shape):
            raise ValueError(
                "`input_shape` must be (height, width, channels) of positive integers. "
                f"Received: input_shape={self.input_shape!r}"
            )
        input_shape = tuple(int(d) for d in input_shape)
        set_field("input_shape", input_shape)
        downsample = 2 ** (num_layers - 1)
        final = min(self.final_size)
        if final < 1 or min(input_shape[:2]) < downsample:
            raise ValueError(
                f"`blocks` has {num_layers} residual layers, which downsample by {downsample}: "
                f"too many for input_shape={input_shape}."
            )
        if self.pool_size is not None:
            if not isinstance(self.pool_size, int) or not 1 <= self.pool_size <= final:
                raise ValueError(
                    f"`pool_size` must be None or an integer in [1, {final}] (the final feature "
                    f"map is {self.final_size[0]}x{self.final_size[1]}). "
                    f"Received: pool_size={self.pool_size!r}"
                )
        if not isinstance(self.se_ratio, int) or self.se_ratio < 1:
            raise ValueError(
                f"`se_ratio` must be a positive integer. Received: se_ratio={self.se_ratio!r}"
            )
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(
                "`num_classes` must be an integer of at least 2. "
                f"Received: num_classes={self.num_classes!r}"
            )
        for name in ("mean", "std"):
            values = _per_layer(name, getattr(self, name), input_shape[2], float)
            if name == "std" and any(v <= 0 for v in values):
                raise ValueError(f"`std` must be positive. Received: std={self.std!r}")
            set_field(name, values)

    @property
    def num_layers(self):
        """Number of residual layers N."""
        return len(self.blocks)

    @property
    def final_size(self):
        """Height and width of the last residual layer's feature map."""
        return tuple(
            downsampled(d, self.num_layers - 1) for d in self.input_shape[:2]
        )


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def downsampled(size, times):
    """The side of a feature map after `times` stride-2 "same" convolutions: ceil(n / 2) each.

    Example:

    >>> downsampled(32, 3), downsampled(28, 3)
    (4, 4)
    """
    for _ in range(times):
        size = math.ceil(size / 2)
    return size
