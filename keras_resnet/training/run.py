"""One training run: its settings resolved once, then scope, build, data and fit.

`TrainingRun` is what train.py's `fit`, the tuner's trials and the benchmark all train
through, so what `bench` times is exactly the step that `train.py` runs. Like airbench94's
single hyperparameter record, the values a `TrainConfig` leaves to the machine (precision,
XLA, where augmentation runs) and the values derived from it (steps per epoch, steps per
compiled call, calls per epoch) are computed once, in `__init__`; every later step reads
them from the object.
"""

import contextlib
import time

import keras

from keras_resnet.data.augment import LABEL_MIXING
from keras_resnet.model import build_resnet
from keras_resnet.training import runtime
from keras_resnet.training.optimizers import apply_l2_weight_decay, build_optimizer


class TrainingRun:
    """A `ResNetConfig` trained with a `TrainConfig` here: resolved settings and the steps.

    Use it as a context manager (re-entrant): inside, the run's dtype policy and
    distribution strategy are in effect, which the model needs when it is built and
    `fit` needs when it trains. `build` compiles the training step, `data` makes the
    batches in the backend's form, `fit` trains and measures images per second.

    Args:
        model_config: `ResNetConfig`.
        train_config: `TrainConfig`.
        num_train: int. Training images per epoch.
        name: str. Name of the network. Defaults to `"resnet"`.

    Attributes:
        backend: str. The Keras backend.
        precision: str. The dtype policy (`runtime.resolve_precision`).
        jit: bool. `jit_compile` (`runtime.resolve_jit`).
        augment_on: str. `"host"` (tf.data) or `"device"` (in the compiled step).
        steps_per_epoch: int. Optimizer steps of one epoch (`TrainConfig.epoch_steps`).
        steps_per_call: int. Optimizer steps grouped into one compiled call
            (`step.GroupedSteps`): `steps_per_execution` with JAX on one accelerator (not
            a CPU: XLA:CPU loops convolutions tens of times slower,
            `benchmarks/results/scan_cpu.md`), device augmentation and no label mixing;
            else 1, and Keras runs `steps_per_execution` itself.
        calls_per_epoch: int. What Keras' `fit` counts as an epoch's steps.
        replicas: int. Devices training in parallel, set on entering the run.
        seconds, images_per_second: float. Of the last `fit`.

    Raises:
        ValueError: for host augmentation on a backend other than TensorFlow.

    Example:

    >>> from keras_resnet.training.config import TrainConfig
    >>> from keras_resnet.variants import get_variant
    >>> run = TrainingRun(get_variant("tiny"), TrainConfig(optimizer="adam", augment=(),
    ...                   batch_size=32), num_train=100)
    >>> with run:
    ...     model, train_model = run.build()
    >>> run.steps_per_epoch, train_model is model, type(model.optimizer).__name__
    (3, True, 'Adam')
    """

    def __init__(self, model_config, train_config, num_train, name="resnet"):
        self.model_config, self.train_config, self.name = model_config, train_config, name
        self.backend = keras.backend.backend()
        augment_on = train_config.augment_on
        if augment_on == "auto":
            augment_on = "host" if self.backend == "tensorflow" else "device"
        if augment_on == "host" and self.backend != "tensorflow":
            raise ValueError("Host augmentation uses tf.data, which needs the TensorFlow "
                             f"backend. Received: augment_on='host' with backend={self.backend!r}")
        self.augment_on = augment_on
        self.precision = runtime.resolve_precision(train_config.precision)
        self.jit = runtime.resolve_jit(train_config.jit)
        self.steps_per_epoch = train_config.epoch_steps(num_train)
        grouped = (self.backend == "jax" and runtime.accelerator() != "cpu"
                   and len(keras.distribution.list_devices()) == 1
                   and augment_on == "device"
                   and not set(train_config.augment) & set(LABEL_MIXING))
        self.steps_per_call = train_config.steps_per_execution if grouped else 1
        self.calls_per_epoch = -(-self.steps_per_epoch // self.steps_per_call)
        self.replicas, self.seconds, self.images_per_second = None, None, None
        self.model = self.train_model = None
        self._depth, self._scope = 0, None

    def __enter__(self):
        if self._depth == 0:
            self._scope = contextlib.ExitStack()
            self._scope.enter_context(runtime.precision_scope(self.precision))
            self.replicas = self._scope.enter_context(
                runtime.distribution_scope(self.train_config.strategy))
        self._depth += 1
        return self

    def __exit__(self, *exception):
        self._depth -= 1
        if self._depth == 0:
            self._scope.close()

    def build(self):
        """Builds the network and compiles the training step that trains it.

        The network under the run's precision policy, TensorFlow's fused batch norm,
        image augmentation inside the step when it runs on the device, L2 decay, the
        optimizer with its schedule, clipping and Lookahead, the loss and XLA.

        Returns:
            `(model, train_model)`: the network, to save and export, and the compiled
            model to `fit`: the network itself, or a wrapper that augments on the device
            first and shares its weights. Also kept as `self.model`, `self.train_model`.
        """
        from keras_resnet.data.augment import build_augmentation
        from keras_resnet.training.step import build_device_training_model

        model_config, train_config = self.model_config, self.train_config
        with self:
            model = build_resnet(model_config, name=self.name)
            if train_config.fused_batch_norm and self.backend == "tensorflow":
                from keras_resnet.training.fused_batch_norm import use_fused_batch_norm

                use_fused_batch_norm(model)
            train_model = model
            if self.augment_on == "device":
                augmentation = build_augmentation(
                    [a for a in train_config.augment if a not in LABEL_MIXING],
                    model_config.input_shape, seed=train_config.seed)
                train_model = build_device_training_model(model, augmentation,
                                                          self.steps_per_call)
            apply_l2_weight_decay(model, train_config)
            train_model.compile(
                optimizer=build_optimizer(train_config, self.steps_per_epoch),
                loss=keras.losses.CategoricalCrossentropy(
                    label_smoothing=train_config.label_smoothing),
                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                jit_compile=self.jit,
                steps_per_execution=(train_config.steps_per_execution
                                     if self.steps_per_call == 1 else 1))
            # Keras builds the loss, metric and optimizer state from the first batch `fit`
            # draws unless they are built: from a `PyDataset` that draw takes a batch and
            # ends the data's epoch (every epoch's order shifted by one, and "ran out of
            # data" when an epoch is shorter than the data). Built here from shapes, `fit`
            # draws nothing it does not train on.
            train_model._symbolic_build(data_batch=(
                keras.KerasTensor((None, *model_config.input_shape)),
                keras.KerasTensor((None, model_config.num_classes))))
        self.model, self.train_model = model, train_model
        return model, train_model

    def data(self, data, initial_epoch=0, shuffle=True):
        """Returns `(train, validation)` batches in the form the backend trains from.

        TensorFlow: tf.data pipelines (host augmentation there when `augment_on` is host).
        Other backends: `ArrayBatches` held on the device. Training batches are whole
        (`steps_per_epoch`); validation keeps every image. No test images are ever read.

        Args:
            data: `keras_resnet.data.DataSplits` (or anything with `x_train`, `y_train`,
                `x_val`, `y_val` and `class_names`).
            initial_epoch: int. First epoch (when resuming): the shuffle is seeded per
                epoch, so a resumed run sees the batches an uninterrupted one would.
                Defaults to `0`.
            shuffle: bool. Reshuffle every epoch; `False` keeps the data's order (paper
                003). Defaults to `True`.

        Returns:
            `(train, validation)`; `validation` is None when `data` has no validation split.
        """
        train_config = self.train_config
        num_classes, batch_size = len(data.class_names), train_config.batch_size
        has_val = len(data.x_val) > 0
        drop = len(data.x_train) >= batch_size
        mixing = tuple(a for a in train_config.augment if a in LABEL_MIXING)
        if self.backend == "tensorflow":
            from keras_resnet.data.pipeline import build_dataset

            # On the device only image augmentations run; mixup and cutmix stay in tf.data.
            host = train_config.augment if self.augment_on == "host" else mixing
            # Endless, each pass ordered by (seed, pass): epoch e starts at batch e * steps.
            train = build_dataset(data.x_train, data.y_train, num_classes, batch_size,
                                  training=True, augment=host, seed=train_config.seed,
                                  drop_remainder=drop, shuffle=shuffle,
                                  start_batch=initial_epoch * self.steps_per_epoch)
            val = build_dataset(data.x_val, data.y_val, num_classes, batch_size,
                                training=False) if has_val else None
            # Endless (the in-order stream repeated too): `steps_per_epoch` alone ends an epoch.
            return train.repeat(), val
        from keras_resnet.data.batches import build_array_batches

        train = build_array_batches(data.x_train, data.y_train, num_classes, batch_size,
                                    training=True, seed=train_config.seed, augment=mixing,
                                    drop_remainder=drop, initial_epoch=initial_epoch,
                                    shuffle=shuffle, steps_per_item=self.steps_per_call,
                                    num_steps=self.steps_per_epoch)
        val = build_array_batches(data.x_val, data.y_val, num_classes, batch_size,
                                  training=False) if has_val else None
        return train, val

    def schedule_callbacks(self, monitor="val_loss"):
        """Returns the callbacks the schedule needs, by name: `{"plateau": ...}` or `{}`.

        Their state (`wait`, `best`, `cooldown_counter`) is checkpointed with the run.
        """
        config = self.train_config
        if config.schedule != "plateau":
            return {}
        return {"plateau": keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=config.decay_rate, patience=config.plateau_patience,
            min_lr=config.min_learning_rate)}

    def fit(self, train, validation=None, epochs=None, initial_epoch=0, callbacks=(),
            verbose=0, steps=None):
        """Trains the built `train_model` inside the run; measures images per second.

        Args:
            train, validation: batches from `data`; `validation` may be None.
            epochs: int or None. Epoch to train up to. Defaults to the config's `epochs`.
            initial_epoch, callbacks, verbose: as Keras' `fit`.
            steps: int or None. Optimizer steps per epoch. Defaults to `steps_per_epoch`.

        Returns:
            Keras' `History`. `self.seconds` is the wall time of the whole fit and
            `self.images_per_second` the training images of its epochs over it.
        """
        epochs = self.train_config.epochs if epochs is None else epochs
        steps = steps or self.steps_per_epoch
        started = time.perf_counter()
        with self:
            history = self.train_model.fit(
                train, validation_data=validation, epochs=epochs, initial_epoch=initial_epoch,
                steps_per_epoch=-(-steps // self.steps_per_call), callbacks=list(callbacks),
                verbose=verbose, shuffle=False)
        self.seconds = time.perf_counter() - started
        self.images_per_second = self.speed((epochs - initial_epoch) * steps, self.seconds)
        return history

    def speed(self, steps, seconds):
        """Training images per second of `steps` optimizer steps that took `seconds`."""
        return steps * self.train_config.batch_size / seconds if seconds else 0.0
