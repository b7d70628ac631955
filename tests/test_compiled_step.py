"""The one compiled training step: under XLA on every backend, shared by train.py, the
tuner and bench, and runnable without TensorFlow on JAX."""

import dataclasses
import os
import subprocess
import sys
import types

import keras
import numpy as np
import pytest
from PIL import Image

from keras_resnet import bench
from keras_resnet.config import ResNetConfig
from keras_resnet.data.batches import ArrayBatches
from keras_resnet.data.sources import DataSplits
from keras_resnet.training import TrainConfig, fit, runtime
from keras_resnet.training.run import TrainingRun
from keras_resnet.training.step import GroupedSteps
from keras_resnet.training.config import OPTIMIZERS
from keras_resnet.variants import VARIANTS, get_variant
from tuner import hypermodel
from tuner.space import SearchSpace

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ResNetConfig(blocks=(1, 1), channels=(4, 8), num_classes=3)


def _splits(train=32, val=8, test=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)

    def images(count):
        return rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)

    def labels(count):
        return (np.arange(count) % classes).astype(np.int32)

    return DataSplits(images(train), labels(train), images(val), labels(val), images(test),
                      labels(test), tuple(f"c{i}" for i in range(classes)), SMALL.mean,
                      SMALL.std, "generated")


def _train_steps(model_config, train_config, steps=2):
    """Compiles the step, runs `steps` of it; returns (model, weights before, logs)."""
    data = _splits()
    keras.utils.set_random_seed(0)
    run = TrainingRun(model_config, train_config, len(data.x_train))
    with run:
        model, train_model = run.build()
        before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
        train, _ = run.data(data)
        history = run.fit(train, epochs=1, steps=steps)
    return model, train_model, before, history.history


@pytest.mark.parametrize("lookahead", [False, True], ids=["plain", "lookahead"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_trains_under_jit(optimizer, lookahead):
    # Under JAX's jit the step donates every state buffer: Lookahead's slow weights once
    # shared their model weight's buffer ("Attempt to donate the same buffer twice").
    config = TrainConfig(optimizer=optimizer, learning_rate=0.05, lookahead=lookahead,
                         lookahead_k=1, batch_size=8, epochs=1, jit="on", precision="float32",
                         augment=("crop", "flip"))
    model, train_model, before, logs = _train_steps(SMALL, config)
    assert train_model.jit_compile is True
    assert np.isfinite(logs["loss"][-1])
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    unmoved = [w.path for w, a, b in zip(model.trainable_weights, after, before)
               if np.array_equal(a, b)]
    assert not unmoved, f"{optimizer}: weights that did not move: {unmoved}"
    if lookahead:
        # k=1: every step syncs, so the slow weights equal the fast ones afterwards.
        slow = train_model.optimizer._slow_weights
        for variable, slow_weight in zip(train_model.trainable_variables, slow):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(slow_weight),
                                       keras.ops.convert_to_numpy(variable), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_recipe_trains_under_jit_in_mixed_precision(name):
    # Each paper's recipe (optimizer, Lookahead, clipping, schedule, augmentation, decay)
    # on a small network: what must compile is the recipe, and the network is tested
    # with the registry in test_model.py.
    precision = "mixed_float16" if name == "efficient" else "mixed_bfloat16"
    config = dataclasses.replace(VARIANTS[name].recipe, batch_size=8, epochs=2, jit="on",
                                 precision=precision)
    model, train_model, _, logs = _train_steps(SMALL, config)
    assert np.isfinite(logs["loss"][-1])
    assert model.dtype_policy.name == precision
    if precision == "mixed_float16":
        assert type(train_model.optimizer).__name__ == "LossScaleOptimizer"


def test_drop_remainder_keeps_one_step_shape():
    config = TrainConfig(batch_size=12, epochs=1, precision="float32", jit="off")
    data = _splits(train=32)
    run = TrainingRun(SMALL, config, 32)
    assert run.steps_per_epoch == 2
    train, _ = run.data(data)
    shapes = {tuple(images.shape) for images, _ in (
        [train[i] for i in range(len(train))] if hasattr(train, "__getitem__")
        else train.take(4))}
    assert shapes == {(12, 32, 32, 3)}


def _describe(train_model):
    optimizer = train_model.optimizer
    inner = getattr(optimizer, "inner_optimizer", None)
    return {"optimizer": type(optimizer).__name__,
            "inner": type(inner).__name__ if inner is not None else None,
            "policy": train_model.layers[-1].dtype_policy.name,
            "loss": keras.saving.serialize_keras_object(train_model.loss),
            "jit": train_model.jit_compile,
            "steps_per_execution": train_model.steps_per_execution,
            "layers": [type(layer).__name__ for layer in train_model.layers],
            "trainable": len(train_model.trainable_weights)}


def test_train_tuner_and_bench_compile_the_same_step(monkeypatch, tmp_path):
    # Global pooling: the tuner's space writes tiny's pool of 8 on an 8x8 grid that way.
    model_config = dataclasses.replace(get_variant("tiny"), blocks=(1, 1, 1), pool_size=None)
    train_config = dataclasses.replace(VARIANTS["efficient"].recipe, batch_size=8, epochs=1,
                                       steps_per_epoch=1, precision="mixed_bfloat16",
                                       jit="on", val_split=0.25)
    built = {}
    original = TrainingRun.build

    def spy(run):
        result = original(run)
        built[caller] = (run.model_config, run.train_config, result[1])
        return result

    monkeypatch.setattr(TrainingRun, "build", spy)
    data = _splits(classes=10)
    caller = "train.py"
    fit.fit(model_config, train_config, data, str(tmp_path / "run"), variant="tiny",
            verbose=0)

    caller = "tuner"
    space = SearchSpace(model_config, train_config, ranges={})
    model = hypermodel.ResNetHyperModel(space, data).build(
        types.SimpleNamespace(values={}))
    assert model is built["tuner"][2]

    caller = "bench"
    monkeypatch.setattr("keras_resnet.variants.get_variant", lambda name: model_config)
    monkeypatch.setattr("keras_resnet.variants.get_recipe",
                        lambda variant, recipe: train_config)
    args = bench.build_parser().parse_args(
        ["--variant", "tiny", "--batch-size", "8", "--precision", "mixed_bfloat16",
         "--jit", "on", "--steps", "1", "--warmup-steps", "1", "--skip-inference"])
    args.argv = []
    bench.run_benchmark(args)

    assert set(built) == {"train.py", "tuner", "bench"}
    reference = _describe(built["train.py"][2])
    for caller_name in ("tuner", "bench"):
        assert built[caller_name][0] == built["train.py"][0], caller_name
        assert _describe(built[caller_name][2]) == reference, caller_name
    assert reference["inner"] == "SGD" and reference["jit"] is True


def _image_folder(root, classes=3, train=8, test=2):
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        for index in range(classes):
            folder = root / split / f"class{index}"
            folder.mkdir(parents=True)
            for image in range(count):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                    folder / f"{image}.png")
    return root


BLOCK_TENSORFLOW = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
sys.argv = sys.argv[1:]
if sys.argv[0].endswith(".py"):
    runpy.run_path(sys.argv[0], run_name="__main__")
else:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train.py", "tuner", "keras_resnet.bench"])
def test_jax_path_needs_no_tensorflow(command, tmp_path):
    folder = _image_folder(tmp_path / "images")
    arguments = {
        "train.py": ["train.py", "--variant", "tiny", "--data-dir", str(folder), "--epochs",
                     "2", "--steps-per-epoch", "2", "--batch-size", "8", "--jit", "on",
                     "--output", str(tmp_path / "run")],
        "tuner": ["tuner", "--variant", "tiny", "--data-dir", str(folder), "--max-trials", "1",
                  "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8",
                  "--output", str(tmp_path / "search")],
        "keras_resnet.bench": ["keras_resnet.bench", "--variant", "tiny", "--batch-size", "8",
                               "--steps", "2", "--warmup-steps", "1", "--jit", "on"],
    }[command]
    env = {**os.environ, "KERAS_BACKEND": "jax", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", BLOCK_TENSORFLOW, *arguments], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)
    # Any import of TensorFlow by the project fails the command. (JAX's own cache probes
    # for TensorFlow and warns here, where it is installed but blocked; where it is
    # absent, as on the GPU machine, it does not.)
    assert done.returncode == 0, done.stderr[-3000:]
    if command == "train.py":
        assert (tmp_path / "run" / "model.keras").exists()


CACHE = """
import sys, keras, jax
from keras_resnet.training import runtime
assert runtime.enable_compile_cache(sys.argv[1])
jax.jit(lambda x: x * 2 + 1)(jax.numpy.ones(3)).block_until_ready()
"""


def test_compile_cache_keeps_compiled_programs(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", CACHE, str(tmp_path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert any(tmp_path.iterdir()), "nothing was written to the compilation cache"


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="GroupedSteps scans on JAX")
@pytest.mark.parametrize("recipe", ["lookahead-crop-flip", "plain"])
def test_grouped_steps_train_as_the_same_steps_one_by_one(monkeypatch, recipe):
    # Grouping is for accelerators (XLA:CPU loops are slow); its math is checked here.
    monkeypatch.setattr(runtime, "accelerator", lambda: "gpu")
    data = _splits(train=60, val=0)
    weights, iterations = {}, {}
    for steps_per_execution in (1, 3):
        keras.utils.set_random_seed(0)
        config = TrainConfig(
            optimizer="sgd", learning_rate=0.05, epochs=2, batch_size=8, jit="on",
            precision="float32", steps_per_execution=steps_per_execution, seed=1,
            lookahead=recipe != "plain", lookahead_k=2, schedule="cosine",
            augment=("crop", "flip") if recipe != "plain" else ())
        run = TrainingRun(SMALL, config, 60, name="tiny")
        model, train_model = run.build()
        assert isinstance(train_model, GroupedSteps) == (steps_per_execution > 1)
        train, _ = run.data(data)
        run.fit(train, epochs=2)
        weights[steps_per_execution] = [keras.ops.convert_to_numpy(w) for w in model.weights]
        iterations[steps_per_execution] = int(train_model.optimizer.iterations)
    # 7 whole batches an epoch: groups of 3, 3 and 1 steps.
    assert iterations == {1: 14, 3: 14}
    for one, grouped in zip(weights[1], weights[3]):
        np.testing.assert_allclose(grouped, one, rtol=2e-4, atol=2e-5)


@pytest.mark.skipif(keras.backend.backend() == "tensorflow",
                    reason="device batches are the other backends' input; tf.data's order "
                           "has its own tests")
@pytest.mark.parametrize("steps_per_epoch", [None, 2])
def test_every_epoch_trains_on_its_own_batches_and_only_them(tmp_path, monkeypatch,
                                                              steps_per_epoch):
    drawn = []
    draw = ArrayBatches.__getitem__

    def spy(self, index):
        if self.training:
            drawn.append((self.epoch, index))
        return draw(self, index)

    monkeypatch.setattr(ArrayBatches, "__getitem__", spy)
    config = TrainConfig(optimizer="sgd", epochs=3, batch_size=8, precision="float32",
                         augment=(), steps_per_epoch=steps_per_epoch)
    metrics = fit.fit(SMALL, config, _splits(train=24, val=8), str(tmp_path / "run"),
                      verbose=0)
    # Epoch e draws batches 0.. of its own order (`epoch_order(seed, e)`), each once: no
    # draw before training (Keras builds its state from shapes), none left for later.
    per_epoch = steps_per_epoch or 3
    assert drawn == [(epoch, index) for epoch in range(3) for index in range(per_epoch)]
    assert metrics["epochs_completed"] == 3
