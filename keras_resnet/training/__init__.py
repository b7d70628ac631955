"""Training: configs and recipes, optimizers (Lookahead), schedules, checkpoints, fit."""

from keras_resnet.training.config import TrainConfig, get_recipe

__all__ = ["TrainConfig", "get_recipe"]
