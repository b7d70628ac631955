"""Records finished training runs (their metrics.json and config.json) as a results file.

    python benchmarks/record_runs.py --name training_tiny \
        runs/tiny-2epochs="python train.py --variant tiny --data-dir data/cifar10-jpeg --epochs 2" \
        runs/tiny-15epochs="python train.py ... --epochs 15"

Writes benchmarks/results/NAME.json and NAME.md: per run the command, the date it ended,
the machine, test accuracy (and TTA), validation accuracy, epochs, training time and speed.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def main(argv=None):
    from keras_resnet import run_folder
    from keras_resnet.training.runtime import machine_info

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("runs", nargs="+", help="RUN_DIR=COMMAND")
    args = parser.parse_args(argv)
    rows = []
    for item in args.runs:
        run_dir, _, command = item.partition("=")
        metrics, config = run_folder.read_metrics(run_dir), run_folder.read_run_config(run_dir)
        ended = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(
            os.path.getmtime(os.path.join(run_dir, "metrics.json"))))
        rows.append({"run_dir": run_dir, "command": command, "ended": ended,
                     "variant": metrics["variant"], "epochs": metrics["epochs_completed"],
                     "test_accuracy": metrics["test_accuracy"],
                     "tta_test_accuracy": metrics.get("tta_test_accuracy"),
                     "val_accuracy": metrics["val_accuracy"],
                     "train_seconds": round(metrics["train_seconds"], 1),
                     "images_per_second": round(metrics["images_per_second"], 1),
                     "precision": metrics["precision"], "backend": metrics["backend"],
                     "device": metrics["device"], "train": config["train"],
                     "data": config["data"].get("source")})
    record = {"machine": machine_info(), "recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "runs": rows}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", f"{args.name}.json"), "w") as handle:
        json.dump(record, handle, indent=2)
    lines = [f"# {args.name}", "", f"Machine: {record['machine']}. Recorded "
             f"{record['recorded']} by `python benchmarks/record_runs.py`.", "",
             "| command | ended | epochs | test acc | test acc (flip TTA) | val acc | "
             "train s | images/s | precision |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        tta = f"{row['tta_test_accuracy']:.4f}" if row["tta_test_accuracy"] is not None else "-"
        lines.append(f"| `{row['command']}` | {row['ended']} | {row['epochs']} | "
                     f"{row['test_accuracy']:.4f} | {tta} | {row['val_accuracy']:.4f} | "
                     f"{row['train_seconds']} | {row['images_per_second']} | "
                     f"{row['precision']} |")
    with open(os.path.join(HERE, "results", f"{args.name}.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
