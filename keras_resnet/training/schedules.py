"""Learning-rate schedules by name, from Keras' own where Keras has them."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_resnet")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle policy (Smith & Topin, 2018), as PyTorch's `OneCycleLR` (cosine).

    Rises from `max_learning_rate / div_factor` to `max_learning_rate` over the first
    `warmup_steps`, then anneals by cosine to `max_learning_rate / final_div_factor`.
    Keras has no one-cycle schedule.

    Args:
        max_learning_rate: float. Peak learning rate.
        total_steps: int. Steps of the whole run.
        warmup_steps: int. Steps of the rising phase.
        div_factor: float. Start is `max_learning_rate / div_factor`. Defaults to `25`.
        final_div_factor: float. End is `max_learning_rate / final_div_factor`.
            Defaults to `1e4`.

    Example:

    >>> schedule = OneCycle(0.1, total_steps=100, warmup_steps=30)
    >>> [round(float(schedule(step)), 4) for step in (0, 30, 100)]
    [0.004, 0.1, 0.0]
    """

    def __init__(self, max_learning_rate, total_steps, warmup_steps, div_factor=25.0,
                 final_div_factor=1e4):
        self.max_learning_rate = max_learning_rate
        self.total_steps = total_steps
        self.warmup_steps = max(1, warmup_steps)
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.max_learning_rate
        start, end = peak / self.div_factor, peak / self.final_div_factor
        rise = ops.minimum(step / self.warmup_steps, 1.0)
        fall = ops.clip((step - self.warmup_steps)
                        / max(1, self.total_steps - self.warmup_steps), 0.0, 1.0)
        rising = start + (peak - start) * rise
        falling = end + (peak - end) * 0.5 * (1.0 + ops.cos(math.pi * fall))
        return ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self):
        return {"max_learning_rate": self.max_learning_rate, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "div_factor": self.div_factor,
                "final_div_factor": self.final_div_factor}


def build_learning_rate(config, steps_per_epoch):
    """Builds the learning rate of a `TrainConfig`: a float or a schedule of the step.

    `plateau` is a constant rate here that `keras.callbacks.ReduceLROnPlateau` lowers
    (`keras_resnet.training.run.TrainingRun.schedule_callbacks`).

    Args:
        config: `TrainConfig`.
        steps_per_epoch: int. Optimizer steps per epoch.

    Returns:
        A float or a `keras.optimizers.schedules.LearningRateSchedule`.

    Example:

    >>> from keras_resnet.training.config import TrainConfig
    >>> schedule = build_learning_rate(
    ...     TrainConfig(learning_rate=0.01, schedule="step", decay_rate=1 / 3,
    ...                 decay_epochs=20, epochs=50), steps_per_epoch=10)
    >>> [round(float(schedule(epoch * 10)), 5) for epoch in (0, 19, 20, 40)]
    [0.01, 0.01, 0.00333, 0.00111]
    """
    schedules = keras.optimizers.schedules
    rate = config.learning_rate
    total = config.epochs * steps_per_epoch
    warmup = int(config.warmup_epochs * steps_per_epoch)
    if config.schedule in ("constant", "plateau"):
        return rate
    if config.schedule == "cosine":
        if warmup:
            return schedules.CosineDecay(0.0, total - warmup, alpha=config.min_learning_rate / rate,
                                         warmup_target=rate, warmup_steps=warmup)
        return schedules.CosineDecay(rate, total, alpha=config.min_learning_rate / rate)
    if config.schedule == "cosine_restarts":
        return schedules.CosineDecayRestarts(
            rate, config.restart_epochs * steps_per_epoch, alpha=config.min_learning_rate / rate)
    if config.schedule in ("step", "exponential"):
        return schedules.ExponentialDecay(
            rate, config.decay_epochs * steps_per_epoch, config.decay_rate,
            staircase=config.schedule == "step")
    if config.schedule == "multistep":
        # PiecewiseConstantDecay keeps the old value at step == boundary; PyTorch's
        # MultiStepLR runs the whole milestone epoch at the new one.
        boundaries = [int(m * steps_per_epoch) - 1 for m in config.milestones]
        values = [rate * config.decay_rate ** i for i in range(len(boundaries) + 1)]
        return schedules.PiecewiseConstantDecay(boundaries, values)
    if config.schedule == "one_cycle":
        # PyTorch's default rising phase is 30% of the run.
        return OneCycle(rate, total, warmup or int(0.3 * total))
    raise ValueError(f"Unknown schedule. Received: schedule={config.schedule!r}")
