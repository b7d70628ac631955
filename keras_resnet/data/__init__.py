"""Data: sources (tfds, CIFAR-10 archives, image folders), augmentation, input pipelines.

`import keras_resnet.data` stays free of TensorFlow, so it works under KERAS_BACKEND=jax on a
machine without it: the tf.data pipeline is imported on first use of its names (or directly,
`from keras_resnet.data.pipeline import build_dataset`).
"""

from keras_resnet.data.augment import (
    AUGMENTATIONS, RandomPadCrop, build_augmentation, build_label_mixing, parse_augment,
)
from keras_resnet.data.batches import ArrayBatches, build_array_batches
from keras_resnet.data.sources import DataSplits, load_data, stratified_split

_PIPELINE_NAMES = ("build_dataset",)

__all__ = [
    "AUGMENTATIONS", "ArrayBatches", "DataSplits", "RandomPadCrop", "build_array_batches",
    "build_augmentation", "build_label_mixing", "load_data", "parse_augment", "stratified_split",
    *_PIPELINE_NAMES,
]


def __getattr__(name):
    # Lazy: pipeline.py imports TensorFlow.
    if name in _PIPELINE_NAMES:
        from keras_resnet.data import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'keras_resnet.data' has no attribute {name!r}")
