"""What a search leaves in its folder: leaderboard, Pareto plot, best_config.json."""

import csv
import dataclasses
import io
import math
import os

from keras_resnet.files import atomic_path, write_json, write_text

LEADERBOARD_COLUMNS = ("trial", "params", "val_accuracy", "hyperparameters", "seconds",
                       "images_per_second", "rss_mb")
SEED_COLUMNS = ("val_accuracy_seed_mean", "val_accuracy_seed_std", "seeds")


def collect_trials(oracle, space):
    """Returns the completed trials as dicts, best validation accuracy first.

    Args:
        oracle: a keras-tuner oracle (or anything with `trials`).
        space: `tuner.space.SearchSpace`, to count parameters of trials that did not report.

    Returns:
        A list of dicts with `trial_id`, `params`, `val_accuracy`, `hyperparameters`,
        `seconds`, `images_per_second` and `rss_mb`.
    """
    rows = []
    for trial_id, trial in sorted(oracle.trials.items()):
        if trial.status != "COMPLETED":
            continue
        values = dict(trial.hyperparameters.values)
        metrics = trial.metrics

        def metric(name):
            return metrics.get_last_value(name) if metrics.exists(name) else None

        score = metric("val_accuracy")
        if score is None or not math.isfinite(score):
            continue
        rows.append({
            "trial_id": trial_id,
            "params": int(space.trainable_params(_plain(values))),
            "val_accuracy": float(score),
            "hyperparameters": values,
            "seconds": metric("seconds"),
            "images_per_second": metric("images_per_second"),
            "rss_mb": metric("rss_mb"),
        })
    return sorted(rows, key=lambda row: (-row["val_accuracy"], row["params"], row["trial_id"]))


def _plain(values):
    return {k: v for k, v in values.items() if not k.startswith("tuner/")}


def _format_values(values):
    return " ".join(f"{k}={_format_number(v)}" for k, v in sorted(values.items()))


def _format_number(value, digits=4):
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return "" if value is None else str(value)


def write_leaderboard(rows, output, header=""):
    """Writes `leaderboard.md` and `leaderboard.csv` in `output`; returns their paths.

    Rows retrained over seeds (`tuner.final.reevaluate`) add a column of their mean +- std.
    """
    md_path = os.path.join(output, "leaderboard.md")
    csv_path = os.path.join(output, "leaderboard.csv")
    seeded = any("seed_mean" in row for row in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(LEADERBOARD_COLUMNS + (SEED_COLUMNS if seeded else ()))
    for row in rows:
        writer.writerow([row["trial_id"], row["params"], f"{row['val_accuracy']:.4f}",
                         _format_values(row["hyperparameters"]),
                         _format_number(row["seconds"]),
                         _format_number(row.get("images_per_second")),
                         _format_number(row["rss_mb"])]
                        + ([_format_number(row.get("seed_mean")),
                            _format_number(row.get("seed_std")), row.get("seed_n", "")]
                           if seeded else []))
    write_text(csv_path, buffer.getvalue())
    lines = [header.rstrip(), ""] if header else []
    extra = " val_accuracy over seeds |" if seeded else ""
    lines += [(f"| rank | trial | params | val_accuracy |{extra} hyperparameters | seconds | "
               "images/s | rss_mb |"), "|---|---|---|---|---|---|---|---|" + ("---|" if seeded else "")]
    for rank, row in enumerate(rows, 1):
        spread = ""
        if seeded:
            spread = (f" {row['seed_mean']:.4f} +- {row['seed_std']:.4f} (n={row['seed_n']}) |"
                      if "seed_mean" in row else " - |")
        lines.append(
            f"| {rank} | {row['trial_id']} | {row['params']:,} | {row['val_accuracy']:.4f} |"
            f"{spread} {_format_values(row['hyperparameters'])} | "
            f"{_format_number(row['seconds'], 3)} | "
            f"{_format_number(row.get('images_per_second'), 4)} | "
            f"{_format_number(row['rss_mb'], 4)} |")
    write_text(md_path, "\n".join(lines) + "\n")
    return md_path, csv_path


def pareto_front(rows):
    """The trials no other trial beats on both fewer parameters and higher accuracy.

    Example:

    >>> rows = [{"params": 10, "val_accuracy": 0.5}, {"params": 20, "val_accuracy": 0.4},
    ...         {"params": 30, "val_accuracy": 0.7}]
    >>> [row["params"] for row in pareto_front(rows)]
    [10, 30]
    """
    front, best = [], -math.inf
    for row in sorted(rows, key=lambda r: (r["params"], -r["val_accuracy"])):
        if row["val_accuracy"] > best:
            front.append(row)
            best = row["val_accuracy"]
    return front


def plot_pareto(rows, path, param_budget=None):
    """Plots validation accuracy against parameters, the Pareto front marked; saves PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.scatter([r["params"] for r in rows], [r["val_accuracy"] for r in rows],
                 color="tab:gray", alpha=0.7, label="trials")
    front = pareto_front(rows)
    axes.plot([r["params"] for r in front], [r["val_accuracy"] for r in front], "o-",
              color="tab:red", label="Pareto front")
    for row in front:
        axes.annotate(str(row["trial_id"]), (row["params"], row["val_accuracy"]),
                      textcoords="offset points", xytext=(4, 4), fontsize=8)
    if param_budget:
        axes.axvline(param_budget, color="tab:blue", linestyle="--", label="budget")
    axes.set_xlabel("trainable parameters")
    axes.set_ylabel("validation accuracy")
    axes.set_title("Search results: accuracy against size")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)
    return path


def write_best_config(row, space, variant, data_info, path, full_epochs=None):
    """Writes the best trial as a `train.py --config` file.

    The search trains each trial briefly; the file asks for a full run: the recipe's
    epochs (or `full_epochs`) and no step limit.

    Args:
        row: dict, a `collect_trials` row.
        space: `tuner.space.SearchSpace`.
        variant: str. The base variant's name; the file's variant is `tuned_<variant>`.
        data_info: dict with `dataset` and `data_dir`.
        path: str. Where to write.
        full_epochs: int or None. Epochs of the full run. Defaults to the recipe's.

    Returns:
        The written dict.
    """
    model_config, train_config, _ = space.resolve(_plain(row["hyperparameters"]))
    train_config = dataclasses.replace(train_config, epochs=full_epochs or _recipe_epochs(
        variant, train_config), steps_per_epoch=None)
    payload = {
        "variant": f"tuned_{variant}",
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "data": {"dataset": data_info.get("dataset", "cifar10"),
                 "data_dir": data_info.get("data_dir")},
        "search": {"trial_id": row["trial_id"], "val_accuracy": row["val_accuracy"],
                   "params": row["params"], "hyperparameters": row["hyperparameters"],
                   **{k: row[k] for k in ("seed_scores", "seed_mean", "seed_std") if k in row}},
    }
    write_json(path, {k: v for k, v in payload.items() if k != "search"})
    write_json(os.path.join(os.path.dirname(path), "best_trial.json"), payload)
    return payload


def _recipe_epochs(variant, train_config):
    from keras_resnet.variants import VARIANTS, get_recipe

    return get_recipe(variant).epochs if variant in VARIANTS else train_config.epochs
