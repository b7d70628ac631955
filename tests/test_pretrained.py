"""Shipped models: shipped from a run, listed, loaded by name, checked, refused when damaged."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_resnet import pretrained, shipping
from keras_resnet.cli import run_main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import train  # noqa: E402
from test_data import JPEG_COPIES  # noqa: E402
from test_train_run import SMALL_FLAGS, make_image_folder  # noqa: E402

MB = 1 << 20


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A small run trained for two epochs and shipped as `small` into a folder of its own."""
    base = tmp_path_factory.mktemp("shipped")
    images = make_image_folder(base / "images")
    run = str(base / "run")
    assert run_main(train.main, [*SMALL_FLAGS, "--data-dir", images, "--epochs", "2",
                                 "--output", run]) == 0
    root = base / "saved_models"
    root.mkdir()
    assert run_main(shipping.main, [run, "--name", "small", "--root", str(root)]) == 0
    return root, pretrained.read_card("small", root=str(root)), images


@pytest.fixture
def shipped_copy(shipped, tmp_path, monkeypatch):
    """A copy of the shipped folder that a test may damage, made the package's own."""
    root = tmp_path / "saved_models"
    shutil.copytree(shipped[0], root)
    monkeypatch.setattr(pretrained, "shipped_root", lambda: str(root))
    return root


def test_a_shipped_model_loads_by_name_and_measures_what_its_card_says(shipped):
    from keras_resnet.data import load_data
    from keras_resnet.export.runtime import TFLitePredictor

    root, card, images = shipped
    model = pretrained.load_pretrained("small", root=str(root))
    data = load_data(data_dir=images)
    accuracy = float((model.predict(data.x_test, verbose=0).argmax(-1) == data.y_test).mean())
    assert accuracy == pytest.approx(card["test_accuracy"], abs=1e-6)
    int8 = TFLitePredictor(str(root / "small" / "model_int8.tflite"), "tflite-int8")
    assert float((int8(data.x_test).argmax(-1) == data.y_test).mean()) == pytest.approx(
        card["int8_test_accuracy"], abs=1e-6)
    assert card["spot_check"]["images"] == len(data.y_test)  # fewer than 50 of each class
    assert pretrained.shipped_names(str(root)) == ["small"]
    assert not [name for name in os.listdir(root) if name.startswith(".")]  # no staging left


def test_the_card_and_listing_carry_the_numbers(shipped):
    root, card, _ = shipped
    readme = (root / "small" / "README.md").read_text()
    assert readme.startswith("---\nlibrary_name: keras\n")
    assert f"{100 * card['int8_test_accuracy']:.2f}%" in readme
    assert card["int8_latency_ms"]["mean"] > 0  # measured on one thread when shipped
    listing = pretrained.listing(str(root))
    assert listing.splitlines()[2].startswith("| small | tiny | ")


@pytest.mark.parametrize("model", ["small", "small:int8"])
def test_predict_takes_a_shipped_name(model, shipped_copy, capsys):
    from keras_resnet import predict

    assert run_main(predict.main, [model, _an_image(shipped_copy), "--top-k", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["predictions"][0]["top_k"][0]["class"] in ("blue", "green", "red")


def _an_image(root):
    from PIL import Image

    path = str(root.parent / "image.png")
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(path)
    return path


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, message", [
    (lambda folder: _flip_a_byte(folder / "model.keras"), "does not match its SHA-256"),
    (lambda folder: (folder / "model_int8.tflite").unlink(), "missing or not a plain file"),
    (lambda folder: shutil.copyfile(folder / "report.md", folder / "model_int8.tflite"),
     "does not match its SHA-256"),
    (lambda folder: (folder / "sha256.json").write_text("[]"), "must map each file"),
])
def test_a_damaged_or_swapped_file_fails_in_one_line(damage, message, shipped_copy, capsys):
    from keras_resnet import predict

    damage(shipped_copy / "small")
    with pytest.raises(ValueError, match=message):
        pretrained.load_pretrained("small")
    assert run_main(predict.main, ["small", _an_image(shipped_copy)]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def test_export_takes_a_shipped_name_into_a_folder_of_yours(shipped, shipped_copy, tmp_path,
                                                           capsys):
    from keras_resnet.export import __main__ as export_main

    _, _, images = shipped
    argv = ["small", "--formats", "tflite", "--data-dir", images, "--latency-runs", "0"]
    assert run_main(export_main.main, argv) == 2
    assert "pass --output DIR" in capsys.readouterr().err
    assert run_main(export_main.main, [*argv, "--output", str(tmp_path / "mine")]) == 0
    assert (tmp_path / "mine" / "model_float32.tflite").is_file()
    assert sorted(os.listdir(shipped_copy / "small")) == sorted(os.listdir(
        shipped[0] / "small"))  # nothing written into the shipped folder


def test_shipping_again_replaces_the_model_and_clears_a_killed_shipping(shipped, tmp_path):
    root = tmp_path / "saved_models"
    shutil.copytree(shipped[0], root)
    (root / ".small-tmp-1234" / "small").mkdir(parents=True)  # as kill -9 leaves it
    run = str(shipped[0].parent / "run")
    assert run_main(shipping.main, [run, "--name", "small", "--root", str(root)]) == 0
    assert sorted(os.listdir(root)) == ["small"]
    pretrained.check_integrity(str(root / "small"))


def test_shipping_refuses_a_folder_it_did_not_ship(shipped, tmp_path):
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not a shipped model"):
        shipping.ship_run(str(tmp_path / "run"), "small", root=str(tmp_path))
    assert (tmp_path / "small" / "notes.txt").read_text() == "mine"


def test_shipped_files_stay_small_enough_for_git():
    sizes = {path: path.stat().st_size for path in (ROOT / "saved_models").rglob("*")
             if path.is_file()}
    assert all(size < 10 * MB for size in sizes.values()), sizes
    assert sum(sizes.values()) < 40 * MB


def test_every_package_folder_is_installed():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    found = {str(path.parent.relative_to(ROOT)).replace(os.sep, ".")
             for top in ("keras_resnet", "tuner") for path in (ROOT / top).rglob("__init__.py")}
    assert found | {"keras_resnet.saved_models"} == listed


@pytest.mark.slow
@pytest.mark.parametrize("name", pretrained.shipped_names())
@pytest.mark.skipif(not any(os.path.exists(path) for path in JPEG_COPIES),
                    reason=f"no offline CIFAR-10 JPEG copy at {' or '.join(JPEG_COPIES)}")
def test_every_shipped_model_measures_its_card_on_the_jpeg_copy(name):
    from keras_resnet.data import load_data

    card = pretrained.read_card(name)
    data = load_data(data_dir=next(path for path in JPEG_COPIES if os.path.exists(path)))
    measured = shipping.spot_check(pretrained.pretrained_folder(name), data.x_test, data.y_test)
    assert measured["images"] == 500
    for key in ("accuracy", "int8_accuracy"):
        assert abs(measured[key] - card["spot_check"][key]) <= 0.02, (key, measured, card)


@pytest.mark.slow
def test_a_plain_install_ships_the_models(shipped, tmp_path):
    source = tmp_path / "source"
    top = {".git", "runs", "data", ".whl", "build"}
    shutil.copytree(ROOT, source, ignore=lambda folder, names: [
        name for name in names if name == "__pycache__" or name.endswith(".egg-info")
        or (folder == str(ROOT) and name in top)])
    shutil.copytree(shipped[0] / "small", source / "saved_models" / "small")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(source)], check=True,
                   timeout=600)
    code = ("import keras_resnet.pretrained as p; print(p.shipped_names()); "
            "p.pretrained_folder('small'); print(p.shipped_root())")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(target)})
    assert result.returncode == 0, result.stderr
    # Every model the checkout ships, and the test's own.
    names = sorted({*pretrained.shipped_names(), "small"})
    assert result.stdout.splitlines() == [str(names), str(target / "keras_resnet" /
                                                         "saved_models")]


def test_a_seed_of_a_repeated_run_carries_its_siblings_spread(tmp_path):
    (tmp_path / "seed-1").mkdir()
    (tmp_path / "summary.json").write_text(json.dumps({"seeds": [0, 1], "metrics": {
        "test_accuracy": {"mean": 0.8, "std": 0.01, "n": 2, "values": [0.79, 0.81]}}}))
    assert shipping._seeds_summary(str(tmp_path / "seed-1")) == {
        "mean": 0.8, "std": 0.01, "n": 2, "values": [0.79, 0.81], "seeds": [0, 1]}
    assert shipping._seeds_summary(str(tmp_path)) is None  # not a seed's folder
