"""The search space: hyperparameter values -> (ResNetConfig, TrainConfig), within a budget.

Every dimension is switchable. A dimension that is off keeps the base variant's value (or
its recipe's); one that is on is declared as a keras-tuner hyperparameter. A trial's values
become configs through `dataclasses.replace` of the base, so they are validated like any
other config, and the network is always `keras_resnet.build_resnet`'s.

Budget rejection uses `SearchSpace.within_budget` (analytic: `keras_resnet.check_budget`'s
parameter count, int8 flash estimate, MACs and TFLM arena estimate) inside the oracle
(`tuner.hypermodel.BudgetOracleMixin`), before a trial exists.
"""

import dataclasses

from keras_resnet.config import DEFAULT_PARAM_BUDGET, ResNetConfig, downsampled
from keras_resnet.model import (
    count_params,
    estimate_arena_bytes,
    estimate_flops,
    estimate_int8_bytes,
    over_budget,
)
from keras_resnet.training.config import TrainConfig
from tuner.dimensions import DIMENSIONS, TRAIN_DIMENSIONS

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
        arena_budget: int or None. Maximum bytes of TFLM's tensor arena, as estimated by
            `keras_resnet.model.estimate_arena_bytes`. Defaults to `None` (no limit).

    Raises:
        ValueError: if both `base_channels` and `channels` are tuned.

    Example:

    >>> from keras_resnet.variants import get_variant
    >>> from keras_resnet.variants import get_recipe
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
    param_budget: int = DEFAULT_PARAM_BUDGET
    flash_budget: int | None = None
    macs_budget: int | None = None
    arena_budget: int | None = None

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
        final = downsampled(min(base.input_shape[:2]), layers - 1)
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
        train_config = dataclasses.replace(self.base_train, **train)
        return model_config, train_config, {"shuffle": bool(values.get("shuffle", True))}

    def trainable_params(self, values):
        """The analytic trainable-parameter count of `values`' model."""
        return count_params(self.resolve(values)[0])["trainable"]

    def footprint(self, values):
        """Trainable parameters, estimated int8 bytes, MACs per image and estimated TFLM
        arena bytes of `values`' model."""
        model = self.resolve(values)[0]
        return {"params": count_params(model)["trainable"],
                "flash_bytes": estimate_int8_bytes(model),
                "macs": estimate_flops(model) // 2,
                "arena_bytes": estimate_arena_bytes(model)}

    def budget_excess(self, values):
        """Why `values`' model is over a budget (parameters, flash, MACs, arena), or `None`.

        Raises:
            ValueError: if the values make an invalid config.
        """
        return over_budget(self.resolve(values)[0], self.param_budget, self.flash_budget,
                           self.macs_budget, self.arena_budget)

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
                    for key in ("params", "flash_bytes", "macs", "arena_bytes")}
        raise ValueError(
            f"No configuration of the search space fits the budget: the smallest found has "
            f"{smallest['params']:,} trainable parameters, {smallest['flash_bytes']:,} int8 "
            f"bytes, {smallest['macs']:,} MACs per image, a {smallest['arena_bytes']:,}-byte "
            f"arena. Raise --param-budget, --flash-budget, --macs-budget or --arena-budget, "
            f"or shrink the space. Received: param_budget={self.param_budget}, "
            f"flash_budget={self.flash_budget}, macs_budget={self.macs_budget}, "
            f"arena_budget={self.arena_budget}")

    def to_dict(self):
        """JSON-safe description, compared on resume."""
        # Device budgets only when set, so a search recorded before they existed resumes.
        budgets = {name: getattr(self, name)
                   for name in ("flash_budget", "macs_budget", "arena_budget")
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

