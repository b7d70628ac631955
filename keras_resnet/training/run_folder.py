"""The run folder's ownership: which folder may be used, who holds it, what a failed start leaves.

A run folder is ours when it holds `config.json` (a run) or our `.lock` with no run yet (a
start that was killed). Anything else that is not empty belongs to someone else and is
refused, so `--output ~/Documents` can never overwrite a user's `model.keras`. One process
at a time holds a folder through `.lock` (its pid and host); a lock whose process is gone is
stale and taken over. A start that fails before training begins leaves nothing
behind: the folder is removed if this process made it, else only the files it wrote.
"""

import contextlib
import json
import os
import shutil
import socket

LOCK_FILE = ".lock"
CONFIG_FILE = "config.json"
STATE_FILE = os.path.join("checkpoints", "state.json")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


def read_lock(run_dir):
    """Returns `{"pid", "host"}` of the lock in `run_dir`, or None when there is none."""
    try:
        with open(os.path.join(run_dir, LOCK_FILE)) as handle:
            holder = json.load(handle)
        return holder if isinstance(holder, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # half-written by a process killed while taking it: stale


def lock_is_live(holder):
    """Whether a lock's holder is a running process (other hosts count as live)."""
    if not holder or not isinstance(holder.get("pid"), int):
        return False
    if holder.get("host") not in (None, socket.gethostname()):
        return True  # a process on another machine sharing the folder: cannot tell
    return _pid_alive(holder["pid"])


def _is_abandoned_start(run_dir, names):
    # Only our own leftovers of a start killed before its first epoch: a stale lock and
    # the empty folders training makes.
    if LOCK_FILE not in names or os.path.exists(os.path.join(run_dir, STATE_FILE)):
        return False
    if lock_is_live(read_lock(run_dir)) and read_lock(run_dir).get("pid") != os.getpid():
        return False
    return set(names) <= {LOCK_FILE, "checkpoints", "logs"}


def check_run_dir(run_dir, resume):
    """Checks that `run_dir` may be used: new (or empty) without `resume`, a run with it.

    Raises:
        ValueError: if `run_dir` is a file, holds a run and `resume` is False, holds other
            files (not a run folder), holds no run and `resume` is True, or cannot be
            written.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> check_run_dir(os.path.join(folder, "new-run"), resume=False)
    >>> open(os.path.join(folder, "notes.txt"), "w").close()
    >>> check_run_dir(folder, resume=False)
    Traceback (most recent call last):
    ...
    ValueError: ... is not empty and is not a run folder (it holds notes.txt); ...
    """
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ValueError(f"--output must be a folder, and this is a file. "
                         f"Received: output={run_dir!r}")
    has_run = os.path.isfile(os.path.join(run_dir, CONFIG_FILE))
    if resume and not has_run:
        raise ValueError(f"Nothing to resume: {run_dir} has no config.json. "
                         f"Received: output={run_dir!r}")
    if has_run and not resume:
        raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it or "
                         f"choose another --output. Received: output={run_dir!r}")
    if not has_run and os.path.isdir(run_dir):
        names = os.listdir(run_dir)
        if names and not _is_abandoned_start(run_dir, names):
            shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
            raise ValueError(f"{run_dir} is not empty and is not a run folder (it holds "
                             f"{shown}); choose a new or empty --output so that no file of "
                             f"yours is overwritten. Received: output={run_dir!r}")
    existing = run_dir
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(existing.rstrip(os.sep)) or "."
    if not os.access(existing or ".", os.W_OK | os.X_OK):
        raise ValueError(f"Cannot write the run folder: {existing or '.'} is not writable. "
                         f"Received: output={run_dir!r}")


def acquire_lock(run_dir):
    """Takes `run_dir`'s lock for this process; re-entrant within the process.

    Returns:
        True if this call took the lock, False if this process already held it.

    Raises:
        ValueError: if another live process holds it.
    """
    path = os.path.join(run_dir, LOCK_FILE)
    for _ in range(3):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_lock(run_dir)
            if holder is None:
                continue  # released between our two calls
            if holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
                return False
            if lock_is_live(holder):
                raise ValueError(
                    f"{run_dir} is in use by process {holder['pid']} on "
                    f"{holder.get('host')}; wait for it to finish or stop it. "
                    f"Received: output={run_dir!r}") from None
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)  # stale: its process is gone
            continue
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"pid": os.getpid(), "host": socket.gethostname()}, handle)
        return True
    raise ValueError(f"Could not take the lock of {run_dir}: it keeps changing. "
                     f"Received: output={run_dir!r}")


def release_lock(run_dir):
    """Removes `run_dir`'s lock if this process holds it."""
    holder = read_lock(run_dir)
    if holder and holder.get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(run_dir, LOCK_FILE))


@contextlib.contextmanager
def hold(run_dir, resume):
    """Checks, creates and locks `run_dir` for the block; undoes a start that failed.

    On an exception before training began (no `config.json` yet), the folder is removed
    if this call created it, else the files training wrote are. The lock is
    released on the way out either way.

    Args:
        run_dir: str. The run folder.
        resume: bool. Whether an existing run is continued.

    Raises:
        ValueError: as `check_run_dir`, or if another process holds the folder.
    """
    check_run_dir(run_dir, resume)
    created = not os.path.exists(run_dir)
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as error:
        raise ValueError(f"Cannot create the run folder ({error.strerror}). "
                         f"Received: output={run_dir!r}") from None
    took = acquire_lock(run_dir)
    try:
        yield
    except BaseException:
        # Before training began (config.json is written then) nothing here is worth keeping.
        if took and not resume and not os.path.exists(os.path.join(run_dir, CONFIG_FILE)):
            _undo_start(run_dir, created)
        raise
    finally:
        if took:
            release_lock(run_dir)


def _undo_start(run_dir, created):
    if created:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for name in (CONFIG_FILE, "checkpoints", "logs"):
        path = os.path.join(run_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.exists(path):
            os.remove(path)


def _flatten(values, prefix=""):
    flat = {}
    for key, value in (values or {}).items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_changes(old, new):
    """The `section.field` entries that differ between two run configurations.

    Example:

    >>> config_changes({"train": {"learning_rate": 0.1}}, {"train": {"learning_rate": 0.01}})
    {'train.learning_rate': {'from': 0.1, 'to': 0.01}}
    """
    old = _flatten({k: v for k, v in (old or {}).items() if k != "resumes"})
    new = _flatten({k: v for k, v in (new or {}).items() if k != "resumes"})
    return {key: {"from": old.get(key), "to": new.get(key)}
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)}


def record_config(run_dir, config, epoch=0):
    """Writes the run's effective configuration to `config.json`.

    A fresh run writes it as is. A resume keeps the earlier record's `resumes` list and
    appends what changed (`{"epoch", "date", "changes"}`), so `config.json` always holds
    the configuration the next `--resume` continues from, and the history of how it came
    to be.

    Args:
        run_dir: str. The run folder.
        config: JSON-safe dict with `variant`, `model`, `train`, `data`.
        epoch: int. The epoch training continues from. Defaults to `0`.

    Returns:
        The changes recorded (empty for a fresh run or an unchanged resume).
    """
    import datetime

    from keras_resnet.files import write_json

    path = os.path.join(run_dir, CONFIG_FILE)
    previous = read_run_config(path) if os.path.exists(path) else None
    payload = dict(config)
    changes = config_changes(previous, payload) if previous is not None else {}
    resumes = list((previous or {}).get("resumes") or [])
    if previous is not None:
        resumes.append({"epoch": int(epoch), "changes": changes, "date": datetime.datetime.now(
            datetime.timezone.utc).isoformat(timespec="seconds")})
    if resumes:
        payload["resumes"] = resumes
    write_json(path, payload)
    return changes


def read_run_config(path):
    """Reads a run's `config.json`, which must be a JSON object.

    Raises:
        ValueError: if the file cannot be read or is not a JSON object.
    """
    try:
        with open(path) as handle:
            values = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} cannot be read as JSON ({error}). "
                         f"Received: config={path!r}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object (a run's configuration). "
                         f"Received: {type(values).__name__}")
    return values
