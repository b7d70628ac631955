"""Optimizers by name, with clipping, weight decay and Lookahead from a `TrainConfig`."""

import keras

from keras_resnet.training.lookahead import Lookahead
from keras_resnet.training.schedules import build_learning_rate


def build_optimizer(config, steps_per_epoch):
    """Builds the optimizer a `TrainConfig` describes.

    Decoupled weight decay goes to the Keras optimizer's `weight_decay`; L2 decay is
    applied to the model instead (`apply_l2_weight_decay`), because it must pass through
    momentum and Adam's moments as PyTorch's `weight_decay` does.

    Args:
        config: `TrainConfig`.
        steps_per_epoch: int. Optimizer steps per epoch, for the schedule.

    Returns:
        A `keras.optimizers.Optimizer`, wrapped in `Lookahead` if `config.lookahead`.

    Example:

    >>> from keras_resnet.training.config import TrainConfig
    >>> optimizer = build_optimizer(TrainConfig(lookahead=True, clip_value=0.1), 10)
    >>> type(optimizer).__name__, type(optimizer.inner_optimizer).__name__
    ('Lookahead', 'SGD')
    """
    options = {
        "learning_rate": build_learning_rate(config, steps_per_epoch),
        "clipvalue": config.clip_value,
        "clipnorm": config.clip_norm,
        "global_clipnorm": config.global_clip_norm,
    }
    if config.weight_decay and config.weight_decay_mode == "decoupled":
        options["weight_decay"] = config.weight_decay
    name = config.optimizer
    if name == "sgd":
        optimizer = keras.optimizers.SGD(momentum=config.momentum, nesterov=config.nesterov,
                                         **options)
    elif name == "rmsprop":
        optimizer = keras.optimizers.RMSprop(momentum=config.momentum, **options)
    elif name == "adamw":
        options.setdefault("weight_decay", 0.0)
        optimizer = keras.optimizers.AdamW(**options)
    else:
        optimizer = {"adam": keras.optimizers.Adam, "adagrad": keras.optimizers.Adagrad,
                     "adadelta": keras.optimizers.Adadelta}[name](**options)
    if config.lookahead:
        optimizer = Lookahead(optimizer, config.lookahead_k, config.lookahead_alpha)
    return optimizer


def apply_l2_weight_decay(model, config):
    """Adds coupled L2 weight decay to every trainable weight of `model`.

    The gradient of `(weight_decay / 2) * ||w||^2` is `weight_decay * w`: PyTorch's
    `weight_decay`, on all parameters as the papers' PyTorch code did. Set on the
    variables rather than in the layer configs, so saved models stay plain.

    Args:
        model: `keras.Model`.
        config: `TrainConfig`.
    """
    if not config.weight_decay or config.weight_decay_mode != "l2":
        return
    regularizer = keras.regularizers.L2(config.weight_decay / 2)
    for variable in model.trainable_variables:
        variable.regularizer = regularizer
