"""The search space: hyperparameter values -> (ResNetConfig, TrainConfig), within a budget.

Every dimension is switchable. A dimension that is off keeps the base variant's value (or
its recipe's); one that is on is declared as a keras-tuner hyperparameter. A trial's values
become configs through `dataclasses.replace` of the base, so they are validated like any
other config, and the network is always `keras_resnet.build_resnet`'s.

Budget rejection uses `SearchSpace.within_budget` (analytic: `keras_resnet.check_budget`'s
parameter count, int8 flash estimate and MACs) inside the oracle
(`tuner.hypermodel.BudgetOracleMixin`), before a trial exists.
"""

import dataclasses
import json
import os

from keras_resnet.config import ResNetConfig, _downsampled
from keras_resnet.data.augment import parse_augment
from keras_resnet.model import (
    count_params,
    estimate_flops,
    estimate_int8_bytes,
    over_budget,
)
from keras_resnet.training.config import TrainConfig

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
                "augmentation set (a comma-separated list is one value)"),
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
    """
    if name not in DIMENSIONS:
        raise ValueError(f"Unknown search dimension; expected one of {', '.join(DIMENSIONS)}. "
                         f"Received: {name!r}")
    kind, given = DIMENSIONS[name][0], spec
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
    if not os.path.isfile(path):
        raise ValueError(f"Space file {path} does not exist. Received: space={path!r}")
    try:
        with open(path) as handle:
            entries = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"Space file {path} is not valid JSON: {error}. "
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


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The tuned dimensions around a base architecture and recipe.

    Args:
        base_model: `ResNetConfig`. Values of the dimensions that are off.
        base_train: `TrainConfig`. The recipe; `epochs` and `steps_per_epoch` are the
            trial's.
        ranges: dict. Tuned dimension name -> range (see `parse_range`).
        param_budget: int. Maximum trainable parameters. Defaults to 5,000,000.
        flash_budget: int or None. Maximum bytes of the int8 model, as estimated by
            `keras_resnet.model.estimate_int8_bytes`. Defaults to `None` (no limit).
        macs_budget: int or None. Maximum multiply-accumulates per image. Defaults to
            `None` (no limit).

    Raises:
        ValueError: if both `base_channels` and `channels` are tuned.

    Example:

    >>> from keras_resnet.variants import get_variant
    >>> from keras_resnet.training import get_recipe
    >>> space = SearchSpace(get_variant("tiny"), get_recipe("tiny"),
    ...                     {"num_layers": {"values": [2, 3]}, "blocks": {"min": 1, "max": 2}})
    >>> model, train, extras = space.resolve({"num_layers": 2, "blocks_1": 1, "blocks_2": 2})
    >>> model.blocks, model.channels, space.trainable_params({"num_layers": 2, "blocks_1": 1,
    ...                                                        "blocks_2": 2})
    ((1, 2), (16, 32), 42650)
    """

    base_model: ResNetConfig
    base_train: TrainConfig
    ranges: dict
    param_budget: int = 5_000_000
    flash_budget: int | None = None
    macs_budget: int | None = None

    def __post_init__(self):
        if "channels" in self.ranges and "base_channels" in self.ranges:
            raise ValueError("Tune either `base_channels` (doubling per layer) or `channels` "
                             "(free per layer), not both. Received: both")

    @property
    def max_layers(self):
        """Most residual layers any trial may have."""
        return max(self.ranges.get("num_layers", {"values": [self.base_model.num_layers]})["values"])

    def declare(self, hp):
        """Declares every tuned dimension on `hp` (a `keras_tuner.HyperParameters`)."""
        layers = self.ranges.get("num_layers", {"values": [self.base_model.num_layers]})
        if "num_layers" in self.ranges:
            hp.Choice("num_layers", layers["values"])
        for name, spec in self.ranges.items():
            if name == "num_layers":
                continue
            if name not in ("blocks", "channels"):
                _declare(hp, name, spec)
                continue
            for layer in range(1, self.max_layers + 1):
                active = [n for n in layers["values"] if n >= layer]
                if "num_layers" in self.ranges and len(active) < len(layers["values"]):
                    with hp.conditional_scope("num_layers", active):
                        _declare(hp, f"{name}_{layer}", spec)
                else:
                    _declare(hp, f"{name}_{layer}", spec)

    def resolve(self, values):
        """Turns a trial's values into `(ResNetConfig, TrainConfig, extras)`.

        Raises:
            ValueError: if the values make an invalid config.
        """
        base, values = self.base_model, dict(values)
        layers = int(values.get("num_layers", base.num_layers))
        final = _downsampled(min(base.input_shape[:2]), layers - 1)
        model = {}
        if "blocks" in self.ranges:
            model["blocks"] = tuple(int(values.get(f"blocks_{i}", _low(self.ranges["blocks"])))
                                    for i in range(1, layers + 1))
        else:
            model["blocks"] = _fit_layers(base.blocks, layers)
        if "channels" in self.ranges:
            model["channels"] = tuple(int(values.get(f"channels_{i}", _low(self.ranges["channels"])))
                                      for i in range(1, layers + 1))
        elif "base_channels" in values:
            model["channels"] = tuple(int(values["base_channels"]) * 2 ** i for i in range(layers))
        else:
            # A deeper network than the base continues its doubling.
            model["channels"] = tuple(base.channels[i] if i < base.num_layers
                                      else base.channels[-1] * 2 ** (i - base.num_layers + 1)
                                      for i in range(layers))
        for field, name in (("conv_kernels", "conv_kernel"), ("skip_kernels", "skip_kernel")):
            model[field] = int(values[name]) if name in values else _fit_layers(
                getattr(base, field), layers)
        model["block_dropout"] = _fit_layers(base.block_dropout, layers)
        pool = values.get("pool_size", base.pool_size or 0)
        if "pool_size" not in values and base.pool_size and base.pool_size >= min(base.final_size):
            pool = 0  # the base pooled to 1x1: keep doing so at any depth
        model["pool_size"] = None if not pool else min(int(pool), final)
        for name in ("se", "dropout", "activation"):
            if name in values:
                model[name] = DIMENSIONS[name][0](values[name])
        model_config = dataclasses.replace(base, **model)
        # Oracles hand back booleans as 0/1 and numbers as numpy scalars: plain types here.
        train = {name: DIMENSIONS[name][0](values[name]) for name in TRAIN_DIMENSIONS
                 if name in values}
        if "augment" in train:
            train["augment"] = parse_augment(train["augment"])
        train_config = dataclasses.replace(self.base_train, **train)
        return model_config, train_config, {"shuffle": bool(values.get("shuffle", True))}

    def trainable_params(self, values):
        """The analytic trainable-parameter count of `values`' model."""
        return count_params(self.resolve(values)[0])["trainable"]

    def footprint(self, values):
        """Trainable parameters, estimated int8 bytes and MACs per image of `values`' model."""
        model = self.resolve(values)[0]
        return {"params": count_params(model)["trainable"],
                "flash_bytes": estimate_int8_bytes(model),
                "macs": estimate_flops(model) // 2}

    def budget_excess(self, values):
        """Why `values`' model is over a budget (parameters, flash, MACs), or `None`.

        Raises:
            ValueError: if the values make an invalid config.
        """
        return over_budget(self.resolve(values)[0], self.param_budget, self.flash_budget,
                           self.macs_budget)

    def within_budget(self, values):
        """True if `values`' model fits every budget; see `budget_excess`."""
        return self.budget_excess(values) is None

    def check_feasible(self, seed=0, draws=500):
        """Raises ValueError if no drawn configuration (nor the smallest corner) fits."""
        import keras_tuner

        hp = keras_tuner.HyperParameters()
        self.declare(hp)
        candidates = [_corner(hp)]
        for draw in range(draws):
            candidates.append(_random_values(hp, seed * 7919 + draw))
        if any(self.within_budget(values) for values in candidates):
            return
        smallest = {key: min(self.footprint(values)[key] for values in candidates)
                    for key in ("params", "flash_bytes", "macs")}
        raise ValueError(
            f"No configuration of the search space fits the budget: the smallest found has "
            f"{smallest['params']:,} trainable parameters, {smallest['flash_bytes']:,} int8 "
            f"bytes, {smallest['macs']:,} MACs per image. Raise --param-budget, "
            f"--flash-budget or --macs-budget, or shrink the space. Received: "
            f"param_budget={self.param_budget}, flash_budget={self.flash_budget}, "
            f"macs_budget={self.macs_budget}")

    def to_dict(self):
        """JSON-safe description, compared on resume."""
        # Device budgets only when set, so a search recorded before they existed resumes.
        budgets = {name: getattr(self, name) for name in ("flash_budget", "macs_budget")
                   if getattr(self, name) is not None}
        return {"base_model": self.base_model.to_dict(), "base_train": self.base_train.to_dict(),
                "ranges": self.ranges, "param_budget": self.param_budget, **budgets}


def _declare(hp, name, spec):
    kind = DIMENSIONS[name.rsplit("_", 1)[0] if name[-1].isdigit() else name][0]
    if "values" in spec:
        if kind is bool and sorted(spec["values"]) == [False, True]:
            return hp.Boolean(name)
        return hp.Choice(name, spec["values"], ordered=kind in (int, float))
    sampling = "log" if spec.get("log") else "linear"
    if kind is int:
        return hp.Int(name, spec["min"], spec["max"], step=spec.get("step"), sampling=sampling)
    return hp.Float(name, spec["min"], spec["max"], step=spec.get("step"), sampling=sampling)


def _low(spec):
    return spec["min"] if "min" in spec else min(spec["values"])


def _fit_layers(values, layers):
    """Cuts or extends (repeating the last) a per-layer tuple to `layers` entries."""
    return tuple(values[:layers]) + (values[-1],) * max(0, layers - len(values))


def _random_values(hp, seed):
    values = {}
    space = hp.copy()
    for parameter in space.space:
        if space.is_active(parameter):
            values[parameter.name] = space.values[parameter.name] = \
                parameter.random_sample(seed)
            seed += 1
    return values


def _corner(hp):
    """The values that usually give the fewest parameters: every dimension at its low end."""
    values = {}
    for parameter in hp.space:
        config = parameter.get_config()
        low = config.get("min_value", min(config.get("values", [False]),
                                          key=lambda v: (str(v) != "none", v)))
        values[parameter.name] = False if parameter.name == "lookahead" else low
    return values

