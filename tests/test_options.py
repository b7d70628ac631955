"""Every architecture option reaches the built graph, including those no count shows.

A parameter count catches a builder that ignores `blocks`, `channels` or a kernel, but not
one that drops a dropout rate, an activation, an initializer, the SE placement, the pooling
kind or the normalization: each of those has a check here, run on a small network with
the option set away from its default, and on every registered variant (test_model.py);
and so has the plan's stride rule, which no count shows either.
"""

import dataclasses

import keras
import numpy as np
import pytest

from keras_resnet.blocks import block_plan
from keras_resnet.config import ACTIVATIONS, HEADS, INITIALIZERS, SE_PLACEMENTS, ResNetConfig
from keras_resnet.model import build_resnet, layer_plan

BASE = ResNetConfig(blocks=(1, 2, 1), channels=(4, 8, 8), input_shape=(8, 8, 3))
# Options whose effect the parameter count shows; `planned_weights` checks each weight.
COUNTED = {"blocks", "channels", "conv_kernels", "skip_kernels", "se_ratio", "num_classes",
           "input_shape"}
# One value away from the default for every other option (and the kernels, whose counts
# a wrong layer could still match): the overrides the tests below build.
OPTIONS = {
    "dropout": [dict(dropout=0.3)],
    "block_dropout": [dict(block_dropout=(0.1, 0.0, 0.2))],
    "se": [dict(se=se) for se in SE_PLACEMENTS],
    "activation": [dict(activation=activation) for activation in ACTIVATIONS],
    "kernel_initializer": [dict(kernel_initializer=name) for name in INITIALIZERS],
    "head": [dict(head=head, pool_size=pool_size) for head in HEADS for pool_size in (None, 2)],
    "pool_size": [dict(pool_size=2)],
    "mean": [dict(mean=(0.1, 0.2, 0.3), std=(0.5, 0.6, 0.7))],
    "std": [dict(std=0.9)],
    "conv_kernels": [dict(conv_kernels=(1, 5, 3))],
    "skip_kernels": [dict(skip_kernels=(1, 3, 5))],
}
CASES = [pytest.param(overrides, id=",".join(f"{k}={v}" for k, v in overrides.items()))
         for cases in OPTIONS.values() for overrides in cases]


def planned_weights(config):
    """Each weight's path and shape, sorted, as `layer_plan` says the builder makes them."""
    weights = []
    for layer in layer_plan(config):
        if layer.kind == "conv":
            weights.append((f"{layer.name}/kernel",
                            (layer.kernel, layer.kernel, layer.inputs, layer.outputs)))
            # Each convolution's batch norm: stem_conv -> stem_bn, ..._conv1 -> ..._bn1.
            norm = layer.name.replace("conv", "bn")
            weights += [(f"{norm}/{weight}", (layer.outputs,))
                        for weight in ("gamma", "beta", "moving_mean", "moving_variance")]
        elif layer.kind == "se":
            squeezed = max(1, layer.outputs // config.se_ratio)
            weights += [(f"{layer.name}_reduce/kernel", (1, 1, layer.inputs, squeezed)),
                        (f"{layer.name}_reduce/bias", (squeezed,)),
                        (f"{layer.name}_expand/kernel", (1, 1, squeezed, layer.outputs)),
                        (f"{layer.name}_expand/bias", (layer.outputs,))]
        else:
            weights += [(f"{layer.name}/kernel", (layer.inputs, layer.outputs)),
                        (f"{layer.name}/bias", (layer.outputs,))]
    return sorted(weights)


def built_weights(model):
    # Sorted: Keras orders a Functional model's weights by graph depth, not by plan row.
    return sorted((weight.path, tuple(weight.shape)) for weight in model.weights)


def assert_honours_options(model, config):
    """Fails if `model` ignores an option of `config` that leaves the counts unchanged."""
    layers = {layer.name: layer for layer in model.layers}
    plan = list(block_plan(config))

    # The plan's strides: no count shows a map that was not downsampled.
    for block in plan:
        assert tuple(layers[f"{block.name}_out"].output.shape) == (
            None, block.height, block.width, block.outputs), block.name

    # From the config, not the plan, so that a plan reading the wrong layer's rate fails.
    expected = {f"layer{layer + 1}_block{block + 1}_dropout": rate
                for layer, (count, rate) in enumerate(zip(config.blocks, config.block_dropout))
                for block in range(count) if rate}
    expected.update({"head_dropout": config.dropout} if config.dropout else {})
    assert {name: layer.rate for name, layer in layers.items()
            if isinstance(layer, keras.layers.Dropout)} == expected

    activation = keras.activations.get(config.activation)
    for name, layer in layers.items():
        if isinstance(layer, keras.layers.Activation) and name != "predictions":
            assert layer.activation is activation, name

    # The stem, block and shortcut convolutions and the classifier; SE's 1x1 convolutions
    # keep Keras' default initializer.
    initializer = type(keras.initializers.get(config.kernel_initializer))
    for name, layer in layers.items():
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and "_se_" not in name:
            assert type(layer.kernel_initializer) is initializer, name

    # SE scales the stem's output, or each block's residual branch before the add.
    placed = {"none": {}, "stem": {"stem": ("stem_act", plan[0].name + "_conv1")},
              "block": {b.name: (f"{b.name}_bn2", f"{b.name}_add") for b in plan}}[config.se]
    assert sorted(name for name in layers if name.endswith("_se_scale")) == sorted(
        f"{prefix}_se_scale" for prefix in placed)
    for prefix, (source, consumer) in placed.items():
        scale = layers[f"{prefix}_se_scale"]
        consumed = layers[consumer].input
        assert scale.input[0] is layers[source].output
        assert (consumed[0] if isinstance(consumed, list) else consumed) is scale.output

    kinds = ("Average", "Max") if config.head == "avg_max" else ("Average",)
    pools = {name: layer for name, layer in layers.items()
             if name.startswith("head_") and name.endswith("_pool")}
    assert sorted(pools) == sorted(f"head_{kind.lower()}_pool" for kind in kinds)
    for kind in kinds:
        pool = pools[f"head_{kind.lower()}_pool"]
        if config.pool_size is None:
            assert type(pool) is getattr(keras.layers, f"Global{kind}Pooling2D")
        else:
            assert type(pool) is getattr(keras.layers, f"{kind}Pooling2D")
            assert pool.pool_size == (config.pool_size,) * 2

    normalize = layers["normalize"].get_config()
    np.testing.assert_allclose(normalize["mean"], [255.0 * m for m in config.mean], rtol=1e-6)
    np.testing.assert_allclose(normalize["variance"], [(255.0 * s) ** 2 for s in config.std],
                               rtol=1e-6)


def test_every_architecture_option_is_counted_or_checked():
    # A new ResNetConfig field needs a case here or a place in the count.
    fields = {field.name for field in dataclasses.fields(ResNetConfig)}
    assert fields == COUNTED | set(OPTIONS)


@pytest.mark.parametrize("overrides", CASES)
def test_built_graph_honours_the_option(overrides):
    config = dataclasses.replace(BASE, **overrides)
    model = build_resnet(config)
    assert built_weights(model) == planned_weights(config)
    assert_honours_options(model, config)


def test_checks_refuse_a_graph_that_ignores_the_option():
    # A builder that ignores an option builds the graph of its default: BASE's.
    model = build_resnet(BASE)
    for cases in OPTIONS.values():
        for overrides in cases:
            config = dataclasses.replace(BASE, **overrides)
            if config != BASE:
                with pytest.raises(AssertionError):
                    assert built_weights(model) == planned_weights(config)
                    assert_honours_options(model, config)
