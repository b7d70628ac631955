"""The benchmark command and the FLOP estimate it reports."""

import json
import os
import re
import subprocess
import sys

import keras
import pytest

from keras_resnet import bench, cli
from keras_resnet.config import ResNetConfig
from keras_resnet.model import build_resnet, estimate_flops
from keras_resnet.variants import VARIANTS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIELDS = ("variant", "backend", "device", "precision", "jit", "batch_size",
          "train_images_per_sec", "inference_images_per_sec", "gflops_per_image",
          "achieved_gflops", "date", "command", "machine")


def _bench(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "keras_resnet.bench", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def test_bench_prints_json_last_line():
    done = _bench("--variant", "tiny", "--steps", "2", "--warmup-steps", "1",
                  "--batch-size", "8")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(FIELDS) <= set(result)
    assert result["variant"] == "tiny" and result["batch_size"] == 8
    for key in ("train_images_per_sec", "inference_images_per_sec", "gflops_per_image",
                "achieved_gflops"):
        assert result[key] > 0, key
    # tiny by hand: stem 2*32*32*9*3*16; layer 1 two blocks 2*32*32*9*(16*16+16*16);
    # layers 2 and 3 a strided block with a 3x3 projection, then a plain block; classifier.
    hand = (2 * 1024 * 9 * 3 * 16 + 2 * 2 * 1024 * 9 * 512
            + 2 * 256 * 9 * (16 * 32 + 32 * 32) + 2 * 256 * 9 * 16 * 32 + 2 * 256 * 9 * 2048
            + 2 * 64 * 9 * (32 * 64 + 64 * 64) + 2 * 64 * 9 * 32 * 64 + 2 * 64 * 9 * 8192
            + 2 * 64 * 10)
    assert estimate_flops(VARIANTS["tiny"].config) == hand == 57_509_120
    assert result["gflops_per_image"] == pytest.approx(hand / 1e9, abs=1e-4)
    # Training is forward + two backward passes: 3 x FLOPs per image, at the measured rate.
    assert result["train_gflops_per_image"] == pytest.approx(3 * hand / 1e9, abs=1e-4)
    assert result["achieved_gflops"] == pytest.approx(
        3 * hand * result["train_images_per_sec"] / 1e9, rel=1e-3, abs=1e-3)
    assert result["inference_achieved_gflops"] == pytest.approx(
        hand * result["inference_images_per_sec"] / 1e9, rel=1e-3, abs=1e-3)


@pytest.mark.parametrize("args, message", [
    (("--variant", "nope"), "Unknown variant.*Received: variant='nope'"),
    (("--variant", "tiny", "--steps", "0"), "--steps must be positive. Received: steps=0"),
    (("--variant", "tiny", "--precision", "fp8"), "Received: precision='fp8'"),
])
def test_bench_bad_argument_is_one_line_exit_2(args, message, capsys):
    code = cli.run_main(bench.main, list(args))
    stderr = capsys.readouterr().err
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert re.search(message, stderr), stderr


def _flops_from_layers(model):
    # An independent count: 2 x MACs of every Conv2D and Dense, from the built shapes.
    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, _ = layer.output.shape
            kernel_height, kernel_width, cin, cout = layer.kernel.shape
            flops += 2 * height * width * kernel_height * kernel_width * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return flops


def test_estimate_flops_by_hand():
    config = ResNetConfig(blocks=(1, 1), channels=(4, 8), input_shape=(4, 4, 1),
                          mean=(0.5,), std=(0.25,), num_classes=2)
    stem = 2 * 16 * 9 * 1 * 4
    layer1 = 2 * 16 * 9 * (4 * 4 + 4 * 4)
    layer2 = 2 * 4 * 9 * (4 * 8 + 8 * 8) + 2 * 4 * 1 * 4 * 8  # + 1x1 projection
    dense = 2 * 8 * 2
    assert estimate_flops(config) == stem + layer1 + layer2 + dense


@pytest.mark.parametrize("name", ["tiny", "efficient", "deep"])
def test_estimate_flops_matches_built_layers(name):
    # tiny: pool 8 and 3x3 projections; efficient: SE in the stem; deep: avg_max head.
    config = VARIANTS[name].config
    assert estimate_flops(config) == _flops_from_layers(build_resnet(config))
