"""Export: every format agrees with the Keras model, the report is whole, bad input is one line.

One small network is trained once per module on generated colored-blob classes (learnable
in a few epochs), then exported to every format once; the tests read that export.
"""

import doctest
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from keras_resnet import build_resnet, get_variant, predict
from keras_resnet.model import float32_model
from keras_resnet.export import convert, exporter, runtime
from keras_resnet.export.exporter import export_model
from keras_resnet.files import path_bytes

# tflm (C++ sources, an optional extra) has its own tests: tests/test_export_tflm.py.
ALL_FORMATS = tuple(fmt for fmt in convert.FORMATS if fmt != "tflm")
CLASS_NAMES = ["red", "green", "blue", "yellow"]
COLORS = np.array([(220, 40, 40), (40, 200, 60), (50, 60, 220), (220, 210, 40)], np.float32)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_blobs(count, seed):
    """A disc of the class's color, at a random place and size, on a noisy background."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % len(COLORS)).astype(np.int32)
    rows, cols = np.mgrid[:32, :32]
    images = rng.uniform(0, 90, (count, 32, 32, 3)).astype(np.float32)
    for image, label in zip(images, labels):
        center_row, center_col = rng.uniform(8, 24, 2)
        radius = rng.uniform(5, 9)
        disc = (rows - center_row) ** 2 + (cols - center_col) ** 2 < radius ** 2
        image[disc] = COLORS[label] + rng.normal(0, 15, 3)
    return np.clip(images, 0, 255).astype(np.uint8), labels


def make_blob_data(train, test):
    (x_train, y_train), (x_test, y_test) = make_blobs(train, 0), make_blobs(test, 1)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def train_blob_model(config, data, epochs):
    """`config` trained on the blobs with Adam: a model whose exports have something to keep."""
    keras.utils.set_random_seed(0)
    model = build_resnet(config)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(data["x_train"], data["y_train"], batch_size=32, epochs=epochs, verbose=0)
    return model


@pytest.fixture(scope="module")
def data():
    return make_blob_data(400, 200)


@pytest.fixture(scope="module")
def trained(data):
    model = train_blob_model(get_variant("tiny", channels=(8, 16, 32), num_classes=4), data, 5)
    assert model.evaluate(data["x_test"], data["y_test"], verbose=0)[1] > 0.9
    return model


CALIBRATED = []  # what the int8 converter was given to calibrate on


@pytest.fixture(scope="module")
def exported(trained, data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    source = {"variant": "tiny", "data": {"class_names": CLASS_NAMES}}
    convert_tflite = convert.convert_tflite

    def spy(saved_model_dir, fmt, calibration_images=None):
        if fmt == "tflite-int8":
            CALIBRATED.append(np.array(calibration_images))
        return convert_tflite(saved_model_dir, fmt, calibration_images)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(convert, "convert_tflite", spy)
        report = export_model(trained, run_dir / "export", ALL_FORMATS, data["x_train"],
                              data["x_test"], data["y_test"], CLASS_NAMES, source,
                              latency_runs=5)
    return run_dir / "export", report


def test_every_format_is_written_and_reported(exported):
    export_dir, report = exported
    assert list(report["formats"]) == list(ALL_FORMATS)
    for fmt, row in report["formats"].items():
        assert os.path.exists(export_dir / convert.FORMATS[fmt]), fmt
        assert row["file"] == convert.FORMATS[fmt]
        assert row["bytes"] == path_bytes(str(export_dir / row["file"])) > 0
        assert 0.9 <= row["accuracy"] <= 1 and 0.9 <= row["agreement"] <= 1
        latency = row["latency_ms"]["threads_all"]
        assert set(latency) == {"mean", "p50", "p99", "runs"} and latency["runs"] == 5
        assert 0 < latency["p50"] <= latency["p99"] and latency["mean"] > 0
        assert (row["latency_ms"]["threads_1"] is None) == (fmt in ("keras", "saved_model"))
    assert report["test_samples"] == 200 and report["calibration_samples"] == 400
    assert json.loads((export_dir / "report.json").read_text()) == json.loads(
        json.dumps(report))
    markdown = (export_dir / "report.md").read_text()
    assert all(f"| {fmt} |" in markdown for fmt in ALL_FORMATS)
    assert sorted(os.listdir(export_dir.parent)) == ["export"], "temporary folders left"


def test_metadata_describes_inputs_outputs_and_source(exported):
    export_dir, _ = exported
    metadata = json.loads((export_dir / "metadata.json").read_text())
    assert metadata["class_names"] == CLASS_NAMES
    assert metadata["source_config"]["variant"] == "tiny"
    int8 = metadata["formats"]["tflite-int8"]
    assert int8["input"]["dtype"] == int8["output"]["dtype"] == "int8"
    assert int8["input"]["shape"] == [-1, 32, 32, 3]
    assert int8["input"]["quantization"]["scale"] > 0
    assert int8["output"]["quantization"]["scale"] > 0
    assert int8["calibration_samples"] == 400
    assert metadata["formats"]["tflite"]["input"]["quantization"] is None
    assert metadata["formats"]["saved_model"]["signature"] == "serving_default"


@pytest.mark.parametrize("fmt, max_diff, min_agreement", [
    ("saved_model", 1e-5, 1.0), ("tflite", 1e-4, 1.0), ("tflite-fp16", 1e-2, 0.99),
    ("tflite-dynamic", None, 0.95), ("tflite-int8", None, 0.9)])
def test_format_agrees_with_keras(exported, trained, data, fmt, max_diff, min_agreement):
    export_dir, report = exported
    # Recomputed from the files, not read from the report, so the report is checked too.
    # The SavedModel is this test's own export: trusted.
    predictor = runtime.load_predictor(str(export_dir / convert.FORMATS[fmt]),
                                       trust_saved_model=True)
    probabilities = predictor(data["x_test"])
    reference = trained.predict(data["x_test"], verbose=0)
    agreement = np.mean(probabilities.argmax(-1) == reference.argmax(-1))
    assert agreement >= min_agreement
    assert agreement == pytest.approx(report["formats"][fmt]["agreement"])
    if max_diff is not None:
        assert np.abs(probabilities - reference).max() < max_diff


def test_int8_is_within_one_point_of_keras(exported, data):
    export_dir, report = exported
    predictor = runtime.load_predictor(str(export_dir / convert.FORMATS["tflite-int8"]))
    accuracy = np.mean(predictor(data["x_test"]).argmax(-1) == data["y_test"])
    assert accuracy == pytest.approx(report["formats"]["tflite-int8"]["accuracy"])
    assert accuracy >= report["formats"]["keras"]["accuracy"] - 0.01


def test_flip_tta_accuracy_is_the_mean_of_image_and_mirror(exported, trained, data):
    from keras_resnet.training.evaluate import predict_probabilities

    export_dir, report = exported
    predictor = runtime.load_predictor(str(export_dir / convert.FORMATS["tflite-int8"]))
    images, labels = data["x_test"], data["y_test"]
    mean = (predictor(images) + predictor(images[:, :, ::-1])) / 2
    assert report["formats"]["tflite-int8"]["tta_accuracy"] == pytest.approx(
        np.mean(mean.argmax(-1) == labels), abs=1e-6)
    # The float reference measures it as training's evaluation does.
    float_tta = np.mean(predict_probabilities(trained, images, flip=True).argmax(-1) == labels)
    assert report["formats"]["keras"]["tta_accuracy"] == pytest.approx(float_tta, abs=1e-6)


def test_flip_tta_averages_each_image_with_its_left_right_mirror():
    images = np.arange(2 * 2 * 3 * 1).reshape(2, 2, 3, 1)
    outputs = iter([np.array([[0.6, 0.4], [0.4, 0.6]]), np.array([[0.1, 0.9], [0.3, 0.7]])])
    seen = []

    def predictor(batch):
        seen.append(batch)
        return next(outputs)

    plain = predictor(images)
    # Means (0.35, 0.65) twice: both predict class 1, so one of the two labels is right.
    assert exporter._flip_accuracy(predictor, images, plain, [0, 1]) == 0.5
    np.testing.assert_array_equal(seen[1], images[:, :, ::-1])


def test_an_export_folder_has_the_mode_of_any_new_folder(exported, tmp_path):
    export_dir, _ = exported
    os.makedirs(tmp_path / "made")
    assert os.stat(export_dir).st_mode == os.stat(tmp_path / "made").st_mode


def test_int8_calibrates_on_training_images_only(exported, data):
    assert len(CALIBRATED) == 1
    train = {bytes(image) for image in data["x_train"]}
    test = {bytes(image) for image in data["x_test"]}
    used = [bytes(image.astype(np.uint8)) for image in CALIBRATED[0]]
    assert len(used) == exported[1]["calibration_samples"] == 400
    assert set(used) <= train and not set(used) & test


def test_quantized_files_are_smaller(exported):
    formats = exported[1]["formats"]
    # The trained model holds Adam's slots; the exported .keras file must not.
    assert formats["keras"]["bytes"] < 2.5 * formats["tflite"]["bytes"]
    assert formats["tflite-int8"]["bytes"] < 0.5 * formats["tflite"]["bytes"]
    assert formats["tflite-fp16"]["bytes"] < 0.7 * formats["tflite"]["bytes"]


def test_mixed_precision_model_exports_in_float32(trained, data, tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = build_resnet(get_variant("tiny", channels=(8, 16, 32), num_classes=4))
    finally:
        keras.config.set_dtype_policy("float32")
    mixed.set_weights(trained.get_weights())
    mixed.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert "mixed_bfloat16" in {layer.dtype_policy.name for layer in loaded.layers}
    report = export_model(loaded, tmp_path / "export", "saved_model,tflite",
                          test_images=data["x_test"], test_labels=data["y_test"],
                          latency_runs=0)
    assert {layer.dtype_policy.name for layer in float32_model(loaded).layers} == {
        "float32"}
    # The reference row is the float32 copy, so float32 TFLite matches it exactly...
    assert report["formats"]["tflite"]["max_abs_diff"] < 1e-4
    # ...and that copy computes what the float32 model trained above computes.
    tflite = runtime.load_predictor(str(tmp_path / "export" / "model_float32.tflite"))
    assert np.abs(tflite(data["x_test"]) - trained.predict(data["x_test"], verbose=0)).max() < 1e-4


def test_export_replaces_its_own_files_only_and_a_failure_leaves_them(trained, tmp_path,
                                                                         monkeypatch):
    export_model(trained, tmp_path / "export", "tflite,tflite-dynamic", latency_runs=0)
    (tmp_path / "export" / "notes.md").write_text("the user's")
    export_model(trained, tmp_path / "export", "tflite-fp16", latency_runs=0)
    expected = ["manifest.json", "metadata.json", "model_float16.tflite", "notes.md",
                "report.json", "report.md"]
    assert sorted(os.listdir(tmp_path / "export")) == expected
    assert (tmp_path / "export" / "notes.md").read_text() == "the user's"
    # A file of the user's where the export would write is refused before any work.
    (tmp_path / "export" / "model_int8.tflite").write_text("the user's model")
    with pytest.raises(ValueError, match="model_int8.tflite was not written by an export"):
        export_model(trained, tmp_path / "export", "tflite-int8", latency_runs=0,
                     calibration_images=np.zeros((2, 32, 32, 3), np.uint8))
    assert (tmp_path / "export" / "model_int8.tflite").read_text() == "the user's model"
    os.remove(tmp_path / "export" / "model_int8.tflite")

    def broken(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(convert, "convert_tflite", broken)
    with pytest.raises(RuntimeError, match="converter crashed"):
        export_model(trained, tmp_path / "export", "tflite", latency_runs=0)
    assert sorted(os.listdir(tmp_path)) == ["export"], "temporary folder left"
    assert sorted(os.listdir(tmp_path / "export")) == expected
    with pytest.raises(RuntimeError):
        export_model(trained, tmp_path / "fresh", "tflite", latency_runs=0)
    assert not os.path.exists(tmp_path / "fresh")


@pytest.mark.parametrize("kwargs, message", [
    ({"formats": "tflite,onnx"}, "Unknown or no export format.*Received: formats='onnx'"),
    ({"formats": ""}, "Unknown or no export format"),
    ({"formats": "tflite-int8"}, "needs training images to calibrate on"),
    ({"formats": "tflite", "test_labels": np.zeros(3)}, "`test_labels` needs `test_images`"),
    ({"formats": "tflite", "calibration_samples": 0}, "`calibration_samples` must be"),
])
def test_export_model_rejects_bad_arguments(trained, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_model(trained, tmp_path / "export", **kwargs)
    assert not os.listdir(tmp_path)


def test_docstring_examples(exported, trained, data, tmp_path):
    export_dir, _ = exported
    png = str(tmp_path / "image.png")
    Image.fromarray(data["x_test"][0]).save(png)
    globs = {"model": trained, "run_dir": str(tmp_path), "export_dir": str(export_dir),
             "png": png, "num_classes": 4, **data, "test_images": data["x_test"]}
    for module in (convert, exporter, runtime, predict):
        result = doctest.testmod(module, extraglobs=globs, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_predict_files_every_format(exported, data, tmp_path, fmt):
    export_dir, _ = exported
    paths = []
    for index in range(4):
        paths.append(str(tmp_path / f"{index}.png"))
        Image.fromarray(data["x_test"][index]).save(paths[-1])
    model = str(export_dir / convert.FORMATS[fmt])
    if fmt == "saved_model":  # refused unless trusted: its graph runs as code
        with pytest.raises(ValueError, match="--trust-saved-model"):
            predict.predict_files(model, paths, top_k=2)
    results = predict.predict_files(model, paths, top_k=2, trust_saved_model=True)
    assert [r["top_k"][0]["class"] for r in results] == [
        CLASS_NAMES[label] for label in data["y_test"][:4]]
    assert all(len(r["top_k"]) == 2 for r in results)


def run_module(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_predict_cli_on_png(exported, data, tmp_path):
    export_dir, _ = exported
    png = str(tmp_path / "blob.png")
    Image.fromarray(data["x_test"][1]).save(png)
    result = run_module("keras_resnet.predict", str(export_dir / "model_int8.tflite"), png,
                        "--top-k", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"{png}: {CLASS_NAMES[data['y_test'][1]]} ")
    top = json.loads(lines[-1])["predictions"][0]["top_k"]
    assert len(top) == 3 and top[0]["probability"] >= top[1]["probability"]


@pytest.mark.slow
@pytest.mark.parametrize("packed", [False, True], ids=["folder", "tar.gz"])
def test_export_cli_on_an_image_folder(trained, data, tmp_path, packed):
    # load_data reads DIR/{train,test}/<class>/ with classes in sorted folder order.
    folders = [f"{index}_{name}" for index, name in enumerate(CLASS_NAMES)]
    for split in ("train", "test"):
        for index, (image, label) in enumerate(zip(data[f"x_{split}"], data[f"y_{split}"])):
            folder = tmp_path / "data" / split / folders[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{index}.png")
    data_dir = tmp_path / "data"
    if packed:  # README allows training from a .tar.gz of the folder: export must read it too
        import tarfile

        with tarfile.open(tmp_path / "data.tar.gz", "w:gz") as tar:
            tar.add(data_dir, arcname="data")
        data_dir = tmp_path / "data.tar.gz"
    run = tmp_path / "run"
    run.mkdir()
    trained.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"variant": "tiny", "data": {
        "dataset": "cifar10", "data_dir": str(data_dir), "image_size": [32, 32],
        "val_split": 0.1, "seed": 0}}))
    result = run_module("keras_resnet.export", str(run), "--formats", "saved_model,tflite-int8",
                        "--calibration-samples", "100", "--latency-runs", "2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(report["formats"]) == ["keras", "saved_model", "tflite-int8"]
    assert report["test_samples"] == 200 and report["calibration_samples"] == 100
    assert report["formats"]["tflite-int8"]["agreement"] >= 0.9
    assert report["formats"]["keras"]["accuracy"] > 0.9
    assert json.loads((run / "export" / "report.json").read_text()) == report
    metadata = json.loads((run / "export" / "metadata.json").read_text())
    assert metadata["class_names"] == folders
    assert sorted(os.listdir(run)) == ["config.json", "export", "model.keras"]


@pytest.fixture(scope="module")
def run_dir(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_run")
    trained.save(path / "model.keras")
    (path / "empty").mkdir()
    return path


@pytest.mark.parametrize("args, message", [
    (["{run}/empty"], "The run folder has no model.keras"),
    (["{run}", "--formats", "tflite,onnx"], "Unknown or no export format"),
    (["{run}", "--data-dir", "{run}/missing"], "The data set does not exist"),
    pytest.param(["{run}", "--formats", "tflite-int8", "--data-dir", "{run}/empty"],
                 "tflite-int8 needs training images to calibrate on",
                 marks=pytest.mark.slow),  # fails after loading TensorFlow
    (["{run}", "--latency-runs", "-1"], "--latency-runs must be at least 0"),
])
def test_export_cli_bad_input_is_one_line(run_dir, args, message):
    result = run_module("keras_resnet.export", *[a.format(run=run_dir) for a in args])
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(run_dir / "export")


@pytest.mark.parametrize("args, message", [
    (["missing.tflite", "x.png"], "No model at that path"),
    (["{run}/empty", "x.png"], "A model folder must be a SavedModel"),
    (["{run}/config.txt", "x.png"], "Unknown model format"),
    (["{run}/model.keras", "{run}/missing.png"], "No image at that path"),
    pytest.param(["{run}/model.keras", "{run}/config.txt"], "Cannot decode image",
                 marks=pytest.mark.slow),  # fails after loading the model
    (["{run}/model.keras", "{run}/config.txt", "--top-k", "0"], "--top-k must be"),
])
def test_predict_cli_bad_input_is_one_line(run_dir, args, message):
    (run_dir / "config.txt").write_text("not a model, not an image")
    result = run_module("keras_resnet.predict", *[a.format(run=run_dir) for a in args])
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
