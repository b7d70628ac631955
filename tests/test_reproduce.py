"""`python -m keras_resnet.reproduce`: seeds trained, evaluated (TTA, int8), one row, resumed."""

import json
import sys
from pathlib import Path

import keras
import pytest

from keras_resnet import reproduce
from keras_resnet import results as results_file
from keras_resnet.cli import run_main
from keras_resnet.results import minutes_curve, results_markdown

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from test_train_run import make_image_folder  # noqa: E402

# The recipe shortened to one epoch of a batch that fits the made-up data: a deviation the
# row must record.
QUICK = ["--epochs", "1", "--batch-size", "16", "--precision", "float32", "--jit", "off"]
# The int8 export is TensorFlow's: on JAX the seeds train and the int8 column waits.
TENSORFLOW = keras.backend.backend() == "tensorflow"


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    images = make_image_folder(root / "cifar10-jpeg")
    argv = ["tiny", "--seeds", "0,1", "--data-dir", images, "--output", str(root / "run"),
            "--results", str(root / "results" / "reproduction.json"), *QUICK]
    assert run_main(reproduce.main, argv + ([] if TENSORFLOW else ["--no-int8"])) == 0
    return root, argv + ([] if TENSORFLOW else ["--no-int8"])


@pytest.mark.skipif(TENSORFLOW, reason="the refusal is for other backends")
def test_int8_on_another_backend_is_refused_before_training(tmp_path, capsys):
    code = run_main(reproduce.main, ["tiny", "--output", str(tmp_path / "run"),
                                     "--results", str(tmp_path / "r.json"), *QUICK])
    error = capsys.readouterr().err
    assert code == 2 and "--no-int8" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists() and not (tmp_path / "r.json").exists()


def test_row_holds_every_seed_evaluated_three_ways(reproduced):
    root, _ = reproduced
    row = results_file.read_results(str(root / "results" / "reproduction.json"))["rows"]["tiny"]
    for name in ("test_accuracy", "tta_test_accuracy", "int8_test_accuracy",
                 "int8_tta_test_accuracy"):
        if name.startswith("int8") and not TENSORFLOW:
            assert row[name] is None and row["int8_bytes"] is None
            continue
        assert row[name]["n"] == 2 and len(row[name]["values"]) == 2
        assert all(0 <= value <= 1 for value in row[name]["values"])
    assert row["epochs"] == 1 and row["recipe_epochs"] == 50
    assert row["deviations"] == {"epochs": 1, "batch_size": 16, "precision": "float32",
                                 "jit": "off"}
    assert row["data"] == "JPEG copy (cifar10-jpeg)"
    assert row["int8_bytes"] > 0 if TENSORFLOW else row["int8_bytes"] is None
    assert row["train_seconds_per_seed"]["n"] == 2 and row["images_per_second"] > 0
    # Accuracy against minutes: one point per epoch, averaged over the seeds.
    minutes, mean, std = minutes_curve(row)
    assert len(minutes) == len(mean) == len(std) == 1 and minutes[0] > 0
    assert (root / "results" / "reproduction_minutes.png").stat().st_size > 0
    # The float accuracy is the seed's own final evaluation, not a new one.
    seed_metrics = json.load(open(root / "run" / "seed-1" / "metrics.json"))
    assert row["test_accuracy"]["values"][1] == seed_metrics["test_accuracy"]


def test_markdown_has_every_variant_and_says_why_one_has_no_number(reproduced):
    root, _ = reproduced
    table = (root / "results" / "reproduction.md").read_text()
    assert "| tiny | 003 | 88.3% |" in table and "1 of 50 (partial)" in table
    assert "| efficient | 002 | 96.04% | not run yet: needs a GPU |" in table
    assert "changes from the recipe: epochs=1, batch_size=16" in table


def test_a_second_run_resumes_skips_finished_seeds_and_reuses_the_int8_export(
        reproduced, capsys):
    root, argv = reproduced
    kept = [root / "run" / "seed-0" / "model.keras"]
    if TENSORFLOW:
        kept.append(root / "run" / "seed-0" / "export" / "report.json")
    stamps = [path.stat().st_mtime_ns for path in kept]
    assert run_main(reproduce.main, argv) == 0
    out = capsys.readouterr().out
    assert "seed 0 (1/2): done, skipped" in out and "seed 1 (2/2): done, skipped" in out
    assert [path.stat().st_mtime_ns for path in kept] == stamps


@pytest.mark.skipif(not TENSORFLOW, reason="the int8 export is TensorFlow's")
def test_an_export_made_before_int8_tta_was_measured_is_made_again(reproduced, capsys):
    root, argv = reproduced
    path = root / "run" / "seed-0" / "export" / "report.json"
    report = json.loads(path.read_text())
    del report["formats"]["tflite-int8"]["tta_accuracy"]
    path.write_text(json.dumps(report))
    assert run_main(reproduce.main, argv) == 0
    capsys.readouterr()
    again = json.loads(path.read_text())["formats"]["tflite-int8"]["tta_accuracy"]
    row = results_file.read_results(str(root / "results" / "reproduction.json"))["rows"]["tiny"]
    assert row["int8_tta_test_accuracy"]["values"][0] == again
    table = (root / "results" / "reproduction.md").read_text()
    assert f"({100 * row['int8_tta_test_accuracy']['mean']:.2f}%) |" in table


def test_a_finding_ends_the_rows_note_and_outlives_the_row(reproduced, tmp_path, capsys):
    import shutil

    root, _ = reproduced
    results = tmp_path / "reproduction.json"
    shutil.copy(root / "results" / "reproduction.json", results)
    finding = "Seed 0's time includes a 14-minute pause."
    assert run_main(results_file.main, ["tiny", finding, "--results", str(results)]) == 0
    note = [line for line in (tmp_path / "reproduction.md").read_text().splitlines()
            if line.startswith("- `tiny`")]
    assert note[0].endswith(finding)
    row = results_file.read_results(str(results))["rows"]["tiny"]
    results_file.update_results(str(results), row=row)  # the row written again
    assert finding in (tmp_path / "reproduction.md").read_text()
    before = results.read_bytes()
    assert run_main(results_file.main, ["deep", "x", "--results", str(results)]) == 2
    error = capsys.readouterr().err
    assert "has no row 'deep'" in error and len(error.strip().splitlines()) == 1
    assert results.read_bytes() == before
    assert run_main(results_file.main, ["tiny", "x", "--results",
                                        str(tmp_path / "new" / "r.json")]) == 2
    assert "is not a results file" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert run_main(results_file.main, ["tiny", "", "--results", str(results)]) == 0
    assert finding not in (tmp_path / "reproduction.md").read_text()


def test_an_unfinished_run_is_named_in_the_table_until_its_row_arrives(tmp_path):
    results = str(tmp_path / "reproduction.json")
    results_file.update_results(results, pending=("tiny", "not finished yet: resume it"))
    assert "| tiny | 003 | 88.3% | not finished yet: resume it |" in open(
        tmp_path / "reproduction.md").read()


def test_an_interrupted_run_is_named_with_its_recipes_length(tmp_path, monkeypatch):
    from keras_resnet.training import __main__ as training_command

    def interrupted(argv):
        output = argv[argv.index("--output") + 1]
        Path(output).mkdir(parents=True)
        (Path(output) / "config.json").write_text("{}")
        for seed, history in ((0, "epoch,loss\n1,2.0\n2,1.5\n"), (1, "epoch,loss\n1,2.0\n")):
            Path(output, f"seed-{seed}").mkdir(parents=True, exist_ok=True)
            (Path(output) / f"seed-{seed}" / "history.csv").write_text(history)
        (Path(output) / "seed-0" / "metrics.json").write_text('{"test_accuracy": 0.8485}')
        return 1

    monkeypatch.setattr(training_command, "main", interrupted)
    results = tmp_path / "reproduction.json"
    argv = ["tiny", "--seeds", "0,1", "--output", str(tmp_path / "run"), "--results",
            str(results), "--no-int8"]
    assert run_main(reproduce.main, argv) != 0
    note = results_file.read_results(str(results))["pending"]["tiny"]
    assert note.startswith("not finished yet: 50 epochs x 2 seeds, last started "), note
    assert ("(seed 0: 2 of 50 epochs done, 84.85% test; seed 1: 1 of 50 epochs done); "
            "`python -m keras_resnet.reproduce tiny") in note, note


def test_tflm_without_int8_is_refused_in_one_line(tmp_path, capsys):
    code = run_main(reproduce.main, ["tiny", "--tflm", "--no-int8", "--output",
                                     str(tmp_path / "run"), "--results", str(tmp_path / "r.json")])
    error = capsys.readouterr().err
    assert code == 2 and "--tflm runs the int8 model" in error
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content", ["[1, 2]", "{\"rows\": []}", "not json"])
def test_a_foreign_results_file_is_refused_before_training(content, tmp_path, capsys):
    results = tmp_path / "reproduction.json"
    results.write_text(content)
    code = run_main(reproduce.main, ["tiny", "--output", str(tmp_path / "run"),
                                     "--results", str(results)])
    error = capsys.readouterr().err
    assert code == 2 and len(error.strip().splitlines()) == 1 and str(results) in error
    assert not (tmp_path / "run").exists() and results.read_text() == content


def test_readme_leads_with_the_committed_results_table():
    # README's table is generated: `python -c "from keras_resnet.results import *;
    # print(results_markdown(**read_results(DEFAULT_RESULTS)))"`.
    results = results_file.read_results(str(ROOT / results_file.DEFAULT_RESULTS))
    table = results_markdown(**results)
    readme = (ROOT / "README.md").read_text()
    assert table in readme
    assert readme.index(table) < readme.index("## What it is")


@pytest.mark.skipif(not TENSORFLOW, reason="TFLM runs the int8 export, TensorFlow's")
def test_another_recipe_gets_a_named_row_with_its_tflm_numbers(reproduced, capsys):
    root, _ = reproduced
    results = root / "results" / "edge.json"
    argv = ["tiny", "--name", "tiny-fast", "--recipe", "fast", "--seeds", "0", "--tflm",
            "--no-lookahead", "--warmup-epochs", "0", "--data-dir", str(root / "cifar10-jpeg"),
            "--output", str(root / "fast"), "--results", str(results), *QUICK]
    assert run_main(reproduce.main, argv) == 0
    row = results_file.read_results(str(results))["rows"]["tiny-fast"]
    assert row["variant"] == "tiny" and row["deviations"]["recipe"] == "fast"
    # Counted from the run's own config: this data has 3 classes, not 10 (65 weights each).
    assert row["recipe_epochs"] is None and row["trainable_params"] == 195_738 - 7 * 65
    assert row["deviations"]["lookahead"] is False
    assert 0 <= row["tflm_test_accuracy"]["mean"] <= 1 and row["arena_bytes"] > 0
    config = json.load(open(root / "fast" / "config.json"))
    assert config["train"]["optimizer"] == "sgd" and config["train"]["lookahead"] is False
    table = (root / "results" / "edge.md").read_text()
    assert "| tiny-fast | 003 |" in table and "efficient" not in table
    # Resumed: the recipe is the run's own now, so it is not given to train.py again.
    assert run_main(reproduce.main, argv) == 0
    assert "done, skipped" in capsys.readouterr().out


def _update_many(results, worker):
    for index in range(15):
        results_file.update_results(results, pending=(f"row-{worker}-{index}", "pending"))


def test_concurrent_writers_lose_no_row(tmp_path):
    import multiprocessing

    results = str(tmp_path / "results.json")
    context = multiprocessing.get_context("fork")  # the writers use no TensorFlow
    workers = [context.Process(target=_update_many, args=(results, worker))
               for worker in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * 4
    assert len(results_file.read_results(results)["pending"]) == 4 * 15
