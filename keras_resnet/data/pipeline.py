"""Input pipelines: tf.data for the TensorFlow backend, a PyDataset for the others.

Both yield `(images, labels)` batches: float32 images in [0, 255] (the model normalizes them
itself) and one-hot float32 labels (so MixUp and CutMix can soften them). Augmentation runs
either on the host, mapped over batches in tf.data, or on the device inside the compiled
train step through `build_device_training_model`.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_resnet.data.augment import build_augmentation, build_label_mixing, parse_augment

AUGMENT_ON = ("host", "device")


def _check_arrays(x, y, num_classes, batch_size):
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 4 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise ValueError(
            "`x` must be images (N, height, width, channels) and `y` N integer labels, "
            f"N > 0. Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"`num_classes` must be an integer >= 2. Received: num_classes={num_classes!r}"
        )
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"Labels must be in [0, {num_classes}). "
            f"Received: labels in [{y.min()}, {y.max()}]"
        )
    return x, y.astype(np.int32)


def build_dataset(x, y, num_classes, batch_size, training, augment=(), augment_on="host",
                  seed=None, drop_remainder=None, start_batch=None):
    """Builds a tf.data pipeline of `(float32 images in [0, 255], one-hot labels)` batches.

    In memory: `from_tensor_slices` of the uint8 arrays, `cache()`, and when training a
    full shuffle reshuffled every epoch; then batching, and (when training) augmentation
    mapped over whole batches, then MixUp / CutMix, then `prefetch`. Without a seed the
    augmentation maps run in parallel; with one they run a batch at a time, because
    Keras's random layers share one seed state that parallel calls would race for.

    Args:
        x: uint8 array (N, height, width, channels).
        y: int array (N,) of class indices.
        num_classes: int. Width of the one-hot labels.
        batch_size: int. Images per batch.
        training: bool. Shuffle and augment (evaluation does neither).
        augment: str or tuple of str. Names from `AUGMENTATIONS`. Defaults to `()`.
        augment_on: str. `"host"` runs image augmentation here; `"device"` leaves it to
            `build_device_training_model`. MixUp / CutMix always run here.
            Defaults to `"host"`.
        seed: int or None. Seeds the shuffle and the augmentation; with a seed, the
            sequence of batches is the same on every run. Defaults to `None`.
        drop_remainder: bool or None. Drop the last partial batch. `None` keeps it, as
            tf.data does, so an epoch is `ceil(N / batch_size)` steps (what a caller that
            passes `steps_per_epoch` computes). Defaults to `None`.
        start_batch: int or None. With a seed when training: the dataset is endless,
            pass `p` ordered by `(seed, p)` (`keras_resnet.data.order`), starting at this
            batch of the stream, so a resumed run sees the batches the uninterrupted run
            saw. `None` keeps the one-pass tf.data shuffle. Defaults to `None`.

    Returns:
        A `tf.data.Dataset`.

    Raises:
        ValueError: for inconsistent arrays, a bad `batch_size`, `num_classes`, `augment`
            or `augment_on`, or host augmentation under a backend other than TensorFlow.

    Example:

    >>> x = np.zeros((10, 32, 32, 3), np.uint8)
    >>> dataset = build_dataset(x, np.arange(10) % 2, 2, batch_size=4, training=True,
    ...                         augment="crop,flip", seed=0)
    >>> images, labels = next(iter(dataset))
    >>> images.shape, labels.shape
    (TensorShape([4, 32, 32, 3]), TensorShape([4, 2]))
    """
    x, y = _check_arrays(x, y, num_classes, batch_size)
    names = parse_augment(augment)
    if augment_on not in AUGMENT_ON:
        raise ValueError(
            f"`augment_on` must be 'host' or 'device'. Received: augment_on={augment_on!r}"
        )
    augmentation = mixing = None
    if training:
        if augment_on == "host":
            augmentation = build_augmentation(names, x.shape[1:], seed=seed)
        mixing = build_label_mixing(names, seed=None if seed is None else seed + 100)
    if (augmentation or mixing) and keras.backend.backend() != "tensorflow":
        # RandomPadCrop and the MixUp/CutMix switch call keras.ops, which on another
        # backend cannot run inside a tf.data graph.
        raise ValueError(
            "Host augmentation in tf.data needs KERAS_BACKEND=tensorflow; use "
            "augment_on='device' with build_numpy_batches on other backends. "
            f"Received: backend={keras.backend.backend()!r}, augment={names!r}"
        )
    # Keras's random layers advance a shared seed state on every call, so parallel calls
    # race for it: with a seed, the random maps run one batch at a time (each batch is
    # still vectorized across TensorFlow's threads) so that runs repeat exactly.
    random_calls = 1 if seed is not None else tf.data.AUTOTUNE

    def to_float_one_hot(images, labels):
        return tf.cast(images, tf.float32), tf.one_hot(labels, num_classes)

    def augment_images(images, labels):
        return augmentation(images, training=True), labels

    if training and seed is not None and start_batch is not None:
        from keras_resnet.data.order import index_batches

        images, labels = tf.constant(x), tf.constant(y)
        dataset = index_batches(len(x), batch_size, seed, start_batch, bool(drop_remainder))
        dataset = dataset.map(lambda rows: (tf.gather(images, rows), tf.gather(labels, rows)),
                              num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).cache()
        if training:
            dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size, drop_remainder=bool(drop_remainder))
    dataset = dataset.map(to_float_one_hot, num_parallel_calls=tf.data.AUTOTUNE)
    if augmentation is not None:
        dataset = dataset.map(augment_images, num_parallel_calls=random_calls,
                              deterministic=seed is not None)
    if mixing is not None:
        dataset = dataset.map(mixing, num_parallel_calls=random_calls,
                              deterministic=seed is not None)
    return dataset.prefetch(tf.data.AUTOTUNE)


class NumpyBatches(keras.utils.PyDataset):
    """Batches from in-memory arrays, reshuffled every epoch; no TensorFlow needed.

    For `KERAS_BACKEND=jax` (or torch): image augmentation then runs on the device inside
    the model (`build_device_training_model`); only MixUp / CutMix run here.

    Args:
        x: uint8 array (N, height, width, channels).
        y: int array (N,).
        num_classes: int. Width of the one-hot labels.
        batch_size: int. Images per batch.
        training: bool. Shuffle every epoch (and apply `mixing`).
        seed: int or None. Seed of the shuffles. Defaults to `None`.
        mixing: callable or None. From `build_label_mixing`. Defaults to `None`.
        drop_remainder: bool or None. As in `build_dataset`. Defaults to `None`.
        initial_epoch: int. The epoch the first batches are for (a resumed run's); with a
            seed, epoch e is ordered by `(seed, e)`. Defaults to `0`.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`, `use_multiprocessing`).
    """

    def __init__(self, x, y, num_classes, batch_size, training, seed=None, mixing=None,
                 drop_remainder=None, initial_epoch=0, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y = _check_arrays(x, y, num_classes, batch_size)
        self.num_classes, self.batch_size, self.training = num_classes, batch_size, training
        self.mixing = mixing if training else None
        self.drop_remainder = bool(drop_remainder)
        self._rng = np.random.default_rng(seed)
        self._seed, self._epoch = seed, initial_epoch
        self._order = np.arange(len(self.x))
        self._eye = np.eye(num_classes, dtype=np.float32)
        self._shuffle()

    def __len__(self):
        rounding = math.floor if self.drop_remainder else math.ceil
        return rounding(len(self.x) / self.batch_size)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"Batch index {index} is out of range [0, {len(self)}).")
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        # Sorted rows read memory in order; the batch is still a random subset.
        rows = np.sort(rows)
        images = self.x[rows].astype(np.float32)
        labels = self._eye[self.y[rows]]
        if self.mixing is not None:
            images, labels = self.mixing(images, labels)
            images = keras.ops.convert_to_numpy(images)
            labels = keras.ops.convert_to_numpy(labels)
        return images, labels

    def on_epoch_end(self):
        self._epoch += 1
        self._shuffle()

    def _shuffle(self):
        if not self.training:
            return
        # With a seed, epoch e's order depends on (seed, e) only, so a resume repeats it.
        rng = self._rng if self._seed is None else np.random.default_rng(
            [self._seed, self._epoch])
        self._order = rng.permutation(len(self.x))


def build_numpy_batches(x, y, num_classes, batch_size, training, seed=None, augment=(),
                        drop_remainder=None, initial_epoch=0):
    """Builds a `keras.utils.PyDataset` of one-hot batches from memory, for any backend.

    The TF-free path (`KERAS_BACKEND=jax`): shuffled batches each epoch (seeded), float32
    images in [0, 255] and one-hot labels. Image augmentation happens on the device in the
    model (`augment_on="device"`); `augment`'s MixUp / CutMix, if any, run here.

    Args:
        x: uint8 array (N, height, width, channels).
        y: int array (N,).
        num_classes: int. Width of the one-hot labels.
        batch_size: int. Images per batch.
        training: bool. Shuffle every epoch.
        seed: int or None. Seed of the shuffles. Defaults to `None`.
        augment: str or tuple of str. Only `"mixup"` and `"cutmix"` act here.
            Defaults to `()`.
        drop_remainder: bool or None. As in `build_dataset`. Defaults to `None`.
        initial_epoch: int. See `NumpyBatches`. Defaults to `0`.

    Returns:
        A `NumpyBatches` (`keras.utils.PyDataset`).

    Example:

    >>> batches = build_numpy_batches(np.zeros((10, 8, 8, 3), np.uint8), np.arange(10) % 2,
    ...                               2, batch_size=4, training=False)
    >>> len(batches), batches[2][0].shape
    (3, (2, 8, 8, 3))
    """
    mixing = build_label_mixing(augment, seed=seed) if training else None
    return NumpyBatches(x, y, num_classes, batch_size, training, seed=seed, mixing=mixing,
                        drop_remainder=drop_remainder, initial_epoch=initial_epoch)


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
