"""Training: configs and recipes, optimizers (Lookahead), schedules, checkpoints, fit."""

from keras_resnet.training.config import RECIPES, TrainConfig, get_recipe

__all__ = ["RECIPES", "TrainConfig", "get_recipe"]
