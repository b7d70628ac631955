"""benchmarks/record_seeds.py: repeated runs, their comparison and the load, as a results file."""

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import record_seeds  # noqa: E402

from keras_resnet import stats  # noqa: E402


def write_run(folder, accuracy, speed, started, ended):
    os.makedirs(folder)
    summary = {"seeds": [0, 1, 2], "precision": folder.name, "device": "cpu x2", "curves": {},
               "config": {"train": {"epochs": 2}},
               "metrics": {"test_accuracy": {**stats.describe(accuracy), "values": accuracy},
                           "images_per_second": {**stats.describe(speed), "values": speed}}}
    for name, when in (("config.json", started), ("summary.json", ended)):
        (folder / name).write_text(json.dumps(summary))
        os.utime(folder / name, (when, when))
    return str(folder)


def test_record_has_runs_differences_speed_ratio_and_load_per_run(tmp_path):
    start = 1_800_000_000
    first = write_run(tmp_path / "bf16", [0.60, 0.61, 0.59], [300.0, 310.0, 290.0], start,
                      start + 100)
    second = write_run(tmp_path / "f32", [0.60, 0.62, 0.58], [200.0, 210.0, 190.0],
                       start + 100, start + 300)
    log = tmp_path / "load.log"
    log.write_text("".join(
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(start + t))} {load} 1 1 1/1 1\n"
        for t, load in ((0, 1.0), (50, 3.0), (150, 8.0), (250, 10.0))))
    record_seeds.main(["--name", "check", "--load-log", str(log), "--results-dir",
                       str(tmp_path / "out"), "--note", "a note",
                       f"{first}=120=python train.py --precision mixed_bfloat16",
                       f"{second}=310=python train.py --precision float32"])
    record = json.loads((tmp_path / "out" / "check.json").read_text())
    assert record["speed_ratio_to_first"] == [1.0, 0.667]
    assert [run["wall_seconds"] for run in record["runs"]] == [120.0, 310.0]
    assert (record["runs"][0]["load"]["mean"], record["runs"][1]["load"]["mean"]) == (2.0, 9.0)
    assert record["load"]["samples"] == 4 and record["load"]["max"] == 10.0
    accuracy = record["differences"][0]
    assert accuracy["metric"] == "test_accuracy" and not accuracy["significant"]
    assert record["differences"][1]["significant"]
    markdown = (tmp_path / "out" / "check.md").read_text()
    assert "| 120 s (2.0 min) | 2.0 (1.0-3.0) |" in markdown and "- a note" in markdown
    assert "within the noise" in markdown and "f32 0.67x" in markdown
