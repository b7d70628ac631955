"""Hyperparameter search for keras_resnet: `python -m tuner`.

The tuner searches architectures and training recipes of the keras_resnet family with
keras-tuner, under a trainable-parameter budget:

    python -m tuner --variant tiny --tuner bayesian --max-trials 20 --epochs 5 \\
        --data-dir data/cifar10-jpeg --output runs/tuner-tiny
    python train.py --config runs/tuner-tiny/best_config.json

- `tuner.space`: the search space. Every dimension (residual layers, blocks per layer,
  base channels doubling per layer or free channels per layer, conv and skip kernels, pool
  size, SE placement, dropout, activation; optimizer, learning rate, batch size, weight
  decay, schedule, label smoothing, Lookahead, augmentation set) can be switched on with a
  flag (`--learning-rate 1e-4:1e-1:log`, `--se none,block`) or a JSON file (`--space`);
  one value fixes it. A trial's values become a `ResNetConfig` and a `TrainConfig` by
  `dataclasses.replace` of the base variant and its paper's recipe.
- Budget: the oracle computes each proposal's parameters analytically
  (`keras_resnet.count_params`) and replaces an over-budget proposal by a new draw before
  the trial exists; nothing over budget is ever built or trained. The count of rejections
  is saved with the oracle and reported.
- `tuner.hypermodel`: the keras-tuner `HyperModel`: `build` compiles the trial's
  `ResNetConfig` and `TrainConfig` as a `keras_resnet.training.run.TrainingRun`, as
  `train.py` does, under the trial's precision policy and distribution; `fit` trains on the
  training split and scores `val_accuracy` on the held-out validation split (never the
  test split). The Keras session is cleared before every build, and each trial records
  its seconds, images per second and resident memory.
- `tuner.memory`: after every trial, drops the train-step graphs that TensorFlow's
  gradient registry would otherwise keep (a leak of ~50 MB a trial), clears the session
  and trims the C heap, so memory stays flat (benchmarks/results/tuner_memory.md).
- `tuner.results`: `leaderboard.md`, `leaderboard.csv`, `pareto.png` and
  `best_config.json` (a `train.py --config` file for a full-length run).
- `tuner.final`: `--final-seeds N` retrains the `--final-top` best trials with N seeds the
  search did not use and ranks them by their mean, so one lucky draw does not name the
  best; the leaderboard shows their mean +- std.
- `tuner.studies`: the papers' comparisons as grid searches (`--study optimizers`,
  `adam-lr`, `batch-lr-grid`) writing `study.md` beside the published numbers.

Resuming: the search state is keras-tuner's own, in `OUTPUT/search/` (`oracle.json` and
one `trial.json` per trial, written atomically). Rerunning the same command with the same
`--output` continues: finished trials are kept, a trial that was interrupted runs again,
and a larger `--max-trials` adds trials. Changing the space, tuner, data or epochs on the
same folder is refused; `--overwrite` starts over, removing only what a search wrote.
`tuner.folder`: a folder is a search's by its `search.json` record, not by the name, and
the search holds it through `.lock`, so two searches never share one `--output`.

Distributed tuning uses keras-tuner's chief/worker mode (gRPC; `grpcio` comes with
TensorFlow). Start the same command, with the same `--output` on a shared file system or
each worker's own, once per process with these environment variables:

    KERASTUNER_TUNER_ID=chief     KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000
    KERASTUNER_TUNER_ID=tuner0    KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000
    KERASTUNER_TUNER_ID=tuner1    KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000

The chief (any id containing "chief") runs the oracle, and with it the budget check and
its count, and trains nothing; each worker asks it for trials, trains them and reports
back. The chief returns when every trial is done and writes the leaderboard, plot and
best_config.json; a worker prints `{"worker": ID, "output": DIR}` as its last line.
`--overwrite` applies to the chief only.
"""
