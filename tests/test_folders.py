"""Folders the commands write into: owned by proof, locked for their writer, cleaned of litter."""

import json
import os
import socket
from pathlib import Path

import pytest

from keras_resnet import lock
from tuner import folder

SIGNATURE = {"tuner": "random", "variant": "tiny", "space": {}, "epochs": 1, "data": {},
             "max_trials": 1}


def test_overwrite_removes_only_what_a_search_wrote(tmp_path):
    output = tmp_path / "search-run"
    (output / "search" / "trial_0").mkdir(parents=True)
    (output / "search.json").write_text(json.dumps(SIGNATURE))
    (output / "leaderboard.md").write_text("old board")
    (output / "notes.txt").write_text("the user's own notes")
    with folder.hold(str(output), dict(SIGNATURE, epochs=2), overwrite=True):
        assert lock.read_lock(str(output))["pid"] == os.getpid()
    assert sorted(os.listdir(output)) == ["notes.txt", "search.json"]
    assert json.loads((output / "search.json").read_text())["epochs"] == 2


def test_a_second_search_on_a_held_folder_is_refused(tmp_path):
    with folder.hold(str(tmp_path), SIGNATURE, overwrite=False):
        holder = lock.read_lock(str(tmp_path))
        # What a second tuner process finds: this live process holding the folder.
        (tmp_path / ".lock").write_text(json.dumps(dict(holder, pid=os.getppid(),
                                                        started=lock._start_time(os.getppid()))))
        with pytest.raises(ValueError, match="is in use by process"):
            lock.acquire_lock(str(tmp_path))
        (tmp_path / ".lock").write_text(json.dumps(holder))


def test_a_lock_whose_pid_was_reused_is_stale(tmp_path):
    # The parent process is alive, but started at another time than the lock records:
    # the lock's own process is gone and its pid now names someone else.
    started = lock._start_time(os.getppid())
    assert started is not None
    Path(tmp_path, ".lock").write_text(json.dumps(
        {"pid": os.getppid(), "host": socket.gethostname(), "started": started + 12345}))
    assert lock.acquire_lock(str(tmp_path))
    assert lock.read_lock(str(tmp_path))["started"] == lock._start_time(os.getpid())
    lock.release_lock(str(tmp_path))


def litter(root):
    """What kill -9 leaves: temporaries of a dead writer and an export's build folder."""
    dead = 99_999_999  # above any pid_max: no such process
    for name in (f"summary.tmp-{dead}-a1b2c3.json", f"checkpoints/state.tmp-{dead}-0f0f0f.json",
                 f"model.tmp-{dead}-abcdef.keras", ".export-tmp-k2j3/model_int8.tflite"):
        Path(root, name).parent.mkdir(parents=True, exist_ok=True)
        Path(root, name).write_text("half written")
    # A live writer's temporary (a distributed search's worker) is left alone.
    Path(root, f"metrics.tmp-{os.getppid()}-123456.json").write_text("being written")


def test_the_next_owner_of_a_run_folder_removes_what_kill_9_left(tmp_path):
    from keras_resnet import run_folder

    (tmp_path / "config.json").write_text("{}")
    litter(tmp_path)
    (tmp_path / "notes.tmp.txt").write_text("a user's file, not a temporary")
    with run_folder.hold(str(tmp_path), resume=True):
        pass
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoints", "config.json", f"metrics.tmp-{os.getppid()}-123456.json", "notes.tmp.txt"]
    assert os.listdir(tmp_path / "checkpoints") == []


def test_the_next_search_on_a_folder_removes_what_kill_9_left(tmp_path):
    (tmp_path / "search.json").write_text(json.dumps(SIGNATURE))
    litter(tmp_path)
    with folder.hold(str(tmp_path), SIGNATURE, overwrite=False):
        pass
    assert not [n for n in os.listdir(tmp_path) if "-a1b2c3" in n or n.startswith(".export")]
