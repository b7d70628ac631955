"""`python -m keras_resnet.compare RUN_A RUN_B ...`: is a difference more than the noise?

Each RUN is a repeated run's folder (`train.py --seeds ...`, holding `summary.json`). The
command prints a table of every run's mean +- standard deviation, then, for each run after
the first (the baseline), the difference of means with a Welch t confidence interval
(`keras_resnet.stats.welch_interval`) and a plain verdict: a difference whose interval
contains 0 is within the noise of that many seeds. Runs after the first are each compared
with the baseline, with no correction for making several comparisons. Where every seed of
every run was exported (`reproduce --tflm`), the int8 (plain and with flip TTA) and TFLM
test accuracies are compared too. The last line is JSON.
"""

import os

from keras_resnet import cli, run_folder
from keras_resnet.files import read_json
from keras_resnet.stats import welch_interval

DEFAULT_METRICS = ("test_accuracy", "tta_test_accuracy", "int8_test_accuracy",
                   "int8_tta_test_accuracy", "tflm_test_accuracy", "val_accuracy",
                   "test_loss", "images_per_second", "train_seconds")
# Accuracies read best as percentage points; the rest in their own units.
PERCENT = ("test_accuracy", "tta_test_accuracy", "int8_test_accuracy",
           "int8_tta_test_accuracy", "tflm_test_accuracy", "val_accuracy")
# The exported models' accuracies: (export format, field) in each seed's report.json.
EXPORTED = {"int8_test_accuracy": ("tflite-int8", "accuracy"),
            "int8_tta_test_accuracy": ("tflite-int8", "tta_accuracy"),
            "tflm_test_accuracy": ("tflm", "accuracy")}


def build_parser():
    parser = cli.ArgumentParser(
        prog="python -m keras_resnet.compare",
        description="Compare repeated runs (train.py --seeds): mean +- std per run, and the "
                    "difference of means with a Welch t confidence interval against the "
                    "first run.")
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="folders written by train.py --seeds; the first is the baseline")
    parser.add_argument("--metrics", type=lambda text: tuple(text.split(",")), default=None,
                        help=f"comma-separated (default: those every run has of "
                             f"{', '.join(DEFAULT_METRICS)})")
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="confidence level of the interval (default 0.95)")
    return parser


def read_summary(run):
    """Reads `run/summary.json`.

    Raises:
        ValueError: if `run` is not a finished repeated run.
    """
    path = os.path.join(run, run_folder.SUMMARY_FILE)
    if not os.path.isdir(run):
        raise ValueError(f"{run} is not a folder; expected a run folder written by train.py "
                         f"--seeds. Received: run={run!r}")
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO would block the read
        raise ValueError(f"{path} is not a regular file. Received: run={run!r}")
    if not os.path.exists(path):
        raise ValueError(f"{run} has no summary.json; expected a run folder written by "
                         f"train.py --seeds (an unfinished one: rerun it with --resume). "
                         f"Received: run={run!r}")
    try:
        summary = read_json(path, "run")
    except ValueError:
        summary = None
    if not _is_summary(summary):
        raise ValueError(f"{path} is not a summary written by train.py --seeds. "
                         f"Received: run={run!r}")
    return summary


def add_exported_metrics(run, summary):
    """Adds the exported models' test accuracies of a run whose every seed was exported.

    Each seed's `export/report.json` (written by `reproduce --tflm` or `train.py --export`)
    holds its exported model's accuracy; a metric is added only when every seed has it,
    measured on the same number of test images.

    Args:
        run: str, the repeated run's folder.
        summary: dict from `read_summary`; its `metrics` gain the exported ones.

    Returns:
        The `summary`.

    Example:

    >>> add_exported_metrics("no/such/run", {"seeds": [0, 1], "metrics": {}})["metrics"]
    {}
    """
    from keras_resnet.stats import describe
    from keras_resnet.training.repeats import seed_dir

    reports = []
    for seed in summary.get("seeds", []):
        try:
            reports.append(run_folder.read_export_report(seed_dir(run, seed)))
        except ValueError:  # an unreadable report adds nothing, as a missing one
            reports.append(None)
    if not reports or not all(isinstance(r, dict) for r in reports) or len(
            {r.get("test_samples") for r in reports}) != 1:
        return summary
    for metric, (export_format, field) in EXPORTED.items():
        values = [((r.get("formats") or {}).get(export_format) or {}).get(field)
                  for r in reports]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            summary["metrics"].setdefault(metric, {**describe(values), "values": values})
    return summary


def _is_summary(summary):
    # Every field the table and the interval read, with its type: a foreign summary.json
    # is refused here, not as an internal error halfway through the table.
    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    if not isinstance(summary, dict) or not isinstance(summary.get("metrics"), dict) \
            or not isinstance(summary.get("seeds", []), list):
        return False
    return all(isinstance(m, dict) and all(number(m.get(k)) for k in ("mean", "std", "n"))
               for m in summary["metrics"].values())


def _format(value, metric, signed=False):
    sign = "+" if signed else ""
    if metric in PERCENT:
        return f"{100 * value:{sign}.2f}"
    if metric == "test_loss":
        return f"{value:{sign}.4f}"
    return f"{value:{sign}.1f}"


def _unit(metric):
    return " (%)" if metric in PERCENT else ""


def compare(runs, summaries, metrics, confidence=0.95):
    """Formats the comparison and returns `(markdown, rows)`.

    Args:
        runs: list of str, the run folders as given (their labels).
        summaries: list of dicts from `read_summary`, same order.
        metrics: sequence of metric names present in every summary.
        confidence: float in (0, 1). Defaults to `0.95`.

    Returns:
        A markdown string and a list of dicts, one per (run, metric) difference against the
        first run, with the keys of `keras_resnet.stats.welch_interval` plus `run`,
        `baseline` and `metric`.
    """
    level = f"{100 * confidence:g}%"
    lines = ["| run | seeds | precision | " + " | ".join(
        f"{metric}{_unit(metric)}" for metric in metrics) + " |", "|---" * (3 + len(metrics))
        + "|"]
    for run, summary in zip(runs, summaries):
        cells = [f"{_format(summary['metrics'][m]['mean'], m)} +- "
                 f"{_format(summary['metrics'][m]['std'], m)}" for m in metrics]
        lines.append(f"| {run} | {len(summary['seeds'])} | {summary.get('precision')} | "
                     + " | ".join(cells) + " |")
    lines += ["", f"Difference of means against {runs[0]}, with Welch's t {level} interval:",
              "", f"| run | metric | difference | {level} interval | df | ratio of means | verdict |",
              "|---|---|---|---|---|---|---|"]
    rows, sentences = [], []
    for run, summary in zip(runs[1:], summaries[1:]):
        for metric in metrics:
            result = welch_interval(summaries[0]["metrics"][metric], summary["metrics"][metric],
                                    confidence)
            verdict = "differs" if result["significant"] else "within the noise"
            base = summaries[0]["metrics"][metric]["mean"]
            ratio = f"{summary['metrics'][metric]['mean'] / base:.3f}" if base else "-"
            lines.append(
                f"| {run} | {metric}{_unit(metric)} | "
                f"{_format(result['difference'], metric, True)} | "
                f"[{_format(result['low'], metric, True)}, "
                f"{_format(result['high'], metric, True)}] | {result['df']:.1f} | {ratio} | {verdict} |")
            rows.append({"run": run, "baseline": runs[0], "metric": metric, **result})
            if result["significant"]:
                higher = "higher" if result["difference"] > 0 else "lower"
                sentences.append(
                    f"- {metric}: {run} is {higher} than {runs[0]} by "
                    f"{_format(abs(result['difference']), metric)}"
                    f"{' percentage points' if metric in PERCENT else ''}; the "
                    f"{level} interval excludes 0.")
            else:
                sentences.append(
                    f"- {metric}: the difference between {run} and {runs[0]} is within the "
                    f"noise: the {level} interval contains 0.")
    return "\n".join(lines + [""] + sentences) + "\n", rows


def main(argv=None):
    args = build_parser().parse_args(argv)
    if len(args.runs) < 2:
        raise ValueError(f"Give at least two run folders to compare. Received: runs={args.runs}")
    if not 0.0 < args.confidence < 1.0:
        raise ValueError(f"--confidence must be in (0, 1). Received: confidence={args.confidence}")
    summaries = [add_exported_metrics(run, read_summary(run)) for run in args.runs]
    for run, summary in zip(args.runs, summaries):
        if len(summary.get("seeds", [])) < 2:
            raise ValueError(f"{run} has {len(summary.get('seeds', []))} seed(s); a confidence "
                             f"interval needs at least 2 per run. Received: run={run!r}")
    if args.metrics is None:
        metrics = [m for m in DEFAULT_METRICS if all(m in s["metrics"] for s in summaries)]
    else:
        metrics = list(args.metrics)
        for run, summary in zip(args.runs, summaries):
            missing = [m for m in metrics if m not in summary["metrics"]]
            if missing:
                raise ValueError(f"{run} has no {', '.join(missing)}; it has "
                                 f"{', '.join(summary['metrics'])}. Received: "
                                 f"metrics={','.join(metrics)}")
    markdown, rows = compare(args.runs, summaries, metrics, args.confidence)
    print(markdown)
    cli.print_json_line({"confidence": args.confidence, "differences": rows})
    return 0


if __name__ == "__main__":
    cli.run_command(main)
