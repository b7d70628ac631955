"""train.py's model-family flags: --dry-run, --list-variants and one-line errors."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from keras_resnet import bench, cli
from keras_resnet.cli import run_main
from keras_resnet.training import TrainConfig
from keras_resnet.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import train  # noqa: E402
from tuner import __main__ as tuner_main  # noqa: E402
from tuner.dimensions import DIMENSIONS  # noqa: E402


def dry_run(capsys, *argv):
    assert run_main(train.main, ["--dry-run", *argv]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_dry_run_reports_efficient_by_default(capsys):
    result = dry_run(capsys)
    assert result["variant"] == "efficient"
    assert result["trainable_params"] == 4_697_742
    assert result["non_trainable_params"] == 7_040
    assert result["param_budget"] == 5_000_000
    assert result["config"]["se"] == "stem"


def test_architecture_flags_without_variant_describe_a_new_network(capsys):
    result = dry_run(capsys, "--blocks", "2,2,2", "--channels", "16,32,64",
                     "--skip-kernels", "3")
    assert (result["variant"], result["trainable_params"]) == ("custom", 195_738)


def test_flags_override_a_named_variant(capsys):
    result = dry_run(capsys, "--variant", "tiny", "--se", "block", "--activation", "gelu",
                     "--pool-size", "none", "--dropout", "0.2", "--conv-kernels", "3,5,3")
    config = result["config"]
    assert (config["se"], config["activation"], config["pool_size"]) == ("block", "gelu", None)
    assert config["conv_kernels"] == [3, 5, 3]
    assert result["trainable_params"] > 195_738


def test_list_variants_prints_every_variant(capsys):
    assert run_main(train.main, ["--list-variants"]) == 0
    out = capsys.readouterr().out
    for name, variant in VARIANTS.items():
        assert name in out and variant.paper_accuracy in out
    assert "4,697,742" in out


@pytest.mark.parametrize("argv, message", [
    (["--variant", "resnet18"], "11,173,962 trainable parameters, over the budget of 5,000,000"),
    (["--variant", "tiny", "--param-budget", "1000"], "over the budget of 1,000"),
    (["--variant", "tiny", "--pool-size", "9"], "Received: pool_size=9"),
    (["--variant", "nope"], "Received: variant='nope'"),
    (["--se", "all"], "Received: se='all'"),
])
def test_invalid_configuration_is_one_line_exit_2(capsys, argv, message):
    assert run_main(train.main, ["--dry-run", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_over_budget_can_be_allowed(capsys):
    result = dry_run(capsys, "--variant", "resnet18", "--allow-over-budget")
    assert result["trainable_params"] == 11_173_962


def test_command_line_error_has_no_traceback():
    result = subprocess.run(
        [sys.executable, "train.py", "--blocks", "2,x", "--dry-run"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "train.py: error: argument --blocks: `blocks` must be an integer or a comma-separated "
        "list of them. Received: blocks='2,x'"]


def _flag_words(field, value):
    flag = "--" + (field.metadata["flag"] or field.name).replace("_", "-")
    if isinstance(value, bool):
        return [flag if value else flag.replace("--", "--no-", 1)]
    text = "none" if value is None else (
        ",".join(map(str, value)) if isinstance(value, tuple) else str(value))
    return [flag, text]


@pytest.mark.parametrize("config", [VARIANTS["efficient"].config, VARIANTS["deep"].config,
                                    VARIANTS["efficient"].recipe, TrainConfig()],
                         ids=["efficient", "deep", "efficient-recipe", "train-defaults"])
def test_every_config_field_is_a_flag_that_gives_its_value_back(config):
    fields = [f for f in dataclasses.fields(config) if "help" in f.metadata]
    argv = [word for f in fields for word in _flag_words(f, getattr(config, f.name))]
    overrides = cli.config_overrides(train.build_parser().parse_args(argv), type(config))
    assert set(overrides) == {f.name for f in fields}
    assert dataclasses.replace(type(config)(), **overrides) == dataclasses.replace(
        config, **{f.name: getattr(type(config)(), f.name) for f in dataclasses.fields(config)
                   if "help" not in f.metadata})


def test_train_tuner_and_bench_take_the_same_training_flags():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    train_flags = cli.config_overrides(train.build_parser().parse_args(
        [w for f in dataclasses.fields(TrainConfig) for w in _flag_words(
            f, getattr(TrainConfig(), f.name))]), TrainConfig)
    assert set(train_flags) == names
    argv = ["--precision", "float32", "--jit", "off", "--clip-norm", "1.0", "--nesterov"]
    expected = {"precision": "float32", "jit": "off", "clip_norm": 1.0, "nesterov": True}
    assert cli.config_overrides(
        bench.build_parser().parse_args(["--variant", "tiny", *argv]), TrainConfig) == expected
    tuner_flags = cli.config_overrides(tuner_main.build_parser().parse_args(argv), TrainConfig)
    assert {k: v for k, v in tuner_flags.items() if k in expected} == expected
    # The tuner's search dimensions keep their range flags; the rest are train.py's.
    assert {f.option_strings[0] for f in tuner_main.build_parser()._actions
            if f.dest in names} >= {f"--{n.replace('_', '-')}" for n in names - set(DIMENSIONS)}


def test_a_bad_choice_fails_as_the_config_says(capsys):
    assert run_main(train.main, ["--dry-run", "--optimizer", "sgdd"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: `optimizer` must be one of sgd, adam, adamw, rmsprop, adagrad, adadelta. "
        "Received: optimizer='sgdd'")
