"""Repeated runs: one fit per seed, summary with spread, resume, and train.py's flags."""

import json
import os
import sys
from pathlib import Path

import pytest

from keras_resnet import run_folder
from keras_resnet.cli import run_main
from keras_resnet.training import fit, repeats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import train  # noqa: E402
from test_training import make_splits, quick, small_config  # noqa: E402


@pytest.fixture(scope="module")
def splits():
    return make_splits()


@pytest.fixture(scope="module")
def repeated(splits, tmp_path_factory):
    """Two seeds of two epochs each, trained once for the tests that only read the result."""
    run_dir = str(tmp_path_factory.mktemp("repeats") / "run")
    summary = repeats.run_repeats(small_config(splits), quick(epochs=2, tta=True), splits,
                                  run_dir, seeds=(3, 5), variant="tiny", verbose=0)
    return run_dir, summary


def test_each_seed_is_a_run_folder_with_its_seed(repeated):
    run_dir, _ = repeated
    for seed in (3, 5):
        config = json.load(open(os.path.join(run_dir, f"seed-{seed}", "config.json")))
        assert config["train"]["seed"] == seed
        assert os.path.exists(os.path.join(run_dir, f"seed-{seed}", "metrics.json"))
    assert json.load(open(os.path.join(run_dir, "repeats.json")))["seeds"] == [3, 5]


def test_summary_holds_mean_std_min_max_of_every_final_metric(repeated):
    run_dir, summary = repeated
    assert summary == json.load(open(os.path.join(run_dir, "summary.json")))
    metrics = summary["metrics"]
    assert set(metrics) == set(repeats.METRICS)
    for name in repeats.METRICS:
        values = [json.load(open(os.path.join(run_dir, f"seed-{s}", "metrics.json")))[name]
                  for s in (3, 5)]
        assert metrics[name]["values"] == pytest.approx(values)
        assert metrics[name]["mean"] == pytest.approx(sum(values) / 2)
        # Two values: the sample standard deviation is |a - b| / sqrt(2).
        assert metrics[name]["std"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
        assert (metrics[name]["min"], metrics[name]["max"]) == (min(values), max(values))
    # Different seeds train differently: a spread of exactly 0 would mean one seed ran twice.
    assert metrics["test_loss"]["std"] > 0
    markdown = open(os.path.join(run_dir, "summary.md")).read()
    assert "| test_accuracy |" in markdown and "seed 5" in markdown


def test_curves_are_per_epoch_means_with_a_band(repeated):
    run_dir, summary = repeated
    histories = [run_folder.read_history(os.path.join(run_dir, f"seed-{s}")) for s in (3, 5)]
    assert set(summary["curves"]) == set(repeats.CURVES)
    for name in repeats.CURVES:
        curve = summary["curves"][name]
        assert len(curve["mean"]) == 2
        for epoch in range(2):
            points = [h[epoch][name] for h in histories]
            assert curve["mean"][epoch] == pytest.approx(sum(points) / 2)
            assert curve["std"][epoch] == pytest.approx(abs(points[0] - points[1]) / 2 ** 0.5)
    assert summary["curves"]["loss"]["std"][0] > 0  # the seeds' curves do differ
    assert open(os.path.join(run_dir, "curves.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_resume_skips_finished_seeds_and_continues_the_unfinished(splits, tmp_path):
    run_dir = str(tmp_path / "run")
    model_config, train_config = small_config(splits), quick(epochs=2)
    repeats.run_repeats(model_config, train_config, splits, run_dir, seeds=(0,), verbose=0)
    finished = os.path.join(run_dir, "seed-0", "metrics.json")
    finished_time = os.stat(finished).st_mtime_ns
    # Seed 1 as a kill after its first epoch leaves it: a checkpoint, no metrics.json.
    fit.fit(model_config, quick(epochs=1, seed=1), splits, os.path.join(run_dir, "seed-1"),
            verbose=0)
    os.remove(os.path.join(run_dir, "seed-1", "metrics.json"))
    with pytest.raises(ValueError, match="already holds a run"):
        repeats.run_repeats(model_config, train_config, splits, run_dir, seeds=(0, 1),
                            verbose=0)
    lines = []
    summary = repeats.run_repeats(model_config, train_config, splits, run_dir, seeds=(0, 1, 2),
                                  resume=True, verbose=0, log=lines.append)
    assert os.stat(finished).st_mtime_ns == finished_time
    assert lines[0].startswith("seed 0 (1/3): done")
    assert "resuming" in lines[1] and "training" in lines[2]
    resumed = json.load(open(os.path.join(run_dir, "seed-1", "metrics.json")))
    assert resumed["resumed_from_epoch"] == 1 and resumed["epochs_completed"] == 2
    assert summary["seeds"] == [0, 1, 2] and summary["metrics"]["test_accuracy"]["n"] == 3
    assert json.load(open(os.path.join(run_dir, "repeats.json")))["seeds"] == [0, 1, 2]


@pytest.mark.slow
def test_resume_with_more_epochs_continues_every_seed_to_them(splits, tmp_path):
    run_dir = str(tmp_path / "run")
    model_config = small_config(splits)
    repeats.run_repeats(model_config, quick(epochs=1), splits, run_dir, seeds=(0, 1), verbose=0)
    os.remove(os.path.join(run_dir, "seed-1", "metrics.json"))  # seed 1 killed before its end
    summary = repeats.run_repeats(model_config, quick(epochs=2), splits, run_dir, seeds=(0, 1),
                                  resume=True, verbose=0)
    for seed in (0, 1):
        metrics = json.load(open(os.path.join(run_dir, f"seed-{seed}", "metrics.json")))
        assert metrics["epochs_completed"] == 2 and metrics["resumed_from_epoch"] == 1
    assert summary["config"]["train"]["epochs"] == 2
    assert len(summary["curves"]["loss"]["mean"]) == 2
    with pytest.raises(ValueError, match=r"some already trained more \(seed 0: 2, seed 1: 2\)"):
        repeats.run_repeats(model_config, quick(epochs=1), splits, run_dir, seeds=(0, 1),
                            resume=True, verbose=0)


def test_summary_refuses_an_unfinished_seed(repeated, tmp_path):
    run_dir, _ = repeated
    with pytest.raises(ValueError, match="Seed 4 has not finished"):
        repeats.summarize(run_dir, (3, 4))


@pytest.mark.parametrize("text", ["a,b", "1,1", "-1", ""])
def test_parse_seeds_rejects_bad_lists(text):
    with pytest.raises(ValueError, match="Received"):
        repeats.parse_seeds(text)


def test_resolve_seeds():
    assert repeats.resolve_seeds((4, 2), None, 0, "unused", False) == (4, 2)
    assert repeats.resolve_seeds(None, 3, 10, "unused", False) == (10, 11, 12)
    assert repeats.resolve_seeds(None, None, 0, "unused", False) is None


def test_resume_reads_the_seeds_back(repeated, tmp_path):
    run_dir, _ = repeated
    assert repeats.resolve_seeds(None, None, 0, run_dir, True) == (3, 5)
    single = tmp_path / "single"
    single.mkdir()
    with pytest.raises(ValueError, match="single run"):
        repeats.resolve_seeds((0, 1), None, 0, str(single), True)


@pytest.mark.parametrize("flags, message", [
    (["--seeds", "0,x"], "--seeds: expected comma-separated"),
    (["--seeds", "0,0"], "--seeds: seeds must be distinct"),
    (["--seeds", "0,1", "--repeats", "2"], "not both"),
    (["--repeats", "0"], "--repeats must be positive. Received: repeats=0"),
    (["--seeds", "0,1", "--export", "tflite"], "--export exports one model"),
])
def test_train_cli_rejects_bad_repeat_flags_in_one_line(flags, message, tmp_path, capsys):
    output = tmp_path / "run"
    code = run_main(train.main, ["--variant", "tiny", "--output", str(output), *flags])
    error = capsys.readouterr().err
    assert code == 2 and message in error and len(error.strip().splitlines()) == 1
    assert not output.exists()  # nothing half-written


@pytest.mark.slow
def test_train_cli_seeds_and_resume(tmp_path, capsys):
    from test_train_run import SMALL_FLAGS, make_image_folder

    images = make_image_folder(tmp_path / "images")
    output = str(tmp_path / "run")
    argv = [*SMALL_FLAGS, "--data-dir", images, "--epochs", "1", "--output", output]
    assert run_main(train.main, [*argv, "--repeats", "2", "--seed", "4"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["seeds"] == [4, 5] and 0 <= result["test_accuracy"] <= 1
    summary = json.load(open(os.path.join(output, "summary.json")))
    assert result["test_accuracy"] == summary["metrics"]["test_accuracy"]["mean"]
    # --resume without --seeds finds the seeds in the folder; finished ones are skipped.
    assert run_main(train.main, ["--output", output, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "seed 4 (1/2): done, skipped" in out and "seed 5 (2/2): done, skipped" in out
    assert json.loads(out.strip().splitlines()[-1])["seeds"] == [4, 5]
