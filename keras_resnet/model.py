"""Builds the Functional model from a config; counts its parameters, MACs and int8 size
without building it."""

import collections

import keras

from keras_resnet import blocks
from keras_resnet.arena import estimate_arena_bytes  # noqa: F401 - a budget, checked here
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
    for block in blocks.block_plan(config):
        x = blocks.residual_block(x, block, config)
    return keras.Model(inputs, blocks.head(x, config), name=name)


# One weighted layer of the network, in the order the builder makes them: a convolution
# (`kernel` > 0; `pixels` of its output map), squeeze-and-excitation (`kernel` 0, on
# `outputs` channels) or the classifier (`kernel` 0, `pixels` 0); `name` is its Keras
# layer's, or the prefix of SE's two.
Layer = collections.namedtuple("Layer", "kind inputs outputs kernel pixels name")


def layer_plan(config):
    """Yields the network's weighted layers as data, in the order `build_resnet` builds them.

    The residual blocks come from `blocks.block_plan`, the rows the builder builds.
    `count_params`, `estimate_flops` and `estimate_int8_bytes` all walk this one plan, so
    they cannot drift apart; a test checks it against every built variant's weights.

    Example:

    >>> from keras_resnet.variants import get_variant
    >>> [(l.name, l.outputs) for l in layer_plan(get_variant("tiny"))][:3]
    [('stem_conv', 16), ('layer1_block1_conv1', 16), ('layer1_block1_conv2', 16)]
    """
    height, width = config.input_shape[:2]
    channels = config.channels[0]
    yield Layer("conv", config.input_shape[2], channels, 3, height * width, "stem_conv")
    if config.se == "stem":
        yield Layer("se", channels, channels, 0, 1, "stem_se")
    for block in blocks.block_plan(config):
        name, pixels = block.name, block.height * block.width
        yield Layer("conv", block.inputs, block.outputs, block.kernel, pixels, f"{name}_conv1")
        yield Layer("conv", block.outputs, block.outputs, block.kernel, pixels,
                    f"{name}_conv2")
        if config.se == "block":
            yield Layer("se", block.outputs, block.outputs, 0, 1, f"{name}_se")
        if block.skip_kernel:
            yield Layer("conv", block.inputs, block.outputs, block.skip_kernel, pixels,
                        f"{name}_skip_conv")
        height, width, channels = block.height, block.width, block.outputs
    # The classifier's inputs: the pooled grid x heads x channels.
    grid = 1
    if config.pool_size is not None:
        grid = (height // config.pool_size) * (width // config.pool_size)
    features = channels * grid * (2 if config.head == "avg_max" else 1)
    yield Layer("dense", features, config.num_classes, 0, 0, "classifier")


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
    trainable = batch_norm_channels = 0
    for layer in layer_plan(config):
        if layer.kind == "conv":
            # No bias: the batch norm after it has gamma and beta.
            trainable += layer.kernel ** 2 * layer.inputs * layer.outputs + 2 * layer.outputs
            batch_norm_channels += layer.outputs
        elif layer.kind == "se":
            squeezed = blocks.squeeze_width(layer.outputs, config.se_ratio)
            trainable += 2 * layer.outputs * squeezed + squeezed + layer.outputs
        else:
            trainable += (layer.inputs + 1) * layer.outputs
    return {"trainable": trainable, "non_trainable": 2 * batch_norm_channels}


def check_budget(config, param_budget=DEFAULT_PARAM_BUDGET, allow_over_budget=False,
                 flash_budget=None, macs_budget=None, arena_budget=None):
    """Refuses a configuration over the parameter budget, or a device's flash, MACs or RAM.

    Everything is analytic (about a millisecond, nothing built): trainable parameters
    (`count_params`), the int8 model's size (`estimate_int8_bytes`), multiply-
    accumulates per image (`estimate_flops` / 2) and TFLM's tensor arena
    (`estimate_arena_bytes`).

    Args:
        config: `ResNetConfig`.
        param_budget: int. Maximum trainable parameters. Defaults to 5,000,000.
        allow_over_budget: bool. If True, only returns the count. Defaults to `False`.
        flash_budget: int or None. Maximum bytes of the int8 `.tflite` model, as
            estimated. Defaults to `None` (no limit).
        macs_budget: int or None. Maximum multiply-accumulates per image. Defaults to
            `None` (no limit).
        arena_budget: int or None. Maximum bytes of TFLM's tensor arena (the RAM the
            int8 model runs in), as estimated. Defaults to `None` (no limit).

    Returns:
        The trainable parameter count.

    Raises:
        ValueError: if a budget is not a positive integer, or the configuration exceeds
            one and `allow_over_budget` is False.

    Example:

    >>> from keras_resnet.variants import get_variant
    >>> check_budget(get_variant("efficient"))
    4697742
    >>> check_budget(get_variant("resnet8"), flash_budget=100_000, macs_budget=13_000_000,
    ...              arena_budget=65_536)
    78042
    """
    budgets = {"param_budget": param_budget, "flash_budget": flash_budget,
               "macs_budget": macs_budget, "arena_budget": arena_budget}
    for name, value in budgets.items():
        if value is None and name != "param_budget":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    trainable = count_params(config)["trainable"]
    if allow_over_budget:
        return trainable
    excess = over_budget(config, param_budget, flash_budget, macs_budget, arena_budget)
    if excess:
        raise ValueError(excess)
    return trainable


def over_budget(config, param_budget=DEFAULT_PARAM_BUDGET, flash_budget=None,
                macs_budget=None, arena_budget=None):
    """The first budget `config` exceeds, as a one-line message, or `None` if it fits.

    Budgets of `None` are not checked; see `check_budget`, which validates them.
    """
    budgets = {"param_budget": param_budget, "flash_budget": flash_budget,
               "macs_budget": macs_budget, "arena_budget": arena_budget}
    measures = (("param_budget", lambda: count_params(config)["trainable"],
                 "The configuration has {:,} trainable parameters, over the budget of {:,}"),
                ("flash_budget", lambda: estimate_int8_bytes(config), "The configuration's "
                 "int8 model is estimated at {:,} bytes, over the flash budget of {:,}"),
                ("macs_budget", lambda: estimate_flops(config) // 2, "The configuration "
                 "takes {:,} multiply-accumulates per image, over the MACs budget of {:,}"),
                ("arena_budget", lambda: estimate_arena_bytes(config), "The configuration's "
                 "int8 model is estimated to need a TFLM arena of {:,} bytes, over the arena "
                 "budget of {:,}"))
    for name, measure, message in measures:
        if budgets[name] is not None and measure() > budgets[name]:
            return (message.format(measure(), budgets[name]) + "; shrink it or pass "
                    f"allow_over_budget=True (--allow-over-budget). "
                    f"Received: {name}={budgets[name]}")
    return None


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
    flops = 0
    for layer in layer_plan(config):
        if layer.kind == "conv":
            flops += 2 * layer.pixels * layer.kernel ** 2 * layer.inputs * layer.outputs
        elif layer.kind == "se":
            # Two 1x1 convolutions on the pooled 1x1 map.
            flops += 2 * 2 * layer.outputs * blocks.squeeze_width(layer.outputs, config.se_ratio)
        else:
            flops += 2 * layer.inputs * layer.outputs
    return flops


# Bytes of the int8 .tflite file beyond one per trainable parameter, fitted on eight
# converted models of the family with trained-like weights (distinct biases and batch
# norm statistics: an untrained model's zero biases are shared by the converter and make a
# smaller file): resnet8 and neighbours, tiny, a narrow 4-layer net, a 700K-parameter
# shallow one, all within 0.1%; SE within about 1% (tests/test_budgets.py). Per output
# channel of a convolution: an int32 bias and per-channel scales and zero points, less the
# two batch norm parameters folded away; per convolution: its tensors' metadata and names;
# a Flatten head (pool_size set) adds SHAPE/STRIDED_SLICE/PACK/RESHAPE; SE adds its
# pooling and product.
INT8_BYTES_PER_CHANNEL = 26
INT8_BYTES_PER_CONV = 832
INT8_BYTES_FLATTEN = 1000
INT8_BYTES_PER_SE = 520
INT8_BYTES_FIXED = 2502


def estimate_int8_bytes(config):
    """Size of the full-integer `.tflite` file (flash on a microcontroller), unbuilt.

    From the trainable parameter count (one byte each) plus the per-channel and
    per-layer overhead of the flatbuffer (`INT8_BYTES_*`, fitted on converted models).
    Activations other than ReLU add operators this does not count; export measures the
    real file.

    Args:
        config: `ResNetConfig`.

    Returns:
        int, estimated bytes.

    Example:

    >>> from keras_resnet.variants import get_variant
    >>> estimate_int8_bytes(get_variant("resnet8"))  # trained and converted: 97,864 bytes
    97768
    """
    channels = convolutions = squeeze_excites = 0
    for layer in layer_plan(config):
        if layer.kind == "conv":
            channels, convolutions = channels + layer.outputs, convolutions + 1
        elif layer.kind == "se":
            squeeze_excites += 1
            channels += layer.outputs + blocks.squeeze_width(layer.outputs, config.se_ratio)
            convolutions += 2
    total = (count_params(config)["trainable"] + INT8_BYTES_PER_CHANNEL * channels
             + INT8_BYTES_PER_CONV * convolutions + INT8_BYTES_PER_SE * squeeze_excites
             + INT8_BYTES_FIXED + (INT8_BYTES_FLATTEN if config.pool_size is not None else 0))
    return total



def float32_model(model):
    """Returns `model` itself if it computes in float32, else a float32 copy of it.

    A model trained under `mixed_float16` or `mixed_bfloat16` keeps float32 variables but
    computes in half precision; exporting it as is would bake casts into every format and
    stop TFLite's float path from matching the reference. Cloning each layer with
    `dtype="float32"` and copying the (already float32) weights gives the same function
    in full precision.

    Args:
        model: a Functional `keras.Model`.

    Returns:
        A `keras.Model` whose every layer has the `float32` dtype policy.
    """
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def clone_layer(layer):
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    return clone
