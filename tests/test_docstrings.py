"""Runs the Example sections of public docstrings, so they cannot drift."""

import doctest
import importlib

import pytest

MODULES = ["keras_resnet.config", "keras_resnet.model", "keras_resnet.blocks",
           "keras_resnet.variants"]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module_name} has no docstring examples"
    assert result.failed == 0
