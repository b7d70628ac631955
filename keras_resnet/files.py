"""Atomic file writes, and JSON read back with one message for any failure.

A kill at any moment leaves the old file or the new one, never half.

Every file the project writes into a run folder, an export or a search goes through here:
the content goes to a temporary file beside the target (the same file system, so the
rename is atomic) and `os.replace` puts it in place. `path_bytes` measures what was
written.
"""

import contextlib
import json
import os
import re
import secrets
import shutil

# `atomic_path`'s temporaries: NAME.tmp-PID-HEX[.EXT].
_TEMPORARY = re.compile(r".+\.tmp-(\d+)-[0-9a-f]{6}(\.[^.]*)?")
# The export's build and trash folders (`tempfile.mkdtemp` names, no pid).
_EXPORT_FOLDERS = (".export-tmp-", ".export-old-")


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`, renamed over `path` when the block succeeds.

    The temporary name keeps `path`'s extension, for writers that pick the format from it
    (`model.save`, `savefig`), and is unique per process and call, so that concurrent
    writers (a search's workers) never share one. On an error it is removed and `path` is
    left as it was.

    Args:
        path: str. The file to write.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "model.txt")
    >>> with atomic_path(path) as temporary:
    ...     with open(temporary, "w") as handle:
    ...         _ = handle.write("weights")
    >>> open(path).read(), os.listdir(os.path.dirname(path))
    ('weights', ['model.txt'])
    """
    root, extension = os.path.splitext(path)
    temporary = f"{root}.tmp-{os.getpid()}-{secrets.token_hex(3)}{extension}"
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def path_bytes(path):
    """Size of a file, or of every file under a folder, in bytes.

    Example:

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_text(os.path.join(folder, "model.txt"), "weights")
    >>> path_bytes(folder), path_bytes(os.path.join(folder, "model.txt"))
    (7, 7)
    """
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(path) for name in names)


def write_text(path, text):
    """Writes `text` to `path` atomically, flushed to disk before the rename."""
    with atomic_path(path) as temporary, open(temporary, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def write_json(path, payload, indent=2):
    """Writes `payload` to `path` as JSON with sorted keys, atomically.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "metrics.json")
    >>> write_json(path, {"accuracy": 0.9, "epochs": 3})
    >>> json.load(open(path))
    {'accuracy': 0.9, 'epochs': 3}
    """
    write_text(path, json.dumps(payload, indent=indent, sort_keys=True, default=str) + "\n")


def read_json(path, what):
    """Reads a JSON file; any failure to read or parse it is one `ValueError`.

    Args:
        path: str. The file.
        what: str. The argument or file kind the message names, e.g. `"results"`.

    Returns:
        The parsed value (its shape is the caller's to check).

    Raises:
        ValueError: `"<path> cannot be read as JSON (<reason>). Received: <what>=<path>"`.

    Example:

    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "broken.json")
    >>> write_text(path, "{")
    >>> read_json(path, "results")
    Traceback (most recent call last):
    ...
    ValueError: ...broken.json cannot be read as JSON (...). Received: results=...
    """
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} cannot be read as JSON ({error}). "
                         f"Received: {what}={path!r}") from None


def remove_litter(folder):
    """Removes what writers killed with SIGKILL left in `folder`, which the caller holds.

    A kill -9 runs no cleanup, so `atomic_path`'s temporaries and an export's build
    folders stay. Called by whoever holds the folder's lock: an export folder is then
    nobody's; a temporary is removed only if its process is gone, since a distributed
    search's workers write beside the chief that holds the lock.
    """
    from keras_resnet.lock import _pid_alive

    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        match = _TEMPORARY.fullmatch(name)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.remove(path)
        elif name.startswith(_EXPORT_FOLDERS) and os.path.isdir(path) \
                and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
