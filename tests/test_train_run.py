"""train.py end to end as a user runs it: --config, kill -9 and --resume, distribution."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from keras_resnet.cli import run_main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import train  # noqa: E402
from test_training import make_splits  # noqa: E402

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
SMALL_FLAGS = ["--variant", "tiny", "--channels", "4,8,16", "--blocks", "1,1,1",
               "--batch-size", "16", "--precision", "float32", "--jit", "off"]


def make_image_folder(root, classes=("red", "green", "blue"), per_class=(24, 8)):
    """A user's own data set: DIR/{train,test}/<class>/*.png, one dominant color per class."""
    splits = make_splits(num_train=per_class[0] * len(classes), num_val=0,
                         num_test=per_class[1] * len(classes), classes=len(classes))
    for split, images, labels in (("train", splits.x_train, splits.y_train),
                                  ("test", splits.x_test, splits.y_test)):
        for index, (image, label) in enumerate(zip(images, labels)):
            folder = Path(root) / split / classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{index}.png")
    return str(root)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"))


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def test_user_folder_trains_with_its_own_classes(image_folder, tmp_path, capsys):
    output = str(tmp_path / "run")
    code = run_main(train.main, [*SMALL_FLAGS, "--data-dir", image_folder, "--epochs", "2",
                                 "--output", output])
    assert code == 0
    metrics = last_json(capsys.readouterr().out)
    assert metrics["class_names"] == ["blue", "green", "red"]
    assert metrics["epochs_completed"] == 2
    config = json.load(open(os.path.join(output, "config.json")))
    assert config["model"]["num_classes"] == 3
    assert config["data"]["data_dir"] == image_folder


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_config_file_is_overridden_by_flags(tmp_path, capsys, suffix):
    values = {"variant": "tiny", "model": {"blocks": [1, 1, 1], "channels": [8, 16, 32]},
              "train": {"optimizer": "sgd", "learning_rate": 0.05, "epochs": 7}}
    path = tmp_path / f"run{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(values))
    else:
        import yaml

        path.write_text(yaml.safe_dump(values))
    assert run_main(train.main, ["--config", str(path), "--epochs", "3", "--dry-run"]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["variant"] == "tiny" and result["config"]["channels"] == [8, 16, 32]
    assert (result["train"]["optimizer"], result["train"]["learning_rate"],
            result["train"]["epochs"]) == ("sgd", 0.05, 3)


@pytest.mark.parametrize("argv, message", [
    (["--config", "/nonexistent.json"], "--config /nonexistent.json does not exist"),
    (["--optimizer", "lion"], "Received: optimizer='lion'"),
    (["--augment", "crop,blur"], "blur"),
    (["--resume"], "--resume needs --output"),
    (["--data-dir", "/nonexistent/data", "--epochs", "1"], "/nonexistent/data"),
])
def test_bad_training_input_is_one_line_exit_2(capsys, argv, message):
    assert run_main(train.main, ["--variant", "tiny", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_existing_output_is_refused_without_resume(image_folder, tmp_path, capsys):
    output = tmp_path / "run"
    output.mkdir()
    (output / "config.json").write_text("{}")
    assert run_main(train.main, [*SMALL_FLAGS, "--data-dir", image_folder,
                                 "--output", str(output)]) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err


def test_nan_loss_exits_3_with_one_line_and_no_results(image_folder, tmp_path, capsys):
    output = tmp_path / "run"
    # SGD at 1e30: the weights overflow within the first steps, the loss becomes NaN.
    code = run_main(train.main, [*SMALL_FLAGS, "--data-dir", image_folder, "--epochs", "2",
                                 "--optimizer", "sgd", "--learning-rate", "1e30",
                                 "--schedule", "constant", "--output", str(output)])
    assert code == train.EXIT_DIVERGED == 3
    err = capsys.readouterr().err.strip().splitlines()
    # Under XLA the clipped cross-entropy can stay finite: then the weights' check stops it.
    assert len(err) == 1 and re.match(
        r"error: Training stopped: (loss became nan|weights became non-finite)", err[0]), err
    assert not (output / "metrics.json").exists() and not (output / "model.keras").exists()


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_continues(image_folder, tmp_path):
    output = tmp_path / "run"
    command = [sys.executable, "train.py", *SMALL_FLAGS, "--data-dir", image_folder,
               "--output", str(output), "--optimizer", "sgd", "--schedule", "cosine",
               "--learning-rate", "0.05"]
    process = subprocess.Popen([*command, "--epochs", "40"], cwd=ROOT, env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_path = output / "checkpoints" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if state_path.exists() and json.loads(state_path.read_text())["epoch"] >= 2:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = json.loads(state_path.read_text())["epoch"]
    assert 2 <= killed_at < 40
    result = subprocess.run([*command, "--resume", "--epochs", "40"], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = last_json(result.stdout)
    assert metrics["resumed_from_epoch"] >= killed_at
    assert metrics["epochs_completed"] == 40
    with open(output / "history.csv") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == list(range(1, 41))
    # The cosine schedule continued from where it was, to its end.
    assert float(metrics["test_accuracy"]) > 0.6


DISTRIBUTED = """
import json
import sys
sys.path.insert(0, {tests!r})
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from test_training import make_splits, quick, small_config
from keras_resnet.training.fit import fit
splits = make_splits()
metrics = fit(small_config(splits), quick(epochs=2, strategy="mirrored"), splits, {run!r},
              verbose=0)
# --batch-size is global: 96 images in batches of 16 are 6 steps an epoch on any replicas.
print(metrics["replicas"], metrics["test_accuracy"],
      json.load(open({state!r}))["optimizer_iterations"])
"""


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_logical_cpus(tmp_path):
    code = DISTRIBUTED.format(tests=str(ROOT / "tests"), run=str(tmp_path / "run"),
                              state=str(tmp_path / "run" / "checkpoints" / "state.json"))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    replicas, accuracy, steps = result.stdout.split()[-3:]
    assert int(replicas) == 2 and float(accuracy) > 0.6 and int(steps) == 2 * 6


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="export converts through TensorFlow: TensorFlow backend only")
def test_export_after_training_reuses_the_loaded_data(image_folder, tmp_path, capsys,
                                                      monkeypatch):
    from keras_resnet.export import convert

    calibrated = []
    convert_tflite = convert.convert_tflite

    def spy(saved_model_dir, fmt, calibration_images=None):
        if fmt == "tflite-int8":
            calibrated.append(np.asarray(calibration_images))
        return convert_tflite(saved_model_dir, fmt, calibration_images)

    monkeypatch.setattr(convert, "convert_tflite", spy)
    output = tmp_path / "run"
    code = run_main(train.main, [*SMALL_FLAGS, "--data-dir", image_folder, "--epochs", "1",
                                 "--output", str(output), "--export", "tflite,tflite-int8"])
    assert code == 0
    report = json.loads((output / "export" / "report.json").read_text())
    assert {"keras", "tflite", "tflite-int8"} <= set(report["formats"])
    assert report["formats"]["tflite"]["agreement"] == 1.0
    assert (output / "export" / "model_int8.tflite").stat().st_size > 0
    assert last_json(capsys.readouterr().out)["epochs_completed"] == 1
    # int8 calibrated on training images only: every one is a train image, none a test one.
    train_images = {bytes(image) for image in _folder_images(image_folder, "train")}
    test_images = {bytes(image) for image in _folder_images(image_folder, "test")}
    assert len(calibrated) == 1 and len(calibrated[0]) > 0
    used = {bytes(image.astype(np.uint8)) for image in calibrated[0]}
    assert used <= train_images and not used & test_images


def _folder_images(root, split):
    return [np.asarray(Image.open(path).convert("RGB"))
            for path in sorted(Path(root, split).glob("*/*.png"))]
