"""The device side of the compiled training step: augmentation inside it, steps grouped.

`build_device_training_model` wraps a network so that image augmentation runs inside the
compiled train step, on the device, and `GroupedSteps` runs a group of optimizer steps in
one compiled call. `keras_resnet.training.run.TrainingRun` decides when to use them; the
data they train from is `keras_resnet.data.batches.ArrayBatches`.
"""

import keras
from keras import ops


class GroupedSteps(keras.Model):
    """A training wrapper that runs a group of optimizer steps in one compiled call (JAX).

    Each item of `ArrayBatches(steps_per_item=k)` (`keras_resnet.data.batches`) holds the
    training set as it lies on the device and the rows of k batches; `train_step` gathers
    each batch there and trains on it inside one `keras.ops.scan`. The host then
    dispatches once per k steps, where Keras' own `steps_per_execution` on JAX loops in
    Python and dispatches every step: at small batches on a GPU that per-step host work,
    not the arithmetic, sets the speed.
    Optimizer, schedule, Lookahead and metrics see k ordinary steps.

    Args:
        inputs: the Functional inputs.
        outputs: the Functional outputs.
        num_classes: int. Width of the one-hot labels.
    """

    def __init__(self, inputs, outputs, num_classes, **kwargs):
        super().__init__(inputs, outputs, **kwargs)
        self.num_classes = num_classes

    def train_step(self, state, data):
        (images, labels, rows), _, _ = keras.utils.unpack_x_y_sample_weight(data)
        one_step = super().train_step

        def step(state, step_rows):
            batch = (ops.cast(ops.take(images, step_rows, axis=0), "float32"),
                     ops.one_hot(ops.take(labels, step_rows, axis=0), self.num_classes))
            logs, state = one_step(state, batch)
            return state, logs

        state, logs = ops.scan(step, state, rows)
        return {name: value[-1] for name, value in logs.items()}, state


def build_device_training_model(model, augmentation, steps_per_call=1):
    """Wraps `model` so augmentation runs inside the compiled train step, on the device.

    The wrapper is Functional: inputs -> `augmentation` -> `model`, sharing `model`'s
    layers and weights, so training the wrapper trains `model`. Augmentation layers are
    the identity at inference, so evaluating the wrapper equals evaluating `model`. Save
    and export `model`, not the wrapper.

    Args:
        model: `keras.Model` taking float images in [0, 255].
        augmentation: `keras.Sequential` from `build_augmentation`, or None.
        steps_per_call: int. With more than 1, the wrapper is a `GroupedSteps` that trains
            on `ArrayBatches(steps_per_item=steps_per_call)`. Defaults to `1`.

    Returns:
        The wrapper `keras.Model`, or `model` itself when `augmentation` is None and
        steps are not grouped.

    Example:

    >>> from keras_resnet.data.augment import build_augmentation
    >>> inner = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2)])
    >>> wrapper = build_device_training_model(inner, build_augmentation("flip", (8, 8, 3)))
    >>> wrapper.trainable_weights[0] is inner.trainable_weights[0]
    True
    """
    if augmentation is None and steps_per_call == 1:
        return model
    inputs = keras.Input(model.input_shape[1:], name="image")
    outputs = model(augmentation(inputs) if augmentation is not None else inputs)
    if steps_per_call > 1:
        return GroupedSteps(inputs, outputs, model.output_shape[-1], name=f"{model.name}_train")
    return keras.Model(inputs, outputs, name=f"{model.name}_train")
