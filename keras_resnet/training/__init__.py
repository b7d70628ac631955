"""Training: configs, optimizers (Lookahead), schedules, checkpoints, fit."""

from keras_resnet.training.config import TrainConfig

__all__ = ["TrainConfig"]
