"""The run's full training state on disk, written so that a kill at any moment is safe.

After every epoch: the weights with the optimizer's state (moments, step counter, hence the
schedule's position, Lookahead's slow weights) go to a new file, which is read back whole,
then `state.json` (epoch, history, callback state, and the previous epoch's state) is
atomically replaced to point at it, then files older than the previous one are removed. A
kill at any point leaves a `state.json` that names a complete file; a latest file damaged
later (a full disk, a copy cut short) falls back to the previous one with a warning.

One callback saves and restores, as Keras' `BackupAndRestore` does; but that one
overwrites its checkpoint in place, so a kill during the write loses it; hence this class.
"""

import contextlib
import errno
import json
import math
import os
import re
import shutil
import sys
import time
import warnings

import keras

from keras_resnet.cli import one_line
from keras_resnet.files import write_json

STATE_FILE = "state.json"
_WEIGHTS_FILE = re.compile(r"epoch-\d+\.weights\.h5")


def load_state(directory):
    """Returns the saved state dict of a checkpoint directory, or None if there is none.

    Raises:
        ValueError: if `state.json` is not a readable JSON object.
    """
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return None
    try:
        if not os.path.isfile(path):  # a FIFO or device would block or never end
            raise ValueError("not a regular file")
        with open(path) as handle:
            state = json.load(handle)
        if not isinstance(state, dict) or not isinstance(state.get("weights"), str):
            raise ValueError("not a checkpoint state")
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"The checkpoint record {path} is damaged ({error}); start a new "
                         f"run or restore the file. Received: state={path!r}") from None
    return state


def verify_weights(path):
    """Reads every array of a `.weights.h5` file, raising if any cannot be read."""
    import h5py

    def read(name, item):
        if isinstance(item, h5py.Dataset):
            item[()]

    with h5py.File(path, "r") as file:
        file.visititems(read)


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
        on_epoch_saved: callable or None. Called with the history after each save
            (writes history.csv and plots). Defaults to `None`.
        stateful_callbacks: dict of name to callback. Callbacks whose `wait`, `best` and
            `cooldown_counter` are saved and restored (`ReduceLROnPlateau`).
    """

    # Keras then runs the batch hook in a worker thread, so the host never waits on a step.
    async_safe = True

    def __init__(self, directory, on_epoch_saved=None, stateful_callbacks=None):
        super().__init__()
        self.compile_seconds = self._first_epoch = None
        self.directory = directory
        self.history = []
        self.on_epoch_saved = on_epoch_saved
        self.stateful_callbacks = stateful_callbacks or {}
        self.diverged = None
        os.makedirs(directory, exist_ok=True)

    def restore(self, model):
        """Loads the last readable checkpoint into a compiled `model`, and its history and
        the stateful callbacks' state into this callback, as `BackupAndRestore` restores.

        If the latest weights file cannot be read, the previous epoch's is used instead,
        with a one-line warning on stderr.

        Returns:
            The saved state dict (`epoch`, `history`, `callbacks`,
            `optimizer_iterations`) of the checkpoint loaded, or None without one.

        Raises:
            ValueError: if no checkpoint can be read, or the optimizer's step counter was
                not restored (a different optimizer than the checkpoint's).
        """
        directory = self.directory
        state = load_state(directory)
        if state is None:
            return None
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        candidates = [state] + ([state["previous"]] if isinstance(state.get("previous"), dict)
                                else [])
        for index, candidate in enumerate(candidates):
            path = os.path.join(directory, os.path.basename(str(candidate.get("weights"))))
            try:
                verify_weights(path)
            except Exception as error:  # noqa: BLE001 - a damaged file fails in many ways
                reason = one_line(error)[:160]
                if index + 1 < len(candidates):
                    print(f"warning: checkpoint {path} is unreadable ({reason}); resuming "
                          f"from epoch {candidates[index + 1].get('epoch')} instead",
                          file=sys.stderr)
                    continue
                raise ValueError(f"No readable checkpoint in {directory}: {path} is "
                                 f"unreadable ({reason}). Received: checkpoint={path!r}") from None
            try:
                with warnings.catch_warnings():
                    # Keras warns once per layer it cannot match, before raising: one line.
                    warnings.simplefilter("ignore")
                    model.load_weights(path)
            except Exception as error:  # noqa: BLE001 - the file is whole: the network differs
                reason = one_line(error)[:160]
                raise ValueError(f"The checkpoint {path} is intact but does not fit the "
                                 f"network config.json describes: was its model section "
                                 f"edited? Restore it or start a new --output ({reason}). "
                                 f"Received: checkpoint={path!r}") from None
            break
        restored = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        if restored != candidate.get("optimizer_iterations", restored):
            raise ValueError(
                f"The checkpoint in {directory} did not restore the optimizer's state (step "
                f"{restored}, saved at {candidate['optimizer_iterations']}); was the run "
                f"started with another optimizer? Received: optimizer steps={restored}")
        self.history = list(candidate.get("history") or [])
        for name, values in (candidate.get("callbacks") or {}).items():
            for key, value in values.items():
                if name in self.stateful_callbacks:
                    setattr(self.stateful_callbacks[name], key, value)
        return candidate

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
            bad = {k: float(v) for k, v in logs.items() if not math.isfinite(float(v))}
            self.diverged = self.diverged or (
                f"loss became {bad['loss']} in epoch {epoch + 1}" if "loss" in bad
                else f"non-finite metrics in epoch {epoch + 1}: {bad}")
            self.model.stop_training = True
            return
        if not _weights_finite(self.model):
            # Under XLA the loss's probability clipping can turn NaN predictions into a
            # finite loss, so the weights themselves are checked too: one device sum.
            self.diverged = f"weights became non-finite in epoch {epoch + 1}"
            self.model.stop_training = True
            return
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()},
               "compile_seconds": self.compile_seconds if epoch == self._first_epoch else 0.0,
               "learning_rate": float(keras.ops.convert_to_numpy(
                   self.model.optimizer.learning_rate)),
               "seconds": time.perf_counter() - self._started}
        self.history.append(row)
        weights = f"epoch-{epoch + 1:04d}.weights.h5"
        _check_free_space(self.model, self.directory, epoch)
        try:
            self.model.save_weights(os.path.join(self.directory, weights))
        except OSError as error:  # e.g. a full disk
            _abandon_h5(os.path.join(self.directory, weights))
            text = one_line(error)
            reason = os.strerror(28) if "errno = 28" in text else text[:200]
            raise OSError(f"The checkpoint of epoch {epoch + 1} could not be written "
                          f"({reason}); the previous checkpoint, if any, is kept in "
                          f"{self.directory}") from None
        try:
            verify_weights(os.path.join(self.directory, weights))
        except Exception as error:  # noqa: BLE001 - e.g. a full disk
            raise OSError(f"The checkpoint of epoch {epoch + 1} could not be read back "
                          f"({error}); the previous checkpoint is kept in "
                          f"{self.directory}") from None
        previous = load_state(self.directory)
        if previous and previous.get("epoch", 0) >= epoch + 1:
            # Redoing an epoch whose checkpoint was unreadable: its predecessor is ours.
            previous = previous.get("previous")
        if previous:
            previous = {k: v for k, v in previous.items() if k != "previous"}
        callbacks = {name: {key: _plain(getattr(cb, key)) for key in
                            ("wait", "best", "cooldown_counter") if hasattr(cb, key)}
                     for name, cb in self.stateful_callbacks.items()}
        iterations = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        write_json(os.path.join(self.directory, STATE_FILE), {
            "epoch": epoch + 1, "weights": weights, "history": self.history,
            "callbacks": callbacks, "optimizer_iterations": iterations, "previous": previous},
            indent=1)
        keep = {weights, (previous or {}).get("weights")}
        for name in os.listdir(self.directory):
            if _WEIGHTS_FILE.fullmatch(name) and name not in keep:
                try:
                    os.remove(os.path.join(self.directory, name))
                except FileNotFoundError:
                    pass
        if self.on_epoch_saved:
            self.on_epoch_saved(self.history)


def _check_free_space(model, directory, epoch):
    # A write that fails inside HDF5 leaves it in a state that can crash the process (see
    # _abandon_h5); a disk already too full is refused before HDF5 is involved.
    import numpy as np

    def nbytes(variable):
        try:
            itemsize = np.dtype(variable.dtype).itemsize
        except TypeError:  # a dtype numpy does not name (bfloat16): at most 4 bytes
            itemsize = 4
        return int(np.prod(variable.shape)) * itemsize

    variables = list(model.weights) + list(getattr(model.optimizer, "variables", []))
    needed = sum(nbytes(v) for v in variables)
    free = shutil.disk_usage(directory).free
    # HDF5's object headers and the state record: 10% over the arrays on the variants.
    if free < needed + needed // 8 + (256 << 10):
        raise OSError(errno.ENOSPC, f"No space left on device: the checkpoint of epoch "
                      f"{epoch + 1} needs about {needed / 2**20:,.1f} MB and {directory} has "
                      f"{free / 2**20:,.1f} MB free; the previous checkpoint, if any, is kept")


def _abandon_h5(path):
    # Keras leaves the failed file open in the error's frames; h5py would flush it again
    # when they are freed, at exit, and crash (SIGSEGV) on the still-full disk. Its
    # descriptor is pointed at /dev/null, so that closing it here succeeds, and the file
    # is removed: it is not a checkpoint.
    import h5py

    for file_id in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        try:
            if os.path.abspath(file_id.name.decode()) != os.path.abspath(path):
                continue
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, file_id.get_vfd_handle())
            finally:
                os.close(null)
            file_id.close()
        except Exception:  # noqa: BLE001 - an id already closed, or HDF5 still refusing
            continue
    with contextlib.suppress(OSError):
        os.remove(path)


def _weights_finite(model):
    total = keras.ops.sum(keras.ops.stack(
        [keras.ops.sum(keras.ops.cast(w, "float32")) for w in model.trainable_weights]))
    return bool(math.isfinite(float(keras.ops.convert_to_numpy(total))))


def _plain(value):
    value = float(keras.ops.convert_to_numpy(value)) if not isinstance(value, (int, float)) else value
    return value if math.isfinite(value) else (1e308 if value > 0 else -1e308)
