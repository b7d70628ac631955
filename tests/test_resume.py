"""Resume: the same batches as the uninterrupted run, recorded changes, damaged checkpoints."""

import csv
import json
import os
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_resnet.cli import run_main
from keras_resnet import run_folder
from keras_resnet.training import records
from keras_resnet.training.fit import fit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import train  # noqa: E402
from test_train_run import SMALL_FLAGS, make_image_folder  # noqa: E402
from test_training import make_splits, quick, small_config  # noqa: E402


class StopAfter(keras.callbacks.Callback):
    """Ends training after `epochs` epochs, as a kill after that checkpoint would."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:
            self.model.stop_training = True


def losses(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def splits():
    return make_splits()


def test_the_batch_stream_resumes_where_it_was():
    from keras_resnet.data.order import index_batches

    full = [batch.numpy().tolist() for batch in index_batches(10, 4, seed=3).take(9)]
    assert sorted(sum(full[:3], [])) == list(range(10))  # a pass is a permutation
    assert full[:3] != full[3:6]  # and the next pass another one
    for start in (1, 3, 5):
        tail = [batch.numpy().tolist() for batch in index_batches(10, 4, 3, start).take(9 - start)]
        assert tail == full[start:]


def test_array_batches_order_an_epoch_by_seed_and_epoch():
    from keras_resnet.data.batches import ArrayBatches

    def rows(batches, index):
        return keras.ops.convert_to_numpy(batches[index][0]).ravel().tolist()

    x, y = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1), np.zeros(10, np.int32)
    fresh = ArrayBatches(x, y, 2, 4, training=True, seed=5)
    fresh.on_epoch_begin()  # as Keras begins every epoch; its resets end epochs too
    fresh.on_epoch_end()
    first = [rows(fresh, i) for i in range(3)]
    fresh.on_epoch_begin()
    fresh.on_epoch_begin()
    resumed = ArrayBatches(x, y, 2, 4, training=True, seed=5, initial_epoch=2)
    resumed.on_epoch_begin()
    third = [rows(fresh, i) for i in range(3)]
    assert third == [rows(resumed, i) for i in range(3)]
    assert third != first  # every epoch has its own order


def test_restore_falls_back_from_a_damaged_latest_file(tmp_path, capsys):
    from keras_resnet.training import checkpoint

    def compiled():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss="mse")
        return model

    x, y = np.ones((8, 4), np.float32), np.zeros((8, 2), np.float32)
    model = compiled()
    model.fit(x, y, epochs=3, batch_size=4, verbose=0,
              callbacks=[checkpoint.Checkpoint(str(tmp_path))])
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".h5")) == [
        "epoch-0002.weights.h5", "epoch-0003.weights.h5"]
    latest = tmp_path / "epoch-0003.weights.h5"
    latest.write_bytes(latest.read_bytes()[:1000])
    state = checkpoint.Checkpoint(str(tmp_path)).restore(compiled())
    assert state["epoch"] == 2 and len(state["history"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "resuming from epoch 2 instead" in err[0]
    (tmp_path / "epoch-0002.weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="No readable checkpoint"):
        checkpoint.Checkpoint(str(tmp_path)).restore(compiled())


def test_record_config_appends_each_resume_s_changes(tmp_path):
    base = {"variant": "tiny", "model": {"blocks": [1]}, "train": {"learning_rate": 0.1}}
    run_folder.record_config(str(tmp_path), base)
    changes = run_folder.record_config(
        str(tmp_path), {**base, "train": {"learning_rate": 0.01}}, epoch=3)
    assert changes == {"train.learning_rate": {"from": 0.1, "to": 0.01}}
    saved = json.load(open(tmp_path / "config.json"))
    assert saved["train"]["learning_rate"] == 0.01
    assert saved["resumes"][0]["epoch"] == 3 and saved["resumes"][0]["changes"] == changes


# Each case trains three tiny runs (about 80 s on 2 busy cores): slow.
@pytest.mark.slow
@pytest.mark.parametrize("recipe", [
    dict(optimizer="adam", schedule="step", decay_epochs=1, decay_rate=0.5),
    dict(optimizer="sgd", learning_rate=0.05, schedule="cosine", lookahead=True,
         lookahead_k=2),
    dict(optimizer="adam", schedule="plateau", plateau_patience=1, decay_rate=0.5),
    # Two steps of a three-batch pass: epochs straddle passes, and the stream must too.
    dict(optimizer="adam", schedule="constant", steps_per_epoch=2),
], ids=["adam-step", "lookahead-cosine", "adam-plateau", "partial-passes"])
def test_interrupted_run_has_the_uninterrupted_losses(splits, tmp_path, recipe):
    config = small_config(splits)
    train_config = quick(epochs=4, batch_size=32, augment=(), **recipe)
    fit(config, train_config, splits, str(tmp_path / "whole"), verbose=0)
    fit(config, train_config, splits, str(tmp_path / "parts"), verbose=0,
        extra_callbacks=[StopAfter(2)])
    assert len(losses(tmp_path / "parts")) == 2
    metrics = fit(config, train_config, splits, str(tmp_path / "parts"), resume=True, verbose=0)
    assert metrics["resumed_from_epoch"] == 2
    np.testing.assert_allclose(losses(tmp_path / "parts"), losses(tmp_path / "whole"),
                               rtol=1e-5)


def test_a_checkpoint_record_that_is_a_fifo_is_refused_not_read(tmp_path):
    from keras_resnet.training import checkpoint

    os.mkfifo(tmp_path / "state.json")  # opening it to read would block forever
    with pytest.raises(ValueError, match="is damaged \\(not a regular file\\)"):
        checkpoint.load_state(str(tmp_path))


def test_a_checkpoint_of_another_network_is_one_line_that_blames_the_edit(tmp_path):
    # Editing config.json's channels made 30 lines of Keras warnings, then an error calling
    # the intact checkpoint unreadable.
    import warnings

    from keras_resnet.training import checkpoint

    def compiled(units):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units),
                                  keras.layers.Dense(2)])
        model.compile(optimizer="adam", loss="mse")
        return model

    compiled(3).fit(np.ones((8, 4), np.float32), np.zeros((8, 2), np.float32), epochs=1,
                    verbose=0, callbacks=[checkpoint.Checkpoint(str(tmp_path))])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="is intact but does not fit the network "
                                             "config.json describes: was its model section"):
            checkpoint.Checkpoint(str(tmp_path)).restore(compiled(5))
    assert not [w for w in caught if "saving_lib" in w.filename], caught[0].message


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"))


def run_train(capsys, *argv):
    code = run_main(train.main, [*SMALL_FLAGS, *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured, json.loads(captured.out.strip().splitlines()[-1])


def history(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_resume_records_its_changes_and_the_next_resume_keeps_them(image_folder, tmp_path,
                                                                   capsys):
    output = str(tmp_path / "run")
    common = ["--data-dir", image_folder, "--output", output, "--schedule", "constant"]
    captured, _ = run_train(capsys, *common, "--learning-rate", "0.01", "--epochs", "1")
    assert "resumed from epoch" not in captured.out
    captured, metrics = run_train(capsys, "--output", output, "--resume",
                                  "--learning-rate", "0.005", "--epochs", "2")
    assert metrics["resumed_from_epoch"] == 1 and "(resumed from epoch 1)" in captured.out
    config = json.load(open(os.path.join(output, "config.json")))
    assert config["train"]["learning_rate"] == 0.005
    changes = config["resumes"][0]["changes"]
    assert changes["train.learning_rate"] == {"from": 0.01, "to": 0.005}
    assert changes["train.epochs"] == {"from": 1, "to": 2}
    # A plain resume continues with the last effective rate, not the first run's.
    run_train(capsys, "--output", output, "--resume", "--epochs", "3")
    rates = [float(row["learning_rate"]) for row in history(output)]
    assert rates == pytest.approx([0.01, 0.005, 0.005])
    config = json.load(open(os.path.join(output, "config.json")))
    assert [r["epoch"] for r in config["resumes"]] == [1, 2]
    assert config["resumes"][1]["changes"] == {"train.epochs": {"from": 2, "to": 3}}


@pytest.mark.slow
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(splits, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    config, train_config = small_config(splits), quick(epochs=3, augment=())
    fit(config, train_config, splits, run_dir, verbose=0, extra_callbacks=[StopAfter(2)])
    checkpoints = os.path.join(run_dir, "checkpoints")
    # The previous epoch's file is kept beside the latest one.
    assert sorted(n for n in os.listdir(checkpoints) if n.endswith(".h5")) == [
        "epoch-0001.weights.h5", "epoch-0002.weights.h5"]
    latest = os.path.join(checkpoints, "epoch-0002.weights.h5")
    with open(latest, "r+b") as handle:
        handle.truncate(os.path.getsize(latest) // 2)
    capsys.readouterr()
    metrics = fit(config, train_config, splits, run_dir, resume=True, verbose=0)
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning: checkpoint")]
    assert len(warnings) == 1 and "resuming from epoch 1 instead" in warnings[0]
    assert metrics["resumed_from_epoch"] == 1 and metrics["epochs_completed"] == 3
    assert [int(row["epoch"]) for row in history(run_dir)] == [1, 2, 3]


def test_a_stale_lock_is_taken_over_and_a_killed_start_is_restartable(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    # A pid that cannot be running: the start that wrote this lock was killed.
    (run_dir / ".lock").write_text(json.dumps({"pid": 2 ** 22 + 12345,
                                               "host": os.uname().nodename}))
    run_folder.check_run_dir(str(run_dir), resume=False)
    with run_folder.hold(str(run_dir), resume=False):
        assert json.loads((run_dir / ".lock").read_text())["pid"] == os.getpid()
    assert not (run_dir / ".lock").exists()


def test_a_failed_start_leaves_no_run_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with run_folder.hold(str(tmp_path / "new"), resume=False):
            raise RuntimeError("the model did not build")
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError):
        with run_folder.hold(str(tmp_path / "empty"), resume=False):
            (tmp_path / "empty" / "checkpoints").mkdir()
            raise RuntimeError("out of memory")
    assert os.listdir(tmp_path / "empty") == []


def test_summary_says_resumed_only_for_a_resumed_run():
    metrics = {"run_dir": "r", "variant": "tiny", "trainable_params": 1, "epochs_completed": 2,
               "resumed_from_epoch": 0, "test_accuracy": 0.5, "test_loss": 1.0,
               "train_seconds": 1.0, "images_per_second": 1.0, "precision": "float32",
               "jit": False, "backend": "tensorflow", "device": "cpu"}
    assert "resumed" not in records.summary_text(metrics)
    assert "(resumed from epoch 1)" in records.summary_text({**metrics, "resumed_from_epoch": 1})



def test_a_disk_too_full_for_a_checkpoint_is_refused_before_hdf5_writes(splits, tmp_path,
                                                                        monkeypatch):
    # HDF5 failing mid-write on a full disk left files that h5py flushed again at exit,
    # crashing the process (SIGSEGV); the space a checkpoint needs is checked first.
    import collections

    from keras_resnet.training import checkpoint

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: usage(1 << 30, 1 << 30, 4096))
    run_dir = tmp_path / "run"
    with pytest.raises(OSError, match="the checkpoint of epoch 1 needs about .* MB and .* has "
                                      "0.0 MB free"):
        fit(small_config(splits), quick(epochs=1), splits, str(run_dir), verbose=0)
    assert os.listdir(run_dir / "checkpoints") == []
