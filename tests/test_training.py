"""Training: optimizers, schedules, Lookahead's math, run folder, resume and NaN stop."""

import csv
import json
import os

import keras
import numpy as np
import pytest

from keras_resnet import build_resnet, get_variant
from keras_resnet.data import DataSplits
from keras_resnet.training import TrainConfig
from keras_resnet.variants import VARIANTS
from keras_resnet.training import checkpoint as checkpoint_lib
from keras_resnet.training.config import OPTIMIZERS
from keras_resnet.training.fit import TrainingDiverged, fit
from keras_resnet.training.lookahead import Lookahead
from keras_resnet.training.optimizers import apply_l2_weight_decay, build_optimizer

SMALL = dict(channels=(4, 8, 16), blocks=(1, 1, 1))


def make_splits(num_train=96, num_val=24, num_test=30, classes=3, seed=0):
    """Learnable images: each class is a different dominant color, with noise."""
    rng = np.random.default_rng(seed)

    def images(count):
        labels = np.arange(count) % classes
        base = np.full((count, 32, 32, 3), 40.0)
        base[np.arange(count), :, :, labels] = 200.0
        noisy = base + rng.normal(0, 25, base.shape)
        return np.clip(noisy, 0, 255).astype("uint8"), labels.astype("int32")

    x_train, y_train = images(num_train)
    x_val, y_val = images(num_val)
    x_test, y_test = images(num_test)
    return DataSplits(x_train, y_train, x_val, y_val, x_test, y_test,
                      tuple(f"class{i}" for i in range(classes)),
                      (0.3, 0.3, 0.3), (0.3, 0.3, 0.3), "generated")


@pytest.fixture(scope="module")
def splits():
    return make_splits()


def small_config(splits, **overrides):
    return get_variant("tiny", num_classes=splits.num_classes, mean=splits.mean, std=splits.std,
                       **{**SMALL, **overrides})


def quick(**overrides):
    values = dict(optimizer="adam", learning_rate=1e-2, schedule="constant", epochs=2,
                  batch_size=16, augment=("crop", "flip"), precision="float32", jit="off")
    return TrainConfig(**{**values, **overrides})


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_moves_every_trainable_weight(name):
    model = build_resnet(get_variant("tiny", **SMALL))
    config = TrainConfig(optimizer=name, learning_rate=0.05, weight_decay=1e-4, clip_norm=1.0,
                         lookahead=name == "sgd")
    apply_l2_weight_decay(model, config)
    model.compile(optimizer=build_optimizer(config, steps_per_epoch=10),
                  loss="categorical_crossentropy")
    # Batch norm's moving statistics change without the optimizer: only trainable ones count.
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = np.eye(10, dtype="float32")[np.arange(8)]
    loss = float(model.train_on_batch(images, labels))
    assert np.isfinite(loss)
    unmoved = [w.path for w, old in zip(model.trainable_weights, before)
               if np.array_equal(keras.ops.convert_to_numpy(w), old)]
    assert not unmoved, f"{name} left {len(unmoved)} trainable weights unchanged: {unmoved}"


def test_lookahead_follows_the_papers_update_rule():
    # Zhang et al. 2019, Algorithm 1: k inner SGD steps on fast weights from the slow
    # weights, then slow <- slow + alpha (fast - slow), fast <- slow.
    k, alpha, learning_rate = 3, 0.5, 0.1
    target = np.array([1.0, -2.0, 0.5], dtype="float32")
    weight = keras.Variable(np.zeros(3, dtype="float32"))
    optimizer = Lookahead(keras.optimizers.SGD(learning_rate), sync_period=k,
                          slow_step_size=alpha)
    optimizer.build([weight])
    slow = fast = np.zeros(3, dtype="float32")
    for step in range(1, 11):
        gradient = 2 * (keras.ops.convert_to_numpy(weight) - target)
        optimizer.apply([keras.ops.convert_to_tensor(gradient)], [weight])
        fast = fast - learning_rate * 2 * (fast - target)
        if step % k == 0:
            slow = slow + alpha * (fast - slow)
            fast = slow
        np.testing.assert_allclose(keras.ops.convert_to_numpy(weight), fast, rtol=1e-5)


def test_lookahead_refuses_bad_arguments():
    with pytest.raises(ValueError, match="Received: sync_period=0"):
        Lookahead(keras.optimizers.SGD(), sync_period=0)
    with pytest.raises(ValueError, match="Received: slow_step_size=1.5"):
        Lookahead(keras.optimizers.SGD(), slow_step_size=1.5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer="lion"), "`optimizer` must be one of sgd, .*Received: optimizer='lion'"),
    (dict(schedule="linear"), "Received: schedule='linear'"),
    (dict(learning_rate=0), "`learning_rate` must be positive"),
    (dict(label_smoothing=1.0), r"`label_smoothing` must be in \[0, 1\)"),
    (dict(schedule="multistep"), "needs `milestones`"),
    (dict(warmup_epochs=2, schedule="step"), "applies to the cosine and one_cycle"),
    (dict(clip_value=-1.0), "`clip_value` must be positive or None"),
    (dict(clip_value=0.1, global_clip_norm=1.0),
     "Only one of .*Received: clip_value=0.1, global_clip_norm=1.0"),
    (dict(precision="fp8"), "Received: precision='fp8'"),
])
def test_train_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_every_variant_has_its_papers_recipe():
    from keras_resnet.variants import get_recipe
    from keras_resnet.variants import VARIANTS

    for name, variant in VARIANTS.items():
        assert isinstance(variant.recipe, TrainConfig)
        assert get_recipe(name) is variant.recipe
    assert get_recipe("custom") == TrainConfig()


def test_fit_writes_a_complete_run_folder(splits, tmp_path):
    run_dir = str(tmp_path / "run")
    metrics = fit(small_config(splits), quick(epochs=3, tta=True), splits, run_dir,
                  variant="tiny", verbose=0)
    for name in ("config.json", "history.csv", "metrics.json", "model.keras",
                 "accuracy.png", "loss.png", "learning_rate.png", "checkpoints/state.json"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    if keras.backend.backend() == "tensorflow":
        assert os.listdir(os.path.join(run_dir, "logs"))
    with open(os.path.join(run_dir, "history.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
            "seconds"} <= set(rows[0])
    saved = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert saved == json.loads(json.dumps(metrics))
    for key in ("test_accuracy", "test_loss", "trainable_params", "epochs_completed",
                "resumed_from_epoch", "train_seconds", "images_per_second", "precision",
                "jit", "backend", "device", "per_class_accuracy", "confusion_matrix"):
        assert key in saved, key
    assert saved["epochs_completed"] == 3 and saved["resumed_from_epoch"] == 0
    assert np.sum(saved["confusion_matrix"]) == len(splits.x_test)
    # The colors are easy: training must have learned them.
    assert saved["test_accuracy"] > 0.6
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    predicted = model.predict(splits.x_test.astype("float32"), verbose=0).argmax(axis=1)
    assert np.mean(predicted == splits.y_test) == pytest.approx(saved["test_accuracy"])
    images = splits.x_test.astype("float32")
    both = model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)
    assert np.mean(both.argmax(axis=1) == splits.y_test) == pytest.approx(
        saved["tta_test_accuracy"])
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert config["variant"] == "tiny" and config["train"]["epochs"] == 3


def test_mixed_precision_run_saves_a_float32_model_with_the_trained_weights(splits, tmp_path):
    run_dir = str(tmp_path / "run")
    metrics = fit(small_config(splits), quick(epochs=1, precision="mixed_bfloat16"), splits,
                  run_dir, verbose=0)
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert model.name == "custom"
    predicted = model.predict(splits.x_test.astype("float32"), verbose=0).argmax(axis=1)
    assert np.mean(predicted == splits.y_test) == pytest.approx(metrics["test_accuracy"])


def test_existing_run_is_not_overwritten(splits, tmp_path):
    run_dir = str(tmp_path / "run")
    fit(small_config(splits), quick(epochs=1), splits, run_dir, verbose=0)
    with pytest.raises(ValueError, match="already holds a run; pass --resume"):
        fit(small_config(splits), quick(epochs=1), splits, run_dir, verbose=0)


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("overrides", [
    dict(optimizer="sgd", learning_rate=0.05, schedule="cosine", lookahead=True),
    dict(schedule="plateau", plateau_patience=1),
])
def test_resume_continues_optimizer_and_schedule(splits, tmp_path, overrides):
    run_dir = str(tmp_path / "run")
    train_config = quick(epochs=3, **overrides)
    with pytest.raises(KeyboardInterrupt):
        fit(small_config(splits), train_config, splits, run_dir, verbose=0,
            extra_callbacks=[Interrupt(at_epoch=2)])
    state = checkpoint_lib.load_state(os.path.join(run_dir, "checkpoints"))
    assert state["epoch"] == 2
    metrics = fit(small_config(splits), train_config, splits, run_dir, resume=True, verbose=0)
    assert metrics["resumed_from_epoch"] == 2 and metrics["epochs_completed"] == 3
    # The step counter (hence the schedule's position) came back with the moments.
    assert metrics["resumed_optimizer_iterations"] == 2 * 6
    with open(os.path.join(run_dir, "history.csv")) as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [1, 2, 3]


class Explode(keras.callbacks.Callback):
    """Makes every weight NaN in the middle of epoch `at_epoch` (0-based)."""

    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.at_epoch and batch == 1:
            for weight in self.model.trainable_weights:
                weight.assign(keras.ops.full(weight.shape, float("nan"), weight.dtype))


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(splits, tmp_path):
    run_dir = str(tmp_path / "run")
    with pytest.raises(TrainingDiverged, match=r"last good checkpoint \(epoch 1\) is kept"):
        fit(small_config(splits), quick(epochs=3), splits, run_dir, verbose=0,
            extra_callbacks=[Explode(at_epoch=1)])
    state = checkpoint_lib.load_state(os.path.join(run_dir, "checkpoints"))
    assert state["epoch"] == 1
    assert os.path.exists(os.path.join(run_dir, "checkpoints", state["weights"]))
    assert not os.path.exists(os.path.join(run_dir, "metrics.json"))


def test_checkpoint_writes_leave_no_partial_files(splits, tmp_path):
    run_dir = str(tmp_path / "run")
    fit(small_config(splits), quick(epochs=2), splits, run_dir, verbose=0)
    names = os.listdir(os.path.join(run_dir, "checkpoints"))
    # The previous epoch's file stays until the next one is read back whole.
    assert sorted(names) == ["epoch-0001.weights.h5", "epoch-0002.weights.h5", "state.json"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_recipe_runs_a_short_epoch(splits, tmp_path, variant):
    import dataclasses

    from keras_resnet.variants import VARIANTS

    # The paper's recipe as it is (optimizer, schedule, Lookahead, clipping, decay,
    # augmentation), with a small batch and 2 steps so all seven fit in CI.
    recipe = dataclasses.replace(VARIANTS[variant].recipe, epochs=1, steps_per_epoch=2,
                                 batch_size=8,
                                 precision="float32", jit="off")
    config = dataclasses.replace(VARIANTS[variant].config, num_classes=splits.num_classes)
    metrics = fit(config, recipe, splits, str(tmp_path / variant), variant=variant, verbose=0)
    assert metrics["epochs_completed"] == 1 and np.isfinite(metrics["test_loss"])


@pytest.mark.slow
def test_fast_recipe_runs_a_short_epoch(splits, tmp_path):
    import dataclasses

    from keras_resnet.variants import get_recipe

    recipe = dataclasses.replace(get_recipe("efficient", "fast"), epochs=3, steps_per_epoch=2,
                                 warmup_epochs=1, batch_size=16, precision="float32")
    metrics = fit(small_config(splits), recipe, splits, str(tmp_path / "fast"), verbose=0)
    assert metrics["epochs_completed"] == 3 and "tta_test_accuracy" in metrics
    with pytest.raises(ValueError, match="Received: recipe='slow'"):
        get_recipe("tiny", "slow")


def test_lookahead_built_twice_keeps_one_slow_copy_per_weight():
    # The training model's state is built before a checkpoint is restored, and restoring
    # builds again: a second slow copy would shift every variable the checkpoint fills.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = Lookahead(keras.optimizers.SGD(0.1, momentum=0.9))
    optimizer.build(model.trainable_variables)
    names = [variable.path for variable in optimizer.variables]
    optimizer.build(model.trainable_variables)
    assert [variable.path for variable in optimizer.variables] == names


def test_a_pinned_cpu_run_names_the_cores_it_had(monkeypatch):
    from keras_resnet.training import runtime

    monkeypatch.setattr(runtime, "accelerator", lambda: "cpu")
    monkeypatch.setattr(runtime.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert runtime.device_description().startswith("cpu x1 of 2")
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert runtime.device_description().split(" (")[0] == "cpu x2"
