"""Shared command-line plumbing: one-line errors, flags made from config fields, budgets.

Every command of the project (train.py, the tuner, export, bench) reports bad input as one
line on stderr with exit code 2 and no traceback; this module is where that lives.
"""

import argparse
import dataclasses
import errno
import functools
import json
import os
import re
import sys

from keras_resnet.fields import parse_text

EXIT_USAGE = 2


EXIT_INTERRUPTED = 130
DEBUG_FLAG = "--debug"


class ArgumentParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors are one line, exit code 2; has `--debug`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument(DEBUG_FLAG, action="store_true",
                          help="show the full traceback of an error instead of one line")

    def error(self, message):
        # A type's message that starts with its flag (`positive`'s) needs no argparse prefix.
        message = re.sub(r"^argument ([^:]+): (?=\1 )", "", message)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def argument_type(parse):
    """Adapts a parser that raises `ValueError` so argparse shows its message."""

    def parse_argument(text):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse_argument.__name__ = getattr(parse, "__name__", "value")
    return parse_argument


def positive(name, minimum=1):
    """The argparse type of every count flag: an integer of at least `minimum` (1 or 0).

    Example:

    >>> positive("max_trials")("3"), positive("final_seeds", 0)("0")
    (3, 0)
    >>> positive("max_trials")("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: --max-trials must be positive. Received: max_trials=0
    """

    def parse(text):
        value = int(text) if text.strip().lstrip("+-").isdigit() else None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"--{name.replace('_', '-')} must be "
                f"{'positive' if minimum > 0 else 'non-negative'}. "
                f"Received: {name}={text if value is not None else repr(text)}")
        return value

    return parse


def add_config_arguments(group, config_class, names=None):
    """Adds one flag per `option` field of a config dataclass, from the field's metadata.

    A flag's type, help and choices are the field's (`keras_resnet.fields.option`); a bool
    field gets `--name/--no-name`, a tuple one comma-separated items, an optional one also
    takes `none`. A flag left out is absent from the parsed namespace, so
    `config_overrides` tells it from one given as `none`.

    Args:
        group: an `argparse` parser or argument group.
        config_class: `ResNetConfig`, `TrainConfig` or another config dataclass.
        names: iterable of field names, or None for every `option` field. Defaults to
            `None`.

    Example:

    >>> from keras_resnet.training import TrainConfig
    >>> parser = ArgumentParser(prog="example")
    >>> add_config_arguments(parser, TrainConfig, ("epochs", "milestones", "lookahead"))
    >>> args = parser.parse_args(["--epochs", "30", "--milestones", "10,20", "--no-lookahead"])
    >>> config_overrides(args, TrainConfig)
    {'milestones': (10, 20), 'epochs': 30, 'lookahead': False}
    """
    for field in dataclasses.fields(config_class):
        if "help" not in field.metadata or (names is not None and field.name not in names):
            continue
        flag = "--" + (field.metadata["flag"] or field.name).replace("_", "-")
        choices = field.metadata["choices"]
        # Choices are the config's to check, so a wrong one fails as every bad value does:
        # one line ending in "Received: name=value".
        common = {"dest": field.name, "default": argparse.SUPPRESS,
                  "help": field.metadata["help"] + (f": {', '.join(choices)}" if choices else "")}
        if field.type is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        else:
            group.add_argument(flag, type=argument_type(functools.partial(parse_text, field)),
                               metavar=(field.metadata["flag"] or field.name).upper(), **common)


def config_overrides(args, config_class):
    """Returns the fields of `config_class` that the command line set, in field order."""
    return {field.name: getattr(args, field.name) for field in dataclasses.fields(config_class)
            if hasattr(args, field.name)}


def add_budget_arguments(group, verb="refused"):
    """Adds the budget flags: parameters, int8 bytes (flash), multiply-accumulates, arena."""
    from keras_resnet.config import DEFAULT_PARAM_BUDGET

    group.add_argument("--param-budget", type=positive("param_budget"),
                       default=DEFAULT_PARAM_BUDGET,
                       help=f"most trainable parameters; a larger network is {verb} before "
                            f"anything is built (default {DEFAULT_PARAM_BUDGET:,})")
    group.add_argument("--flash-budget", type=positive("flash_budget"), default=None,
                       help="most bytes of the int8 model (a microcontroller's flash): "
                            f"estimated before building ({verb} above it), checked after an "
                            "int8/tflm export")
    group.add_argument("--macs-budget", type=positive("macs_budget"), default=None,
                       help="most multiply-accumulates per image")
    group.add_argument("--arena-budget", type=positive("arena_budget"), default=None,
                       help="most bytes of TFLite Micro's tensor arena (a microcontroller's "
                            f"RAM for the int8 model): estimated before building ({verb} "
                            "above it), checked after a tflm export by running the model")


def add_read_limit_arguments(parser):
    """Adds the flags that bound what reading a data set may decode."""
    from keras_resnet.limits import MB, ReadLimits

    defaults = ReadLimits()
    group = parser.add_argument_group("limits on untrusted data")
    group.add_argument("--max-member-mb", type=positive("max_member_mb"),
                       default=defaults.max_member_bytes // MB,
                       help="largest archive member read, in MB (default %(default)s)")
    group.add_argument("--max-archive-mb", type=positive("max_archive_mb"),
                       default=defaults.max_archive_bytes // MB,
                       help="largest total read from an archive, in MB (default %(default)s)")
    add_pixel_limit_argument(group)


def add_pixel_limit_argument(parser):
    """Adds `--max-image-pixels`."""
    from keras_resnet.limits import MAX_IMAGE_PIXELS

    parser.add_argument("--max-image-pixels", type=positive("max_image_pixels"),
                        default=MAX_IMAGE_PIXELS,
                        help="most pixels of one image, checked before decoding "
                             "(default %(default)s)")


def read_limits(args):
    """The `ReadLimits` the flags of `add_read_limit_arguments` give."""
    from keras_resnet.limits import MB, ReadLimits

    return ReadLimits(max_member_bytes=args.max_member_mb * MB,
                      max_archive_bytes=args.max_archive_mb * MB,
                      max_image_pixels=args.max_image_pixels)


def print_json_line(payload):
    """Prints `payload` as the last line of stdout, the machine-readable result."""
    sys.stdout.flush()
    print(json.dumps(payload, sort_keys=True, default=str), flush=True)


# Errors a user's input or machine causes: bad values, missing or unreadable files, a full
# disk. Anything else is a bug of ours, still shown in one line but with its type and exit 1.
USER_ERRORS = (ValueError, OSError, EOFError)
_DISK_FULL = os.strerror(errno.ENOSPC)  # "No space left on device"


def one_line(error):
    """An exception's message on one line, its type added when the message is empty."""
    message = " ".join(str(error).split())
    if isinstance(error, OSError) and error.filename is not None and not message:
        message = f"{error.strerror}: {error.filename}"
    return message or type(error).__name__


def run_main(main, argv=None):
    """Runs `main(argv)`, turning any error into one line on stderr.

    A user's error (`ValueError`, `OSError` such as a missing or read-only path) exits
    with 2; an interrupt with 130; anything else (a bug) with 1, its type named. With
    `--debug` among the arguments the traceback is shown instead.

    Returns:
        The exit code.
    """
    arguments = sys.argv[1:] if argv is None else list(argv)
    debug = DEBUG_FLAG in arguments
    try:
        return main(argv) or 0
    except SystemExit as exit:  # argparse's own exit, already reported in one line
        return exit.code
    except KeyboardInterrupt:
        if debug:
            raise
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as error:
        if debug:
            raise
        prefix = "" if isinstance(error, ValueError) else f"{type(error).__name__}: "
        print(f"error: {prefix}{one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - one line for anything, traceback on --debug
        if debug:
            raise
        if _DISK_FULL in str(error):
            # A full disk seen through a native library (TensorFlow's ResourceExhaustedError,
            # HDF5's RuntimeError): the machine's state, not a bug of ours.
            print(f"error: {type(error).__name__}: {one_line(error)}", file=sys.stderr)
            return EXIT_USAGE
        print(f"error: {type(error).__name__}: {one_line(error)} (an internal error; rerun "
              f"with {DEBUG_FLAG} for the traceback)", file=sys.stderr)
        return 1


def run_command(main, keras=False):
    """A command's `__main__` block: exits with `run_main(main)`'s code, after importing
    Keras quietly (`quiet.import_keras`) when `keras`, for commands that need it at once."""
    if keras:
        from keras_resnet.quiet import import_keras

        import_keras()
    sys.exit(run_main(main))
