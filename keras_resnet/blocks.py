"""Building blocks of the family: stem, basic residual block, squeeze-and-excitation.

Functions over stock Keras layers only, so a model built from them is a plain Functional
graph: it saves as `.keras`, exports to SavedModel and TFLite, and runs on every backend
with no custom objects. Layer names are deterministic (`layer2_block1_conv1`) so tests and
TFLite inspection can find them.
"""

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
    squeezed = max(1, channels // ratio)
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


def residual_block(x, filters, strides, conv_kernel, skip_kernel, config, dropout, name):
    """Basic residual block: two convolutions and a shortcut.

    conv (stride `strides`) -> BN -> act -> [dropout] -> conv -> BN -> [SE], plus the
    identity, or a `skip_kernel` projection with BN when the shape changes; then act.

    Args:
        x: input tensor.
        filters: int. Output channels.
        strides: int. Stride of the first convolution and of the projection.
        conv_kernel: int. Kernel size of both convolutions.
        skip_kernel: int. Kernel size of the projection shortcut.
        config: `ResNetConfig`, for activation, initializer and SE.
        dropout: float. Dropout rate between the two convolutions; 0 for none.
        name: str. Prefix of the layer names, e.g. `"layer2_block1"`.

    Returns:
        The block's output tensor.
    """
    initializer = config.kernel_initializer
    shortcut = x
    x = _conv(x, filters, conv_kernel, strides, initializer, f"{name}_conv1")
    x = _batch_norm(x, f"{name}_bn1")
    x = keras.layers.Activation(config.activation, name=f"{name}_act1")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = _conv(x, filters, conv_kernel, 1, initializer, f"{name}_conv2")
    x = _batch_norm(x, f"{name}_bn2")
    if config.se == "block":
        x = squeeze_excite(x, config.se_ratio, f"{name}_se")
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = _conv(shortcut, filters, skip_kernel, strides, initializer,
                         f"{name}_skip_conv")
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
