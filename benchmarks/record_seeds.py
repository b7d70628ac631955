"""Records finished repeated runs (`train.py --seeds ...`) and their comparison as a results file.

    python benchmarks/record_seeds.py --name precision_seeds --load-log runs/load.log \
        runs/tiny-bf16=1678="python train.py --variant tiny ... --precision mixed_bfloat16" \
        runs/tiny-f32=3600="python train.py --variant tiny ... --precision float32"

Each run is RUN_DIR=WALL_SECONDS=COMMAND: the folder, the measured wall time of the whole
command (data loading, every seed, evaluation) and the command. The first run is the
baseline of the comparison. `--load-log` is a file of `<time> <contents of /proc/loadavg>`
lines sampled during the runs (the machine is shared; the load says how much). Writes
benchmarks/results/NAME.json and NAME.md.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def read_load(path, start=None, end=None):
    """Summarizes a load log (between `start` and `end`, epoch seconds, if given): samples,
    and min / mean / max of the 1-minute load average."""
    import calendar

    from keras_resnet.stats import describe

    with open(path) as handle:
        samples = [line.split() for line in handle if line.strip()]
    samples = [parts for parts in samples
               if (start or 0) <= calendar.timegm(time.strptime(parts[0], "%Y-%m-%dT%H:%M:%SZ"))
               <= (end or float("inf"))]
    loads = [float(parts[1]) for parts in samples]
    return {"samples": len(loads), "first": samples[0][0], "last": samples[-1][0],
            **{k: round(v, 2) for k, v in describe(loads).items() if k != "n"}}


def run_window(run_dir):
    """When a repeated run started and ended: its config.json and summary.json times."""
    return (os.path.getmtime(os.path.join(run_dir, "config.json")),
            os.path.getmtime(os.path.join(run_dir, "summary.json")))


def main(argv=None):
    from keras_resnet.training.runtime import machine_info
    from keras_resnet.compare import DEFAULT_METRICS, compare, read_summary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--load-log", help="file of '<time> <loadavg>' samples")
    parser.add_argument("--note", action="append", default=[], help="a line for the notes")
    parser.add_argument("--results-dir", default=os.path.join(HERE, "results"),
                        help="where NAME.json and NAME.md go (default benchmarks/results)")
    parser.add_argument("runs", nargs="+", help="RUN_DIR=WALL_SECONDS=COMMAND")
    args = parser.parse_args(argv)
    runs, summaries, walls, commands, loads = [], [], [], [], []
    for item in args.runs:
        run_dir, wall, command = item.split("=", 2)
        loads.append(read_load(args.load_log, *run_window(run_dir)) if args.load_log else None)
        runs.append(os.path.basename(os.path.normpath(run_dir)))
        summaries.append(read_summary(run_dir))
        walls.append(float(wall))
        commands.append(command)
    metrics = [m for m in DEFAULT_METRICS if all(m in s["metrics"] for s in summaries)]
    table, differences = compare(runs, summaries, metrics)
    speed = [s["metrics"]["images_per_second"]["mean"] for s in summaries]
    record = {
        "machine": machine_info(), "device": summaries[0].get("device"),
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load": read_load(args.load_log) if args.load_log else None,
        "runs": [{"run": run, "command": command, "wall_seconds": wall, "load": load,
                  "seeds": summary["seeds"], "precision": summary.get("precision"),
                  "metrics": summary["metrics"], "curves": summary["curves"],
                  "train": summary["config"]["train"]}
                 for run, command, wall, summary, load in zip(runs, commands, walls, summaries,
                                                              loads)],
        "differences": differences,
        "speed_ratio_to_first": [round(s / speed[0], 3) for s in speed],
        "notes": args.note,
    }
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, f"{args.name}.json"), "w") as handle:
        json.dump(record, handle, indent=2, default=str)
    load = record["load"]
    lines = [f"# {args.name}", "",
             (f"Machine: {record['machine']}, {record['device']}. Recorded "
              f"{record['recorded']} by `python benchmarks/record_seeds.py`.")]
    if load:
        lines.append(f"Load average (1 min) during the runs, {load['samples']} samples "
                     f"{load['first']} to {load['last']}: mean {load['mean']}, min "
                     f"{load['min']}, max {load['max']} on {record['machine']['cores']} "
                     "cores; the machine was shared, so seconds and images/s are lower "
                     "bounds and their ratio is noisy.")
    lines += ["", ("| run | command | wall time of the command | load average during it "
                   "(mean, min-max) |"), "|---|---|---|---|"]
    lines += [f"| {r['run']} | `{r['command']}` | {r['wall_seconds']:.0f} s "
              f"({r['wall_seconds'] / 60:.1f} min) | "
              + (f"{r['load']['mean']} ({r['load']['min']}-{r['load']['max']})" if r["load"]
                 else "-") + " |" for r in record["runs"]]
    lines += ["", "Mean +- standard deviation over the seeds (n - 1):", "", table]
    lines += ["Speed (mean images/s) relative to the first run: "
              + ", ".join(f"{run} {ratio:.2f}x" for run, ratio in
                          zip(runs, record["speed_ratio_to_first"])) + "."]
    lines += ["", "Per seed:", ""]
    for run, summary in zip(runs, summaries):
        lines.append(f"- {run}: " + "; ".join(
            f"{name} " + ", ".join(f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
                                   for v in summary["metrics"][name]["values"])
            for name in metrics))
    if args.note:
        lines += ["", "Notes:"] + [f"- {note}" for note in args.note]
    with open(os.path.join(args.results_dir, f"{args.name}.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
