"""Shared command-line plumbing: one-line errors, list parsing, architecture flags.

Every command of the project (train.py, the tuner, export, bench) reports bad input as one
line on stderr with exit code 2 and no traceback; this module is where that lives.
"""

import argparse
import json
import sys

EXIT_USAGE = 2


class ArgumentParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors are one line, exit code 2."""

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


def print_json_line(payload):
    """Prints `payload` as the last line of stdout, the machine-readable result."""
    sys.stdout.flush()
    print(json.dumps(payload, sort_keys=True, default=str), flush=True)


def run_main(main, argv=None):
    """Runs `main(argv)`, turning a `ValueError` into one line on stderr and exit 2.

    Returns:
        The exit code.
    """
    try:
        return main(argv) or 0
    except SystemExit as exit:  # argparse's own exit, already reported in one line
        return exit.code
    except (ValueError, FileNotFoundError) as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
