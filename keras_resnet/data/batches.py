"""Batches for every backend without TensorFlow: data held on the device, gathered per step.

The training split lives on the accelerator once, as uint8 (CIFAR-10's 45,000 images are
138 MB); each step gathers its batch there and converts it to float, so nothing but an index
vector crosses from the host per step, and image augmentation runs inside the compiled train
step (`build_device_training_model`). Everything here is `keras.ops`, so it runs on JAX,
torch and TensorFlow alike; TensorFlow's own input path is `pipeline.build_dataset`.
"""

import math

import keras
import numpy as np
from keras import ops


def check_arrays(x, y, num_classes, batch_size):
    """Checks images, labels, `num_classes` and `batch_size`; returns `(x, int32 y)`.

    Raises:
        ValueError: for inconsistent arrays, labels out of range, or a bad `batch_size` or
            `num_classes`.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise ValueError(
            "`x` must be images (N, height, width, channels) and `y` N integer labels, "
            f"N > 0. Received: x.shape={x.shape}, y.shape={y.shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"`num_classes` must be an integer >= 2. Received: num_classes={num_classes!r}")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"Labels must be in [0, {num_classes}). "
                         f"Received: labels in [{y.min()}, {y.max()}]")
    return x, y.astype(np.int32)


def epoch_order(num_examples, seed, epoch):
    """Returns the shuffled order of epoch `epoch`: a function of `(seed, epoch)` alone.

    So a run resumed at epoch e sees the same batches as one that never stopped.

    Example:

    >>> bool(np.array_equal(epoch_order(5, 0, 3), epoch_order(5, 0, 3)))
    True
    """
    return np.random.default_rng([seed or 0, epoch]).permutation(num_examples)


class ArrayBatches(keras.utils.PyDataset):
    """`(float32 images in [0, 255], one-hot labels)` batches of arrays held on the device.

    Args:
        x: uint8 array (N, height, width, channels).
        y: int array (N,).
        num_classes: int. Width of the one-hot labels.
        batch_size: int. Images per batch.
        training: bool. Shuffle every epoch (and apply `mixing`).
        seed: int or None. With the epoch number, seeds each epoch's order.
        mixing: callable or None. From `build_label_mixing`. Defaults to `None`.
        drop_remainder: bool or None. Drop the last partial batch, so every step has one
            shape and the compiled step never recompiles. Defaults to `None` (keep it).
        initial_epoch: int. Epoch of the first iteration (when resuming). Defaults to `0`.
        shuffle: bool. When training, reshuffle every epoch; `False` keeps the data's own
            order (paper 003). Defaults to `True`.
    """

    def __init__(self, x, y, num_classes, batch_size, training, seed=None, mixing=None,
                 drop_remainder=None, initial_epoch=0, shuffle=True):
        super().__init__()
        x, y = check_arrays(x, y, num_classes, batch_size)
        self.images = ops.convert_to_tensor(x)
        self.labels = ops.convert_to_tensor(y)
        self.num_examples, self.num_classes = len(x), num_classes
        self.batch_size, self.training, self.seed = batch_size, training, seed
        self.mixing = mixing if training else None
        self.drop_remainder = bool(drop_remainder)
        self.shuffle = training and shuffle
        self.epoch = initial_epoch
        self._set_order()

    def _set_order(self):
        order = (epoch_order(self.num_examples, self.seed, self.epoch) if self.shuffle
                 else np.arange(self.num_examples))
        self._order = ops.convert_to_tensor(order.astype(np.int32))

    def __len__(self):
        rounding = math.floor if self.drop_remainder else math.ceil
        return max(1, rounding(self.num_examples / self.batch_size))

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index {index} is out of range [0, {len(self)}).")
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        images = ops.cast(ops.take(self.images, rows, axis=0), "float32")
        labels = ops.one_hot(ops.take(self.labels, rows, axis=0), self.num_classes)
        if self.mixing is not None:
            images, labels = self.mixing(images, labels)
        return images, labels

    def on_epoch_end(self):
        self.epoch += 1
        if self.shuffle:
            self._set_order()


def build_array_batches(x, y, num_classes, batch_size, training, seed=None, augment=(),
                        drop_remainder=None, initial_epoch=0, shuffle=True):
    """Builds `ArrayBatches`: shuffled one-hot batches from arrays held on the device.

    Image augmentation happens in the model (`build_device_training_model`); `augment`'s
    MixUp / CutMix, if any, run here, on the device.

    Args:
        x: uint8 array (N, height, width, channels).
        y: int array (N,).
        num_classes: int. Width of the one-hot labels.
        batch_size: int. Images per batch.
        training: bool. Shuffle every epoch.
        seed: int or None. Seed of the shuffles. Defaults to `None`.
        augment: str or tuple of str. Only `"mixup"` and `"cutmix"` act here.
            Defaults to `()`.
        drop_remainder: bool or None. As in `ArrayBatches`. Defaults to `None`.
        initial_epoch: int. As in `ArrayBatches`. Defaults to `0`.
        shuffle: bool. As in `ArrayBatches`. Defaults to `True`.

    Returns:
        An `ArrayBatches` (`keras.utils.PyDataset`).

    Example:

    >>> batches = build_array_batches(np.zeros((10, 8, 8, 3), np.uint8), np.arange(10) % 2,
    ...                               2, batch_size=4, training=False)
    >>> len(batches), tuple(batches[2][0].shape)
    (3, (2, 8, 8, 3))
    """
    from keras_resnet.data.augment import build_label_mixing

    mixing = build_label_mixing(augment, seed=seed) if training else None
    return ArrayBatches(x, y, num_classes, batch_size, training, seed=seed, mixing=mixing,
                        drop_remainder=drop_remainder, initial_epoch=initial_epoch,
                        shuffle=shuffle)


def build_device_training_model(model, augmentation):
    """Wraps `model` so augmentation runs inside the compiled train step, on the device.

    The wrapper is Functional: inputs -> `augmentation` -> `model`, sharing `model`'s
    layers and weights, so training the wrapper trains `model`. Augmentation layers are
    the identity at inference, so evaluating the wrapper equals evaluating `model`. Save
    and export `model`, not the wrapper.

    Args:
        model: `keras.Model` taking float images in [0, 255].
        augmentation: `keras.Sequential` from `build_augmentation`, or None.

    Returns:
        The wrapper `keras.Model`, or `model` itself when `augmentation` is None.

    Example:

    >>> from keras_resnet.data.augment import build_augmentation
    >>> inner = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2)])
    >>> wrapper = build_device_training_model(inner, build_augmentation("flip", (8, 8, 3)))
    >>> wrapper.trainable_weights[0] is inner.trainable_weights[0]
    True
    """
    if augmentation is None:
        return model
    inputs = keras.Input(model.input_shape[1:], name="image")
    return keras.Model(inputs, model(augmentation(inputs)), name=f"{model.name}_train")
