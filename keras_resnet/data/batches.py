"""Batches for every backend without TensorFlow: data held on the device, gathered per step.

The training split lives on the accelerator once, as uint8 (CIFAR-10's 45,000 images are
138 MB); each step gathers its batch there and converts it to float, so nothing but an index
vector crosses from the host per step, and image augmentation runs inside the compiled train
step (`keras_resnet.training.step`). Everything here is `keras.ops`, so it runs on JAX,
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
        steps_per_item: int. With more than 1, an item is a group of that many steps for
            `training.step.GroupedSteps`: `((images, labels, rows),)`, the arrays held on
            the device and the (steps, batch_size) rows to gather from them, whole batches
            only.
            Defaults to `1` (an item is one batch).
        num_steps: int or None. Batches of an epoch, the first of its order. Defaults to
            `None` (all of them).
    """

    def __init__(self, x, y, num_classes, batch_size, training, seed=None, mixing=None,
                 drop_remainder=None, initial_epoch=0, shuffle=True, steps_per_item=1,
                 num_steps=None):
        super().__init__()
        x, y = check_arrays(x, y, num_classes, batch_size)
        self.images = ops.convert_to_tensor(x)
        self.labels = ops.convert_to_tensor(y)
        self.num_examples, self.num_classes = len(x), num_classes
        self.batch_size, self.training, self.seed = batch_size, training, seed
        self.mixing = mixing if training else None
        self.shuffle = training and shuffle
        self.epoch, self._begun = initial_epoch, False
        self.steps_per_item = steps_per_item
        # Exactly the batches an epoch trains on: Keras starts a PyDataset over each epoch
        # only when its epoch consumes all of it.
        batches = (math.floor if drop_remainder else math.ceil)(len(x) / batch_size)
        self.num_steps = max(1, min(num_steps or batches, batches))
        if steps_per_item > 1 and (mixing is not None or len(x) < batch_size):
            raise ValueError("Grouped steps take whole batches and no label mixing. Received: "
                             f"steps_per_item={steps_per_item}, batch_size={batch_size}, "
                             f"{len(x)} images, mixing={mixing is not None}")
        self._set_order()

    def _set_order(self):
        order = (epoch_order(self.num_examples, self.seed, self.epoch) if self.shuffle
                 else np.arange(self.num_examples))
        self._order = ops.convert_to_tensor(order.astype(np.int32))

    def __len__(self):
        return math.ceil(self.num_steps / self.steps_per_item)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index {index} is out of range [0, {len(self)}).")
        if self.steps_per_item > 1:
            first = index * self.steps_per_item
            steps = min(self.steps_per_item, self.num_steps - first)
            rows = self._order[first * self.batch_size:(first + steps) * self.batch_size]
            return ((self.images, self.labels, ops.reshape(rows, (steps, self.batch_size))),)
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        images = ops.cast(ops.take(self.images, rows, axis=0), "float32")
        labels = ops.one_hot(ops.take(self.labels, rows, axis=0), self.num_classes)
        if self.mixing is not None:
            images, labels = self.mixing(images, labels)
        return images, labels

    def on_epoch_begin(self):
        # Keras calls `on_epoch_begin` once per epoch that draws from this, but
        # `on_epoch_end` also when it resets before training: epochs count from the first.
        if self._begun:
            self.epoch += 1
            if self.shuffle:
                self._set_order()
        self._begun = True


def build_array_batches(x, y, num_classes, batch_size, training, seed=None, augment=(),
                        drop_remainder=None, initial_epoch=0, shuffle=True, steps_per_item=1,
                        num_steps=None):
    """Builds `ArrayBatches`: shuffled one-hot batches from arrays held on the device.

    Image augmentation happens in the model (`keras_resnet.training.step`); `augment`'s
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
        steps_per_item: int. As in `ArrayBatches`. Defaults to `1`.
        num_steps: int or None. As in `ArrayBatches`. Defaults to `None`.

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
                        shuffle=shuffle, steps_per_item=steps_per_item, num_steps=num_steps)
