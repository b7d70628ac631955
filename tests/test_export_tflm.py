"""TensorFlow Lite Micro export: the int8 model runs under TFLM, agrees with TFLite, and the
generated C++ holds exactly that model, the ops it needs and the arena it was measured in.

A small network is trained once on generated colored blobs (as in test_export.py) and
exported once as `tflm`; the tests read that export. Tests that need TFLM's interpreter
skip where the optional `tflite-micro` package is not installed.
"""

import doctest
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from keras_resnet import get_variant
from keras_resnet.export import convert, firmware, micro
from keras_resnet.export.exporter import export_model, report_markdown
from keras_resnet.model import estimate_flops
from test_export import make_blob_data, train_blob_model  # the export tests' images

needs_tflm = pytest.mark.skipif(not micro.available(), reason=(
    "tflite-micro is not installed: pip install 'keras-resnet[tflm]'"))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASS_NAMES = ["red", "green", "blue", "yellow"]
CONFIG = get_variant("tiny", channels=(8, 16, 32), num_classes=4)
# The tiny variant's ops: normalization (SUB, MUL), the blocks, AveragePooling2D(8) and a
# Flatten whose dynamic batch becomes SHAPE/STRIDED_SLICE/PACK/RESHAPE, the classifier.
TINY_OPS = ["AddSub", "AddMul", "AddConv2D", "AddAdd", "AddAveragePool2D", "AddShape",
            "AddStridedSlice", "AddPack", "AddReshape", "AddFullyConnected", "AddSoftmax"]


@pytest.fixture(scope="module")
def data():
    return make_blob_data(320, 160)


@pytest.fixture(scope="module")
def trained(data):
    model = train_blob_model(CONFIG, data, 4)
    return model


@pytest.fixture(scope="module")
def exported(trained, data, tmp_path_factory):
    if not micro.available():
        pytest.skip("tflite-micro is not installed: pip install 'keras-resnet[tflm]'")
    run_dir = tmp_path_factory.mktemp("tflm_run")
    source = {"variant": "tiny", "model": CONFIG.to_dict()}
    report = export_model(trained, run_dir / "export", "tflm", data["x_train"], data["x_test"],
                          data["y_test"], CLASS_NAMES, source, latency_runs=0)
    return run_dir / "export", report


@needs_tflm
def test_tflm_implies_int8_and_agrees_with_it(exported, data):
    export_dir, report = exported
    assert list(report["formats"]) == ["keras", "tflite-int8", "tflm"]
    assert sorted(os.listdir(export_dir)) == ["manifest.json", "metadata.json",
                                              "model_int8.tflite", "report.json", "report.md",
                                              "tflm"]
    int8, tflm = report["formats"]["tflite-int8"], report["formats"]["tflm"]
    assert tflm["accuracy"] > 0.9
    versus = tflm["vs_tflite_int8"]
    assert versus["kernels"] == "reference" and versus["agreement"] >= 0.99
    # The arithmetic of TFLite's reference kernels, TFLM's own kernels: outputs a few
    # rounding steps apart at most (softmax and pooling round differently).
    assert versus["max_abs_diff_steps"] <= 8
    assert 0.9 <= versus["optimized_agreement"] <= 1
    assert abs(tflm["accuracy"] - int8["accuracy"]) <= 0.01
    # Recomputed from the file under TFLM, in the measured arena.
    with open(export_dir / "model_int8.tflite", "rb") as file:
        flatbuffer = file.read()
    predictor = micro.MicroPredictor(flatbuffer, tflm["arena_bytes"])
    accuracy = np.mean(predictor(data["x_test"]).argmax(-1) == data["y_test"])
    assert accuracy == pytest.approx(tflm["accuracy"])
    assert tflm["flash_bytes"] == int8["flash_bytes"] == len(flatbuffer)


@needs_tflm
def test_arena_is_measured_not_guessed(exported):
    export_dir, report = exported
    arena = report["formats"]["tflm"]["arena"]
    assert arena["arena_bytes"] == arena["used_bytes"] + micro.ARENA_MARGIN_BYTES
    with open(export_dir / "model_int8.tflite", "rb") as file:
        flatbuffer = file.read()
    image = np.zeros((1, 32, 32, 3), np.int8)
    assert micro._runs_in(flatbuffer, arena["arena_bytes"], image)
    # Tight: a kilobyte less no longer holds the model's tensors.
    assert not micro._runs_in(flatbuffer, arena["used_bytes"] - 1024, image)


@needs_tflm
def test_arena_falls_back_to_the_smallest_that_runs(exported, monkeypatch):
    export_dir, _ = exported
    with open(export_dir / "model_int8.tflite", "rb") as file:
        flatbuffer = file.read()
    # A recording that misses allocations (its head section only): the verification run
    # fails, and bisection finds the arena by running the model.
    monkeypatch.setattr(micro, "_ARENA_TOTAL", re.compile(r"Arena allocation head (\d+) bytes"))
    arena = micro.measure_arena(flatbuffer)
    image = np.zeros((1, 32, 32, 3), np.int8)
    assert arena["arena_bytes"] > arena["used_bytes"] + micro.ARENA_MARGIN_BYTES
    assert micro._runs_in(flatbuffer, arena["arena_bytes"] - micro.ARENA_MARGIN_BYTES, image)
    assert not micro._runs_in(flatbuffer, arena["arena_bytes"] - 3 * micro.ARENA_MARGIN_BYTES,
                              image)


@needs_tflm
def test_resolver_ops_are_the_models(exported):
    export_dir, report = exported
    assert report["formats"]["tflm"]["ops"] == TINY_OPS
    ops_header = (export_dir / "tflm" / "model_ops.h").read_text()
    assert [line.split("resolver.")[1].split("()")[0] for line in ops_header.splitlines()
            if "resolver.Add" in line] == TINY_OPS
    assert f"constexpr unsigned int kNumOps = {len(TINY_OPS)};" in (
        export_dir / "tflm" / "model_data.h").read_text()


@needs_tflm
@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler (g++)")
def test_c_array_compiles_and_is_the_model(exported, tmp_path):
    export_dir, report = exported
    main = tmp_path / "main.cc"
    main.write_text(
        '#include <cstdint>\n#include <cstdio>\n#include "model_data.h"\n'
        "int main(int argc, char** argv) {\n"
        "  if (reinterpret_cast<std::uintptr_t>(g_model_data) % 16 != 0) return 3;\n"
        '  std::FILE* file = std::fopen(argv[1], "wb");\n'
        "  std::fwrite(g_model_data, 1, g_model_data_len, file);\n"
        "  std::fclose(file);\n"
        '  std::printf("%u %s %u\\n", kTensorArenaSize, kClassNames[kNumClasses - 1], kNumOps);\n'
        "  return 0;\n}\n")
    binary = tmp_path / "model_check"
    subprocess.run(["g++", "-std=c++11", "-Wall", "-Werror", "-I", str(export_dir / "tflm"),
                    str(main), str(export_dir / "tflm" / "model_data.cc"), "-o", str(binary)],
                   check=True, capture_output=True, text=True)
    result = subprocess.run([str(binary), str(tmp_path / "model.tflite")], capture_output=True,
                            text=True)
    assert result.returncode == 0
    tflm = report["formats"]["tflm"]
    assert result.stdout.split() == [str(tflm["arena_bytes"]), "yellow", str(len(TINY_OPS))]
    assert (tmp_path / "model.tflite").read_bytes() == (
        export_dir / "model_int8.tflite").read_bytes()


@needs_tflm
def test_report_gains_flash_arena_macs_and_tflm_accuracy(exported):
    export_dir, report = exported
    assert report["macs_per_image"] == estimate_flops(CONFIG) // 2
    assert json.loads((export_dir / "report.json").read_text()) == json.loads(
        json.dumps(report))
    markdown = (export_dir / "report.md").read_text()
    header = markdown.splitlines()[0]
    for column in ("flash bytes", "arena bytes", "MACs/image", "accuracy"):
        assert column in header
    tflm = report["formats"]["tflm"]
    row = next(line for line in markdown.splitlines() if line.startswith("| tflm |"))
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    assert cells[4:8] == [f"{tflm['flash_bytes']:,}", f"{tflm['arena_bytes']:,}",
                          f"{report['macs_per_image']:,}", f"{tflm['accuracy']:.4f}"]
    assert report_markdown(report) == markdown
    metadata = json.loads((export_dir / "metadata.json").read_text())
    assert metadata["formats"]["tflm"]["files"] == list(micro.FILES)


@needs_tflm
def test_mismatch_fails_the_export_and_writes_nothing(trained, data, tmp_path, monkeypatch):
    original = micro.MicroPredictor.predict_batch

    def shifted(self, images):
        # A broken deployment: every answer moved to the next class.
        return np.roll(original(self, images), 1, axis=-1)

    monkeypatch.setattr(micro.MicroPredictor, "predict_batch", shifted)
    with pytest.raises(micro.MicroMismatchError,
                       match=r"disagrees with the TFLite int8 model on .* of 160 test images"):
        export_model(trained, tmp_path / "export", "tflm", data["x_train"], data["x_test"],
                     data["y_test"], latency_runs=0)
    assert os.listdir(tmp_path) == []


def test_tflm_is_refused_without_the_extra_in_one_line(trained, tmp_path, monkeypatch):
    monkeypatch.setattr(micro, "available", lambda: False)
    with pytest.raises(ValueError, match=r"pip install 'keras-resnet\[tflm\]'"):
        convert.check_formats("tflite,tflm")
    # The command line: tflite_micro hidden from the import system, one line, exit 2.
    run = tmp_path / "run"
    run.mkdir()
    trained.save(run / "model.keras")
    code = ("import sys, runpy; sys.modules['tflite_micro'] = None; "
            f"sys.argv = ['export', {str(run)!r}, '--formats', 'tflm']; "
            "runpy.run_module('keras_resnet.export', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: Format tflm needs the tflite-micro package: pip install "
        "'keras-resnet[tflm]' (or pip install tflite-micro). Received: formats='tflm'"]
    assert sorted(os.listdir(run)) == ["model.keras"]


def test_tflm_tolerance_is_checked(trained, tmp_path):
    with pytest.raises(ValueError, match="Received: tflm_tolerance=1.5"):
        export_model(trained, tmp_path / "export", "tflite", tflm_tolerance=1.5)


@needs_tflm
def test_docstring_examples(exported, tmp_path):
    export_dir, _ = exported
    globs = {"export_dir": str(export_dir), "run_dir": str(tmp_path), "os": os}
    for module in (micro, firmware):
        result = doctest.testmod(module, extraglobs=globs, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__
