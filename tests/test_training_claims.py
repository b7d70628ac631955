"""README's training claims, each checked where `fit` wires it: plateau, precision, TTA,
clipping, decay and label smoothing as the compiled model carries them."""

import csv
import dataclasses
import os

import keras
import numpy as np
import pytest

from keras_resnet import build_resnet, get_variant
from keras_resnet.training import runtime
from keras_resnet.training.evaluate import predict_probabilities
from keras_resnet.training.fit import fit
from test_training import SMALL, make_splits, quick, small_config


@pytest.fixture(scope="module")
def splits():
    return make_splits()


def read_history(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def test_plateau_divides_the_rate_after_patience_epochs_without_improvement(splits, tmp_path):
    # Validation labels shuffled: the more the model learns the colors, the worse val_loss
    # gets, so the rate must come down.
    rng = np.random.default_rng(1)
    data = dataclasses.replace(splits, y_val=rng.permutation(splits.y_val))
    base, factor, patience = 0.01, 0.5, 1
    fit(small_config(splits), quick(epochs=4, steps_per_epoch=3, schedule="plateau",
                                    plateau_patience=patience, decay_rate=factor,
                                    learning_rate=base, augment=()),
        data, str(tmp_path / "run"), verbose=0)
    history = read_history(str(tmp_path / "run"))
    # ReduceLROnPlateau's rule (mode min, min_delta 1e-4, no cooldown), replayed on the
    # recorded val_loss; each row's rate is the one after that epoch's decision.
    best, wait, rate, expected = float("inf"), 0, base, []
    for row in history:
        if row["val_loss"] < best - 1e-4:
            best, wait = row["val_loss"], 0
        else:
            wait += 1
            if wait >= patience:
                rate, wait = rate * factor, 0
        expected.append(rate)
    np.testing.assert_allclose([row["learning_rate"] for row in history], expected, rtol=1e-5)
    assert expected[-1] < base, "val_loss improved every epoch: the test shows nothing"


class Seen(Exception):
    """Ends a run once `Inspect(stop=True)` has seen the compiled model."""


class Inspect(keras.callbacks.Callback):
    """Records what the compiled training model carries when training starts."""

    def __init__(self, stop=False):
        super().__init__()
        self.stop = stop

    def on_train_begin(self, logs=None):
        model, optimizer = self.model, self.model.optimizer
        self.seen = {
            "label_smoothing": model.loss.label_smoothing,
            "clip": (optimizer.clipvalue, optimizer.clipnorm, optimizer.global_clipnorm),
            "weight_decay": optimizer.weight_decay,
            "regularized": [w.regularizer is not None for w in model.trainable_weights],
            "dtypes": {layer.name: layer.dtype_policy.compute_dtype for layer in model.layers},
            "batch_norm": [layer.dtype_policy.variable_dtype for layer in model.layers
                           if isinstance(layer, keras.layers.BatchNormalization)],
        }
        if self.stop:
            raise Seen


class Untouchable:
    """Stands in for the test split until training starts: its contents may not be read."""

    def __init__(self, array):
        self.length = len(array)

    def __len__(self):
        return self.length

    def __getattr__(self, name):
        raise AssertionError(f"fit read the test split before training ({name})")

    def __getitem__(self, index):
        raise AssertionError("fit read the test split before training")

    def __array__(self, *args, **kwargs):
        raise AssertionError("fit read the test split before training")


@pytest.mark.parametrize("mode, clip, expected", [
    ("l2", dict(clip_value=0.3), (0.3, None, None)),
    ("decoupled", dict(clip_norm=2.0), (None, 2.0, None)),
    ("l2", dict(global_clip_norm=1.5), (None, None, 1.5)),
])
def test_fit_compiles_clipping_decay_and_label_smoothing(splits, tmp_path, mode, clip,
                                                         expected):
    inspect = Inspect(stop=True)
    # Up to the first step, the test split stays unread: no validation or selection on it.
    data = dataclasses.replace(splits, x_test=Untouchable(splits.x_test),
                               y_test=Untouchable(splits.y_test))
    with pytest.raises(Seen):
        fit(small_config(splits),
            quick(epochs=1, label_smoothing=0.2, weight_decay=1e-3, weight_decay_mode=mode,
                  augment=(), **clip),
            data, str(tmp_path / "run"), verbose=0, extra_callbacks=[inspect])
    seen = inspect.seen
    assert seen["label_smoothing"] == pytest.approx(0.2)
    assert seen["clip"] == expected
    if mode == "l2":
        assert seen["weight_decay"] is None and all(seen["regularized"])
    else:
        assert seen["weight_decay"] == pytest.approx(1e-3) and not any(seen["regularized"])


@pytest.mark.slow  # 15-25 s on the shared 2-core machine: bf16 traces its own train step
def test_bfloat16_trains_with_float32_normalization_and_classifier(splits, tmp_path):
    inspect = Inspect()
    metrics = fit(small_config(splits),
                  quick(epochs=1, steps_per_epoch=1, precision="mixed_bfloat16", augment=()),
                  splits, str(tmp_path / "run"), verbose=0, extra_callbacks=[inspect])
    dtypes = inspect.seen["dtypes"]
    assert metrics["precision"] == "mixed_bfloat16" and np.isfinite(metrics["test_loss"])
    assert dtypes["normalize"] == dtypes["classifier"] == dtypes["predictions"] == "float32"
    convolutions = [name for name in dtypes if "conv" in name]
    assert convolutions and all(dtypes[name] == "bfloat16" for name in convolutions)
    assert set(inspect.seen["batch_norm"]) == {"float32"}
    # The saved model is float32 throughout.
    saved = keras.saving.load_model(os.path.join(str(tmp_path / "run"), "model.keras"))
    assert {layer.dtype_policy.compute_dtype for layer in saved.layers} == {"float32"}


@pytest.mark.parametrize("kind, flags, expected", [
    ("gpu", set(), "mixed_float16"),
    ("gpu", {"amx_bf16"}, "mixed_float16"),
    ("cpu", {"amx_bf16", "avx512f"}, "mixed_bfloat16"),
    ("cpu", {"avx512_bf16"}, "mixed_bfloat16"),
    ("cpu", {"avx2", "avx512f"}, "float32"),
    ("tpu", set(), "float32"),
])
def test_precision_auto_follows_the_device(monkeypatch, kind, flags, expected):
    monkeypatch.setattr(runtime, "accelerator", lambda: kind)
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: flags)
    assert runtime.resolve_precision("auto") == expected
    assert runtime.resolve_precision("float32") == "float32"


@pytest.mark.real_jit_resolution
@pytest.mark.parametrize("kind, jit, expected", [
    ("cpu", "auto", False), ("gpu", "auto", True), ("cpu", "on", True), ("gpu", "off", False)])
def test_jit_auto_is_on_for_accelerators_only(monkeypatch, kind, jit, expected):
    monkeypatch.setattr(runtime, "accelerator", lambda: kind)
    assert runtime.resolve_jit(jit) is expected


def test_tta_is_the_mean_of_the_image_and_its_mirror():
    model = build_resnet(get_variant("tiny", num_classes=4, **SMALL))
    images = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    plain = model.predict(images, verbose=0)
    mirrored = model.predict(images[:, :, ::-1], verbose=0)
    # A random image and an untrained network: the mirror changes the answer.
    assert np.abs(plain - mirrored).max() > 1e-4
    np.testing.assert_allclose(predict_probabilities(model, images, flip=True),
                               (plain + mirrored) / 2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(predict_probabilities(model, images), plain, rtol=1e-6)
