"""The run's full training state on disk, written so that a kill at any moment is safe.

After every epoch: the weights with the optimizer's state (moments, step counter, hence the
schedule's position, Lookahead's slow weights) go to a new file, then `state.json` (epoch,
history, callback state) is atomically replaced to point at it, then the older file is
removed. A kill at any point leaves a `state.json` that names a complete file.

Keras' `BackupAndRestore` overwrites its checkpoint in place, so a kill during the write
loses it; hence this small class.
"""

import json
import math
import os
import time

import keras

STATE_FILE = "state.json"


def write_atomically(path, text):
    """Writes `text` to `path` through a temporary file and a rename."""
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def load_state(directory):
    """Returns the saved state dict of a checkpoint directory, or None if there is none."""
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def restore(model, directory):
    """Loads the last complete checkpoint into a compiled `model`.

    Returns:
        The saved state dict (`epoch`, `history`, `callbacks`, `optimizer_iterations`), or
        None without one.

    Raises:
        ValueError: if the optimizer's step counter was not restored (a different
            optimizer than the checkpoint's).
    """
    state = load_state(directory)
    if state is None:
        return None
    model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(directory, state["weights"]))
    restored = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    if restored != state.get("optimizer_iterations", restored):
        raise ValueError(
            f"The checkpoint in {directory} did not restore the optimizer's state (step "
            f"{restored}, saved at {state['optimizer_iterations']}); was the run started with "
            "another optimizer? Received: optimizer steps={restored}")
    return state


class Checkpoint(keras.callbacks.Callback):
    """Saves the full training state after every epoch with a finite loss.

    Also records the epoch's history row (metrics, learning rate, seconds) and stops
    training with `self.diverged` set on a NaN or infinite loss, keeping the last good
    checkpoint. The loss is checked once per epoch, on its mean (NaN if any step was):
    a check after every step would make the host wait for every step, and the device
    idle between them. `compile_seconds` is the time to the end of the session's first
    step: tracing, XLA compilation and one step.

    Args:
        directory: str. Checkpoint folder (created if missing).
        history: list of dict. Rows of earlier epochs (when resuming). Defaults to `[]`.
        on_epoch_saved: callable or None. Called with the history after each save
            (writes history.csv and plots). Defaults to `None`.
        stateful_callbacks: dict of name to callback. Callbacks whose `wait`, `best` and
            `cooldown_counter` are saved and restored (`ReduceLROnPlateau`).
    """

    # Keras then runs the batch hook in a worker thread, so the host never waits on a step.
    async_safe = True

    def __init__(self, directory, history=None, on_epoch_saved=None, stateful_callbacks=None):
        super().__init__()
        self.compile_seconds = self._first_epoch = None
        self.directory = directory
        self.history = list(history or [])
        self.on_epoch_saved = on_epoch_saved
        self.stateful_callbacks = stateful_callbacks or {}
        self.diverged = None
        os.makedirs(directory, exist_ok=True)

    def restore_callback_state(self, saved):
        for name, values in (saved or {}).items():
            callback = self.stateful_callbacks.get(name)
            for key, value in values.items():
                if callback is not None:
                    setattr(callback, key, value)

    def on_train_begin(self, logs=None):
        self._train_started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()
        if self._first_epoch is None:
            self._first_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.compile_seconds is None:
            # The logs arrive as Python numbers: the first step has finished.
            self.compile_seconds = time.perf_counter() - self._train_started

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.diverged or not all(math.isfinite(float(v)) for v in logs.values()):
            self.diverged = self.diverged or f"non-finite metrics at epoch {epoch + 1}: {logs}"
            self.model.stop_training = True
            return
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()},
               "compile_seconds": self.compile_seconds if epoch == self._first_epoch else 0.0,
               "learning_rate": float(keras.ops.convert_to_numpy(
                   self.model.optimizer.learning_rate)),
               "seconds": time.perf_counter() - self._started}
        self.history.append(row)
        weights = f"epoch-{epoch + 1:04d}.weights.h5"
        self.model.save_weights(os.path.join(self.directory, weights))
        previous = load_state(self.directory)
        callbacks = {name: {key: _plain(getattr(cb, key)) for key in
                            ("wait", "best", "cooldown_counter") if hasattr(cb, key)}
                     for name, cb in self.stateful_callbacks.items()}
        write_atomically(os.path.join(self.directory, STATE_FILE), json.dumps(
            {"epoch": epoch + 1, "weights": weights, "history": self.history,
             "callbacks": callbacks,
             "optimizer_iterations": int(keras.ops.convert_to_numpy(
                 self.model.optimizer.iterations))}, indent=1))
        if previous and previous["weights"] != weights:
            try:
                os.remove(os.path.join(self.directory, previous["weights"]))
            except FileNotFoundError:
                pass
        if self.on_epoch_saved:
            self.on_epoch_saved(self.history)


def _plain(value):
    value = float(keras.ops.convert_to_numpy(value)) if not isinstance(value, (int, float)) else value
    return value if math.isfinite(value) else (1e308 if value > 0 else -1e308)
