"""Export benchmark: every format of a trained `tiny` model on the CIFAR-10 JPEG copy.

    python benchmarks/export_report.py --data-dir data/cifar10-jpeg

Trains the `tiny` variant briefly (Adam, cosine-decayed from 1e-2, crop + flip, batch 128)
into --run-dir unless that folder already holds a model.keras, exports it to every format
with `keras_resnet.export.export_model` (int8 calibrated on 500 training images), then
re-measures single-image latency a few times, interleaving the formats, because other
jobs may share this CPU. Writes benchmarks/results/export_tiny.{json,md} with the
machine, date, command and whether the issue's targets are met.
"""

import argparse
import datetime
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# The targets for the int8 file, against the float32 Keras model and TFLite file.
MAX_INT8_ACCURACY_DROP = 0.005
MAX_INT8_SIZE_RATIO = 0.30


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.path.join(REPO, "data", "cifar10-jpeg"))
    parser.add_argument("--run-dir", default=os.path.join(REPO, "runs",
                                                          "export_bench_tiny"))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--train-limit", type=int, default=None,
                        help="train on the first N training images only (a dry run)")
    parser.add_argument("--latency-runs", type=int, default=300)
    parser.add_argument("--latency-repeats", type=int, default=3,
                        help="latency measurements per format, the first by export_model")
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results",
                                                         "export_tiny"))
    return parser.parse_args(argv)


def train(splits, run_dir, epochs, learning_rate, data_dir, train_limit=None):
    """Trains `tiny` with train.py's own loop (`fit`): Adam, cosine, crop and flip."""
    import dataclasses

    from keras_resnet import get_variant, run_folder
    from keras_resnet.export.runtime import load_keras_model
    from keras_resnet.training import TrainConfig, fit

    if train_limit:
        splits = dataclasses.replace(splits, x_train=splits.x_train[:train_limit],
                                     y_train=splits.y_train[:train_limit])
    train_config = TrainConfig(optimizer="adam", learning_rate=learning_rate,
                               schedule="cosine", epochs=epochs, batch_size=128, seed=0)
    metrics = fit.fit(get_variant("tiny"), train_config, splits, run_dir, variant="tiny",
                      data_info={"dataset": "cifar10", "data_dir": data_dir,
                                 "image_size": [32, 32], "val_split": 0.1, "seed": 0,
                                 "class_names": list(splits.class_names)}, verbose=2)
    model_path, run_config = run_folder.read_finished_run(run_dir)
    run_config["train"]["seconds"] = metrics["train_seconds"]
    return load_keras_model(model_path), run_config


def remeasure_latency(report, export_dir, model, image, runs, repeats):
    """Adds `repeats - 1` latency measurements per format, formats interleaved."""
    from keras_resnet.export import runtime

    predictors = {}
    for fmt, row in report["formats"].items():
        path = os.path.join(export_dir, row["file"]) if row["file"] else None
        if fmt == "keras":
            predictors[fmt] = {"threads_all": runtime.KerasPredictor(model)}
        elif fmt == "saved_model":
            predictors[fmt] = {"threads_all": runtime.SavedModelPredictor(path)}
        else:
            predictors[fmt] = {"threads_all": runtime.TFLitePredictor(path, fmt),
                               "threads_1": runtime.TFLitePredictor(path, fmt, 1)}
    measurements = {fmt: {key: [row["latency_ms"][key]] for key in predictors[fmt]}
                    for fmt, row in report["formats"].items()}
    for _ in range(repeats - 1):
        for fmt, by_threads in predictors.items():
            for key, predictor in by_threads.items():
                measurements[fmt][key].append(runtime.measure_latency(predictor, image, runs))
    return measurements


def summarize(report, measurements):
    """Per format: every repeat, and the repeat with the lowest median (least disturbed)."""
    for fmt, by_threads in measurements.items():
        latency = report["formats"][fmt]["latency_ms"]
        for key, repeats in by_threads.items():
            latency[key] = dict(min(repeats, key=lambda stats: stats["p50"]),
                                repeats=repeats)
    formats = report["formats"]
    keras_accuracy, int8 = formats["keras"]["accuracy"], formats["tflite-int8"]
    float32 = formats["tflite"]
    return {
        "int8_accuracy_within_0.5_points_of_keras": {
            "keras": keras_accuracy, "int8": int8["accuracy"],
            "drop_points": round(100 * (keras_accuracy - int8["accuracy"]), 2),
            "met": keras_accuracy - int8["accuracy"] <= MAX_INT8_ACCURACY_DROP},
        "int8_bytes_at_most_30%_of_float32": {
            "ratio": round(int8["bytes"] / float32["bytes"], 4),
            "met": int8["bytes"] <= MAX_INT8_SIZE_RATIO * float32["bytes"]},
        "int8_latency_below_float32": {
            key: {"int8_p50_ms": int8["latency_ms"][key]["p50"],
                  "float32_p50_ms": float32["latency_ms"][key]["p50"],
                  "met": int8["latency_ms"][key]["p50"] < float32["latency_ms"][key]["p50"]}
            for key in ("threads_1", "threads_all")},
    }


def write_markdown(path, result):
    from keras_resnet.export.exporter import report_markdown

    targets = result["targets"]
    lines = ["# Export of the `tiny` variant (CIFAR-10 JPEG copy)", "",
             f"Date: {result['date']}. Machine: {result['machine']}. Command: "
             f"`{result['command']}`.", "",
             f"Model: {result['model']}. Latency: one image, {result['latency_runs']} timed "
             f"calls per measurement, {result['latency_repeats']} measurements per format "
             "(interleaved); the table shows the measurement with the lowest median.", "",
             report_markdown(result["report"]), "## Targets", ""]
    accuracy = targets["int8_accuracy_within_0.5_points_of_keras"]
    size = targets["int8_bytes_at_most_30%_of_float32"]
    lines.append(f"- int8 accuracy within 0.5 points of Keras: {accuracy['int8']:.4f} vs "
                 f"{accuracy['keras']:.4f} (drop {accuracy['drop_points']} points): "
                 f"{'met' if accuracy['met'] else 'NOT met'}")
    lines.append(f"- int8 file at most 30% of float32: {size['ratio']:.1%}: "
                 f"{'met' if size['met'] else 'NOT met'}")
    for key, latency in targets["int8_latency_below_float32"].items():
        lines.append(f"- int8 latency below float32 ({key}): p50 {latency['int8_p50_ms']:.3f} "
                     f"vs {latency['float32_p50_ms']:.3f} ms: "
                     f"{'met' if latency['met'] else 'NOT met'}")
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n")


def main(argv=None):
    args = parse_args(argv)
    from keras_resnet.quiet import import_keras

    import_keras()
    from keras_resnet import run_folder
    from keras_resnet.data import load_data
    from keras_resnet.export.exporter import export_model
    from keras_resnet.training.runtime import machine_info
    from keras_resnet.export.runtime import load_keras_model

    splits = load_data(data_dir=args.data_dir, val_split=0.1, seed=0)
    reused = os.path.isfile(os.path.join(args.run_dir, run_folder.MODEL_FILE))
    if reused:
        model_path, run_config = run_folder.read_finished_run(args.run_dir)
        model = load_keras_model(model_path)
    else:
        model, run_config = train(splits, args.run_dir, args.epochs, args.learning_rate,
                                  args.data_dir, args.train_limit)
    export_dir = os.path.join(args.run_dir, "export")
    report = export_model(model, export_dir, ("keras", "saved_model", "tflite", "tflite-fp16",
                                              "tflite-dynamic", "tflite-int8"),
                          splits.x_train, splits.x_test, splits.y_test,
                          list(splits.class_names), run_config,
                          latency_runs=args.latency_runs)
    measurements = remeasure_latency(report, export_dir, model, splits.x_test[0],
                                     args.latency_runs, args.latency_repeats)
    targets = summarize(report, measurements)
    machine = machine_info()
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{machine['platform']}, {machine['cores']} CPUs, TensorFlow "
                   f"{machine['tensorflow']} (shared with other jobs)",
        "command": "python " + " ".join([os.path.relpath(__file__, REPO), *sys.argv[1:]]),
        "model": f"tiny ({model.count_params():,} parameters), trained "
                 f"{run_config['train']['epochs']} epochs in "
                 f"{run_config['train']['seconds']:.0f} s on this CPU"
                 f"{' by an earlier run, reused from ' if reused else ', saved to '}"
                 f"{os.path.relpath(args.run_dir, REPO)}",
        "latency_runs": args.latency_runs, "latency_repeats": args.latency_repeats,
        "targets": targets, "report": report,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output + ".json", "w") as file:
        json.dump(result, file, indent=2, sort_keys=True, default=str)
    write_markdown(args.output + ".md", result)
    print(json.dumps(targets, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
