"""Edge search: a configuration that beats MLPerf Tiny's ResNet-8 within its flash.

    python benchmarks/edge_search.py --data-dir /work/data/cifar10-jpeg --epochs 4

Trains `resnet8` and a few candidates of the family with the same recipe (resnet8's, MLPerf
Tiny's, cut to --epochs), data, seed and epochs, in one run. Every candidate is checked
against --flash-budget (the int8 size estimated from the parameter count,
`keras_resnet.model.over_budget`) before anything is built; those over it are listed, not
trained. The best candidate is chosen on the validation split (never test). Every trained
model is exported to int8 (calibrated on 500 training images) and scored on the full test
set; resnet8 and the chosen candidate are also exported as `tflm` and run under TensorFlow
Lite Micro on every test image. Writes benchmarks/results/edge.{json,md} and
edge_pareto.png (int8 test accuracy against flash bytes) with machine, date and command.
"""

import argparse
import datetime
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

BASELINE = "resnet8"
TARGET_POINTS = 2.0  # the margin over resnet8, in points of int8 test accuracy
# Overrides of resnet8's fields. Chosen for a fixed parameter count: move parameters
# from the 8x8 layer (57.7K of resnet8's 78K) to the 32x32 and 16x16 layers, where each
# one does 16 or 4 times the work, by depth or by width.
CANDIDATES = {
    "wider_24_40_48": {"channels": (24, 40, 48)},
    "early_2_1_1": {"blocks": (2, 1, 1), "channels": (24, 32, 48)},
    # Over the flash budget: rejected before building (shows the check, costs nothing).
    "deeper_2_2_1": {"blocks": (2, 2, 1), "channels": (16, 32, 48)},
    "wider_32_40_48": {"channels": (32, 40, 48)},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.path.join(REPO, "data", "cifar10-jpeg"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--flash-budget", type=int, default=100_000)
    parser.add_argument("--runs", default=os.path.join(REPO, "runs", "edge"),
                        help="run folders; a finished run (metrics.json) is reused")
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "edge"))
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the markdown from the existing JSON, train nothing")
    parser.add_argument("--skip-chosen-tflm", action="store_true",
                        help="do not run the chosen candidate under TFLite Micro")
    return parser.parse_args(argv)


def train_and_export(name, config, recipe, data, data_info, run_dir, formats):
    from keras_resnet import run_folder
    from keras_resnet.export.exporter import export_model
    from keras_resnet.export.runtime import load_keras_model
    from keras_resnet.training import fit

    metrics = run_folder.read_metrics(run_dir) or fit.fit(
        config, recipe, data, run_dir, variant=name, data_info=data_info, verbose=2)
    model_path, source = run_folder.read_finished_run(run_dir)
    model = load_keras_model(model_path)
    started = time.perf_counter()
    report_path = os.path.join(run_dir, "export", "report.json")
    report = None
    if os.path.exists(report_path):
        with open(report_path) as file:
            report = json.load(file)  # an earlier invocation's export of this same model
        if not set(formats.split(",")) <= set(report["formats"]):
            report = None
    if report is None:
        report = export_model(model, os.path.join(run_dir, "export"), formats,
                              calibration_images=data.x_train, test_images=data.x_test,
                              test_labels=data.y_test, class_names=list(data.class_names),
                              source_config=source, latency_runs=0)
    rows = report["formats"]
    row = {"name": name, "config": config.to_dict(), "status": "trained",
           "val_accuracy": metrics["val_accuracy"], "train_seconds": metrics["train_seconds"],
           "keras_test_accuracy": rows["keras"]["accuracy"],
           "int8_test_accuracy": rows["tflite-int8"]["accuracy"],
           "int8_drop_points": round(100 * (rows["keras"]["accuracy"]
                                            - rows["tflite-int8"]["accuracy"]), 2),
           "flash_bytes": rows["tflite-int8"]["flash_bytes"],
           "macs_per_image": report["macs_per_image"], "export_seconds":
               round(time.perf_counter() - started, 1)}
    if "tflm" in rows:
        tflm = rows["tflm"]
        row.update(tflm_test_accuracy=tflm["accuracy"], arena_bytes=tflm["arena_bytes"],
                   tflm_vs_int8=tflm["vs_tflite_int8"], ops=tflm["ops"])
    return row


def plot(rows, path, budget):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        if row["status"] != "trained":
            continue
        baseline = row["name"] == BASELINE
        axes.scatter(row["flash_bytes"], 100 * row["int8_test_accuracy"],
                     color="tab:red" if baseline else "tab:blue", s=60 if baseline else 40)
        axes.annotate(row["name"], (row["flash_bytes"], 100 * row["int8_test_accuracy"]),
                      textcoords="offset points", xytext=(5, 4), fontsize=8)
    axes.axvline(budget, color="gray", linestyle="--", label=f"flash budget {budget:,} B")
    axes.set_xlabel("int8 model, flash bytes")
    axes.set_ylabel("int8 test accuracy (%), 10,000 images")
    axes.set_title("CIFAR-10 under a microcontroller's flash (same recipe and epochs)")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_markdown(result, path):
    rows = result["leaderboard"]
    lines = [f"# Edge search: beating MLPerf Tiny's ResNet-8 under {result['flash_budget']:,} "
             "bytes of flash", "",
             f"Date: {result['date']}. Machine: {result['machine']['platform']}, "
             f"{result['machine']['cores']} CPU cores shared with other jobs, TensorFlow "
             f"{result['machine']['tensorflow']}, no GPU. Command: "
             f"`{result['command']}`.", "",
             f"Every model: resnet8's recipe (MLPerf Tiny: Adam 1e-3 x0.99 per epoch, batch "
             f"32, L2, translate/rotate/flip) for {result['epochs']} epochs, seed 0, on "
             f"{result['data']}. int8 calibrated on 500 training images; accuracies on the "
             "full 10,000-image test set. The candidate is selected on the validation split "
             "(5,000 training images held out), not on test.", "",
             "| rank | name | blocks | channels | pool | params | flash bytes (int8) | "
             "MACs/image | val acc | float test acc | int8 test acc | int8 drop (points) | "
             "TFLM acc | arena bytes | train s |",
             "|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for rank, row in enumerate(rows, 1):
        config = row["config"]
        cells = [str(rank) if row["status"] == "trained" else "-", row["name"],
                 ",".join(map(str, config["blocks"])), ",".join(map(str, config["channels"])),
                 str(config["pool_size"] or "global"), f"{row['params']:,}"]
        if row["status"] != "trained":
            cells += [f"{row['flash_estimate']:,} (est.)", f"{row['macs_per_image']:,}",
                      f"rejected before building: {row['status']}", "", "", "", "", "", ""]
        else:
            cells += [f"{row['flash_bytes']:,}", f"{row['macs_per_image']:,}",
                      f"{row['val_accuracy']:.4f}", f"{row['keras_test_accuracy']:.4f}",
                      f"{row['int8_test_accuracy']:.4f}", f"{row['int8_drop_points']:.2f}",
                      f"{row['tflm_test_accuracy']:.4f}" if "tflm_test_accuracy" in row else "-",
                      f"{row['arena_bytes']:,}" if "arena_bytes" in row else "-",
                      f"{row['train_seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    verdict = result["verdict"]
    lines += ["", "## Result", "", verdict["text"], "",
              "![int8 accuracy against flash bytes](edge_pareto.png)", "", "## Notes", "",
              "- One seed and few epochs: differences of a point or so are within run-to-run "
              "noise; the gain above comes from one run of each model, trained and measured "
              "in the same invocation.",
              "- Where the parameters go: resnet8 spends 57.7K of its 78K parameters in the "
              "8x8 layer; the candidates move them to the 32x32 and 16x16 layers (more MACs "
              "per parameter), at the same flash.",
              "- The price is RAM and time: wider early layers hold larger activations "
              "(the tensor arena grows with them) and cost more MACs; only flash was "
              "budgeted here (`--macs-budget` bounds the MACs, nothing yet the arena).",
              "- Flash bytes are the exported int8 files. Candidates were screened with "
              "`estimate_int8_bytes` before building; the files carry the model's tensor "
              "names (about 3.9 KB of resnet8's file), which start with the model's name: "
              "`wider_24_40_48` has 93 of them, 651 of the 744 bytes it has over its "
              "estimate.",
              "- TFLM: TensorFlow Lite Micro's reference kernels through `tflite_micro`'s "
              "interpreter on this host, in the measured arena; its agreement is checked "
              "against TFLite's reference kernels (see `export/report.md` in each run).", ""]
    with open(path, "w") as file:
        file.write("\n".join(lines))


def write_results(args, argv, data, recipe, rows, results, chosen):
    from keras_resnet.training.runtime import machine_info

    for row in rows:
        if row["name"] in results:
            row.update(results[row["name"]])
    rows.sort(key=lambda r: (r["status"] != "trained", -(r.get("int8_test_accuracy") or 0)))
    base = results[BASELINE]
    text = "No candidate was trained."
    if chosen:
        best = results[chosen]
        gain = 100 * (best["int8_test_accuracy"] - base["int8_test_accuracy"])

        def tflm(row):
            return (f"TFLM {row['tflm_test_accuracy']:.2%}, arena {row['arena_bytes']:,} bytes"
                    if "tflm_test_accuracy" in row else "TFLM not run")

        text = (f"Chosen on validation accuracy: `{chosen}` ({best['flash_bytes']:,} bytes "
                f"int8, {best['macs_per_image']:,} MACs) reaches "
                f"{best['int8_test_accuracy']:.2%} int8 test accuracy ({tflm(best)}) against "
                f"resnet8's {base['int8_test_accuracy']:.2%} ({tflm(base)}; "
                f"{base['flash_bytes']:,} bytes, {base['macs_per_image']:,} MACs): "
                f"{gain:+.2f} points; the {TARGET_POINTS:.0f}-point target is "
                f"{'met' if gain >= TARGET_POINTS else 'NOT met'}. int8 minus float on the "
                f"10,000 test images: resnet8 {-base['int8_drop_points']:+.2f} points, "
                f"{chosen} {-best['int8_drop_points']:+.2f} points.")
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_info(),
              "command": "python benchmarks/edge_search.py " + " ".join(
                  sys.argv[1:] if argv is None else argv),
              "epochs": args.epochs, "flash_budget": args.flash_budget, "data": data.source,
              "recipe": recipe.to_dict(), "leaderboard": rows, "chosen": chosen,
              "verdict": {"text": text, "chosen": chosen}}
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output + ".json", "w") as file:
        json.dump(result, file, indent=2, default=str)
    plot(rows, os.path.join(os.path.dirname(args.output), "edge_pareto.png"), args.flash_budget)
    write_markdown(result, args.output + ".md")
    print(text, flush=True)


def main(argv=None):
    args = parse_args(argv)
    if args.render_only:
        with open(args.output + ".json") as file:
            write_markdown(json.load(file), args.output + ".md")
        return 0
    from keras_resnet.quiet import import_keras

    import_keras()
    import dataclasses

    from keras_resnet import count_params, get_variant
    from keras_resnet.data import load_data
    from keras_resnet.model import estimate_flops, estimate_int8_bytes, over_budget
    from keras_resnet.variants import get_recipe

    names = [BASELINE] + [n for n in args.candidates.split(",") if n]
    recipe = dataclasses.replace(get_recipe(BASELINE), epochs=args.epochs)
    data = load_data("cifar10", args.data_dir, val_split=recipe.val_split, seed=recipe.seed)
    data_info = {"dataset": "cifar10", "data_dir": args.data_dir, "source": data.source,
                 "val_split": recipe.val_split, "seed": recipe.seed,
                 "class_names": list(data.class_names)}
    configs = {name: dataclasses.replace(get_variant(BASELINE, **CANDIDATES.get(name, {})),
                                         num_classes=data.num_classes, mean=data.mean,
                                         std=data.std) for name in names}
    rows, trained = [], []
    for name, config in configs.items():
        row = {"name": name, "config": config.to_dict(),
               "params": count_params(config)["trainable"],
               "flash_estimate": estimate_int8_bytes(config),
               "macs_per_image": estimate_flops(config) // 2}
        excess = over_budget(config, flash_budget=args.flash_budget)
        if excess:
            rows.append({**row, "status": f"estimated {row['flash_estimate']:,} bytes"})
            print(f"{name}: rejected: {excess}", flush=True)
        else:
            trained.append(name)
            rows.append(row)
    # The baseline and the chosen candidate go through TFLM; the others through TFLite.
    results = {}
    for name in trained:
        print(f"== {name}", flush=True)
        formats = "tflite-int8" if name != BASELINE else "tflm"
        results[name] = train_and_export(name, configs[name], recipe, data, data_info,
                                         os.path.join(args.runs, name), formats)
        print(json.dumps(results[name]), flush=True)
    candidates = [n for n in trained if n != BASELINE]
    chosen = max(candidates, key=lambda n: results[n]["val_accuracy"]) if candidates else None
    write_results(args, argv, data, recipe, rows, results, chosen)
    if chosen and not args.skip_chosen_tflm:
        # Last, as it is the slowest step: the results above stand without it.
        results[chosen] = train_and_export(chosen, configs[chosen], recipe, data, data_info,
                                           os.path.join(args.runs, chosen), "tflm")
        write_results(args, argv, data, recipe, rows, results, chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
