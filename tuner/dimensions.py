"""The tuner's dimensions: what can be searched, in which ranges, and how ranges are given.

A dimension's range comes from its default here, a `--space` JSON file, or its own flag
(`--learning-rate 1e-4:1e-2:log`); `resolve_ranges` combines them for the command line.
"""

import json

# name: (value type, default range, help). A range is {"values": [...]} (a choice) or
# {"min", "max"[, "step"][, "log"]} (an interval).
DIMENSIONS = {
    "num_layers": (int, {"values": [2, 3, 4]}, "residual layers N"),
    "blocks": (int, {"min": 1, "max": 4}, "basic blocks of each layer (one value per layer)"),
    "base_channels": (int, {"values": [16, 32, 48, 64]}, "C_1; doubles in every layer"),
    "channels": (int, {"values": [16, 32, 64, 128, 256]},
                 "channels chosen freely per layer (replaces base_channels)"),
    "conv_kernel": (int, {"values": [3, 5]}, "kernel F of the block convolutions"),
    "skip_kernel": (int, {"values": [1, 3]}, "kernel K of projection shortcuts"),
    # 0 pools to 1x1; a pool larger than the final map is cut to it (also 1x1).
    "pool_size": (int, {"values": [0, 1, 2, 4]}, "average-pool kernel P, 0 = global"),
    "se": (str, {"values": ["none", "stem", "block"]}, "squeeze-and-excitation placement"),
    "dropout": (float, {"min": 0.0, "max": 0.5, "step": 0.1}, "dropout before the classifier"),
    "activation": (str, {"values": ["relu", "gelu", "silu"]}, "activation"),
    "optimizer": (str, {"values": ["sgd", "adam", "adamw", "rmsprop"]}, "optimizer"),
    "learning_rate": (float, {"min": 1e-4, "max": 1e-1, "log": True}, "peak learning rate"),
    "batch_size": (int, {"values": [64, 128, 256]}, "batch size"),
    "weight_decay": (float, {"min": 1e-6, "max": 1e-3, "log": True}, "weight decay"),
    "schedule": (str, {"values": ["constant", "cosine", "step", "one_cycle"]}, "lr schedule"),
    "label_smoothing": (float, {"min": 0.0, "max": 0.2, "step": 0.05}, "label smoothing"),
    "lookahead": (bool, {"values": [False, True]}, "wrap the optimizer in Lookahead"),
    "augment": (str, {"values": ["crop,flip", "crop,flip,cutout", "none"]},
                "augmentation set: a comma-separated list is one value, ';' separates "
                "choices (crop,flip;none)"),
    # Paper 003's "batch shuffle": a tuner-only switch, not a TrainConfig field.
    "shuffle": (bool, {"values": [True, False]}, "reshuffle the training data every epoch"),
}
# The widest range each numeric dimension may take: beyond it a value is a typo (blocks up
# to 1e6 would build for hours) or cannot be a valid config at all.
LIMITS = {
    "num_layers": (1, 8), "blocks": (1, 64), "base_channels": (1, 4096),
    "channels": (1, 8192), "conv_kernel": (1, 15), "skip_kernel": (1, 15),
    "pool_size": (0, 512), "dropout": (0.0, 0.99), "learning_rate": (1e-8, 10.0),
    "batch_size": (1, 65536), "weight_decay": (0.0, 0.99), "label_smoothing": (0.0, 0.99),
}
_RANGE_KEYS = ("min", "max", "step", "log")
SET_DIMENSIONS = ("augment",)  # dimensions whose every value is a comma-separated set
DEFAULT_TUNED = tuple(d for d in DIMENSIONS if d not in ("channels", "shuffle"))
TRAIN_DIMENSIONS = ("optimizer", "learning_rate", "batch_size", "weight_decay", "schedule",
                    "label_smoothing", "lookahead", "augment")


def parse_range(name, spec):
    """Parses a dimension's range from a flag (`"a,b,c"`, `"lo:hi"`, `"lo:hi:log"`,
    `"lo:hi:step"`) or a space-file entry (a list or a dict).

    Returns:
        A dict `{"values": [...]}` or `{"min", "max", "step"?, "log"?}`.

    Raises:
        ValueError: for an unknown dimension or a malformed range.

    Example:

    >>> parse_range("learning_rate", "1e-4:1e-2:log")
    {'min': 0.0001, 'max': 0.01, 'log': True}
    >>> parse_range("se", "none,block")
    {'values': ['none', 'block']}
    >>> parse_range("augment", "crop,flip;none")
    {'values': ['crop,flip', 'none']}
    """
    if name not in DIMENSIONS:
        raise ValueError(f"Unknown search dimension; expected one of {', '.join(DIMENSIONS)}. "
                         f"Received: {name!r}")
    kind, given = DIMENSIONS[name][0], spec
    if name in SET_DIMENSIONS and isinstance(spec, str) and ":" not in spec:
        spec = spec.split(";")  # each value is itself a comma-separated set
    if isinstance(spec, dict):
        unknown = sorted(str(key) for key in set(spec) - {"values", *_RANGE_KEYS})
        if unknown:
            raise ValueError(f"`{name}`'s range has unknown key(s) {', '.join(unknown)}; "
                             f"expected values, or min, max, step, log. Received: "
                             f"{name}={given!r}")
        step = spec.get("step")
        if isinstance(step, (int, float)) and not isinstance(step, bool) and not step > 0:
            raise ValueError(f"`{name}`'s step must be positive. Received: {name}={given!r}")
    try:
        parsed = _parse_range(kind, spec)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
        raise ValueError(
            f"`{name}` needs a list of {kind.__name__} values (a,b,c) or, for numbers, a range "
            f"lo:hi, lo:hi:log or lo:hi:step. Received: {name}={given!r}") from None
    _check_limits(name, parsed, given)
    return parsed


def _parse_range(kind, spec):
    if isinstance(spec, str):
        if ":" in spec:
            parts = spec.split(":")
            spec = {"min": parts[0], "max": parts[1]}
            if len(parts) == 3 and parts[2] == "log":
                spec["log"] = True
            elif len(parts) == 3:
                spec["step"] = parts[2]
            elif len(parts) != 2:
                raise ValueError
        else:
            spec = {"values": spec.split(",")}
    elif isinstance(spec, (list, tuple)):
        spec = {"values": list(spec)}
    if not isinstance(spec, dict):
        raise ValueError
    if "values" in spec:
        if not isinstance(spec["values"], (list, tuple)):
            raise ValueError
        values = [_convert(kind, v) for v in spec["values"]]
        if not values or len(set(values)) != len(values) or set(spec) != {"values"}:
            raise ValueError
        return {"values": values}
    if kind not in (int, float) or not {"min", "max"} <= set(spec):
        raise ValueError
    parsed = {"min": _convert(kind, spec["min"]), "max": _convert(kind, spec["max"])}
    if spec.get("step") is not None:
        parsed["step"] = _convert(kind, spec["step"])
        if not parsed["step"] > 0:
            raise ValueError
    if spec.get("log") not in (None, False, True):
        raise ValueError
    if spec.get("log"):
        parsed["log"] = True
    if parsed["min"] > parsed["max"] or parsed.get("log") and parsed["min"] <= 0:
        raise ValueError
    return parsed


def _check_limits(name, parsed, given):
    if name not in LIMITS:
        return
    low, high = LIMITS[name]
    numbers = parsed.get("values") or [parsed["min"], parsed["max"]]
    if any(not low <= value <= high for value in numbers):
        raise ValueError(f"`{name}` must stay within [{low}, {high}]. Received: {name}={given!r}")


def _convert(kind, value):
    import math

    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise ValueError
    if kind is str:
        if isinstance(value, (dict, list)):
            raise ValueError
        return str(value).strip()
    if isinstance(value, bool):
        raise ValueError
    number = float(value)
    if not math.isfinite(number) or kind is int and not number.is_integer():
        raise ValueError
    return int(number) if kind is int else number


def read_space_file(path):
    """Reads a JSON space file: `{dimension: true | false | [values] | {"min", "max", ...}}`.

    Listed dimensions set to anything but `false` are tuned (`true`: the default range);
    the others keep the base's value.

    Returns:
        A dict of dimension name -> range (or `None` for the default range).

    Raises:
        ValueError: if the file is missing, not JSON, or names an unknown dimension.
    """
    from keras_resnet import limits

    text = limits.read_settings_text(path, "space")
    try:
        entries = json.loads(text)
        limits.count_values(entries)
    except ValueError as error:
        raise ValueError(f"Space file {path} could not be read as JSON: {error}. "
                         f"Received: space={path!r}") from None
    if not isinstance(entries, dict):
        raise ValueError(f"Space file {path} must hold a JSON object of dimensions. "
                         f"Received: {type(entries).__name__}")
    for name in entries:
        if name not in DIMENSIONS:
            raise ValueError(f"Space file {path} names an unknown search dimension; expected "
                             f"some of {', '.join(DIMENSIONS)}. Received: {name!r}")
    return {name: None if spec is True else parse_range(name, spec)
            for name, spec in entries.items() if spec is not False}


def _dimension_list(text, flag):
    if text is None:
        return []
    names = list(DIMENSIONS) if text == "all" else [n.strip() for n in text.split(",") if n]
    unknown = [n for n in names if n not in DIMENSIONS]
    if unknown:
        raise ValueError(f"{flag} names unknown dimension(s); expected some of "
                         f"{', '.join(DIMENSIONS)}. Received: {','.join(unknown)}")
    return names


def resolve_ranges(args, study=None):
    """Resolves --space, --tune, --freeze and the dimension flags into ranges."""
    if study is not None:
        ranges = study.ranges()
    elif args.space:
        ranges = {name: spec or DIMENSIONS[name][1]
                  for name, spec in read_space_file(args.space).items()}
    elif args.tune is None:
        ranges = {name: DIMENSIONS[name][1] for name in DEFAULT_TUNED}
    else:  # --tune names the dimensions to tune: every other one keeps the base's value
        ranges = {}
    for name in _dimension_list(args.tune, "--tune"):
        ranges.setdefault(name, DIMENSIONS[name][1])
    for name in DIMENSIONS:
        flag = getattr(args, f"dim_{name}")
        if flag is not None:
            ranges[name] = parse_range(name, flag)
    for name in _dimension_list(args.freeze, "--freeze"):
        ranges.pop(name, None)
    if "channels" in ranges and "base_channels" in ranges and args.dim_base_channels is None:
        ranges.pop("base_channels")  # choosing free channels replaces the doubling
    return ranges
