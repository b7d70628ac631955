"""Runs a training job end to end into a run folder: build, fit, resume, evaluate, save."""

import os

import keras

from keras_resnet import run_folder
from keras_resnet.model import count_params, float32_model
from keras_resnet.training import checkpoint, records, runtime
from keras_resnet.training.evaluate import classification_report, predict_probabilities
from keras_resnet.training.run import TrainingRun


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
        return _fit(model_config, train_config, data, run_dir, variant, resume, verbose,
                    extra_callbacks, run_folder.run_config(variant, model_config,
                                                           train_config, data_info))


def _apply_changed_learning_rate(optimizer, train_config, run_dir):
    # A constant (or plateau-reduced) rate is an optimizer variable, which the checkpoint
    # just restored: a resume given another --learning-rate must train at it. A schedule
    # is rebuilt from the new config anyway.
    recorded = run_folder.read_run_config(run_dir).get("train", {})
    if recorded.get("learning_rate") == train_config.learning_rate:
        return
    try:
        optimizer.learning_rate = train_config.learning_rate
    except TypeError:
        pass  # a LearningRateSchedule


def _fit(model_config, train_config, data, run_dir, variant, resume, verbose, extra_callbacks,
         config):
    run = TrainingRun(model_config, train_config, len(data.x_train), name=variant)
    with run:
        model, train_model = run.build()
        checkpoint_dir = os.path.join(run_dir, run_folder.CHECKPOINTS)
        stateful = run.schedule_callbacks("val_loss" if len(data.x_val) else "loss")
        saver = checkpoint.Checkpoint(
            checkpoint_dir, stateful_callbacks=stateful,
            on_epoch_saved=lambda history: records.write_history(run_dir, history))
        state = saver.restore(train_model) if resume else None
        initial_epoch = state["epoch"] if state else 0
        if state:
            _apply_changed_learning_rate(train_model.optimizer, train_config, run_dir)
        # After the restore: the data continues at the resumed epoch's batches.
        train_data, validation_data = run.data(data, initial_epoch=initial_epoch)
        callbacks = [*stateful.values(), saver]
        if run.backend == "tensorflow":
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, run_folder.LOGS)))
        # config.json is written when training really starts: a start that fails before
        # leaves no run behind, and a resume's changes are recorded only once in effect.
        callbacks += [keras.callbacks.LambdaCallback(on_train_begin=lambda logs=None: (
            run_folder.record_config(run_dir, config, initial_epoch))), *extra_callbacks]
        if initial_epoch < train_config.epochs:
            run.fit(train_data, validation_data, initial_epoch=initial_epoch,
                    callbacks=callbacks, verbose=verbose)
    if saver.diverged:
        raise TrainingDiverged(
            f"Training stopped: {saver.diverged}. The last good checkpoint (epoch "
            f"{len(saver.history)}) is kept in {checkpoint_dir}; lower --learning-rate, add "
            "--clip-norm, or use --precision float32, then --resume.")
    history = saver.history
    session = history[initial_epoch:]
    # After the session's first epoch, which pays for compilation: the speed that lasts.
    steady = session[1:]

    model = float32_model(model)
    report = classification_report(predict_probabilities(model, data.x_test), data.y_test,
                                   data.class_names)
    metrics = {
        "run_dir": run_dir, "variant": variant, "test_accuracy": report["accuracy"],
        "test_loss": report["loss"], "per_class_accuracy": report["per_class_accuracy"],
        "confusion_matrix": report["confusion_matrix"], "class_names": list(data.class_names),
        "val_accuracy": history[-1].get("val_accuracy") if history else None,
        "trainable_params": count_params(model_config)["trainable"],
        "epochs_completed": len(history), "resumed_from_epoch": initial_epoch,
        "train_seconds": sum(row["seconds"] for row in history),
        "compile_seconds": saver.compile_seconds,
        "images_per_second": run.speed(len(session) * run.steps_per_epoch,
                                       sum(row["seconds"] for row in session)),
        "steady_images_per_second": run.speed(len(steady) * run.steps_per_epoch, sum(
            row["seconds"] for row in steady)) if steady else None,
        "precision": run.precision, "jit": run.jit, "backend": run.backend,
        "device": runtime.device_description(), "augment_on": run.augment_on,
        "replicas": run.replicas,
        "resumed_optimizer_iterations": state["optimizer_iterations"] if state else 0,
    }
    if train_config.tta:
        metrics["tta_test_accuracy"] = classification_report(
            predict_probabilities(model, data.x_test, flip=True), data.y_test,
            data.class_names)["accuracy"]
    run_folder.save_results(run_dir, model, metrics)
    return metrics
