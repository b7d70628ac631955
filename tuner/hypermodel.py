"""The HyperModel (train.py's training run, fit on the validation split) and the tuners.

`ResNetHyperModel.build` does not describe a network: it resolves the trial's values into a
`ResNetConfig` and a `TrainConfig` and builds them as a
`keras_resnet.training.run.TrainingRun`, so a tuned model is exactly what `train.py` would
train.
"""

import os

import keras_tuner
from keras_tuner.src.tuners import bayesian, gridsearch, hyperband, randomsearch

from keras_resnet.files import write_json
from keras_resnet.model import count_params
from keras_resnet.training.run import TrainingRun
from tuner.memory import TrialMemory, resident_memory_mb

TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVE = "val_accuracy"
MAX_RESAMPLES = 1000  # draws per trial before the oracle gives up on the budget


class ResNetHyperModel(keras_tuner.HyperModel):
    """Builds and trains one trial's ResNet from a `SearchSpace`.

    A trial is one `keras_resnet.training.run.TrainingRun`, as `train.py`'s run is (its
    precision, XLA, distribution and augmentation placement from the trial's
    `TrainConfig`), on every backend the trainer supports: the tuner holds it over
    `build(hp)` and `fit` (`trial_run`); the tuner clears the
    Keras session before every build and releases each trial's memory after it
    (`tuner.memory`), so memory stays flat across trials. `fit` trains on `data.x_train`
    and validates on the held-out `data.x_val`; the test split is never touched. It
    returns `val_accuracy` (best epoch) with the trial's parameter count, seconds,
    images per second and resident memory, which the oracle records.

    Args:
        space: `tuner.space.SearchSpace`.
        data: `keras_resnet.data.DataSplits` with a validation split.
        name: str. Model name. Defaults to `"tuned"`.
        verbose: Keras `fit` verbosity. Defaults to `0`.

    Raises:
        ValueError: if `data` has no validation split.
    """

    def __init__(self, space, data, name="tuned", verbose=0):
        super().__init__(name=name)
        if data is not None and len(data.x_val) == 0:
            raise ValueError("The tuner selects on a validation split, and the data has none; "
                             "set --val-split above 0. Received: val_split=0")
        self.space, self.data, self.verbose = space, data, verbose
        self._run = None

    def declare_hyperparameters(self, hp):
        self.space.declare(hp)

    def trial_run(self, hp):
        """The `TrainingRun` of `hp`'s values: one per trial, shared by `build` and `fit`."""
        if self._run is None or self._run[0] != hp.values:
            model_config, train_config, extras = self.space.resolve(hp.values)
            run = TrainingRun(model_config, train_config, len(self.data.x_train),
                              name=self.name)
            self._run = (dict(hp.values), run, extras)
        return self._run[1]

    def build(self, hp):
        excess = self.space.budget_excess(hp.values)
        if excess:
            # The oracle rejects these before a trial exists; never build one regardless.
            raise keras_tuner.errors.FailedTrialError(excess)
        return self.trial_run(hp).build()[1]

    def fit(self, hp, model, *args, epochs=None, initial_epoch=0, callbacks=(), **kwargs):
        run, shuffle = self.trial_run(hp), self._run[2]["shuffle"]
        run.train_model = model  # the model keras-tuner built and passes in is the one trained
        self._run = None  # unreferenced after the trial, for `tuner.memory` to release
        train, val = run.data(self.data, initial_epoch=initial_epoch, shuffle=shuffle)
        history = run.fit(train, val, epochs=epochs, initial_epoch=initial_epoch,
                          callbacks=[*callbacks, *run.schedule_callbacks().values()],
                          verbose=self.verbose)
        # A diverged trial scores NaN in some epochs; its best finite epoch still counts.
        scores = [s for s in history.history.get(OBJECTIVE, []) if s == s]
        return {OBJECTIVE: max(scores) if scores else float("nan"),
                "params": float(count_params(run.model_config)["trainable"]),
                "seconds": run.seconds, "images_per_second": run.images_per_second,
                "rss_mb": resident_memory_mb()}


class BudgetOracleMixin:
    """Rejects over-budget values in `populate_space`, before a trial is created.

    Mixed in front of a keras-tuner oracle. When the oracle's proposal is over budget, it
    is replaced by fresh random values (keeping Hyperband's `tuner/*` bookkeeping), up to
    `MAX_RESAMPLES` times; each rejection is counted in `rejected_over_budget`, which is
    saved with the oracle's state so a resumed search keeps counting. State files are
    written atomically, so a search killed mid-write resumes from the last good state.
    """

    search_space = None
    rejected_over_budget = 0

    def populate_space(self, trial_id):
        response = super().populate_space(trial_id)
        for _ in range(MAX_RESAMPLES):
            values = response.get("values")
            if response.get("status") != "RUNNING" or values is None \
                    or self._within_budget(values):
                return response
            self.rejected_over_budget += 1
            fresh = self._random_values()
            if fresh is None:
                break
            response = {"status": "RUNNING", "values": {
                **fresh, **{k: v for k, v in values.items() if k.startswith("tuner/")}}}
        print(f"tuner: no configuration within the budget after {MAX_RESAMPLES} draws; "
              "stopping the search.", flush=True)
        return {"status": "STOPPED", "values": None}

    def _within_budget(self, values):
        values = {k: v for k, v in values.items() if not k.startswith("tuner/")}
        try:
            return self.search_space.within_budget(values)
        except ValueError:
            return False  # an invalid combination is no better than an oversized one

    def get_state(self):
        return {**super().get_state(), "rejected_over_budget": self.rejected_over_budget}

    def set_state(self, state):
        super().set_state(state)
        self.rejected_over_budget = state.get("rejected_over_budget", 0)

    def save(self):
        write_json(self._get_oracle_fname(), self.get_state())

    def reload(self):
        super().reload()
        # keras-tuner writes a new trial's file before its own state; a search killed
        # between the two left a RUNNING trial the state does not know: run it again.
        for trial_id, trial in self.trials.items():
            if trial.status == "RUNNING" and trial_id not in self._retry_queue:
                self._retry_queue.append(trial_id)

    def _save_trial(self, trial):
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        write_json(path, trial.get_state())


class _AtomicTunerSave:
    """Writes the tuner's own state file atomically (the oracle's are, by the mixin), and
    releases each trial's memory when it ends (`tuner.memory`), so the search stays flat."""

    def on_trial_begin(self, trial):
        if not hasattr(self, "_trial_memory"):
            self._trial_memory = TrialMemory()
        self._trial_memory.begin()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        self._trial_memory.end()

    def _build_and_fit_model(self, trial, *args, **kwargs):
        # The trial's run is entered over both: a model built under a distribution
        # strategy trains under the same one.
        with self.hypermodel.trial_run(trial.hyperparameters):
            return super()._build_and_fit_model(trial, *args, **kwargs)

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        write_json(self._get_tuner_fname(), self.get_state())

    def _populate_initial_space(self):
        # keras-tuner builds the model again and again to discover conditional
        # hyperparameters; the space declares all of them up front, so nothing is built.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)


def _oracle_class(base):
    return type(f"Budget{base.__name__}", (BudgetOracleMixin, base), {})


class RandomTuner(_AtomicTunerSave, keras_tuner.Tuner):
    """Random search with budget rejection."""


class BayesianTuner(_AtomicTunerSave, keras_tuner.Tuner):
    """Gaussian-process Bayesian optimization with budget rejection."""


class HyperbandTuner(_AtomicTunerSave, keras_tuner.Hyperband):
    """Hyperband with budget rejection."""

    def __init__(self, oracle, hypermodel, **kwargs):
        # Skip Hyperband.__init__, which would make its own oracle without the budget.
        keras_tuner.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)


class GridTuner(_AtomicTunerSave, keras_tuner.Tuner):
    """Grid search (the paper studies)."""


def build_tuner(kind, hypermodel, output, max_trials, epochs, seed=0, executions_per_trial=1):
    """Builds a keras-tuner tuner whose oracle rejects configurations over budget.

    The project lives in `output/search/`; an existing project is reloaded, so rerunning
    with the same `output` resumes (an interrupted trial runs again).

    Args:
        kind: str. `"random"`, `"bayesian"`, `"hyperband"` or `"grid"`.
        hypermodel: `ResNetHyperModel`.
        output: str. The search folder.
        max_trials: int or None. Trials to run (Hyperband: ignored; `epochs` bounds it).
        epochs: int. Epochs per trial (Hyperband: the most any trial gets).
        seed: int. Seed of the oracle. Defaults to `0`.
        executions_per_trial: int. Trainings averaged per trial. Defaults to `1`.

    Returns:
        A `keras_tuner.Tuner`.

    Raises:
        ValueError: for an unknown `kind`.
    """
    objective = keras_tuner.Objective(OBJECTIVE, direction="max")
    # keras-tuner draws a random seed for a falsy one, so --seed 0 would not repeat.
    common = {"objective": objective, "seed": seed + 1}
    if kind == "random":
        oracle = _oracle_class(randomsearch.RandomSearchOracle)(max_trials=max_trials, **common)
        cls = RandomTuner
    elif kind == "bayesian":
        try:
            oracle = _oracle_class(bayesian.BayesianOptimizationOracle)(
                max_trials=max_trials, num_initial_points=min(3, max_trials or 3), **common)
        except ImportError:
            raise ValueError("--tuner bayesian needs scikit-learn (pip install "
                             "'keras-tuner[bayesian]'). Received: tuner='bayesian'") from None
        cls = BayesianTuner
    elif kind == "hyperband":
        oracle = _oracle_class(hyperband.HyperbandOracle)(max_epochs=max(2, epochs), factor=3,
                                                          **common)
        cls = HyperbandTuner
    elif kind == "grid":
        oracle = _oracle_class(gridsearch.GridSearchOracle)(max_trials=max_trials, **common)
        cls = GridTuner
    else:
        raise ValueError(f"Unknown tuner; expected one of {', '.join(TUNERS)}. "
                         f"Received: tuner={kind!r}")
    oracle.search_space = hypermodel.space
    tuner = cls(oracle=oracle, hypermodel=hypermodel, directory=os.fspath(output),
                project_name="search", executions_per_trial=executions_per_trial)
    # keras-tuner reloads only when the tuner's file exists, which it first writes after a
    # trial; written now, a search killed during its first trial resumes too.
    tuner.save()
    return tuner
