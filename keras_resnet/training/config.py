"""Training configuration: one frozen dataclass, and each paper's recipe as data."""

import dataclasses

from keras_resnet.fields import check_fields, check_sequence

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta")
SCHEDULES = ("constant", "cosine", "cosine_restarts", "step", "multistep", "exponential",
             "one_cycle", "plateau")
WEIGHT_DECAY_MODES = ("l2", "decoupled")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
JIT_MODES = ("auto", "on", "off")
AUGMENT_PLACEMENTS = ("auto", "host", "device")
STRATEGIES = ("auto", "none", "mirrored", "multi_worker")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train: optimizer, schedule, regularization, data handling and numerics.

    Args:
        optimizer: str. One of `OPTIMIZERS`. Defaults to `"sgd"`.
        learning_rate: float. Peak learning rate. Defaults to `0.1`.
        momentum: float. Momentum of SGD and RMSprop. Defaults to `0.9`.
        nesterov: bool. Nesterov momentum for SGD. Defaults to `False`.
        weight_decay: float. Defaults to `0.0`.
        weight_decay_mode: str. `"l2"` adds `weight_decay * w` to every gradient, as
            PyTorch's `weight_decay` that the papers used; `"decoupled"` shrinks weights
            apart from the gradient (AdamW). Defaults to `"l2"`.
        schedule: str. One of `SCHEDULES`. Defaults to `"cosine"`.
        warmup_epochs: float. Linear warm-up, for `cosine` and `one_cycle`. Defaults to `0`.
        decay_epochs: int. Period of `step` and `exponential` decay. Defaults to `20`.
        decay_rate: float. Factor per period of `step`, `multistep` and `exponential`.
            Defaults to `0.1`.
        milestones: tuple of int. Epochs at which `multistep` decays. Defaults to `()`.
        restart_epochs: int. First period of `cosine_restarts`. Defaults to `10`.
        plateau_patience: int. Epochs without improvement before `plateau` decays.
            Defaults to `2`.
        min_learning_rate: float. Floor of cosine-type schedules. Defaults to `0.0`.
        epochs: int. Defaults to `200`.
        batch_size: int. Global batch size (all devices together). Defaults to `128`.
        clip_value: float or None. Clip every gradient element to [-v, v].
        clip_norm: float or None. Clip each gradient's norm.
        global_clip_norm: float or None. Clip the norm of all gradients together.
        label_smoothing: float. Defaults to `0.0`.
        lookahead: bool. Wrap the optimizer in Lookahead. Defaults to `False`.
        lookahead_k: int. Lookahead's sync period. Defaults to `5`.
        lookahead_alpha: float. Lookahead's slow step size. Defaults to `0.5`.
        augment: tuple of str. Augmentations by name. Defaults to `("crop", "flip")`.
        augment_on: str. `"host"` (tf.data), `"device"` (inside the compiled step) or
            `"auto"` (host on TensorFlow, device elsewhere). Defaults to `"auto"`.
        val_split: float. Fraction of train held out for validation. Defaults to `0.1`.
        seed: int. Defaults to `0`.
        precision: str. One of `PRECISIONS`. Defaults to `"auto"`.
        jit: str. XLA compilation, one of `JIT_MODES`. Defaults to `"auto"`.
        strategy: str. One of `STRATEGIES`. Defaults to `"auto"`.
        steps_per_epoch: int or None. Limit each epoch (quick runs). Defaults to `None`.
        steps_per_execution: int. Train steps per compiled call. Defaults to `1`.
        tta: bool. Average predictions with the horizontal flip at test. Defaults to `False`.
        fused_batch_norm: bool. On TensorFlow, train batch norm through the fused kernel
            (same math, 2.1-2.4x faster bf16 steps on CPU). Defaults to `True`.

    Raises:
        ValueError: if a field is out of range.

    Example:

    >>> TrainConfig(optimizer="adam", learning_rate=1e-3).optimizer
    'adam'
    """

    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    weight_decay_mode: str = "l2"
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    decay_epochs: int = 20
    decay_rate: float = 0.1
    milestones: tuple = ()
    restart_epochs: int = 10
    plateau_patience: int = 2
    min_learning_rate: float = 0.0
    epochs: int = 200
    batch_size: int = 128
    clip_value: float | None = None
    clip_norm: float | None = None
    global_clip_norm: float | None = None
    label_smoothing: float = 0.0
    lookahead: bool = False
    lookahead_k: int = 5
    lookahead_alpha: float = 0.5
    augment: tuple = ("crop", "flip")
    augment_on: str = "auto"
    val_split: float = 0.1
    seed: int = 0
    precision: str = "auto"
    jit: str = "auto"
    strategy: str = "auto"
    steps_per_epoch: int | None = None
    steps_per_execution: int = 1
    tta: bool = False
    fused_batch_norm: bool = True

    def __post_init__(self):
        check_fields(self)
        for name, kind in (("milestones", int), ("augment", str)):
            value = getattr(self, name)
            if isinstance(value, str):
                value = tuple(v for v in value.split(",") if v)
            object.__setattr__(self, name, check_sequence(name, value, kind))
        for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                              ("weight_decay_mode", WEIGHT_DECAY_MODES),
                              ("precision", PRECISIONS), ("jit", JIT_MODES),
                              ("augment_on", AUGMENT_PLACEMENTS), ("strategy", STRATEGIES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}` must be one of {', '.join(allowed)}. "
                                 f"Received: {name}={getattr(self, name)!r}")
        positive = ("learning_rate", "epochs", "batch_size", "decay_epochs", "restart_epochs",
                    "lookahead_k", "steps_per_execution")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be positive. Received: {name}={getattr(self, name)!r}")
        for name in ("clip_value", "clip_norm", "global_clip_norm", "steps_per_epoch"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"`{name}` must be positive or None. Received: {name}={value!r}")
        clipping = [name for name in ("clip_value", "clip_norm", "global_clip_norm")
                    if getattr(self, name) is not None]
        if len(clipping) > 1:
            # Keras optimizers take one kind of clipping; refused here, before any data loads.
            raise ValueError("Only one of `clip_value`, `clip_norm` and `global_clip_norm` can "
                             "be set. Received: " + ", ".join(
                                 f"{name}={getattr(self, name)!r}" for name in clipping))
        fractions = (("label_smoothing", 0, 1), ("val_split", 0, 1), ("momentum", 0, 1),
                     ("decay_rate", 0, 1), ("weight_decay", 0, 1))
        for name, low, high in fractions:
            if not low <= getattr(self, name) < high:
                raise ValueError(f"`{name}` must be in [{low}, {high}). "
                                 f"Received: {name}={getattr(self, name)!r}")
        if not 0 < self.lookahead_alpha <= 1:
            raise ValueError("`lookahead_alpha` must be in (0, 1]. "
                             f"Received: lookahead_alpha={self.lookahead_alpha!r}")
        if self.warmup_epochs < 0 or self.warmup_epochs >= self.epochs:
            raise ValueError("`warmup_epochs` must be in [0, epochs). "
                             f"Received: warmup_epochs={self.warmup_epochs!r}")
        if self.warmup_epochs and self.schedule not in ("cosine", "one_cycle"):
            raise ValueError("`warmup_epochs` applies to the cosine and one_cycle schedules. "
                             f"Received: warmup_epochs={self.warmup_epochs!r} with "
                             f"schedule={self.schedule!r}")
        if self.schedule == "multistep" and not self.milestones:
            raise ValueError("The multistep schedule needs `milestones` (epochs). "
                             f"Received: milestones={self.milestones!r}")
        if self.plateau_patience < 1:
            raise ValueError("`plateau_patience` must be positive. "
                             f"Received: plateau_patience={self.plateau_patience!r}")
        if self.seed < 0:  # numpy's generators take no negative seed
            raise ValueError(f"`seed` must be 0 or more. Received: seed={self.seed!r}")

    def to_dict(self):
        """Returns the config as a JSON-safe dict."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values):
        """Builds a config from `to_dict()` output, refusing unknown keys.

        Raises:
            ValueError: if `values` is not a dict, has a key that is not a field, or a
                value of the wrong type.
        """
        if not isinstance(values, dict):
            raise ValueError("A training configuration must be a mapping of field names to "
                             f"values. Received: {type(values).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(key) for key in set(values) - fields)
        if unknown:
            raise ValueError(f"Unknown training field(s) {', '.join(unknown)}; expected some "
                             f"of {', '.join(sorted(fields))}. Received: {unknown}")
        return cls(**values)


# Time to accuracy, after airbench and "How to train your ResNet" (Page, 2018): a large
# batch, one-cycle with a short warm-up, Nesterov SGD, label smoothing 0.2 (airbench's
# value), Lookahead in place of airbench's weight averaging, flip test-time augmentation,
# and few epochs.
FAST_RECIPE = TrainConfig(
    optimizer="sgd", learning_rate=0.4, momentum=0.9, nesterov=True, weight_decay=5e-4,
    schedule="one_cycle", warmup_epochs=2, epochs=12, batch_size=512, label_smoothing=0.2,
    lookahead=True, tta=True)
RECIPE_NAMES = ("paper", "fast")


def get_recipe(variant, recipe="paper"):
    """Returns a training recipe.

    Args:
        variant: str. The variant whose paper's recipe `"paper"` means; the SGD default
            (`TrainConfig()`) for names without one.
        recipe: str. `"paper"` or `"fast"` (time to accuracy). Defaults to `"paper"`.

    Raises:
        ValueError: for an unknown `recipe`.
    """
    if recipe not in RECIPE_NAMES:
        raise ValueError(f"`recipe` must be one of {', '.join(RECIPE_NAMES)}. "
                         f"Received: recipe={recipe!r}")
    if recipe == "fast":
        return FAST_RECIPE
    from keras_resnet.variants import VARIANTS

    return VARIANTS[variant].recipe if variant in VARIANTS else TrainConfig()
