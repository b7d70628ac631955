"""Building blocks of the family: stem, basic residual block, squeeze-and-excitation, and
the plan that stacks them.

Functions over stock Keras layers only, so a model built from them is a plain Functional
graph: it saves as `.keras`, exports to SavedModel and TFLite, and runs on every backend
with no custom objects. Layer names are deterministic (`layer2_block1_conv1`) so tests and
TFLite inspection can find them.
"""

import collections
import math

import keras

# PyTorch's BatchNorm defaults (momentum 0.1 there is 0.9 here), which the papers used.
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5


def _conv(x, filters, kernel_size, strides, initializer, name):
    return keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False,
        kernel_initializer=initializer, name=name,
    )(x)


def _batch_norm(x, name):
    return keras.layers.BatchNormalization(
        momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON, name=name
    )(x)


def squeeze_width(channels, ratio):
    """Squeeze-excitation's bottleneck width, `channels // ratio` but at least 1: the one
    formula the builder, the parameter count and the FLOP, int8 and arena estimates use."""
    return max(1, channels // ratio)


def squeeze_excite(x, ratio, name):
    """Squeeze-and-excitation as paper 002 builds it.

    Global average pool, 1x1 conv to `channels // ratio` with bias, ReLU, 1x1 conv back
    with bias, sigmoid, and a channel-wise product with the input.

    Args:
        x: tensor of shape `(batch, height, width, channels)`.
        ratio: int. Channel reduction ratio.
        name: str. Prefix of the layer names.

    Returns:
        A tensor of the same shape as `x`.

    Example:

    >>> inputs = keras.Input((8, 8, 32))
    >>> keras.Model(inputs, squeeze_excite(inputs, 16, "se")).count_params()
    162
    """
    channels = x.shape[-1]
    squeezed = squeeze_width(channels, ratio)
    scale = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    scale = keras.layers.Conv2D(squeezed, 1, activation="relu", name=f"{name}_reduce")(scale)
    scale = keras.layers.Conv2D(channels, 1, activation="sigmoid", name=f"{name}_expand")(scale)
    return keras.layers.Multiply(name=f"{name}_scale")([x, scale])


def stem(x, config):
    """3x3 convolution with C_1 filters, batch norm and activation (and SE if `"stem"`).

    Args:
        x: tensor of normalized images, `(batch, height, width, channels)`.
        config: `ResNetConfig`.

    Returns:
        A tensor with `config.channels[0]` channels at the input resolution.
    """
    x = _conv(x, config.channels[0], 3, 1, config.kernel_initializer, "stem_conv")
    x = _batch_norm(x, "stem_bn")
    x = keras.layers.Activation(config.activation, name="stem_act")(x)
    if config.se == "stem":
        x = squeeze_excite(x, config.se_ratio, "stem_se")
    return x


# One residual block, in the order the builder makes them: the prefix of its layer names,
# its input and output channels, the stride of its first convolution, the kernel of its
# two convolutions and of its projection shortcut (0: an identity shortcut), its dropout
# rate and the height and width of its output map.
Block = collections.namedtuple(
    "Block", "name inputs outputs strides kernel skip_kernel dropout height width")


def block_plan(config):
    """Yields the network's residual blocks as data, in the order they are built.

    The one home of the stacking rules, as timm's `make_blocks` and keras-hub's
    `apply_stack`: the first block of every residual layer but the first halves the map,
    and a block that changes the map's shape takes a projection shortcut. `build_resnet`
    builds these rows and `keras_resnet.model.layer_plan` counts them.

    Args:
        config: `ResNetConfig`.

    Yields:
        `Block` rows.

    Example:

    >>> from keras_resnet.variants import get_variant
    >>> [(b.name, b.strides, b.skip_kernel, b.height) for b in block_plan(get_variant("resnet8"))]
    [('layer1_block1', 1, 0, 32), ('layer2_block1', 2, 1, 16), ('layer3_block1', 2, 1, 8)]
    """
    height, width = config.input_shape[:2]
    inputs = config.channels[0]
    for layer, num_blocks in enumerate(config.blocks):
        outputs = config.channels[layer]
        for block in range(num_blocks):
            strides = 2 if layer > 0 and block == 0 else 1
            # "same" padding: a stride-2 convolution keeps the odd pixel.
            height, width = math.ceil(height / strides), math.ceil(width / strides)
            projection = strides != 1 or inputs != outputs
            yield Block(f"layer{layer + 1}_block{block + 1}", inputs, outputs, strides,
                        config.conv_kernels[layer],
                        config.skip_kernels[layer] if projection else 0,
                        config.block_dropout[layer], height, width)
            inputs = outputs


def residual_block(x, block, config):
    """Basic residual block: two convolutions and a shortcut, as a `block_plan` row says.

    conv (stride `block.strides`) -> BN -> act -> [dropout] -> conv -> BN -> [SE], plus
    the identity, or a `block.skip_kernel` projection with BN; then act.

    Args:
        x: input tensor with `block.inputs` channels.
        block: `Block`. Its name prefixes the layer names, e.g. `"layer2_block1"`.
        config: `ResNetConfig`, for activation, initializer and SE.

    Returns:
        The block's output tensor.
    """
    name, initializer = block.name, config.kernel_initializer
    shortcut = x
    x = _conv(x, block.outputs, block.kernel, block.strides, initializer, f"{name}_conv1")
    x = _batch_norm(x, f"{name}_bn1")
    x = keras.layers.Activation(config.activation, name=f"{name}_act1")(x)
    if block.dropout:
        x = keras.layers.Dropout(block.dropout, name=f"{name}_dropout")(x)
    x = _conv(x, block.outputs, block.kernel, 1, initializer, f"{name}_conv2")
    x = _batch_norm(x, f"{name}_bn2")
    if config.se == "block":
        x = squeeze_excite(x, config.se_ratio, f"{name}_se")
    if block.skip_kernel:
        shortcut = _conv(shortcut, block.outputs, block.skip_kernel, block.strides,
                         initializer, f"{name}_skip_conv")
        shortcut = _batch_norm(shortcut, f"{name}_skip_bn")
    x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
    return keras.layers.Activation(config.activation, name=f"{name}_out")(x)


def _pool(x, kind, pool_size):
    prefix = f"head_{kind.lower()}"
    if pool_size is None:
        return getattr(keras.layers, f"Global{kind}Pooling2D")(name=f"{prefix}_pool")(x)
    x = getattr(keras.layers, f"{kind}Pooling2D")(pool_size, name=f"{prefix}_pool")(x)
    return keras.layers.Flatten(name=f"{prefix}_flatten")(x)


def head(x, config):
    """Pooling, optional dropout and the dense classifier, ending in float32 softmax.

    Args:
        x: output of the last residual layer.
        config: `ResNetConfig`.

    Returns:
        Class probabilities, `(batch, num_classes)`, float32 under any precision policy.
    """
    kinds = ("Average", "Max") if config.head == "avg_max" else ("Average",)
    pooled = [_pool(x, kind, config.pool_size) for kind in kinds]
    x = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="head_concat")(pooled)
    if config.dropout:
        x = keras.layers.Dropout(config.dropout, name="head_dropout")(x)
    # The classifier stays float32 under mixed precision (Keras' own advice): its logits
    # feed the softmax, where bfloat16's 8-bit mantissa costs accuracy.
    x = keras.layers.Dense(config.num_classes, kernel_initializer=config.kernel_initializer,
                           dtype="float32", name="classifier")(x)
    # Softmax in float32 keeps mixed-precision training stable and gives int8 export
    # an output range of [0, 1].
    return keras.layers.Activation("softmax", dtype="float32", name="predictions")(x)
