"""TensorFlow's fused batch-norm kernel for the stock BatchNormalization layers of a model.

Keras 3 computes batch norm from separate moments and elementwise ops in float32 (it
upcasts bfloat16 activations), about twenty passes over every activation per step; on the
2-core CPU that made batch norm the largest cost of a training step. TensorFlow's
`FusedBatchNormV3` (oneDNN on x86) does it in one pass each way and takes bfloat16
activations with float32 statistics. In bfloat16 it trained `efficient` 2.1x and `tiny` 2.4x
faster here (benchmarks/results/cpu_vs_torch.md).

The model keeps its stock layers: only the `call` of each layer *instance* of a model being
trained is replaced, so what is saved and exported is unchanged. TensorFlow backend only.
"""

import types

import keras
import tensorflow as tf


def _fused_call(self, inputs, training=None, mask=None):
    # The same math as keras.layers.BatchNormalization.call, through one kernel.
    x = tf.cast(inputs, self.compute_dtype)
    channels = x.shape[-1]
    gamma = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels])
    beta = tf.cast(self.beta, "float32") if self.center else tf.zeros([channels])
    if training and self.trainable:
        empty = tf.constant([], "float32")
        y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=empty, variance=empty,
            epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # The kernel returns the unbiased batch variance; Keras tracks the biased one.
        count = tf.cast(tf.size(x) // channels, "float32")
        variance = variance * (count - 1.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
    else:
        y, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=tf.cast(self.moving_mean, "float32"),
            variance=tf.cast(self.moving_variance, "float32"), epsilon=self.epsilon,
            data_format="NHWC", is_training=False)
    return y


def use_fused_batch_norm(model):
    """Routes the model's BatchNormalization layers through the fused TensorFlow kernel.

    Layers the kernel cannot express (masks, renorm, synchronized, not channels-last 4D)
    keep the stock implementation.

    Args:
        model: `keras.Model` on the TensorFlow backend.

    Returns:
        int, the number of layers switched.

    Example:

    >>> from keras_resnet import build_resnet, get_variant
    >>> use_fused_batch_norm(build_resnet(get_variant("tiny")))
    15
    """
    switched = 0
    for layer in _layers(model):
        if (isinstance(layer, keras.layers.BatchNormalization) and not layer.renorm
                and not layer.synchronized and layer.axis in (3, -1)
                and len(layer.input.shape) == 4):
            layer.call = types.MethodType(_fused_call, layer)
            switched += 1
    return switched


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer
