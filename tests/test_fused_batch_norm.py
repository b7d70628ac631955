"""The fused batch-norm fast path computes what the stock Keras layer computes."""

import keras
import numpy as np
import pytest

from keras_resnet import build_resnet, get_variant

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the fused kernel is TensorFlow's")


def _pair():
    config = get_variant("tiny", channels=(8, 16, 32), se="block")
    stock = build_resnet(config)
    fused = build_resnet(config)
    fused.set_weights(stock.get_weights())
    from keras_resnet.training.fused_batch_norm import use_fused_batch_norm

    assert use_fused_batch_norm(fused) == 15
    return stock, fused


def test_training_step_matches_stock_batch_norm():
    import tensorflow as tf

    stock, fused = _pair()
    images = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    labels = keras.ops.one_hot(np.arange(6) % 10, 10)
    gradients = []
    for model in (stock, fused):
        with tf.GradientTape() as tape:
            loss = keras.losses.categorical_crossentropy(labels, model(images, training=True))
        gradients.append(tape.gradient(loss, model.trainable_weights))
    for a, b in zip(*gradients):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=2e-3, atol=1e-5)
    # Moving statistics updated the same way (biased variance, same momentum).
    for a, b in zip(stock.non_trainable_weights, fused.non_trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stock.predict(images, verbose=0), fused.predict(images, verbose=0),
                               rtol=1e-4, atol=1e-6)


def test_saved_model_keeps_stock_layers(tmp_path):
    _, fused = _pair()
    fused.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               fused.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
    assert all("fused" not in str(type(layer.call)) for layer in loaded.layers)
