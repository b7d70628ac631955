"""The search folder: which folder a search may use, its lock, and what `--overwrite` removes.

A folder is a search's when its `search.json` is the record a search wrote (a JSON object
with the search's settings), not merely a file of that name: `--overwrite` on a user's
folder that happens to hold a `search.json` must not delete the user's `search/`. The
chief (or a standalone search) holds the folder through `keras_resnet.lock`, so two
searches cannot train the same trials into one folder; distributed workers write trials
under the chief's lock.
"""

import contextlib
import json
import os
import re
import shutil

from keras_resnet.files import remove_litter, write_json
from keras_resnet.lock import acquire_lock, release_lock

RECORD_FILE = "search.json"
# Keys every record has had since the record existed: what proves a `search.json` ours.
RECORD_KEYS = frozenset({"tuner", "variant", "space", "epochs", "data"})
# Everything a search writes at the folder's top; `--overwrite` removes these and no other.
SEARCH_OUTPUTS = ("search", "leaderboard.md", "leaderboard.csv", "pareto.png",
                  "best_config.json", "best_trial.json", "final_seeds.json", "study.md")
# What keras-tuner writes in its project folder (search/).
_KERAS_TUNER_NAME = re.compile(r"(oracle|chief|tuner\w*)\.json|trial_\w+|.+\.tmp-\d+-[0-9a-f]{6}.*")
# The largest record a search writes is a few kilobytes (its space); a bigger file is not one.
MAX_RECORD_BYTES = 1 << 20


def read_record(output):
    """Returns the search record of `output`, or None when it has none.

    Raises:
        ValueError: if `output/search.json` exists but is not a record a search wrote.
    """
    path = os.path.join(output, RECORD_FILE)
    if not os.path.lexists(path):
        return None
    record = None
    with contextlib.suppress(OSError, ValueError):
        if os.path.isfile(path) and os.path.getsize(path) <= MAX_RECORD_BYTES:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
    if not isinstance(record, dict) or not RECORD_KEYS <= set(record):
        raise ValueError(f"{path} is not a search record written by the tuner, so {output} is "
                         "not a search folder; choose a new or empty --output so that no file "
                         f"of yours is overwritten. Received: output={output!r}")
    return record


def check_output(output):
    """Refuses an --output that is a file, or a non-empty folder that holds no search of ours.

    `search/` alone is allowed: keras-tuner's project folder, which distributed workers may
    make before the chief gets here.
    """
    if output is None or not os.path.exists(output):
        return
    if not os.path.isdir(output):
        raise ValueError(f"--output must be a folder, and this is a file. "
                         f"Received: output={output!r}")
    names = set(os.listdir(output)) - {"search"}
    if names and RECORD_FILE not in names:
        raise ValueError(f"{output} is not empty and holds no search (no {RECORD_FILE}); "
                         "choose a new or empty --output so that no file of yours is "
                         f"overwritten. Received: output={output!r}")
    if read_record(output) is None and os.path.isdir(os.path.join(output, "search")):
        # Without a record, search/ must look like the project a worker starts: keras-tuner
        # would otherwise reload, then overwrite, a user's own oracle.json.
        foreign = sorted(n for n in os.listdir(os.path.join(output, "search"))
                         if not _KERAS_TUNER_NAME.fullmatch(n))
        if foreign:
            raise ValueError(f"{output}/search holds files a search does not write "
                             f"({', '.join(foreign[:3])}) and {output} has no {RECORD_FILE}; "
                             "choose a new or empty --output so that no file of yours is "
                             f"overwritten. Received: output={output!r}")


def _same_search(previous, signature):
    def settings(record):
        return {k: v for k, v in record.items() if k != "max_trials"}

    return settings(previous) == settings(signature)


@contextlib.contextmanager
def hold(output, signature, overwrite):
    """Creates and locks `output` for a search, discards an old one on `overwrite`.

    Args:
        output: str. The search folder.
        signature: dict. The search's settings, written as `search.json`.
        overwrite: bool. Whether an earlier search there is discarded.

    Raises:
        ValueError: if `output` is not a search folder, is held by another live process, or
            holds a different search and `overwrite` is False.
    """
    check_output(output)
    os.makedirs(output, exist_ok=True)
    took = acquire_lock(output)
    if took:
        remove_litter(output)
    try:
        previous = read_record(output)  # again under the lock: it may have changed
        if previous is not None and overwrite:
            for name in SEARCH_OUTPUTS:  # only what a search writes, never the folder
                path = os.path.join(output, name)
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                elif os.path.lexists(path):
                    os.remove(path)
            os.remove(os.path.join(output, RECORD_FILE))
        elif previous is not None and not _same_search(previous, signature):
            raise ValueError(f"{output} holds a different search (other space, tuner, data or "
                             "epochs); rerun it with its own settings to resume, pass "
                             f"--overwrite, or choose another --output. Received: output={output!r}")
        write_json(os.path.join(output, RECORD_FILE), signature)
        yield output
    finally:
        if took:
            release_lock(output)
