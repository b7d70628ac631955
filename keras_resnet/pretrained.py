"""Trained models shipped with the package: list them, check them, load them by name.

Each shipped model is a folder `saved_models/<name>/` of the checkout (installed as the
package data `keras_resnet.saved_models`, so a plain `pip install .` has them too):

    README.md           the model card: what it is, how it was trained, what it measured
    card.json           the card's numbers (what `python -m keras_resnet.pretrained` lists)
    config.json         the training run's configuration (variant, model, train, data)
    model.keras         the float model (plain Keras, loaded in safe mode)
    model_int8.tflite   the int8 model, calibrated on training images
    tflm/               TensorFlow Lite Micro sources, where the model fits a microcontroller
    report.json, .md    the export's measured accuracy, sizes and latency per format
    metadata.json       class names and formats (what `predict` reads beside a model)
    sha256.json         the SHA-256 of every file above: loading checks them all

A user's own runs live elsewhere (`runs/` by default), never among these.
"""

import hashlib
import importlib.resources
import os

CHECKSUMS = "sha256.json"
CARD = "card.json"
# `name:int8` picks the int8 file of a shipped model; a plain name the float model.
FILES = {"float": "model.keras", "int8": "model_int8.tflite"}


def shipped_root():
    """The folder holding the shipped models (the checkout's `saved_models/`)."""
    return str(importlib.resources.files("keras_resnet.saved_models"))


def shipped_names(root=None):
    """Names of the shipped models, sorted.

    Example:

    >>> isinstance(shipped_names(), list)
    True
    """
    root = root or shipped_root()
    return sorted(name for name in os.listdir(root)
                  if os.path.isfile(os.path.join(root, name, CHECKSUMS)))


def file_sha256(path):
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_checksums(folder):
    """`{relative path: sha256}` of every file under `folder` but the checksum file itself."""
    sums = {}
    for directory, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if name != "__pycache__")
        for name in sorted(files):
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            if relative != CHECKSUMS:
                sums[relative] = file_sha256(path)
    return sums


def check_integrity(folder):
    """Checks every file a shipped model lists against its SHA-256.

    Raises:
        ValueError: in one line, naming the first file that is missing, changed, a link,
            or a checksum file that cannot be read.
    """
    from keras_resnet.files import read_json

    path = os.path.join(folder, CHECKSUMS)
    expected = read_json(path, "checksums")
    if not isinstance(expected, dict) or not expected:
        raise ValueError(f"{path} must map each file to its SHA-256. Received: {expected!r}"[:300])
    for relative, digest in sorted(expected.items()):
        file = os.path.join(folder, *relative.split("/"))
        if ".." in relative.split("/") or os.path.islink(file) or not os.path.isfile(file):
            raise ValueError(f"A shipped model's file is missing or not a plain file; "
                             f"reinstall the package. Received: file={file!r}")
        if file_sha256(file) != digest:
            raise ValueError(f"A shipped model's file does not match its SHA-256 (damaged or "
                             f"replaced); reinstall the package. Received: file={file!r}")


def pretrained_folder(name, root=None):
    """The checked folder of a shipped model.

    Raises:
        ValueError: for an unknown name (listing the shipped ones) or a damaged folder.
    """
    root = root or shipped_root()
    names = shipped_names(root)
    if name not in names:
        raise ValueError(f"No shipped model of that name; shipped: {', '.join(names) or 'none'}."
                         f" Received: name={name!r}")
    folder = os.path.join(root, name)
    check_integrity(folder)
    return folder


def resolve_model(text, root=None):
    """A model argument: a shipped `NAME` or `NAME:int8` as its checked file, else unchanged.

    An existing path always wins over a shipped name.

    Returns:
        str, the path of the model to open.

    Raises:
        ValueError: for a shipped name with an unknown kind, or a damaged shipped model.

    Example:

    >>> resolve_model("runs/tiny/model.keras")
    'runs/tiny/model.keras'
    """
    name, _, kind = text.partition(":")
    root = root or shipped_root()
    if os.path.exists(text) or name not in shipped_names(root):
        return text
    if kind and kind not in FILES:
        raise ValueError(f"A shipped model is NAME or NAME:int8. Received: model={text!r}")
    return os.path.join(pretrained_folder(name, root), FILES[kind or "float"])


def load_pretrained(name, root=None):
    """Loads a shipped model by name: the float Keras model, its files checked first.

    Args:
        name: str. A shipped model's name (see `shipped_names`).
        root: str or None. Where shipped models live. Defaults to the package's.

    Returns:
        A `keras.Model` taking raw 0-255 pixels, returning class probabilities.

    Raises:
        ValueError: for an unknown name, or a shipped file missing or damaged.

    Example:

    >>> [load_pretrained(name).name for name in shipped_names()] == [
    ...     read_card(name)["variant"] for name in shipped_names()]
    True
    """
    from keras_resnet.export.runtime import load_keras_model

    return load_keras_model(os.path.join(pretrained_folder(name, root), FILES["float"]))


def read_card(name, root=None):
    """A shipped model's `card.json`: accuracy, sizes, recipe and where it came from."""
    from keras_resnet.files import read_json

    return read_json(os.path.join(root or shipped_root(), name, CARD), "card")


def listing(root=None):
    """The shipped models as a Markdown table: accuracy and sizes."""
    lines = ["| name | variant | params | test accuracy | seeds (mean +- std) | int8 | "
             "int8 bytes | TFLM arena bytes |", "|---" * 8 + "|"]
    for name in shipped_names(root):
        card = read_card(name, root)
        seeds = card.get("seeds_test_accuracy")
        lines.append(
            f"| {name} | {card['variant']} | {card['trainable_params']:,} | "
            f"{100 * card['test_accuracy']:.2f}% | "
            + (f"{100 * seeds['mean']:.2f} +- {100 * seeds['std']:.2f}% ({seeds['n']})"
               if seeds else "-")
            + f" | {100 * card['int8_test_accuracy']:.2f}% | {card['int8_bytes']:,} | "
            f"{format(card['arena_bytes'], ',') if card.get('arena_bytes') else '-'} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    from keras_resnet import cli

    parser = cli.ArgumentParser(prog="python -m keras_resnet.pretrained",
                                description="List the shipped trained models.")
    parser.parse_args(argv)
    print(listing(), end="")
    cli.print_json_line({"shipped": {name: read_card(name) for name in shipped_names()}})
    return 0


if __name__ == "__main__":
    from keras_resnet.cli import run_command

    run_command(main)
