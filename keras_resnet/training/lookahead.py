"""Lookahead (Zhang et al., 2019): k fast steps forward, one step back.

Keras has no Lookahead, so it is written here as an optimizer wrapper over `keras.ops`,
working on every backend (stateful on TensorFlow, stateless under JAX's `StatelessScope`).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_resnet")
class Lookahead(keras.optimizers.Optimizer):
    """Wraps an optimizer with Lookahead's slow weights.

    The inner ("fast") optimizer updates the weights every step. Every `sync_period`
    steps, the slow weights move toward the fast ones,
    `slow <- slow + slow_step_size * (fast - slow)`, and the fast weights are reset to
    them. The slow weights start at the initial weights. Gradient clipping and weight decay
    belong to the inner optimizer.

    Args:
        optimizer: `keras.optimizers.Optimizer`. The inner optimizer.
        sync_period: int. Steps between synchronizations (k). Defaults to `5`.
        slow_step_size: float. Interpolation factor (alpha). Defaults to `0.5`.
        name: str. Defaults to `"lookahead"`.

    Raises:
        ValueError: if `sync_period < 1` or `slow_step_size` is outside (0, 1].

    Example:

    >>> optimizer = Lookahead(keras.optimizers.SGD(0.1), sync_period=2)
    >>> weight = keras.Variable([1.0])
    >>> optimizer.build([weight])
    >>> for _ in range(2):
    ...     optimizer.apply([ops.convert_to_tensor([1.0])], [weight])
    >>> round(float(weight.numpy()[0]), 4)  # fast reached 0.8; halfway back from 1.0
    0.9
    """

    def __init__(self, optimizer, sync_period=5, slow_step_size=0.5, name="lookahead",
                 **kwargs):
        if isinstance(sync_period, bool) or not isinstance(sync_period, int) or sync_period < 1:
            raise ValueError(
                f"`sync_period` must be a positive integer. Received: sync_period={sync_period!r}")
        if not 0.0 < slow_step_size <= 1.0:
            raise ValueError(
                "`slow_step_size` must be in (0, 1]. "
                f"Received: slow_step_size={slow_step_size!r}")
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.inner_optimizer = optimizer
        self.sync_period = sync_period
        self.slow_step_size = slow_step_size

    def build(self, var_list):
        if self.built:  # as Keras' optimizers: a second build would add a second slow copy
            return
        self.inner_optimizer.build(var_list)
        self._slow_weights = []
        for variable in var_list:
            slow = self.add_variable_from_reference(variable, name="slow")
            # A copy, not the variable's own array: under JAX's jit the step donates every
            # state buffer, and two variables sharing one buffer cannot both be donated.
            slow.assign(ops.copy(variable.value))
            self._slow_weights.append(slow)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
            self.built = True
        self.inner_optimizer.apply(grads, trainable_variables)
        variables = trainable_variables or self._trainable_variables
        sync = ops.equal(ops.mod(self.inner_optimizer.iterations, self.sync_period), 0)
        for variable, slow in zip(variables, self._slow_weights):
            # `.value` reads the current value, also inside JAX's stateless scope.
            fast, slow_value = ops.cast(variable.value, slow.dtype), slow.value
            slow_value = ops.where(sync, slow_value + self.slow_step_size * (fast - slow_value),
                                   slow_value)
            slow.assign(slow_value)
            variable.assign(ops.where(sync, ops.cast(slow_value, variable.dtype), variable.value))

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {"name": self.name, "sync_period": self.sync_period,
                "slow_step_size": self.slow_step_size,
                "optimizer": keras.optimizers.serialize(self.inner_optimizer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizer = keras.optimizers.deserialize(config.pop("optimizer"),
                                                 custom_objects=custom_objects)
        return cls(optimizer, **config)
