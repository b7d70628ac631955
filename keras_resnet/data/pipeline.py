"""The tf.data input pipeline, for the TensorFlow backend.

It yields `(images, labels)` batches: float32 images in [0, 255] (the model normalizes them
itself) and one-hot float32 labels (so MixUp and CutMix can soften them). Augmentation runs
either on the host, mapped over batches here, or on the device inside the compiled train
step through `keras_resnet.training.step`. Other backends use `batches`, which
needs no TensorFlow.
"""

import keras
import numpy as np  # noqa: F401 - the docstring example uses it
import tensorflow as tf

from keras_resnet.data.augment import build_augmentation, build_label_mixing, parse_augment
from keras_resnet.data.batches import check_arrays

AUGMENT_ON = ("host", "device")


def build_dataset(x, y, num_classes, batch_size, training, augment=(), augment_on="host",
                  seed=None, drop_remainder=None, shuffle=True, start_batch=None):
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
            `training.step.build_device_training_model`. MixUp / CutMix always run here.
            Defaults to `"host"`.
        seed: int or None. Seeds the shuffle and the augmentation; with a seed, the
            sequence of batches is the same on every run. Defaults to `None`.
        drop_remainder: bool or None. Drop the last partial batch. `None` keeps it, as
            tf.data does, so an epoch is `ceil(N / batch_size)` steps (what a caller that
            passes `steps_per_epoch` computes). Defaults to `None`.
        shuffle: bool. When training, reshuffle every epoch; `False` keeps the data's order
            (paper 003) and still augments. Defaults to `True`.
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
    x, y = check_arrays(x, y, num_classes, batch_size)
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
            "augment_on='device' with build_array_batches on other backends. "
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

    if training and shuffle and seed is not None and start_batch is not None:
        from keras_resnet.data.order import index_batches

        images, labels = tf.constant(x), tf.constant(y)
        dataset = index_batches(len(x), batch_size, seed, start_batch, bool(drop_remainder))
        dataset = dataset.map(lambda rows: (tf.gather(images, rows), tf.gather(labels, rows)),
                              num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).cache()
        if training and shuffle:
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
