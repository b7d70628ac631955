"""The results file of `keras_resnet.reproduce`: its rows, and the table and plot made from it.

`benchmarks/results/reproduction.json` holds one row per reproduced variant (and a note for
each run under way); `update_results` rewrites it with the Markdown table beside it, which
README leads with, and the accuracy-against-minutes plot. The table has a row per
registered variant, in the registry's order: a reproduced variant shows what its seeds
reached; the others say why they have no number yet, never a guess. Below the table, each
row's gap to its paper (less the JPEG copy's penalty where it applies), its command,
machine, any change from the recipe, and what was found out about it (`python -m
keras_resnet.results NAME TEXT`).
"""

import contextlib
import fcntl
import os

from keras_resnet import cli, variants

DEFAULT_RESULTS = os.path.join("benchmarks", "results", "reproduction.json")

NOT_RUN = "not run yet: needs a GPU"
# airbench94 lost 3.3 points on the JPEG copy against the original CIFAR-10 (issue 21).
JPEG_PENALTY_POINTS = 3.0
HEADER = ("| name | paper | paper's accuracy | test accuracy, mean +- std (seeds) | "
          "flip TTA | int8 (with flip TTA) | TFLM (arena bytes) | params | epochs | "
          "train time a seed | images/s | trained on | data | date |")


def _percent(spread):
    if spread is None:
        return "-"
    if spread["n"] == 1:
        return f"{100 * spread['mean']:.2f}% (1)"
    return f"{100 * spread['mean']:.2f} +- {100 * spread['std']:.2f}% ({spread['n']})"


def _duration(seconds):
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def paper_points(text):
    """The paper's accuracy in percent points, read from the registry's text.

    Example:

    >>> paper_points("88.3%"), paper_points("85% (quality target)")
    (88.3, 85.0)
    """
    return float(text.split("%")[0].lstrip("~").split("-")[-1])


def _row(name, row):
    record = variants.VARIANTS[row["variant"]]
    epochs = f"{row['epochs']}" + ("" if row["recipe_epochs"] in (None, row["epochs"])
                                   else f" of {row['recipe_epochs']} (partial)")
    trained = row["trained_on"]
    return (f"| {name} | {record.paper} | {record.paper_accuracy} | "
            f"{_percent(row['test_accuracy'])} | {_percent(row['tta_test_accuracy'])} | "
            f"{_int8(row)} | {_tflm(row)} | "
            f"{row['trainable_params']:,} | {epochs} | "
            f"{_duration(row['train_seconds_per_seed']['mean'])} | "
            f"{row['images_per_second']:,.0f} | {trained['device']}, {trained['backend']}, "
            f"{trained['precision']} | {row['data']} | {row['date'][:10]} |")


def _int8(row):
    tta = row.get("int8_tta_test_accuracy")
    return _percent(row["int8_test_accuracy"]) + (
        "" if tta is None else f" ({100 * tta['mean']:.2f}%)")


def _tflm(row):
    if row.get("tflm_test_accuracy") is None:
        return "-"
    return f"{_percent(row['tflm_test_accuracy'])} ({row['arena_bytes']:,})"


def _pending_row(name, reason):
    record = variants.VARIANTS.get(name)
    if record is None:
        return f"| {name} | | | {reason} | | | | | | | | | | |"
    return (f"| {name} | {record.paper} | {record.paper_accuracy} | {reason} | | | | "
            f"{record.trainable_params:,} | {record.recipe.epochs} (recipe) | | | | | |")


def gap_note(row, penalty):
    """How a row compares with its paper on the same footing (points; JPEG copy adjusted)."""
    paper = paper_points(row["paper_accuracy"])
    target = paper - penalty if row["data"].startswith("JPEG copy") else paper
    mean, std = 100 * row["test_accuracy"]["mean"], 100 * row["test_accuracy"]["std"]
    footing = f"paper {paper:g}% less {penalty:g} for the JPEG copy" if target != paper \
        else f"paper {paper:g}%"
    verdict = ("beyond 2 std" if mean < target - 2 * std else "within 2 std") \
        if row["test_accuracy"]["n"] > 1 else "one seed"
    return f"{mean:.2f}% against {target:.2f}% ({footing}): {mean - target:+.2f} points, {verdict}"


def results_markdown(rows, pending=None, findings=None, only_rows=False, every_variant=True):
    """README's reproduction table: every registered variant, run or not.

    Args:
        rows: dict of row name (a variant's, or `--name`) to a row of `reproduce.build_row`.
        pending: dict of row name to why it has no row (a variant's default: needs a GPU).
        findings: dict of row name to what was found out about its result (why it falls
            short of its paper, what its numbers include), ending the row's note.
        only_rows: bool. The given rows only, without the notes. Defaults to `False`.
        every_variant: bool. Also a row for each registered variant not run. Defaults to
            `True`.

    Returns:
        str, Markdown.

    Example:

    >>> print(results_markdown({}).splitlines()[2])
    | resnet18 | baseline of 000, 001, 002 | ~89-95% | not run yet: needs a GPU | ...
    """
    pending, findings = pending or {}, findings or {}
    names = [] if only_rows or not every_variant else list(variants.VARIANTS)
    # A row being run again (more seeds, a new measurement) has a pending note too: one line.
    names += [name for name in dict.fromkeys((*rows, *([] if only_rows else pending)))
              if name not in names]
    lines = [HEADER, "|---" * (HEADER.count("|") - 1) + "|"]
    for name in names:
        lines.append(_row(name, rows[name]) if name in rows
                     else _pending_row(name, pending.get(name, NOT_RUN)))
    if only_rows:
        return "\n".join(lines) + "\n"
    notes = []
    for name in names:
        if name not in rows:
            continue
        row = rows[name]
        deviations = ", ".join(f"{k}={v}" for k, v in row["deviations"].items()) or "none"
        notes.append(f"- `{name}`: {gap_note(row, JPEG_PENALTY_POINTS)}. Seeds "
                     f"{', '.join(map(str, row['seeds']))}; changes from the recipe: "
                     f"{deviations}; int8 file {row['int8_bytes'] or 0:,} bytes; trained on "
                     f"{row['trained_on']['device']}, evaluated on {row['machine']['cpu']} "
                     f"({row['machine']['cores']} cores); "
                     f"`{row['command']}`."
                     + (f" {findings[name]}" if findings.get(name) else ""))
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def minutes_curve(row):
    """A row's validation accuracy against training minutes, mean and std over its seeds.

    Returns:
        `(minutes, mean, std)` lists per epoch, or None without the seeds' histories.
    """
    from keras_resnet.stats import describe
    from keras_resnet.run_folder import read_history
    from keras_resnet.training.repeats import seed_dir

    histories = [read_history(seed_dir(row.get("run_dir") or "", seed)) for seed in row["seeds"]]
    epochs = min(len(history) for history in histories)
    if not epochs or any("val_accuracy" not in history[0] for history in histories):
        return None
    minutes, mean, std = [], [], []
    for epoch in range(epochs):
        elapsed = [sum(r["seconds"] for r in history[:epoch + 1]) / 60 for history in histories]
        accuracy = describe([history[epoch]["val_accuracy"] for history in histories])
        minutes.append(describe(elapsed)["mean"])
        mean.append(100 * accuracy["mean"])
        std.append(100 * accuracy["std"])
    return minutes, mean, std


def plot_minutes(rows, path, target=None):
    """Plots each row's validation accuracy against training minutes; one PNG.

    Returns:
        True if a curve was drawn (and `path` written), else False.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    from keras_resnet.files import atomic_path

    curves = {name: minutes_curve(row) for name, row in rows.items()}
    curves = {name: curve for name, curve in curves.items() if curve}
    if not curves:
        return False
    figure, axis = pyplot.subplots(figsize=(7, 4.5))
    for name, (minutes, mean, std) in curves.items():
        line, = axis.plot(minutes, mean, marker=".", label=f"{name} ({len(rows[name]['seeds'])}"
                                                           " seeds)")
        axis.fill_between(minutes, [m - s for m, s in zip(mean, std)],
                          [m + s for m, s in zip(mean, std)], color=line.get_color(), alpha=0.2)
    if target is not None:
        axis.axhline(target, color="gray", linestyle="--", label=f"target {target:g}%")
    axis.set_xlabel("training minutes (mean over seeds)")
    axis.set_ylabel("validation accuracy (%), mean +- std")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110)
    pyplot.close(figure)
    return True


@contextlib.contextmanager
def _locked_folder(folder):
    # Two reproductions finishing together must not drop each other's row: the folder's
    # own lock, taken by flock so that no lock file is left behind.
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def read_results(path):
    """A results file's rows and pending notes by variant (empty when it does not exist).

    Raises:
        ValueError: if `path` is not a results file this command wrote.
    """
    if not os.path.exists(path):
        return {"rows": {}, "pending": {}, "findings": {}}
    from keras_resnet.files import read_json

    payload = read_json(path, "results")
    if not isinstance(payload, dict) or not all(
            isinstance(payload.get(key, {}), dict) for key in ("rows", "pending", "findings")):
        raise ValueError(f"{path} is not a reproduction results file (an object with `rows` "
                         f"and `pending`). Received: results={path!r}")
    return {key: payload.get(key, {}) for key in ("rows", "pending", "findings")}


def update_results(path, row=None, pending=None, finding=None):
    """Adds a variant's row (or a note on why it has none yet) and rewrites the `.md` beside.

    Args:
        path: str. The results JSON file.
        row: dict or None. A row of `build_row`; it replaces the variant's pending note.
        pending: `(variant, text)` or None. Shown in the table until the row arrives.
        finding: `(name, text)` or None. Ends the row's note, and stays when the row is
            written again; an empty text removes it.

    Raises:
        ValueError: for a finding on a row the file does not have.
    """
    from keras_resnet.files import write_json, write_text

    if finding is not None and not os.path.isfile(path):
        raise ValueError(f"{path} is not a results file; a finding goes on a row of one. "
                         f"Received: results={path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with _locked_folder(folder):
        results = read_results(path)
        if row is not None:
            results["rows"][row["name"]] = row
            results["pending"].pop(row["name"], None)
        if pending is not None:
            results["pending"][pending[0]] = pending[1]
        if finding is not None:
            name, text = finding
            if name not in results["rows"]:
                raise ValueError(f"{path} has no row {name!r} to add a finding to; its rows: "
                                 f"{', '.join(results['rows']) or 'none'}. Received: "
                                 f"name={name!r}")
            results["findings"][name] = text.strip()
            if not results["findings"][name]:
                del results["findings"][name]
        write_json(path, results)
        # The table shows what the file holds (tuples become lists, keys sorted), so it reads
        # the same as one generated from the file later (README's).
        results = read_results(path)
        write_text(os.path.splitext(path)[0] + ".md", results_markdown(
            results["rows"], results["pending"], results["findings"],
            every_variant=os.path.basename(path) == os.path.basename(DEFAULT_RESULTS)))
        plot_minutes(results["rows"], os.path.splitext(path)[0] + "_minutes.png")


def main(argv=None):
    """`python -m keras_resnet.results NAME TEXT`: what was found out about a row's result."""
    parser = cli.ArgumentParser(
        prog="python -m keras_resnet.results",
        description="Add a finding to a results row's note (why it falls short of its "
                    "paper, what its numbers include); it stays when the row is rewritten.")
    parser.add_argument("name", help="the row (a variant, or reproduce's --name)")
    parser.add_argument("finding", help="the text; an empty one removes the row's finding")
    parser.add_argument("--results", default=DEFAULT_RESULTS,
                        help=f"the results file (default {DEFAULT_RESULTS})")
    args = parser.parse_args(argv)
    update_results(args.results, finding=(args.name, args.finding))
    print(f"{args.results}: finding {'set' if args.finding.strip() else 'removed'} for "
          f"{args.name}")
    return 0


if __name__ == "__main__":
    cli.run_command(main)
