"""Trains a compact ResNet: `python train.py --variant efficient`.

The checkout's entry point; the command itself is `keras_resnet.training.__main__`
(`python -m keras_resnet.training` where the package is installed without this file).
"""


from keras_resnet.quiet import import_keras

# Before the package pulls Keras in, so TensorFlow's start-up lines stay out of stderr.
import_keras()

from keras_resnet.training.__main__ import (  # noqa: E402,F401 - the command's names
    EXIT_DIVERGED, EXIT_OVER_ARENA_BUDGET, EXIT_OVER_FLASH_BUDGET, build_parser, main,
    over_export_budget)

if __name__ == "__main__":
    from keras_resnet.cli import run_command

    run_command(main)
