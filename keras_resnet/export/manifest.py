"""Which files of an export folder the exporter wrote, so that it replaces only those.

An export folder may hold files of the user's (a README, a hand-tuned model): the exporter
lists what it writes in `manifest.json` and, on the next export, replaces or removes only
what that list names. A name the export would write that belongs to someone else is
refused before anything is built.
"""

import json
import os
import shutil
import tempfile

from keras_resnet.files import write_json
from keras_resnet.run_folder import REPORT_FILE

MANIFEST = "manifest.json"
# Written by every export beside the model files.
RECORDS = ("metadata.json", REPORT_FILE, "report.md", MANIFEST)


def owned_names(output_dir):
    """The entries of `output_dir` an earlier export wrote (empty if none).

    An export made before manifests existed is recognised by its `report.json` and
    `metadata.json`; its files are those of the known formats and records.
    """
    from keras_resnet.export.convert import FORMATS

    path = os.path.join(output_dir, MANIFEST)
    if os.path.isfile(path):
        try:
            with open(path) as handle:
                files = json.load(handle).get("files", [])
            return {name for name in files if isinstance(name, str) and "/" not in name
                    and name not in ("", ".", "..")}
        except (OSError, ValueError, AttributeError):
            return set()
    if all(os.path.isfile(os.path.join(output_dir, name))
           for name in (REPORT_FILE, "metadata.json")):
        return {name for name in (*FORMATS.values(), *RECORDS)
                if os.path.exists(os.path.join(output_dir, name))}
    return set()


def check_export_folder(output_dir, names):
    """Refuses an export that would overwrite an entry of `output_dir` it did not write.

    Args:
        output_dir: str. The export folder (need not exist).
        names: iterable of str. Entries the export writes.

    Raises:
        ValueError: naming the first such entry, or if `output_dir` is a file.

    Example:

    >>> folder = tempfile.mkdtemp()
    >>> check_export_folder(os.path.join(folder, "new-export"), ["model_int8.tflite"])
    >>> open(os.path.join(folder, "model_int8.tflite"), "w").close()  # the user's own
    >>> check_export_folder(folder, ["model_int8.tflite"])
    Traceback (most recent call last):
    ...
    ValueError: .../model_int8.tflite was not written by an export ...
    """
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"The export folder is a file. Received: output_dir={output_dir!r}")
    if not os.path.isdir(output_dir):
        return
    owned = owned_names(output_dir)
    for name in sorted(set(names) | {MANIFEST}):
        if os.path.lexists(os.path.join(output_dir, name)) and name not in owned:
            raise ValueError(
                f"{os.path.join(output_dir, name)} was not written by an export (it is not in "
                f"{MANIFEST}); move it away so that it is not overwritten. "
                f"Received: output_dir={output_dir!r}")


def write_manifest(build):
    """Lists the entries of the build folder in its `manifest.json`."""
    write_json(os.path.join(build, MANIFEST),
               {"files": sorted(set(os.listdir(build)) | {MANIFEST})})


def move_into_place(build, output_dir):
    """Moves a finished build folder's entries into `output_dir`, sparing others' files.

    A new folder is one rename. Into an existing one, the entries of the previous export
    (its manifest) are replaced or removed and every other entry is left alone; the
    manifest moves last, so until then the old one still describes what is ours.

    Raises:
        ValueError: if a built entry would replace one the exporter did not write.
    """
    if not os.path.exists(output_dir):
        os.rename(build, output_dir)
        return
    names = sorted(os.listdir(build), key=lambda name: name == MANIFEST)
    check_export_folder(output_dir, names)
    owned = owned_names(output_dir)
    # A kill part-way leaves a manifest that still claims everything of ours.
    write_json(os.path.join(output_dir, MANIFEST), {"files": sorted(owned | set(names))})
    trash = tempfile.mkdtemp(prefix=".export-old-", dir=os.path.dirname(build))
    try:
        for name in sorted(owned - {MANIFEST}):
            path = os.path.join(output_dir, name)
            if os.path.lexists(path):
                os.rename(path, os.path.join(trash, name))
        for name in names:
            os.replace(os.path.join(build, name), os.path.join(output_dir, name))
        os.rmdir(build)
    finally:
        shutil.rmtree(trash, ignore_errors=True)

