"""Builds the Functional model from a config, and counts its parameters without building it."""

import math

import keras

from keras_resnet import blocks
from keras_resnet.config import DEFAULT_PARAM_BUDGET


def build_resnet(config, name="resnet"):
    """Builds the ResNet that `config` describes as a Functional Keras model.

    The model takes raw pixels in [0, 255] (float32, any backend) and normalizes them
    itself with the config's mean and std, so an exported model needs no preprocessing.
    It returns class probabilities.

    Args:
        config: `ResNetConfig`.
        name: str. Model name. Defaults to `"resnet"`.

    Returns:
        A `keras.Model`.

    Example:

    >>> from keras_resnet.variants import get_variant
    >>> model = build_resnet(get_variant("tiny"))
    >>> model.output_shape
    (None, 10)
    """
    inputs = keras.Input(config.input_shape, name="image")
    x = keras.layers.Normalization(
        mean=[255.0 * m for m in config.mean],
        variance=[(255.0 * s) ** 2 for s in config.std],
        # Raw pixels up to 255 lose their low bits in bfloat16; normalize in float32.
        dtype="float32", name="normalize",
    )(inputs)
    x = blocks.stem(x, config)
    for layer, num_blocks in enumerate(config.blocks):
        for block in range(num_blocks):
            strides = 2 if layer > 0 and block == 0 else 1
            x = blocks.residual_block(
                x, config.channels[layer], strides, config.conv_kernels[layer],
                config.skip_kernels[layer], config, config.block_dropout[layer],
                name=f"layer{layer + 1}_block{block + 1}",
            )
    return keras.Model(inputs, blocks.head(x, config), name=name)


def count_params(config):
    """Counts the model's parameters from the config alone, without building it.

    Exactly equal to the built model's counts; the tuner uses it to reject a
    configuration over budget in microseconds. BatchNorm's gamma and beta are trainable,
    its moving mean and variance are not.

    Args:
        config: `ResNetConfig`.

    Returns:
        A dict with `trainable` and `non_trainable` parameter counts.

    Example:

    >>> from keras_resnet.variants import get_variant
    >>> count_params(get_variant("tiny"))
    {'trainable': 195738, 'non_trainable': 1120}
    """
    trainable = 0
    batch_norm_channels = 0

    def conv(cin, cout, kernel):
        nonlocal trainable, batch_norm_channels
        trainable += kernel * kernel * cin * cout + 2 * cout
        batch_norm_channels += cout

    def squeeze_excite(channels):
        nonlocal trainable
        squeezed = max(1, channels // config.se_ratio)
        trainable += channels * squeezed + squeezed + squeezed * channels + channels

    conv(config.input_shape[2], config.channels[0], 3)
    if config.se == "stem":
        squeeze_excite(config.channels[0])
    in_channels = config.channels[0]
    for layer, num_blocks in enumerate(config.blocks):
        filters, kernel = config.channels[layer], config.conv_kernels[layer]
        for block in range(num_blocks):
            strides = 2 if layer > 0 and block == 0 else 1
            conv(in_channels, filters, kernel)
            conv(filters, filters, kernel)
            if config.se == "block":
                squeeze_excite(filters)
            if strides != 1 or in_channels != filters:
                conv(in_channels, filters, config.skip_kernels[layer])
            in_channels = filters
    if config.pool_size is None:
        grid = 1
    else:
        height, width = config.final_size
        grid = ((height - config.pool_size) // config.pool_size + 1) * (
            (width - config.pool_size) // config.pool_size + 1)
    features = in_channels * grid * (2 if config.head == "avg_max" else 1)
    trainable += features * config.num_classes + config.num_classes
    return {"trainable": trainable, "non_trainable": 2 * batch_norm_channels}


def check_budget(config, param_budget=DEFAULT_PARAM_BUDGET, allow_over_budget=False):
    """Refuses a configuration whose trainable parameters exceed the budget.

    Args:
        config: `ResNetConfig`.
        param_budget: int. Maximum trainable parameters. Defaults to 5,000,000.
        allow_over_budget: bool. If True, only returns the count. Defaults to `False`.

    Returns:
        The trainable parameter count.

    Raises:
        ValueError: if `param_budget` is not a positive integer, or the count exceeds it
            and `allow_over_budget` is False.

    Example:

    >>> from keras_resnet.variants import get_variant
    >>> check_budget(get_variant("efficient"))
    4697742
    """
    if isinstance(param_budget, bool) or not isinstance(param_budget, int) or param_budget < 1:
        raise ValueError(
            f"`param_budget` must be a positive integer. Received: param_budget={param_budget!r}"
        )
    trainable = count_params(config)["trainable"]
    if trainable > param_budget and not allow_over_budget:
        raise ValueError(
            f"The configuration has {trainable:,} trainable parameters, over the budget of "
            f"{param_budget:,}; shrink it or pass allow_over_budget=True "
            f"(--allow-over-budget). Received: param_budget={param_budget}"
        )
    return trainable


def estimate_flops(config):
    """Multiply-accumulates x 2 per image of a forward pass (convolutions and dense).

    Counts every convolution (stem, blocks, projections, squeeze-and-excitation) and the
    classifier on the pooled features; batch norm, activations and pooling are left out
    (a few percent of the total).

    Args:
        config: `ResNetConfig`.

    Returns:
        int, floating-point operations per image (forward only).

    Example:

    >>> from keras_resnet.config import ResNetConfig
    >>> estimate_flops(ResNetConfig(blocks=(1,), channels=(4,), input_shape=(2, 2, 1),
    ...                             mean=(0.5,), std=(0.25,), num_classes=2))
    2608
    """
    height, width = config.input_shape[:2]
    flops = 2 * height * width * 9 * config.input_shape[2] * config.channels[0]

    def squeeze_excite(channels):
        # Two 1x1 convolutions on the pooled 1x1 map.
        return 2 * 2 * channels * max(1, channels // config.se_ratio)

    if config.se == "stem":
        flops += squeeze_excite(config.channels[0])
    in_channels = config.channels[0]
    for layer, num_blocks in enumerate(config.blocks):
        filters, kernel = config.channels[layer], config.conv_kernels[layer]
        for block in range(num_blocks):
            strides = 2 if layer > 0 and block == 0 else 1
            height, width = math.ceil(height / strides), math.ceil(width / strides)
            pixels = height * width
            flops += 2 * pixels * kernel * kernel * (in_channels * filters + filters * filters)
            if config.se == "block":
                flops += squeeze_excite(filters)
            if strides != 1 or in_channels != filters:
                flops += 2 * pixels * config.skip_kernels[layer] ** 2 * in_channels * filters
            in_channels = filters
    # The classifier's inputs: like count_params, pooled grid x heads x channels.
    grid = 1
    if config.pool_size is not None:
        grid = (height // config.pool_size) * (width // config.pool_size)
    features = in_channels * grid * (2 if config.head == "avg_max" else 1)
    return flops + 2 * features * config.num_classes
