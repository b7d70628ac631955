"""Shared command-line plumbing: one-line errors, list parsing, architecture flags.

Every command of the project (train.py, the tuner, export, bench) reports bad input as one
line on stderr with exit code 2 and no traceback; this module is where that lives.
"""

import argparse
import json
import sys

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
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def argument_type(parse):
    """Adapts a parser that raises `ValueError` so argparse shows its message."""

    def parse_argument(text):
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse_argument.__name__ = parse.__name__
    return parse_argument


def int_list(text):
    """Parses `"4,4,3"` into `(4, 4, 3)` for argparse."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, e.g. 4,4,3. Received: {text!r}") from None
    return values


def float_list(text):
    """Parses `"0.4,0.2"` into `(0.4, 0.2)` for argparse."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, e.g. 0.4,0.2. Received: {text!r}") from None


def pool_size(text):
    """Parses a pool size: an integer, or `none`/`global` for pooling to 1x1."""
    if text.lower() in ("none", "global"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer or 'none'. Received: {text!r}") from None


# Flag name -> ResNetConfig field. A flag left out keeps the variant's value.
ARCHITECTURE_FLAGS = {
    "blocks": "blocks", "channels": "channels", "conv_kernels": "conv_kernels",
    "skip_kernels": "skip_kernels", "pool_size": "pool_size", "head": "head", "se": "se",
    "se_ratio": "se_ratio", "dropout": "dropout", "block_dropout": "block_dropout",
    "activation": "activation", "initializer": "kernel_initializer",
}


def add_architecture_arguments(parser):
    """Adds the flags that override a variant's architecture."""
    group = parser.add_argument_group("architecture (overrides the variant's fields)")
    group.add_argument("--blocks", type=int_list, help="blocks per residual layer, e.g. 4,4,3")
    group.add_argument("--channels", type=int_list, help="channels per layer, e.g. 64,128,256")
    group.add_argument("--conv-kernels", type=int_list, help="block conv kernel: one or per layer")
    group.add_argument("--skip-kernels", type=int_list, help="shortcut kernel: one or per layer")
    group.add_argument("--pool-size", type=pool_size, default=argparse.SUPPRESS,
                       help="average-pool kernel before the classifier; 'none' pools to 1x1")
    group.add_argument("--head", help="avg or avg_max")
    group.add_argument("--se", help="squeeze-and-excitation: none, stem or block")
    group.add_argument("--se-ratio", type=int, help="SE channel reduction (default 16)")
    group.add_argument("--dropout", type=float, help="dropout before the classifier")
    group.add_argument("--block-dropout", type=float_list,
                       help="dropout inside blocks: one rate or one per layer")
    group.add_argument("--activation", help="relu, gelu, silu, ...")
    group.add_argument("--initializer", help="he_normal, glorot_uniform, random_normal, ...")
    group.add_argument("--param-budget", type=int, default=None,
                       help="maximum trainable parameters (default 5,000,000)")
    group.add_argument("--flash-budget", type=int, default=None,
                       help="maximum bytes of the int8 model (a microcontroller's flash): "
                            "estimated before building, checked after an int8/tflm export")
    group.add_argument("--macs-budget", type=int, default=None,
                       help="maximum multiply-accumulates per image")
    group.add_argument("--allow-over-budget", action="store_true",
                       help="build a configuration over the budget anyway")


def architecture_overrides(args):
    """Returns the `ResNetConfig` fields that the command line set."""
    overrides = {}
    for flag, field in ARCHITECTURE_FLAGS.items():
        value = getattr(args, flag, None)
        # None is a real pool size (pool to 1x1), so "not given" is a missing attribute.
        if flag == "pool_size" and hasattr(args, "pool_size"):
            overrides[field] = value
        elif value is not None:
            overrides[field] = value
    return overrides


def resolve_architecture(variant, overrides):
    """Resolves `--variant` and the architecture flags into a name and a config.

    A variant's fields are overridden by the flags. Without `--variant`, a command line
    that gives `--blocks` or `--channels` describes a new network: it starts from the
    plain family (`ResNetConfig` defaults: no SE, ReLU) and is called `custom`, rather
    than silently inheriting the default variant's SE; otherwise the default is
    `efficient`.

    Returns:
        A `(name, ResNetConfig)` tuple.
    """
    from keras_resnet.config import ResNetConfig
    from keras_resnet.variants import get_variant

    if variant is None and ("blocks" in overrides or "channels" in overrides):
        return "custom", ResNetConfig(**overrides)
    variant = variant or "efficient"
    return variant, get_variant(variant, **overrides)


def add_read_limit_arguments(parser):
    """Adds the flags that bound what reading a data set may decode."""
    from keras_resnet.limits import MB, ReadLimits

    defaults = ReadLimits()
    group = parser.add_argument_group("limits on untrusted data")
    group.add_argument("--max-member-mb", type=int, default=defaults.max_member_bytes // MB,
                       help="largest archive member read, in MB (default %(default)s)")
    group.add_argument("--max-archive-mb", type=int,
                       default=defaults.max_archive_bytes // MB,
                       help="largest total read from an archive, in MB (default %(default)s)")
    add_pixel_limit_argument(group)


def add_pixel_limit_argument(parser):
    """Adds `--max-image-pixels`."""
    from keras_resnet.limits import MAX_IMAGE_PIXELS

    parser.add_argument("--max-image-pixels", type=int, default=MAX_IMAGE_PIXELS,
                        help="most pixels of one image, checked before decoding "
                             "(default %(default)s)")


def read_limits(args):
    """The `ReadLimits` the flags of `add_read_limit_arguments` give."""
    from keras_resnet.limits import MB, ReadLimits

    for flag in ("max_member_mb", "max_archive_mb", "max_image_pixels"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be positive. "
                             f"Received: {flag}={getattr(args, flag)}")
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
        print(f"error: {type(error).__name__}: {one_line(error)} (an internal error; rerun "
              f"with {DEBUG_FLAG} for the traceback)", file=sys.stderr)
        return 1
