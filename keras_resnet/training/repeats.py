"""Repeated runs: one configuration trained once per seed, then mean, spread and curves.

`train.py --seeds 0,1,2` (or `--repeats 3`) writes

    RUN/config.json            the shared configuration (what `--resume` reads back)
    RUN/repeats.json           the seeds asked for
    RUN/seed-<n>/              one ordinary run folder per seed (`fit.fit`)
    RUN/summary.json, .md      mean, std, min, max of every final metric over the seeds
    RUN/curves.png             per-epoch mean curves with a +-1 std band

The seed changes the initialization, the data order and the augmentation draws; the
validation split is drawn once (with `--seed`) and shared, so the spread measures the
training's noise on fixed data. `--resume` continues the unfinished seeds from their last
epoch and skips the finished ones; `--resume --epochs` with more epochs continues every
seed to them (fewer than a seed already trained is refused), so all seeds match.
"""

import dataclasses
import os

from keras_resnet import run_folder
from keras_resnet.files import atomic_path, read_json, write_json, write_text
from keras_resnet.stats import describe

SEEDS_FILE = "repeats.json"
# Final metrics summarized, in the order the summary shows them.
METRICS = ("test_accuracy", "tta_test_accuracy", "val_accuracy", "test_loss", "train_seconds",
           "images_per_second")
CURVES = ("accuracy", "val_accuracy", "loss", "val_loss")


def parse_seeds(text):
    """Parses `--seeds`: `"0,1,2"` into `(0, 1, 2)`.

    Raises:
        ValueError: for a non-integer, negative or repeated seed, or an empty list.

    Example:

    >>> parse_seeds("0,1,2")
    (0, 1, 2)
    """
    try:
        seeds = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ValueError("expected comma-separated non-negative integers, e.g. 0,1,2. "
                         f"Received: seeds={text!r}") from None
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct non-negative integers. "
                         f"Received: seeds={text!r}")
    return seeds


def resolve_seeds(seeds, repeats, base_seed, run_dir, resume):
    """The seeds of a repeated run, or None for a single run.

    `--seeds` wins; `--repeats N` means `base_seed .. base_seed + N - 1`; on `--resume`
    without either, a repeated run's folder gives its own seeds back.

    Raises:
        ValueError: for both flags at once, or a resumed folder that is a repeated run
            resumed as a single one (or the reverse).
    """
    if seeds is not None and repeats is not None:
        raise ValueError(f"Pass --seeds or --repeats, not both. Received: seeds={seeds}, "
                         f"repeats={repeats}")
    if repeats is not None:
        seeds = tuple(range(base_seed, base_seed + repeats))
    if resume:
        saved = read_seeds(run_dir)
        if seeds is None and saved is not None:
            return saved
        if seeds is not None and saved is None:
            raise ValueError(f"{run_dir} holds a single run, not repeated seeds; resume it "
                             f"without --seeds/--repeats. Received: output={run_dir!r}")
    return seeds


def read_seeds(run_dir):
    """The seeds recorded in a repeated run's folder, or None if it is not one."""
    path = os.path.join(run_dir, SEEDS_FILE)
    return tuple(read_json(path, "seeds")["seeds"]) if os.path.exists(path) else None


def seed_dir(run_dir, seed):
    """The run folder of one seed."""
    return os.path.join(run_dir, f"seed-{seed}")


def run_repeats(model_config, train_config, data, run_dir, seeds, variant="custom",
                resume=False, data_info=None, verbose="auto", log=print, on_start=None):
    """Trains the configuration once per seed into `run_dir/seed-<n>/`, then summarizes.

    Each seed is an ordinary `fit.fit` run with `TrainConfig.seed` replaced. With `resume`,
    a seed whose folder has `metrics.json` is done and skipped, one with `config.json` only
    continues from its last epoch, and a missing one starts; seeds may be added.

    Args:
        model_config: `ResNetConfig`.
        train_config: `TrainConfig`; its `seed` drew the validation split.
        data: `keras_resnet.data.DataSplits`, shared by every seed.
        run_dir: str. The repeated run's folder.
        seeds: sequence of int.
        variant: str. Defaults to `"custom"`.
        resume: bool. Continue a repeated run in `run_dir`. Defaults to `False`.
        data_info: dict or None. Recorded in every `config.json`.
        verbose: Keras `fit` verbosity. Defaults to `"auto"`.
        log: callable taking a line of progress. Defaults to `print`.
        on_start: callable or None. Called once `run_dir` records the configuration, before
            the first seed trains.

    Returns:
        The summary dict also written to `summary.json`.

    Raises:
        ValueError: for an unusable `run_dir`.
        keras_resnet.training.fit.TrainingDiverged: if a seed's loss becomes non-finite
            (the seeds before it are kept; `--resume` continues).
    """
    import keras

    from keras_resnet.training import fit

    # Checked, created and locked (re-entrant: train.py holds it already).
    with run_folder.hold(run_dir, resume):
        done = _finished_seeds(run_dir, seeds, train_config.epochs) if resume else set()
        run_folder.record_config(run_dir, run_folder.run_config(
            variant, model_config, train_config, data_info))
        write_json(os.path.join(run_dir, SEEDS_FILE), {"seeds": list(seeds)})
        if on_start is not None:
            on_start()
        for index, seed in enumerate(seeds, 1):
            folder = seed_dir(run_dir, seed)
            if seed in done:
                log(f"seed {seed} ({index}/{len(seeds)}): done, skipped")
                continue
            started = os.path.exists(os.path.join(folder, run_folder.CONFIG_FILE))
            log(f"seed {seed} ({index}/{len(seeds)}): {'resuming' if started else 'training'} "
                f"into {folder}")
            # A fresh graph per seed: the previous seed's model and compiled step are not kept.
            keras.backend.clear_session()
            fit.fit(model_config, dataclasses.replace(train_config, seed=seed), data, folder,
                    variant=variant, resume=started, data_info=data_info, verbose=verbose)
        return summarize(run_dir, seeds)


def _finished_seeds(run_dir, seeds, epochs):
    # Every seed trains the same epochs, or the summary would average unlike runs: a seed
    # that finished fewer (--resume --epochs raised them) continues from its checkpoint,
    # and one that finished more cannot be shortened.
    done, longer = set(), []
    for seed in seeds:
        metrics = run_folder.read_metrics(seed_dir(run_dir, seed))
        completed = (metrics or {}).get("epochs_completed", epochs)
        if metrics is not None and completed > epochs:
            longer.append(f"seed {seed}: {completed}")
        elif metrics is not None and completed == epochs:
            done.add(seed)
    if longer:
        raise ValueError(f"Every seed of a repeated run trains the same epochs, and some "
                         f"already trained more ({', '.join(longer)}); resume with --epochs "
                         f"at least that, or start a new --output. Received: epochs={epochs}")
    return done


def summarize(run_dir, seeds):
    """Writes `summary.json`, `summary.md` and `curves.png` from the seeds' run folders.

    Args:
        run_dir: str. The repeated run's folder.
        seeds: sequence of int; each `seed-<n>/` must hold `metrics.json`.

    Returns:
        dict with `seeds`, `metrics` (name -> `describe` dict plus per-seed `values`),
        `curves` (name -> per-epoch `mean` and `std` lists), `variant`, `precision`,
        `device`, `config`.

    Raises:
        ValueError: if a seed's `metrics.json` is missing.
    """
    per_seed, histories = [], []
    for seed in seeds:
        finished = run_folder.read_metrics(seed_dir(run_dir, seed))
        if finished is None:
            raise ValueError(f"Seed {seed} has not finished: {seed_dir(run_dir, seed)} has no "
                             f"metrics.json; rerun with --resume. Received: output={run_dir!r}")
        per_seed.append(finished)
        histories.append(run_folder.read_history(seed_dir(run_dir, seed)))
    metrics = {}
    for name in METRICS:
        values = [m.get(name) for m in per_seed]
        if all(v is not None for v in values):
            metrics[name] = {**describe(values), "values": [float(v) for v in values]}
    config = run_folder.read_run_config(run_dir)
    summary = {"seeds": list(seeds), "metrics": metrics, "curves": mean_curves(histories),
               "variant": per_seed[0]["variant"], "precision": per_seed[0].get("precision"),
               "device": per_seed[0].get("device"), "config": config}
    write_json(os.path.join(run_dir, run_folder.SUMMARY_FILE), summary)
    write_text(os.path.join(run_dir, "summary.md"), summary_markdown(summary))
    if summary["curves"]:
        plot_curves(summary["curves"], os.path.join(run_dir, "curves.png"), len(seeds))
    return summary


def mean_curves(histories):
    """Per-epoch mean and std of each curve over the epochs every history reached."""
    epochs = min((len(h) for h in histories), default=0)
    curves = {}
    for name in CURVES:
        if epochs and all(name in row for h in histories for row in h[:epochs]):
            points = [describe([h[e][name] for h in histories]) for e in range(epochs)]
            curves[name] = {"mean": [p["mean"] for p in points],
                            "std": [p["std"] for p in points]}
    return curves


def summary_markdown(summary):
    """The `summary.md` table: one row per metric, mean +- std, min, max, and each seed."""
    seeds = summary["seeds"]
    lines = [f"# {summary['variant']}: {len(seeds)} seeds ({', '.join(map(str, seeds))})", "",
             (f"Precision {summary['precision']} on {summary['device']}. Standard deviation "
              "with n - 1; each seed's run is in `seed-<n>/`."), "",
             "| metric | mean | std | min | max | " + " | ".join(f"seed {s}" for s in seeds)
             + " |", "|---" * (5 + len(seeds)) + "|"]
    for name, values in summary["metrics"].items():
        cells = [_number(values[k], name) for k in ("mean", "std", "min", "max")]
        cells += [_number(v, name) for v in values["values"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _number(value, name):
    return f"{value:.1f}" if name in ("train_seconds", "images_per_second") else f"{value:.4f}"


def plot_curves(curves, path, count):
    """Plots the mean accuracy and loss curves with a +-1 std band; saves one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot, ticker

    figure, axes = pyplot.subplots(1, 2, figsize=(10, 4))
    for axis, kind in zip(axes, ("accuracy", "loss")):
        for name in (kind, f"val_{kind}"):
            if name not in curves:
                continue
            mean, std = curves[name]["mean"], curves[name]["std"]
            epochs = range(1, len(mean) + 1)
            line, = axis.plot(epochs, mean, marker=".", label=f"{name} (mean)")
            axis.fill_between(epochs, [m - s for m, s in zip(mean, std)],
                              [m + s for m, s in zip(mean, std)], color=line.get_color(),
                              alpha=0.2, label=f"{name} +-1 std")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axis.set_ylabel(kind)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(f"Mean over {count} seeds")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    pyplot.close(figure)
