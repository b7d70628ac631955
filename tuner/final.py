"""`--final-seeds N`: retrain the best few trials over fresh seeds before naming the best.

A search scores each trial with one training, and its best score is partly the luck of
that draw. Here the top `k` trials are each trained again `N` times, with seeds the search
did not use (`--seed + 1 .. --seed + N`), on the same validation split, by the same
`ResNetHyperModel` (same build, same `fit`, same objective: best-epoch `val_accuracy`),
and re-ranked by their mean. Each score is saved in `OUTPUT/final_seeds.json` as soon as
it is measured, so an interrupted re-evaluation resumes where it stopped.
"""

import copy
import dataclasses
import os

from keras_resnet.files import write_json
from keras_resnet.stats import describe

RESULTS_FILE = "final_seeds.json"


class SeededSpace:
    """A `SearchSpace` whose every resolved `TrainConfig` trains with `seed`."""

    def __init__(self, space, seed):
        self._space, self.seed = space, seed

    def __getattr__(self, name):
        return getattr(self._space, name)

    def resolve(self, values):
        model_config, train_config, extras = self._space.resolve(values)
        return model_config, dataclasses.replace(train_config, seed=self.seed), extras


def final_seeds(base_seed, count):
    """The re-evaluation's seeds: the `count` after the search's own.

    Example:

    >>> final_seeds(0, 3)
    (1, 2, 3)
    """
    return tuple(range(base_seed + 1, base_seed + 1 + count))


def _load(path, settings):
    import json

    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        saved = json.load(handle)
    # Scores from other epochs or steps are not comparable; start over rather than mix.
    return saved["scores"] if saved.get("settings") == settings else {}


def reevaluate(hypermodel, rows, seeds, top, output, epochs, log=print, train=None):
    """Retrains the `top` best rows once per seed and re-ranks them by their mean.

    Args:
        hypermodel: `tuner.hypermodel.ResNetHyperModel` of the search.
        rows: list of dicts from `tuner.results.collect_trials`, best first.
        seeds: sequence of int.
        top: int. How many of the best rows to retrain.
        output: str. The search folder (holds `final_seeds.json`).
        epochs: int. Epochs per training (the search's `--epochs`).
        log: callable taking a line of progress. Defaults to `print`.
        train: callable `(hypermodel, values, seed, epochs) -> val_accuracy`, for tests.
            Defaults to building and fitting with `hypermodel`.

    Returns:
        The rows re-ranked: the retrained ones first, by mean score (then fewer parameters),
        each with `seed_scores` (seed -> score) and `seed_mean`, `seed_std`, `seed_n`;
        then the others in their original order.
    """
    train = train or _train
    path = os.path.join(output, RESULTS_FILE)
    settings = {"epochs": epochs,
                "steps_per_epoch": hypermodel.space.base_train.steps_per_epoch}
    scores = _load(path, settings)
    finalists = [dict(row) for row in rows[:top]]
    for row in finalists:
        trial_scores = scores.setdefault(str(row["trial_id"]), {})
        for seed in seeds:
            if str(seed) in trial_scores:
                continue
            log(f"final: trial {row['trial_id']}, seed {seed}")
            trial_scores[str(seed)] = float(train(hypermodel, row["hyperparameters"], seed,
                                                  epochs))
            write_json(path, {"settings": settings, "seeds": list(seeds),
                                     "scores": scores})
        values = [trial_scores[str(seed)] for seed in seeds]
        summary = describe(values)
        row.update(seed_scores={str(s): v for s, v in zip(seeds, values)},
                   seed_mean=summary["mean"], seed_std=summary["std"], seed_n=summary["n"])
    finalists.sort(key=lambda row: (-row["seed_mean"], row["params"], row["trial_id"]))
    return finalists + [dict(row) for row in rows[top:]]


def _train(hypermodel, values, seed, epochs):
    """One training of a trial's values with `seed`: the search's own build and fit."""
    import keras_tuner

    from tuner.memory import TrialMemory

    seeded = copy.copy(hypermodel)
    seeded.space = SeededSpace(hypermodel.space, seed)
    hp = keras_tuner.HyperParameters()
    hp.values = {k: v for k, v in values.items() if not k.startswith("tuner/")}
    memory = TrialMemory()
    memory.begin()
    try:
        return _build_and_fit(seeded, hp, seed, epochs)
    finally:
        memory.end()  # the model is unreferenced once _build_and_fit has returned


def _build_and_fit(hypermodel, hp, seed, epochs):
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)  # the initial weights change with the seed too
    # The class's build, not the instance's `build` attribute: keras-tuner binds that to the
    # hypermodel the seeded copy was made from, whose training run is not the copy's.
    model = type(hypermodel).build(hypermodel, hp)
    return hypermodel.fit(hp, model, epochs=epochs)["val_accuracy"]
