"""Model family: every registered variant builds, counts and trains as SPEC.md says."""

import dataclasses
import hashlib
import json
import os
import random

import keras
import numpy as np
import pytest

from keras_resnet import ResNetConfig, build_resnet, check_budget, count_params, get_variant
from keras_resnet.blocks import block_plan
from keras_resnet.variants import VARIANTS
from test_options import assert_honours_options, built_weights, planned_weights

# The saved format of each published variant: a digest of its layers (name, class) and
# weights (path, shape) in Keras' order. Its `.keras` files and checkpoints load only into
# a model with the same ones, so a change here orphans every saved run of it.
SAVED_FORMAT = {
    "resnet18": "57891d39aed43a61", "reduced": "5cc5f1226b51433c",
    "narrow_deep": "b58ba096f140ed6a", "efficient": "a2dffc8847b2d214",
    "tiny": "c100df6e6127fea0", "shallow": "7bece1bf96b5b02f", "deep": "1c08532525318a5c",
    "resnet8": "46ff99821a8b0fb5",
}


def built_counts(model):
    count = lambda weights: sum(int(np.prod(w.shape)) for w in weights)  # noqa: E731
    return {"trainable": count(model.trainable_weights),
            "non_trainable": count(model.non_trainable_weights)}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant_model(request):
    # Seeded: the initial weights would otherwise follow whichever tests ran before, and
    # a check on them (a ReLU dead for every image) would pass or fail with the order.
    keras.utils.set_random_seed(0)
    return request.param, build_resnet(VARIANTS[request.param].config)


def test_readme_variant_table_is_the_registry():
    # README's table is generated: `python -c "from keras_resnet.variants import
    # variants_table; print(variants_table())"`.
    from keras_resnet.variants import variants_table

    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "README.md")) as readme:
        assert variants_table() in readme.read()


def test_variant_matches_spec_and_analytic_count(variant_model):
    name, model = variant_model
    assert built_counts(model) == count_params(VARIANTS[name].config)
    # The record's count comes from the papers (SPEC.md) and MLPerf Tiny, not from the code.
    assert built_counts(model)["trainable"] == VARIANTS[name].trainable_params


def test_variant_is_its_plan_in_its_saved_format(variant_model):
    name, model = variant_model
    assert built_weights(model) == planned_weights(VARIANTS[name].config)
    assert_honours_options(model, VARIANTS[name].config)
    listing = [[[layer.name, type(layer).__name__] for layer in model.layers],
               [[weight.path, list(weight.shape)] for weight in model.weights]]
    digest = hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:16]
    assert digest == SAVED_FORMAT.get(name), "a new variant: record its digest"


def test_variant_output_is_a_finite_distribution(variant_model):
    name, model = variant_model
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(model(images, training=False))
    assert probabilities.shape == (2, 10)
    assert np.all(np.isfinite(probabilities))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_gradient_reaches_every_trainable_weight(variant_model):
    name, model = variant_model
    if name == "resnet18":
        pytest.skip("the reference network is covered by its smaller relatives")
    # Eight images: SE after efficient's stem squeezes to 4 ReLU units, which two images
    # can leave all dead (zero gradient for a reason, not a broken graph).
    images = np.random.default_rng(1).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = keras.ops.one_hot(np.arange(8) % 10, 10)
    gradients = _gradients(model, images, labels)
    for weight, gradient in zip(model.trainable_weights, gradients):
        assert gradient is not None, weight.path
        assert np.any(keras.ops.convert_to_numpy(gradient) != 0), weight.path


def _gradients(model, images, labels):
    backend = keras.backend.backend()
    loss_fn = keras.losses.CategoricalCrossentropy()
    if backend == "tensorflow":
        import tensorflow as tf
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        return tape.gradient(loss, model.trainable_weights)
    if backend == "jax":
        import jax

        def loss_of(trainable, non_trainable):
            outputs, _ = model.stateless_call(trainable, non_trainable, images, training=True)
            return loss_fn(labels, outputs)

        return jax.grad(loss_of)([w.value for w in model.trainable_weights],
                                 [w.value for w in model.non_trainable_variables])
    pytest.skip(f"no gradient helper for backend {backend}")


def _random_config(rng):
    num_layers = rng.randint(1, 4)
    height = rng.choice((16, 24, 32))
    final = -(-height // 2 ** (num_layers - 1))
    return ResNetConfig(
        blocks=tuple(rng.randint(1, 3) for _ in range(num_layers)),
        channels=tuple(rng.choice((4, 8, 12, 16, 24)) for _ in range(num_layers)),
        conv_kernels=tuple(rng.choice((1, 3, 5)) for _ in range(num_layers)),
        skip_kernels=rng.choice((1, 3)),
        pool_size=rng.choice((None, *range(1, final + 1))),
        head=rng.choice(("avg", "avg_max")),
        se=rng.choice(("none", "stem", "block")),
        se_ratio=rng.choice((2, 4, 16)),
        dropout=rng.choice((0.0, 0.3)),
        block_dropout=rng.choice((0.0, 0.1)),
        activation=rng.choice(("relu", "gelu")),
        num_classes=rng.randint(2, 12),
        input_shape=(height, 32, rng.choice((1, 3))),
        mean=0.5, std=0.25,
    )


@pytest.mark.parametrize("seed", range(12))
def test_analytic_count_equals_built_count_for_random_configs(seed):
    config = _random_config(random.Random(seed))
    model = build_resnet(config)
    assert built_counts(model) == count_params(config)
    assert built_weights(model) == planned_weights(config)
    assert_honours_options(model, config)
    assert model.output_shape == (None, config.num_classes)
    *_, last = block_plan(config)
    assert (last.height, last.width) == config.final_size


def test_keras_save_and_load_gives_identical_predictions(tmp_path):
    config = get_variant("tiny", channels=(8, 16, 32), se="block", dropout=0.2)
    model = build_resnet(config)
    path = tmp_path / "model.keras"
    model.save(path)
    # No custom objects: a plain keras.saving.load_model must work.
    loaded = keras.saving.load_model(path)
    images = np.random.default_rng(2).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(model.predict(images, verbose=0),
                                  loaded.predict(images, verbose=0))


def test_layer_names_are_deterministic():
    names = [layer.name for layer in build_resnet(get_variant("efficient")).layers]
    assert names == [layer.name for layer in build_resnet(get_variant("efficient")).layers]
    for name in ("normalize", "stem_conv", "stem_se_scale", "layer2_block1_skip_conv",
                 "layer3_block3_conv2", "classifier", "predictions"):
        assert name in names


def test_model_normalizes_raw_pixels_itself():
    config = get_variant("tiny")
    model = build_resnet(config)
    normalize = keras.Model(model.input, model.get_layer("normalize").output)
    mean_image = np.broadcast_to(255.0 * np.array(config.mean), (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(normalize(mean_image)), 0.0, atol=1e-4)


def test_budget_refuses_over_budget_unless_allowed():
    config = get_variant("resnet18")
    with pytest.raises(ValueError, match=r"11,173,962 trainable parameters, over the budget"):
        check_budget(config)
    assert check_budget(config, allow_over_budget=True) == 11_173_962
    assert check_budget(get_variant("tiny"), param_budget=195_738) == 195_738
    with pytest.raises(ValueError, match="Received: param_budget=0"):
        check_budget(config, param_budget=0)


def test_variants_are_frozen_and_derive_by_override():
    base = VARIANTS["efficient"].config
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.blocks = (1,)
    derived = get_variant("efficient", se="block", activation="gelu")
    assert (derived.se, derived.activation, derived.blocks) == ("block", "gelu", base.blocks)
    assert base.se == "stem"


def test_mixed_precision_keeps_input_and_output_in_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_resnet(get_variant("tiny"))
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("stem_conv").compute_dtype == "bfloat16"
    for name in ("normalize", "classifier", "predictions"):
        assert model.get_layer(name).compute_dtype == "float32", name
    outputs = model(np.full((1, 32, 32, 3), 128.0, "float32"))
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
