"""`python -m keras_resnet.compare`: tables, Welch intervals, verdicts and bad input."""

import json
import os
import subprocess
import sys

import pytest

from keras_resnet import compare, stats
from keras_resnet.cli import run_main

# The two-epoch accuracies of tiny (3 seeds each): bf16 57.2 +- 2.2, float32
# 57.4 +- 3.5; and made-up speeds that do differ.
BF16 = {"test_accuracy": [0.5973, 0.5583, 0.5597], "images_per_second": [590.0, 600.0, 610.0]}
FLOAT32 = {"test_accuracy": [0.5803, 0.5369, 0.6056], "images_per_second": [250.0, 260.0, 255.0]}


def write_run(folder, values, precision):
    os.makedirs(folder)
    summary = {"seeds": list(range(len(next(iter(values.values()))))), "precision": precision,
               "metrics": {name: {**stats.describe(v), "values": v} for name, v in values.items()}}
    with open(os.path.join(folder, "summary.json"), "w") as handle:
        json.dump(summary, handle)
    return str(folder)


@pytest.fixture
def runs(tmp_path):
    return (write_run(tmp_path / "bf16", BF16, "mixed_bfloat16"),
            write_run(tmp_path / "float32", FLOAT32, "float32"))


def test_table_and_verdicts(runs, capsys):
    assert run_main(compare.main, list(runs)) == 0
    out = capsys.readouterr().out
    assert "57.18 +- 2.21" in out and "57.43 +- 3.47" in out
    result = json.loads(out.strip().splitlines()[-1])
    accuracy, speed = result["differences"]
    assert accuracy["metric"] == "test_accuracy" and not accuracy["significant"]
    assert "test_accuracy: the difference between" in out
    assert "| [-6.85, +7.35] | 3.4 | 1.004 | within the noise |" in out
    assert speed["significant"] and speed["difference"] == pytest.approx(-345.0)
    assert f"{runs[1]} is lower than {runs[0]} by 345.0" in out
    assert "| 0.425 |" in out  # the speed ratio of the means


def test_interval_is_welchs(runs, capsys):
    run_main(compare.main, [*runs, "--metrics", "test_accuracy", "--confidence", "0.9"])
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["differences"][0]
    a, b = stats.describe(BF16["test_accuracy"]), stats.describe(FLOAT32["test_accuracy"])
    va, vb = a["std"] ** 2 / 3, b["std"] ** 2 / 3
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 2)
    half = stats.t_quantile(0.95, df) * (va + vb) ** 0.5
    assert row["df"] == pytest.approx(df)
    assert (row["low"], row["high"]) == pytest.approx((0.0025 - half, 0.0025 + half))


def test_three_runs_compare_with_the_first(runs, tmp_path, capsys):
    third = write_run(tmp_path / "third", {k: [x * 1.5 for x in v] for k, v in BF16.items()},
                      "mixed_bfloat16")
    run_main(compare.main, [*runs, third, "--metrics", "test_accuracy"])
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["differences"]
    assert [(r["run"], r["baseline"]) for r in rows] == [(runs[1], runs[0]), (third, runs[0])]
    assert rows[1]["significant"] and rows[1]["difference"] > 0


def test_only_shared_metrics_by_default(runs, tmp_path, capsys):
    extra = write_run(tmp_path / "extra", {**BF16, "val_accuracy": [0.5, 0.6, 0.55]}, "float32")
    run_main(compare.main, [extra, runs[0]])
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["differences"]
    assert [r["metric"] for r in rows] == ["test_accuracy", "images_per_second"]


def test_bad_input_is_one_line_exit_2(runs, tmp_path):
    single = write_run(tmp_path / "single", {"test_accuracy": [0.5]}, "float32")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{not json")
    (tmp_path / "plain").mkdir()
    (tmp_path / "foreign").mkdir()  # another tool's summary.json: metrics, not ours
    (tmp_path / "foreign" / "summary.json").write_text(json.dumps(
        {"seeds": [0, 1], "metrics": {"test_accuracy": 0.9}}))
    (tmp_path / "pipe").mkdir()
    os.mkfifo(tmp_path / "pipe" / "summary.json")  # reading it would block forever
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for argv, message in [
        ([runs[0]], "at least two run folders"),
        ([runs[0], str(tmp_path / "missing")], "is not a folder"),
        ([runs[0], str(tmp_path / "plain")], "has no summary.json"),
        ([runs[0], str(tmp_path / "broken")], "is not a summary"),
        ([runs[0], str(tmp_path / "foreign")], "is not a summary"),
        ([runs[0], str(tmp_path / "pipe")], "summary.json is not a regular file"),
        ([runs[0], single], "has 1 seed(s)"),
        ([*runs, "--metrics", "loss"], "has no loss"),
        ([*runs, "--confidence", "95"], "--confidence must be in (0, 1)"),
        ([*runs, "--confidence", "x"], "invalid float value"),
    ]:
        result = subprocess.run([sys.executable, "-m", "keras_resnet.compare", *argv],
                                capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 2, (argv, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert result.stdout == ""


def write_export_report(run, seed, int8, tflm=None, test_samples=10000, int8_tta=None):
    folder = os.path.join(run, f"seed-{seed}", "export")
    os.makedirs(folder, exist_ok=True)
    formats = {"tflite-int8": {"accuracy": int8, "tta_accuracy": int8_tta}}
    if tflm is not None:
        formats["tflm"] = {"accuracy": tflm, "arena_bytes": 57648}
    with open(os.path.join(folder, "report.json"), "w") as handle:
        json.dump({"test_samples": test_samples, "formats": formats}, handle)


def test_exported_seeds_add_int8_and_tflm_accuracy(runs, capsys):
    # Every seed of both runs exported: int8 and its flip TTA, and TFLM.
    for run, int8 in zip(runs, ([0.59, 0.55, 0.56], [0.57, 0.53, 0.60])):
        for seed, value in enumerate(int8):
            write_export_report(run, seed, value, tflm=value + 0.001, int8_tta=value + 0.01)
    assert run_main(compare.main, list(runs)) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["differences"]
    by_metric = {row["metric"]: row for row in rows}
    assert list(by_metric) == ["test_accuracy", "int8_test_accuracy", "int8_tta_test_accuracy",
                               "tflm_test_accuracy", "images_per_second"]
    assert by_metric["int8_test_accuracy"]["difference"] == pytest.approx(0.0)
    assert by_metric["int8_tta_test_accuracy"]["difference"] == pytest.approx(0.0)
    assert by_metric["tflm_test_accuracy"]["difference"] == pytest.approx(0.0)


def test_an_unexported_seed_or_another_test_set_adds_nothing(runs, capsys):
    for seed in range(3):
        write_export_report(runs[0], seed, 0.5, tflm=0.5)
        write_export_report(runs[1], seed, 0.5, test_samples=10000 if seed else 500)
    summaries = [compare.add_exported_metrics(run, compare.read_summary(run)) for run in runs]
    assert "int8_test_accuracy" in summaries[0]["metrics"]
    assert set(summaries[1]["metrics"]) == set(FLOAT32)
