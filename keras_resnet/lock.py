"""A folder's lock: one process at a time writes a run folder or an export.

The lock is a file, `.lock`, holding the owner's pid, host and process start time, created
with `O_EXCL` so that two processes cannot both take it. A lock whose process is gone
(killed, crashed) is stale and taken over, and so is one whose pid now belongs to a
process started at another time (pids are reused); a lock held from another host counts
as live, since its process cannot be checked from here.
"""

import contextlib
import json
import os
import socket

LOCK_FILE = ".lock"


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


def _start_time(pid):
    # Field 22 of /proc/PID/stat, in clock ticks since boot: with the pid, it names one
    # process. None where /proc is missing (not Linux), so only the pid is compared there.
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as handle:
            stat = handle.read()
        return int(stat[stat.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError, OverflowError):
        return None


def read_lock(run_dir):
    """Returns `{"pid", "host", "started"}` of the lock in `run_dir`, or None when there is none."""
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
    if not _pid_alive(holder["pid"]):
        return False
    started = holder.get("started")
    now = _start_time(holder["pid"])
    return not (isinstance(started, int) and now is not None and now != started)


def acquire_lock(run_dir):
    """Takes `run_dir`'s lock for this process; re-entrant within the process.

    Returns:
        True if this call took the lock, False if this process already held it.

    Raises:
        ValueError: if another live process holds it.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> acquire_lock(folder), acquire_lock(folder), read_lock(folder)["pid"] == os.getpid()
    (True, False, True)
    >>> release_lock(folder)
    >>> read_lock(folder) is None
    True
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
            json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": _start_time(os.getpid())}, handle)
        return True
    raise ValueError(f"Could not take the lock of {run_dir}: it keeps changing. "
                     f"Received: output={run_dir!r}")


def release_lock(run_dir):
    """Removes `run_dir`'s lock if this process holds it."""
    holder = read_lock(run_dir)
    if holder and holder.get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(run_dir, LOCK_FILE))
