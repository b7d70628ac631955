"""The one compiled training step, and its data: what train.py, the tuner and bench all run.

`build_training_model` turns a `ResNetConfig` and a `TrainConfig` into the compiled Keras
model that `fit` trains: the network under the run's precision policy, TensorFlow's fused
batch norm, image augmentation inside the step when it runs on the device, L2 decay,
the optimizer with its schedule, clipping and Lookahead, the loss and XLA. The training
command, the tuner's hypermodel and the benchmark all call it, so what `bench` times is
exactly the step that `train.py` runs.
"""

import dataclasses

import keras

from keras_resnet.data.augment import LABEL_MIXING
from keras_resnet.model import build_resnet
from keras_resnet.training import runtime
from keras_resnet.training.optimizers import apply_l2_weight_decay, build_optimizer


@dataclasses.dataclass(frozen=True)
class Numerics:
    """Where and how a `TrainConfig` runs here: its `"auto"` settings resolved.

    Args:
        backend: str. The Keras backend.
        precision: str. The dtype policy.
        jit: bool. `jit_compile`.
        augment_on: str. `"host"` (tf.data) or `"device"` (in the compiled step).
    """

    backend: str
    precision: str
    jit: bool
    augment_on: str


def resolve_numerics(train_config):
    """Resolves a `TrainConfig`'s backend-dependent `"auto"` settings into `Numerics`.

    Raises:
        ValueError: for host augmentation on a backend other than TensorFlow.
    """
    backend = keras.backend.backend()
    augment_on = train_config.augment_on
    if augment_on == "auto":
        augment_on = "host" if backend == "tensorflow" else "device"
    if augment_on == "host" and backend != "tensorflow":
        raise ValueError("Host augmentation uses tf.data, which needs the TensorFlow "
                         f"backend. Received: augment_on='host' with backend={backend!r}")
    return Numerics(backend, runtime.resolve_precision(train_config.precision),
                    runtime.resolve_jit(train_config.jit), augment_on)


def steps_per_epoch(train_config, num_train):
    """Returns the optimizer steps of one epoch: whole batches only.

    The last partial batch of each epoch is dropped (the shuffle changes which images
    fall in it), so every step has one shape and XLA compiles the step once.
    """
    return train_config.steps_per_epoch or max(1, num_train // train_config.batch_size)


def steps_per_call(train_config):
    """Returns the optimizer steps the data groups into one compiled call.

    `steps_per_execution` with JAX on one accelerator, device augmentation and no label
    mixing: `GroupedSteps` scans them in one program (a group is not a batch to split
    across devices). 1 elsewhere, where Keras runs
    `steps_per_execution` itself (TensorFlow in one graph, JAX in a Python loop). Not on
    a CPU: XLA:CPU runs convolutions inside a loop tens of times slower than the same
    convolutions unrolled (`benchmarks/results/scan_cpu.md`).
    """
    numerics = resolve_numerics(train_config)
    grouped = (numerics.backend == "jax" and runtime.accelerator() != "cpu"
               and len(keras.distribution.list_devices()) == 1
               and numerics.augment_on == "device"
               and not set(train_config.augment) & set(LABEL_MIXING))
    return train_config.steps_per_execution if grouped else 1


def calls_per_epoch(train_config, num_train):
    """Returns what Keras' `fit` counts as an epoch's steps: one per compiled call."""
    return -(-steps_per_epoch(train_config, num_train) // steps_per_call(train_config))


def build_training_model(model_config, train_config, num_train, name="resnet"):
    """Builds the network and compiles the training step that trains it.

    Call it under `runtime.precision_scope(numerics.precision)` (and, for several
    devices, `runtime.distribution_scope`): layers take their dtype policy when built.

    Args:
        model_config: `ResNetConfig`.
        train_config: `TrainConfig`.
        num_train: int. Training images per epoch, for the learning-rate schedule.
        name: str. Name of the network. Defaults to `"resnet"`.

    Returns:
        `(model, train_model)`: the network, to save and export, and the compiled model
        to `fit`: the network itself, or a wrapper that augments on the device first and
        shares its weights.

    Example:

    >>> from keras_resnet.training.config import TrainConfig
    >>> from keras_resnet.variants import get_variant
    >>> model, train_model = build_training_model(
    ...     get_variant("tiny"), TrainConfig(optimizer="adam", augment=()), 100)
    >>> train_model is model, type(model.optimizer).__name__
    (True, 'Adam')
    """
    from keras_resnet.data.augment import build_augmentation
    from keras_resnet.data.batches import build_device_training_model

    numerics = resolve_numerics(train_config)
    model = build_resnet(model_config, name=name)
    if train_config.fused_batch_norm and numerics.backend == "tensorflow":
        from keras_resnet.training.fused_batch_norm import use_fused_batch_norm

        use_fused_batch_norm(model)
    train_model, grouped = model, steps_per_call(train_config)
    if numerics.augment_on == "device":
        augmentation = build_augmentation(
            [a for a in train_config.augment if a not in LABEL_MIXING],
            model_config.input_shape, seed=train_config.seed)
        train_model = build_device_training_model(model, augmentation, grouped)
    apply_l2_weight_decay(model, train_config)
    train_model.compile(
        optimizer=build_optimizer(train_config, steps_per_epoch(train_config, num_train)),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=train_config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=numerics.jit,
        steps_per_execution=train_config.steps_per_execution if grouped == 1 else 1)
    # Keras builds the loss, metric and optimizer state from the first batch `fit` draws
    # unless they are built: from a `PyDataset` that draw takes a batch and ends the data's
    # epoch (every epoch's order shifted by one, and "ran out of data" when an epoch is
    # shorter than the data). Built here from shapes, `fit` draws nothing it does not train on.
    train_model._symbolic_build(data_batch=(
        keras.KerasTensor((None, *model_config.input_shape)),
        keras.KerasTensor((None, model_config.num_classes))))
    return model, train_model


def build_training_data(data, train_config, initial_epoch=0, shuffle=True):
    """Returns `(train, validation)` batches in the form the backend trains from.

    TensorFlow: tf.data pipelines (host augmentation there when `augment_on` is host).
    Other backends: `ArrayBatches` held on the device. Training batches are whole
    (`steps_per_epoch`); validation keeps every image. No test images are ever read.

    Args:
        data: `keras_resnet.data.DataSplits` (or anything with `x_train`, `y_train`,
            `x_val`, `y_val` and `class_names`).
        train_config: `TrainConfig`.
        initial_epoch: int. First epoch (when resuming): the shuffle is seeded per epoch,
            so a resumed run sees the batches an uninterrupted one would. Defaults to `0`.
        shuffle: bool. Reshuffle every epoch; `False` keeps the data's order (paper 003).
            Defaults to `True`.

    Returns:
        `(train, validation)`; `validation` is None when `data` has no validation split.
    """
    numerics = resolve_numerics(train_config)
    num_classes, batch_size = len(data.class_names), train_config.batch_size
    has_val = len(data.x_val) > 0
    drop = len(data.x_train) >= batch_size
    if numerics.backend == "tensorflow":
        from keras_resnet.data.pipeline import build_dataset

        # On the device only image augmentations run; mixup and cutmix stay in tf.data.
        host = train_config.augment if numerics.augment_on == "host" else tuple(
            a for a in train_config.augment if a in LABEL_MIXING)
        # Endless, each pass ordered by (seed, pass): epoch e starts at batch e * steps.
        train = build_dataset(data.x_train, data.y_train, num_classes, batch_size,
                              training=True, augment=host, seed=train_config.seed,
                              drop_remainder=drop, shuffle=shuffle,
                              start_batch=initial_epoch * steps_per_epoch(
                                  train_config, len(data.x_train)))
        val = build_dataset(data.x_val, data.y_val, num_classes, batch_size,
                            training=False) if has_val else None
        # Endless (the in-order stream repeated too): `steps_per_epoch` alone ends an epoch.
        return train.repeat(), val
    from keras_resnet.data.batches import build_array_batches

    mixing = tuple(a for a in train_config.augment if a in LABEL_MIXING)
    train = build_array_batches(data.x_train, data.y_train, num_classes, batch_size,
                                training=True, seed=train_config.seed, augment=mixing,
                                drop_remainder=drop, initial_epoch=initial_epoch,
                                shuffle=shuffle, steps_per_item=steps_per_call(train_config),
                                num_steps=steps_per_epoch(train_config, len(data.x_train)))
    val = build_array_batches(data.x_val, data.y_val, num_classes, batch_size,
                              training=False) if has_val else None
    return train, val


def build_schedule_callbacks(train_config, monitor="val_loss"):
    """Returns the callbacks the schedule needs, by name: `{"plateau": ...}` or `{}`.

    Their state (`wait`, `best`, `cooldown_counter`) is checkpointed with the run.

    Example:

    >>> from keras_resnet.training.config import TrainConfig
    >>> sorted(build_schedule_callbacks(TrainConfig(schedule="plateau")))
    ['plateau']
    """
    if train_config.schedule != "plateau":
        return {}
    return {"plateau": keras.callbacks.ReduceLROnPlateau(
        monitor=monitor, factor=train_config.decay_rate,
        patience=train_config.plateau_patience, min_lr=train_config.min_learning_rate)}
