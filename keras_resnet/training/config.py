"""Training configuration: one frozen dataclass (the recipes live beside their variants)."""

import dataclasses

from keras_resnet.fields import ConfigDict, check_fields, check_sequence, option

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta")
SCHEDULES = ("constant", "cosine", "cosine_restarts", "step", "multistep", "exponential",
             "one_cycle", "plateau")
WEIGHT_DECAY_MODES = ("l2", "decoupled")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
JIT_MODES = ("auto", "on", "off")
AUGMENT_PLACEMENTS = ("auto", "host", "device")
STRATEGIES = ("auto", "none", "mirrored", "multi_worker")


@dataclasses.dataclass(frozen=True)
class TrainConfig(ConfigDict):
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

    config_name = "training"
    optimizer: str = option("sgd", "optimizer", choices=OPTIMIZERS)
    learning_rate: float = option(0.1, "peak learning rate")
    momentum: float = option(0.9, "SGD/RMSprop momentum")
    nesterov: bool = option(False, "Nesterov momentum")
    weight_decay: float = option(0.0, "weight decay (see --weight-decay-mode)")
    weight_decay_mode: str = option("l2", "l2: coupled, PyTorch-style; decoupled: AdamW-style",
                                    choices=WEIGHT_DECAY_MODES)
    schedule: str = option("cosine", "learning-rate schedule", choices=SCHEDULES)
    warmup_epochs: float = option(0.0, "linear warm-up epochs (cosine, one_cycle)")
    decay_epochs: int = option(20, "period of step/exponential decay, in epochs")
    decay_rate: float = option(0.1, "decay factor of step, multistep, exponential, plateau")
    milestones: tuple = option((), "epochs at which multistep decays, e.g. 60,120", item=int)
    restart_epochs: int = option(10, "first period of cosine_restarts")
    plateau_patience: int = option(2, "epochs without improvement before plateau decays")
    min_learning_rate: float = option(0.0, "floor of cosine schedules and plateau")
    epochs: int = option(200, "epochs")
    batch_size: int = option(128, "global batch size")
    clip_value: float | None = option(None, "clip gradients by value")
    clip_norm: float | None = option(None, "clip each gradient by norm")
    global_clip_norm: float | None = option(None, "clip all gradients by global norm")
    label_smoothing: float = option(0.0, "label smoothing")
    lookahead: bool = option(False, "wrap the optimizer in Lookahead")
    lookahead_k: int = option(5, "Lookahead sync period")
    lookahead_alpha: float = option(0.5, "Lookahead slow step size")
    augment: tuple = option(("crop", "flip"), "comma-separated: crop, flip, cutout, zoom, "
                            "translate, rotate, color, mixup, cutmix; or none")
    augment_on: str = option("auto", "host (tf.data), device (in the train step) or auto",
                             choices=AUGMENT_PLACEMENTS)
    val_split: float = option(0.1, "fraction of train held out for validation (never test)")
    seed: int = option(0, "random seed")
    precision: str = option("auto", "Keras dtype policy", choices=PRECISIONS)
    jit: str = option("auto", "XLA compilation", choices=JIT_MODES)
    strategy: str = option("auto", "distribution strategy", choices=STRATEGIES)
    steps_per_epoch: int | None = option(None, "limit each epoch to N steps (quick runs)")
    steps_per_execution: int = option(1, "train steps per compiled call")
    tta: bool = option(False, "also report test accuracy with flip test-time augmentation")
    fused_batch_norm: bool = option(True, "TensorFlow's fused batch-norm kernel in training")

    def __post_init__(self):
        from keras_resnet.data.augment import parse_augment

        check_fields(self)
        milestones = self.milestones
        if isinstance(milestones, str):
            milestones = tuple(v for v in milestones.split(",") if v)
        object.__setattr__(self, "milestones", check_sequence("milestones", milestones, int))
        object.__setattr__(self, "augment", parse_augment(check_sequence(
            "augment", self.augment.split(",") if isinstance(self.augment, str)
            else self.augment, str)))
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

    def epoch_steps(self, num_train):
        """Optimizer steps of an epoch of `num_train` images: `steps_per_epoch`, else whole
        batches only (the last partial batch is dropped, so every step has one shape and
        XLA compiles the step once)."""
        return self.steps_per_epoch or max(1, num_train // self.batch_size)
