"""Optimizer steps and learning-rate schedules against hand-computed numpy math.

Each test runs the optimizer that `build_optimizer` makes from a `TrainConfig` on a tiny
model or plain variables and compares every step with the update rule written out here,
so a wrong sign, a lost option or a mis-wired schedule changes the numbers.
"""

import math

import keras
import numpy as np
import pytest

from keras_resnet.training import TrainConfig
from keras_resnet.training.optimizers import apply_l2_weight_decay, build_optimizer
from keras_resnet.training.schedules import build_learning_rate

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 3)).astype("float32")
Y = RNG.normal(size=(4, 2)).astype("float32")
W0 = RNG.normal(size=(3, 2)).astype("float32")
B0 = np.array([0.5, -0.3], "float32")


def config(**overrides):
    values = dict(optimizer="sgd", learning_rate=0.1, momentum=0.0, schedule="constant",
                  epochs=2)
    return TrainConfig(**{**values, **overrides})


def dense_model(train_config):
    """Dense(3 -> 2) with fixed weights, compiled with MSE and the config's optimizer."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.set_weights([W0, B0])
    apply_l2_weight_decay(model, train_config)
    model.compile(optimizer=build_optimizer(train_config, steps_per_epoch=10), loss="mse")
    return model


def mse_gradients(weight, bias):
    # d/dpred of mean((pred - y)^2) over batch and outputs.
    residual = 2 * (X @ weight + bias - Y) / Y.size
    return X.T @ residual, residual.sum(axis=0)


def numpy_of(variables):
    return [keras.ops.convert_to_numpy(v) for v in variables]


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_with_l2_decay_through_the_gradient(nesterov):
    # PyTorch's SGD(weight_decay=wd): g <- g + wd * w, then momentum on g.
    learning_rate, momentum, decay = 0.1, 0.9, 0.05
    model = dense_model(config(momentum=momentum, nesterov=nesterov, weight_decay=decay))
    weight, bias = W0.copy(), B0.copy()
    velocity = [np.zeros_like(weight), np.zeros_like(bias)]
    for _ in range(3):
        model.train_on_batch(X, Y)
        grads = mse_gradients(weight, bias)
        grads = [g + decay * w for g, w in zip(grads, (weight, bias))]
        # Keras' form (v <- m v - lr g), equal to PyTorch's at a constant learning rate.
        velocity = [momentum * v - learning_rate * g for v, g in zip(velocity, grads)]
        steps = [momentum * v - learning_rate * g if nesterov else v
                 for v, g in zip(velocity, grads)]
        weight, bias = weight + steps[0], bias + steps[1]
        got = numpy_of(model.trainable_variables)
        np.testing.assert_allclose(got[0], weight, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[1], bias, rtol=1e-5, atol=1e-6)


def test_l2_decay_is_on_every_trainable_weight_and_not_in_the_optimizer():
    model = dense_model(config(weight_decay=0.01))
    assert model.optimizer.weight_decay is None  # decayed once, through the gradient
    expected = 0.01 / 2 * (np.sum(W0 ** 2) + np.sum(B0 ** 2))
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert total == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["adamw", "adam", "sgd"])
def test_decoupled_weight_decay(name):
    # Loshchilov & Hutter as Keras and PyTorch implement it: w <- w - lr * wd * w, apart
    # from the gradient step, which never sees the decay.
    learning_rate, decay = 0.01, 0.1
    train_config = config(optimizer=name, learning_rate=learning_rate, weight_decay=decay,
                          weight_decay_mode="decoupled")
    model = dense_model(train_config)
    assert not model.losses  # nothing through the gradient
    weight, bias = W0.copy(), B0.copy()
    moments = [[np.zeros_like(weight), np.zeros_like(bias)] for _ in range(2)]
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7
    for step in range(1, 4):
        model.train_on_batch(X, Y)
        grads = mse_gradients(weight, bias)
        params = [p - learning_rate * decay * p for p in (weight, bias)]
        if name == "sgd":
            updates = [learning_rate * g for g in grads]
        else:
            corrected = learning_rate * math.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)
            moments[0] = [beta_1 * m + (1 - beta_1) * g for m, g in zip(moments[0], grads)]
            moments[1] = [beta_2 * v + (1 - beta_2) * g * g for v, g in zip(moments[1], grads)]
            updates = [corrected * m / (np.sqrt(v) + epsilon)
                       for m, v in zip(*moments)]
        weight, bias = params[0] - updates[0], params[1] - updates[1]
        got = numpy_of(model.trainable_variables)
        np.testing.assert_allclose(got[0], weight, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(got[1], bias, rtol=1e-4, atol=1e-6)


GRADS = [np.array([3.0, -0.2, -4.0], "float32"), np.array([0.3, -0.4], "float32")]


def one_sgd_step(**overrides):
    variables = [keras.Variable(np.zeros_like(g)) for g in GRADS]
    optimizer = build_optimizer(config(learning_rate=1.0, **overrides), steps_per_epoch=10)
    optimizer.apply([keras.ops.convert_to_tensor(g) for g in GRADS], variables)
    # SGD at rate 1 without momentum from zero: the weights are minus the clipped gradient.
    return [-w for w in numpy_of(variables)]


def test_clip_by_value():
    clipped = one_sgd_step(clip_value=0.5)
    np.testing.assert_allclose(clipped[0], [0.5, -0.2, -0.5], rtol=1e-5)
    np.testing.assert_allclose(clipped[1], [0.3, -0.4], rtol=1e-5)


def test_clip_by_norm_is_per_gradient():
    clipped = one_sgd_step(clip_norm=1.0)
    # |g0| = 5.004 is scaled to 1; |g1| = 0.5 is left alone.
    np.testing.assert_allclose(clipped[0], GRADS[0] / math.sqrt(25.04), rtol=1e-5)
    np.testing.assert_allclose(clipped[1], GRADS[1], rtol=1e-5)


def test_clip_by_global_norm_scales_all_gradients_together():
    clipped = one_sgd_step(global_clip_norm=1.0)
    norm = math.sqrt(sum(float(np.sum(g ** 2)) for g in GRADS))
    for got, gradient in zip(clipped, GRADS):
        np.testing.assert_allclose(got, gradient / norm, rtol=1e-5)


def test_unclipped_step_uses_the_raw_gradient():
    np.testing.assert_allclose(np.concatenate(one_sgd_step()), np.concatenate(GRADS),
                               rtol=1e-5)


def test_the_optimizer_steps_with_the_schedules_rate():
    # Cosine over 2 epochs of 3 steps: step t moves the weight by lr(t) * gradient.
    steps_per_epoch, peak = 3, 0.2
    optimizer = build_optimizer(config(schedule="cosine", learning_rate=peak),
                                steps_per_epoch)
    weight = keras.Variable(np.zeros(1, "float32"))
    previous = 0.0
    for step in range(6):
        optimizer.apply([keras.ops.ones((1,))], [weight])
        now = float(keras.ops.convert_to_numpy(weight)[0])
        expected = 0.5 * peak * (1 + math.cos(math.pi * step / 6))
        assert previous - now == pytest.approx(expected, rel=1e-4, abs=1e-7), step
        previous = now


# ---------------------------------------------------------------- schedules by formula

def rates(train_config, steps_per_epoch, steps):
    schedule = build_learning_rate(train_config, steps_per_epoch)
    return [float(schedule(s)) if callable(schedule) else schedule for s in steps]


def test_cosine_with_warmup_at_its_boundaries():
    # 10 epochs of 10 steps, 2 of them warm-up from 0; cosine down to min_learning_rate.
    base, floor = 0.4, 0.004
    train_config = config(schedule="cosine", learning_rate=base, epochs=10, warmup_epochs=2,
                          min_learning_rate=floor)

    def cosine(step):
        progress = (step - 20) / 80
        return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    steps = (0, 10, 20, 60, 99, 100)
    expected = [0.0, base / 2, base, cosine(60), cosine(99), floor]
    np.testing.assert_allclose(rates(train_config, 10, steps), expected, rtol=1e-4,
                               atol=1e-7)


def test_cosine_without_warmup_starts_at_the_peak():
    train_config = config(schedule="cosine", learning_rate=0.1, epochs=4)
    np.testing.assert_allclose(rates(train_config, 5, (0, 10, 20)), [0.1, 0.05, 0.0],
                               rtol=1e-5, atol=1e-7)


def test_cosine_restarts_at_each_period_end():
    # SGDR (Loshchilov & Hutter): periods of 2, then 4 epochs (t_mul 2), each from the peak.
    base, floor = 0.1, 0.01
    train_config = config(schedule="cosine_restarts", learning_rate=base, restart_epochs=2,
                          min_learning_rate=floor, epochs=20)

    def value(step):
        start, period = (0, 20) if step < 20 else (20, 40)
        progress = (step - start) / period
        return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    steps = (0, 10, 19, 20, 40, 59, 60)
    got = rates(train_config, 10, steps)
    np.testing.assert_allclose(got[:6], [value(s) for s in steps[:6]], rtol=1e-4)
    assert got[3] == pytest.approx(base) and got[6] == pytest.approx(base)


def test_step_decay_divides_at_each_period():
    train_config = config(schedule="step", learning_rate=0.03, decay_epochs=2,
                          decay_rate=1 / 3, epochs=10)
    np.testing.assert_allclose(rates(train_config, 10, (0, 19, 20, 39, 40)),
                               [0.03, 0.03, 0.01, 0.01, 0.01 / 3], rtol=1e-5)


def test_multistep_decays_at_the_start_of_each_milestone_epoch():
    # PyTorch's MultiStepLR: epoch `milestone` itself runs at the decayed rate.
    train_config = config(schedule="multistep", learning_rate=1.0, milestones=(2, 4),
                          decay_rate=0.1, epochs=6)
    np.testing.assert_allclose(rates(train_config, 10, (0, 19, 20, 39, 40, 59)),
                               [1.0, 1.0, 0.1, 0.1, 0.01, 0.01], rtol=1e-5)


def test_exponential_decays_continuously():
    train_config = config(schedule="exponential", learning_rate=1.0, decay_epochs=4,
                          decay_rate=0.5, epochs=10)
    steps = (0, 5, 20, 40, 55)
    np.testing.assert_allclose(rates(train_config, 5, steps),
                               [0.5 ** (s / 20) for s in steps], rtol=1e-5)


def test_one_cycle_start_peak_and_end():
    # PyTorch's OneCycleLR (cos): peak / 25 -> peak at the warm-up end -> peak / 1e4.
    peak = 0.4
    train_config = config(schedule="one_cycle", learning_rate=peak, epochs=10,
                          warmup_epochs=3)
    steps = (0, 15, 30, 65, 100)
    middle = peak / 1e4 + (peak - peak / 1e4) * 0.5 * (1 + math.cos(math.pi * 35 / 70))
    expected = [peak / 25, peak / 25 + (peak - peak / 25) / 2, peak, middle, peak / 1e4]
    np.testing.assert_allclose(rates(train_config, 10, steps), expected, rtol=1e-4)


def test_constant_and_plateau_start_at_the_base_rate():
    for schedule in ("constant", "plateau"):
        assert rates(config(schedule=schedule, learning_rate=0.3), 10, (0, 99)) == [0.3, 0.3]
