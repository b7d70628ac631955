"""Runs a training job end to end into a run folder: build, fit, resume, evaluate, save."""

import math
import os
import time

import keras
import numpy as np

from keras_resnet.model import build_resnet, count_params
from keras_resnet.training import checkpoint, records, run_folder, runtime
from keras_resnet.training.evaluate import classification_report, predict_probabilities
from keras_resnet.training.optimizers import apply_l2_weight_decay, build_optimizer


class TrainingDiverged(RuntimeError):
    """Raised when the loss becomes NaN or infinite; the last good checkpoint is kept."""


def fit(model_config, train_config, data, run_dir, variant="custom", resume=False,
        data_info=None, verbose="auto", extra_callbacks=()):
    """Trains `model_config` with `train_config` on `data`, writing a run folder.

    The run folder gets `config.json`, `history.csv`, learning-curve PNGs,
    `checkpoints/` (the full state after every epoch, for `resume`), `logs/`
    (TensorBoard, on TensorFlow), and at the end `model.keras` (float32, no optimizer) and
    `metrics.json`. The test split is only used once, on the final weights.

    Args:
        model_config: `ResNetConfig`; its classes, mean and std should match `data`.
        train_config: `TrainConfig`.
        data: `keras_resnet.data.DataSplits`.
        run_dir: str. The run folder.
        variant: str. Name recorded in the run. Defaults to `"custom"`.
        resume: bool. Continue the run in `run_dir` from its last epoch. Defaults to `False`.
        data_info: dict or None. Where the data came from, recorded in `config.json`.
        verbose: Keras `fit` verbosity. Defaults to `"auto"`.
        extra_callbacks: sequence of `keras.callbacks.Callback`. Defaults to `()`.

    Returns:
        The metrics dict also written to `metrics.json`.

    Raises:
        ValueError: for an unusable `run_dir` or inconsistent configs.
        TrainingDiverged: if the loss becomes NaN or infinite.
    """
    with run_folder.hold(run_dir, resume):
        keras.utils.set_random_seed(train_config.seed)
        precision = runtime.resolve_precision(train_config.precision)
        jit = runtime.resolve_jit(train_config.jit)
        # config.json is written when training really starts: a start that fails before
        # leaves no run behind, and a resume's changes are recorded only once in effect.
        record = _config_recorder(run_dir, {
            "variant": variant, "model": model_config.to_dict(),
            "train": train_config.to_dict(), "data": data_info or {}})
        previous_policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy(precision)
        try:
            return _fit(model_config, train_config, data, run_dir, variant, resume, precision,
                        jit, verbose, (record, *extra_callbacks))
        finally:
            keras.config.set_dtype_policy(previous_policy)


def _config_recorder(run_dir, config):
    def on_train_begin(logs=None):
        state = checkpoint.load_state(os.path.join(run_dir, "checkpoints"))
        run_folder.record_config(run_dir, config, state["epoch"] if state else 0)

    return keras.callbacks.LambdaCallback(on_train_begin=on_train_begin)


def _apply_changed_learning_rate(optimizer, train_config, run_dir):
    # A constant (or plateau-reduced) rate is an optimizer variable, which the checkpoint
    # just restored: a resume given another --learning-rate must train at it. A schedule
    # is rebuilt from the new config anyway.
    recorded = run_folder.read_run_config(os.path.join(run_dir, "config.json")).get("train", {})
    if recorded.get("learning_rate") == train_config.learning_rate:
        return
    try:
        optimizer.learning_rate = train_config.learning_rate
    except TypeError:
        pass  # a LearningRateSchedule


def _fit(model_config, train_config, data, run_dir, variant, resume, precision, jit, verbose,
         extra_callbacks):
    from keras_resnet.data import augment as augment_lib

    backend = keras.backend.backend()
    augment_on = train_config.augment_on
    if augment_on == "auto":
        augment_on = "host" if backend == "tensorflow" else "device"
    if augment_on == "host" and backend != "tensorflow":
        raise ValueError("Host augmentation uses tf.data, which needs the TensorFlow "
                         f"backend. Received: augment_on='host' with backend={backend!r}")
    batch_size = train_config.batch_size
    num_train = len(data.x_train)
    steps_per_epoch = train_config.steps_per_epoch or math.ceil(num_train / batch_size)

    with runtime.distribution_scope(train_config.strategy) as replicas:
        model = build_resnet(model_config, name=variant)
        if train_config.fused_batch_norm and backend == "tensorflow":
            from keras_resnet.training.fused_batch_norm import use_fused_batch_norm

            use_fused_batch_norm(model)
        train_model = model
        if augment_on == "device":
            augmentation = augment_lib.build_augmentation(
                [a for a in train_config.augment if a not in ("mixup", "cutmix")],
                model_config.input_shape, seed=train_config.seed)
            if augmentation is not None:
                from keras_resnet.data.pipeline import build_device_training_model

                train_model = build_device_training_model(model, augmentation)
        apply_l2_weight_decay(model, train_config)
        train_model.compile(
            optimizer=build_optimizer(train_config, steps_per_epoch),
            loss=keras.losses.CategoricalCrossentropy(
                label_smoothing=train_config.label_smoothing),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            jit_compile=jit, steps_per_execution=train_config.steps_per_execution)

        checkpoint_dir = os.path.join(run_dir, "checkpoints")
        state = checkpoint.restore(train_model, checkpoint_dir) if resume else None
        initial_epoch = state["epoch"] if state else 0
        if state:
            _apply_changed_learning_rate(train_model.optimizer, train_config, run_dir)
        # After the restore: the data continues at the resumed epoch's batches.
        train_data, validation_data = _datasets(data, train_config, augment_on, steps_per_epoch,
                                                initial_epoch)

        monitor = "val_loss" if validation_data is not None else "loss"
        stateful = {}
        callbacks = [keras.callbacks.TerminateOnNaN()]
        if train_config.schedule == "plateau":
            stateful["plateau"] = keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=train_config.decay_rate,
                patience=train_config.plateau_patience, min_lr=train_config.min_learning_rate)
            callbacks.append(stateful["plateau"])
        saver = checkpoint.Checkpoint(
            checkpoint_dir, history=state["history"] if state else [],
            on_epoch_saved=lambda history: records.write_history(run_dir, history),
            stateful_callbacks=stateful)
        saver.restore_callback_state(state and state.get("callbacks"))
        callbacks.append(saver)
        if backend == "tensorflow":
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")))
        callbacks.extend(extra_callbacks)

        started = time.perf_counter()
        if initial_epoch < train_config.epochs:
            train_model.fit(train_data, epochs=train_config.epochs, initial_epoch=initial_epoch,
                            steps_per_epoch=steps_per_epoch, validation_data=validation_data,
                            callbacks=callbacks, verbose=verbose, shuffle=False)
    if saver.diverged:
        raise TrainingDiverged(
            f"Training stopped: {saver.diverged}. The last good checkpoint (epoch "
            f"{len(saver.history)}) is kept in {checkpoint_dir}; lower --learning-rate, add "
            "--clip-norm, or use --precision float32, then --resume.")
    history = saver.history
    train_seconds = sum(row["seconds"] for row in history)
    images_seen = (len(history) - initial_epoch) * steps_per_epoch * batch_size
    session_seconds = time.perf_counter() - started

    model = _float32_copy(model_config, model, variant)
    report = classification_report(predict_probabilities(model, data.x_test), data.y_test,
                                   data.class_names)
    metrics = {
        "run_dir": run_dir, "variant": variant, "test_accuracy": report["accuracy"],
        "test_loss": report["loss"], "per_class_accuracy": report["per_class_accuracy"],
        "confusion_matrix": report["confusion_matrix"], "class_names": list(data.class_names),
        "val_accuracy": history[-1].get("val_accuracy") if history else None,
        "trainable_params": count_params(model_config)["trainable"],
        "epochs_completed": len(history), "resumed_from_epoch": initial_epoch,
        "train_seconds": train_seconds,
        "images_per_second": images_seen / session_seconds if images_seen else 0.0,
        "precision": precision, "jit": jit, "backend": backend,
        "device": runtime.device_description(), "augment_on": augment_on,
        "replicas": replicas,
        "resumed_optimizer_iterations": state["optimizer_iterations"] if state else 0,
    }
    if train_config.tta:
        metrics["tta_test_accuracy"] = classification_report(
            predict_probabilities(model, data.x_test, flip=True), data.y_test,
            data.class_names)["accuracy"]
    _save_model(model, os.path.join(run_dir, "model.keras"))
    records.write_json(os.path.join(run_dir, "metrics.json"), metrics)
    return metrics


def _datasets(data, train_config, augment_on, steps_per_epoch, initial_epoch=0):
    """Returns the training and validation data in the form the backend needs."""
    num_classes = len(data.class_names)
    batch_size = train_config.batch_size
    has_val = len(data.x_val) > 0
    if keras.backend.backend() == "tensorflow":
        from keras_resnet.data.pipeline import build_dataset

        # On the device only image augmentations run; mixup and cutmix stay in tf.data.
        host = train_config.augment if augment_on == "host" else tuple(
            a for a in train_config.augment if a in ("mixup", "cutmix"))
        # Endless, each pass ordered by (seed, pass): epoch e starts at batch e * steps.
        train = build_dataset(data.x_train, data.y_train, num_classes, batch_size, training=True,
                              augment=host, seed=train_config.seed,
                              start_batch=initial_epoch * steps_per_epoch)
        val = build_dataset(data.x_val, data.y_val, num_classes, batch_size,
                            training=False) if has_val else None
        return train, val
    from keras_resnet.data.pipeline import build_numpy_batches

    mixing = tuple(a for a in train_config.augment if a in ("mixup", "cutmix"))
    train = build_numpy_batches(data.x_train, data.y_train, num_classes, batch_size,
                                training=True, seed=train_config.seed, augment=mixing,
                                initial_epoch=initial_epoch)
    val = None
    if has_val:
        val = (data.x_val.astype("float32"),
               np.eye(num_classes, dtype="float32")[data.y_val])
    return train, val


def _float32_copy(config, model, name):
    """Rebuilds `model` under float32 with the same weights: what gets saved and exported."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = build_resnet(config, name=name)
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def _save_model(model, path):
    temporary = f"{path[:-len('.keras')]}.tmp.keras"
    model.save(temporary)
    os.replace(temporary, path)
