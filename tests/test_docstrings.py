"""Runs the Example sections of public docstrings, so they cannot drift."""

import doctest
import importlib

import keras
import pytest

MODULES = ["keras_resnet.config", "keras_resnet.model", "keras_resnet.blocks",
           "keras_resnet.variants", "keras_resnet.training.config",
           "keras_resnet.training.lookahead", "keras_resnet.training.schedules",
           "keras_resnet.training.optimizers", "keras_resnet.training.evaluate",
           "keras_resnet.training.step", "keras_resnet.training.run",
           "keras_resnet.training.runtime",
           "keras_resnet.data.batches", "keras_resnet.stats", "keras_resnet.training.repeats",
           "keras_resnet.run_folder", "keras_resnet.lock", "keras_resnet.export.manifest",
           "keras_resnet.data.images", "keras_resnet.limits", "keras_resnet.fields",
           "keras_resnet.files", "keras_resnet.cli", "keras_resnet.reproduce",
           "keras_resnet.results", "keras_resnet.pretrained", "keras_resnet.shipping",
           "keras_resnet.model_card", "keras_resnet.arena", "keras_resnet.compare"]
if keras.backend.backend() == "tensorflow":
    MODULES.append("keras_resnet.training.fused_batch_norm")


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module_name} has no docstring examples"
    assert result.failed == 0
