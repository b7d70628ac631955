"""Data benchmark: loading the CIFAR-10 JPEG copy, and tf.data throughput with augmentation.

    mkdir -p data && tar -xzf ../shared/data/cifar10-jpeg.tar.gz -C data
    python benchmarks/data_pipeline.py

Measures `load_data` on the unpacked folder (60,000 JPEGs decoded eagerly) and, if given,
on the .tar.gz directly; then images per second out of `build_dataset` (batches of 128,
after a warm-up) with no augmentation, and with crop + flip on the host both seeded (one
batch at a time, reproducible) and unseeded (parallel); and out of the TF-free
`build_array_batches`. Other jobs may share this CPU, so the load average is recorded with
the numbers. Writes benchmarks/results/data_pipeline.{json,md}.
"""

import argparse
import datetime
import itertools
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

LOAD_TARGET_SECONDS = 60.0  # the limit for loading all 60,000 JPEGs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.path.join(REPO, "data", "cifar10-jpeg"))
    parser.add_argument("--archive", default=os.path.join(REPO, "..", "shared", "data",
                                                          "cifar10-jpeg.tar.gz"),
                        help="also time loading this .tar.gz directly ('' to skip)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=300, help="timed batches per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed batches first")
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results",
                                                         "data_pipeline"))
    return parser.parse_args(argv)


def time_load(data_dir):
    from keras_resnet.data import load_data

    start = time.perf_counter()
    data = load_data(data_dir=data_dir, val_split=0.1, seed=0)
    seconds = time.perf_counter() - start
    count = len(data.x_train) + len(data.x_val) + len(data.x_test)
    return data, {"source": data.source, "images": count, "seconds": round(seconds, 2),
                  "images_per_second": round(count / seconds),
                  "under_target": seconds < LOAD_TARGET_SECONDS}


def time_batches(batches, count, warmup, batch_size):
    iterator = iter(batches)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(count):
        next(iterator)
    seconds = time.perf_counter() - start
    return {"batches": count, "seconds": round(seconds, 2),
            "images_per_second": round(count * batch_size / seconds)}


def machine():
    import keras
    import numpy
    import PIL
    import tensorflow as tf

    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "pillow": PIL.__version__}


def throughput(data, args):
    from keras_resnet.data.batches import build_array_batches
    from keras_resnet.data.pipeline import build_dataset

    x, y, batch_size = data.x_train, data.y_train, args.batch_size

    def repeated(dataset):
        return dataset.repeat()  # so warm-up plus timed batches may exceed one epoch

    runs = {
        "tf.data, no augmentation": repeated(build_dataset(x, y, 10, batch_size, True,
                                                           seed=0)),
        "tf.data, crop+flip on host, seeded (sequential)": repeated(
            build_dataset(x, y, 10, batch_size, True, augment="crop,flip", seed=0)),
        "tf.data, crop+flip on host, unseeded (parallel)": repeated(
            build_dataset(x, y, 10, batch_size, True, augment="crop,flip", seed=None)),
    }
    results = {name: time_batches(dataset, args.batches, args.warmup, batch_size)
               for name, dataset in runs.items()}
    array_batches = build_array_batches(x, y, 10, batch_size, True, seed=0)
    results["PyDataset (device arrays), no augmentation"] = time_batches(
        (array_batches[i % len(array_batches)] for i in itertools.count()), args.batches,
        args.warmup, batch_size)
    return results


def write_markdown(path, record):
    lines = ["# Data pipeline benchmark", "",
             f"{record['date']}, `{record['command']}`", "",
             f"Machine: {record['machine']['platform']}, {record['machine']['cpu_count']} CPUs; "
             f"TensorFlow {record['machine']['tensorflow']}, Keras {record['machine']['keras']}, "
             f"Pillow {record['machine']['pillow']}. Load average before / after: "
             f"{record['load_average_before']} / {record['load_average_after']} (other jobs "
             "shared the CPU, so these are lower bounds).", "",
             "## Loading all 60,000 JPEGs (`load_data`, decode eager, thread pool)", "",
             "| source | images | seconds | images/s | under 60 s |", "|---|---|---|---|---|"]
    for row in record["load"]:
        lines.append(f"| {row['source']} | {row['images']} | {row['seconds']} | "
                     f"{row['images_per_second']} | {'yes' if row['under_target'] else 'NO'} |")
    lines += ["", f"## Input pipeline, batches of {record['config']['batch_size']} "
              f"({record['config']['batches']} timed after {record['config']['warmup']} "
              "warm-up)", "", "| pipeline | seconds | images/s |", "|---|---|---|"]
    for name, row in record["throughput"].items():
        lines.append(f"| {name} | {row['seconds']} | {row['images_per_second']} |")
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n")


def main(argv=None):
    args = parse_args(argv)
    from keras_resnet.quiet import import_keras

    import_keras()
    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/data_pipeline.py", *sys.argv[1:]]),
        "machine": machine(), "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "config": {"data_dir": args.data_dir, "batch_size": args.batch_size,
                   "batches": args.batches, "warmup": args.warmup,
                   "val_split": 0.1, "seed": 0, "augment": "crop,flip"},
    }
    data, folder = time_load(args.data_dir)
    print(f"load {folder['source']}: {folder['seconds']} s", flush=True)
    record["load"] = [folder]
    if args.archive and os.path.exists(args.archive):
        _, archive = time_load(os.path.abspath(args.archive))
        print(f"load {archive['source']}: {archive['seconds']} s", flush=True)
        record["load"].append(archive)
    record["throughput"] = throughput(data, args)
    for name, row in record["throughput"].items():
        print(f"{name}: {row['images_per_second']} images/s", flush=True)
    record["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output + ".json", "w") as file:
        json.dump(record, file, indent=2)
        file.write("\n")
    write_markdown(args.output + ".md", record)
    print(f"wrote {args.output}.json and .md")


if __name__ == "__main__":
    main()
