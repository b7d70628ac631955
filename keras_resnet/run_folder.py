"""The run folder: which folder may be used, who holds it, and the files a run leaves in it.

A run folder holds `config.json` (variant, model, train and data sections: what `--resume`
continues and export reads back), `checkpoints/`, `history.csv`, learning curves,
`metrics.json`, `model.keras` (float32, no optimizer), `logs/` and `export/`; a repeated
run's folder `summary.json`. Every name is defined here, and the readers and writers of
the config, history, metrics and model, so their names and formats live in one place.

A run folder is ours when it holds `config.json` (a run) or our `.lock` with no run yet (a
start that was killed). Anything else that is not empty belongs to someone else and is
refused, so `--output ~/Documents` can never overwrite a user's `model.keras`. One process
at a time holds a folder through `.lock` (its pid and host); a lock whose process is gone is
stale and taken over. A start that fails before training begins leaves nothing
behind: the folder is removed if this process made it, else only the files it wrote.
"""

import contextlib
import csv
import io
import os
import shutil

from keras_resnet.files import atomic_path, read_json, remove_litter, write_json, write_text
from keras_resnet.lock import LOCK_FILE, acquire_lock, lock_is_live, read_lock, release_lock

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.csv"
SUMMARY_FILE = "summary.json"  # a repeated run's
CHECKPOINTS = "checkpoints"  # the training state (`training.checkpoint`)
LOGS = "logs"  # TensorBoard's
EXPORT = "export"
REPORT_FILE = "report.json"  # the export's measurements, in EXPORT
STATE_FILE = os.path.join(CHECKPOINTS, "state.json")


def _is_abandoned_start(run_dir, names):
    # Only our own leftovers of a start killed before its first epoch: a stale lock and
    # the empty folders training makes.
    if LOCK_FILE not in names or os.path.exists(os.path.join(run_dir, STATE_FILE)):
        return False
    if lock_is_live(read_lock(run_dir)) and read_lock(run_dir).get("pid") != os.getpid():
        return False
    return set(names) <= {LOCK_FILE, CHECKPOINTS, LOGS}


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
    if took:
        for folder in (run_dir, os.path.join(run_dir, CHECKPOINTS)):
            remove_litter(folder)
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
    for name in (CONFIG_FILE, CHECKPOINTS, LOGS):
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


def run_config(variant, model_config, train_config, data_info=None):
    """The configuration a run records: what `config.json` holds, as a dict."""
    return {"variant": variant, "model": model_config.to_dict(),
            "train": train_config.to_dict(), "data": dict(data_info or {})}


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

    path = os.path.join(run_dir, CONFIG_FILE)
    previous = read_run_config(run_dir) if os.path.exists(path) else None
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


def read_run_config(run_dir):
    """Reads a run's `config.json`: a JSON object whose sections are objects.

    Raises:
        ValueError: if the file cannot be read, is not a JSON object, or a section is not one.
    """
    path = os.path.join(run_dir, CONFIG_FILE)
    values = read_json(path, "config")
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object (a run's configuration). "
                         f"Received: {type(values).__name__}")
    for section in ("model", "train", "data"):
        if not isinstance(values.get(section) or {}, dict):
            raise ValueError(f"{path}: `{section}` must be an object. "
                             f"Received: {section}={values[section]!r}"[:300])
    return values


def read_finished_run(run_dir):
    """Returns `(model_path, run_config)` of a trained run; `{}` without `config.json`.

    Raises:
        ValueError: if `run_dir` has no `model.keras`, or as `read_run_config`.
    """
    model_path = os.path.join(run_dir, MODEL_FILE)
    if not os.path.isfile(model_path):
        raise ValueError(f"The run folder has no {MODEL_FILE}. Received: run_dir={run_dir!r}")
    if not os.path.isfile(os.path.join(run_dir, CONFIG_FILE)):
        return model_path, {}
    return model_path, read_run_config(run_dir)


def save_results(run_dir, model, metrics):
    """Writes the trained `model` (`model.keras`) and its `metrics.json`, each atomically."""
    with atomic_path(os.path.join(run_dir, MODEL_FILE)) as temporary:
        model.save(temporary)
    write_json(os.path.join(run_dir, METRICS_FILE), metrics)


def read_metrics(run_dir):
    """Returns a finished run's `metrics.json`, or None when the run has not finished."""
    path = os.path.join(run_dir, METRICS_FILE)
    return read_json(path, "metrics") if os.path.exists(path) else None


def read_export_report(run_dir):
    """Returns a run's `export/report.json` (its exported formats' measurements), or None
    when the run has not been exported."""
    path = os.path.join(run_dir, EXPORT, REPORT_FILE)
    return read_json(path, "report") if os.path.isfile(path) else None


def write_history(run_dir, history):
    """Writes `history.csv`: one row per epoch, every key of any row a column."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(dict.fromkeys(key for row in history for key in row)))
    writer.writeheader()
    writer.writerows(history)
    write_text(os.path.join(run_dir, HISTORY_FILE), buffer.getvalue())


def read_history(run_dir):
    """A run folder's `history.csv` as a list of dicts of floats ([] if missing)."""
    path = os.path.join(run_dir, HISTORY_FILE)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as handle:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(handle)]


def data_arguments(run_config, data_dir=None):
    """The `load_data` arguments that give a run its data back: same source, size, split, seed.

    Args:
        run_config: dict. A run's configuration (`config.json`, or the one training records).
        data_dir: str or None. Replaces the recorded data folder (data moved). Defaults
            to `None`.

    Example:

    >>> data_arguments({"model": {"input_shape": [32, 32, 3]}, "train": {"seed": 3},
    ...                 "data": {"dataset": "cifar10", "data_dir": "data/cifar10"}})
    {'dataset': 'cifar10', 'data_dir': 'data/cifar10', 'image_size': (32, 32), \
'val_split': 0.1, 'seed': 3, 'channels': 3}
    """
    data, train = run_config.get("data") or {}, run_config.get("train") or {}
    input_shape = (run_config.get("model") or {}).get("input_shape", (32, 32, 3))
    return {"dataset": data.get("dataset", "cifar10"), "data_dir": data_dir or data.get("data_dir"),
            "image_size": tuple(data.get("image_size", input_shape[:2])),
            "val_split": train.get("val_split", data.get("val_split", 0.1)),
            "seed": train.get("seed", data.get("seed", 0)), "channels": input_shape[2]}
