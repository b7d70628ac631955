"""`python -m keras_resnet.reproduce VARIANT`: a variant's paper result, over seeds, as one row.

Trains the variant with its paper's full recipe once per seed (`train.py --seeds`, with a
held-out validation split), then evaluates each seed's final weights on the whole test set:
plain, with flip test-time augmentation, and as the int8 TFLite model calibrated on
training images. The row (mean +- std over the seeds, parameters, epochs, time, speed,
machine, data, date, command) goes into `benchmarks/results/reproduction.json` and the
table beside it, `reproduction.md`, which README leads with.

Run it again after an interruption (kill -9, a session's end): it resumes the unfinished
seed from its last epoch, skips finished seeds, reuses int8 exports already made, and only
then writes the row.
"""

import datetime
import os
import sys

from keras_resnet import cli, run_folder
from keras_resnet.variants import get_recipe

INT8 = "tflite-int8"


def build_parser():
    from keras_resnet import variants
    from keras_resnet.results import DEFAULT_RESULTS
    from keras_resnet.training import TrainConfig
    from keras_resnet.training.repeats import parse_seeds

    parser = cli.ArgumentParser(
        prog="python -m keras_resnet.reproduce",
        description="Train a variant with its paper's recipe over seeds; write its results row.")
    parser.add_argument("variant", choices=list(variants.VARIANTS), metavar="VARIANT",
                        help=f"one of {', '.join(variants.VARIANTS)}")
    parser.add_argument("--seeds", type=cli.argument_type(parse_seeds), default=(0, 1, 2),
                        help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--data-dir", default=None,
                        help="local copy of CIFAR-10 (default: tensorflow-datasets' download)")
    parser.add_argument("--name", default=None,
                        help="the row's name (default VARIANT): another recipe of a variant "
                             "gets a row of its own")
    parser.add_argument("--output", default=None,
                        help="the repeated run's folder (default runs/reproduce/NAME)")
    parser.add_argument("--results", default=DEFAULT_RESULTS,
                        help=f"rows file, with its .md beside it (default {DEFAULT_RESULTS}; "
                             "a file named reproduction.json lists every variant)")
    parser.add_argument("--no-int8", action="store_true",
                        help="skip the int8 export (a machine without TensorFlow); run the "
                             "command again where TensorFlow is to add it")
    parser.add_argument("--tflm", action="store_true",
                        help="also run the int8 model under TensorFlow Lite Micro: its "
                             "accuracy and arena bytes")
    recipe = parser.add_argument_group(
        "recipe changes (each one given is recorded in the row as a deviation)")
    recipe.add_argument("--recipe", default=None, help="paper (default) or fast")
    recipe.add_argument("--config", default=None,
                        help="JSON or YAML with model/train sections (e.g. the tuner's "
                             "best_config.json): the architecture and recipe start from it")
    cli.add_config_arguments(recipe, TrainConfig)
    return parser


def deviations(args):
    """The recipe changes given on the command line, as the row records them."""
    from keras_resnet.training import TrainConfig

    changes = cli.config_overrides(args, TrainConfig)
    given = {name: getattr(args, name) for name in ("recipe", "config") if getattr(args, name)}
    return {**given, **changes}


def training_arguments(args, output):
    """The `train.py` arguments that train (or resume) the seeds of this reproduction."""
    argv = ["--variant", args.variant, "--seeds", ",".join(map(str, args.seeds)),
            "--output", output]
    if args.data_dir is not None:
        argv += ["--data-dir", args.data_dir]
    resume = os.path.isfile(os.path.join(output, run_folder.CONFIG_FILE))
    for name, value in deviations(args).items():
        flag = "--" + name.replace("_", "-")
        if name in ("recipe", "config") and resume:
            continue  # config.json holds what the run started with
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(value, (tuple, list)):
            argv += [flag, ",".join(map(str, value)) or "none"]
        else:
            argv += [flag, "none" if value is None else str(value)]
    return argv + (["--resume"] if resume else [])


def evaluate_seed(folder, data, int8=True, tflm=False):
    """Test accuracy of one finished seed: plain, flip TTA and int8 (exported once).

    Returns:
        dict with `test_accuracy`, `tta_test_accuracy`, `train_seconds`, `epochs`; with
        `int8`, `int8_test_accuracy`, `int8_tta_test_accuracy` and `int8_bytes`; with
        `tflm`, `tflm_test_accuracy` and `arena_bytes`.
    """
    from keras_resnet.export.runtime import load_keras_model
    from keras_resnet.training.evaluate import predict_probabilities

    model_path, run_config = run_folder.read_finished_run(folder)
    metrics = run_folder.read_metrics(folder)
    model = load_keras_model(model_path)
    flipped = predict_probabilities(model, data.x_test, flip=True).argmax(-1)
    row = {"test_accuracy": metrics["test_accuracy"],
           "tta_test_accuracy": float((flipped == data.y_test).mean()),
           "train_seconds": metrics["train_seconds"], "epochs": metrics["epochs_completed"],
           "device": metrics.get("device"), "backend": metrics.get("backend"),
           "precision": metrics.get("precision")}
    if int8 or tflm:
        formats = _exported_formats(model, folder, run_config, data,
                                    (INT8, "tflm") if tflm else (INT8,))
        row.update(int8_test_accuracy=formats[INT8]["accuracy"],
                   int8_tta_test_accuracy=formats[INT8]["tta_accuracy"],
                   int8_bytes=formats[INT8]["bytes"])
        if tflm:
            row.update(tflm_test_accuracy=formats["tflm"]["accuracy"],
                       arena_bytes=formats["tflm"]["arena_bytes"])
    return row


def _exported_formats(model, folder, run_config, data, formats):
    export_dir = os.path.join(folder, run_folder.EXPORT)
    report = run_folder.read_export_report(folder)
    if report is not None:
        rows = report.get("formats") or {}
        if report.get("test_samples") == len(data.y_test) and all(
                (rows.get(fmt) or {}).get("accuracy") is not None for fmt in formats) and \
                (rows.get(INT8) or {}).get("tta_accuracy") is not None:
            return rows  # made by an earlier, interrupted reproduction
    from keras_resnet.export.exporter import export_model

    return export_model(model, export_dir, formats, calibration_images=data.x_train,
                        test_images=data.x_test, test_labels=data.y_test,
                        class_names=list(data.class_names), source_config=run_config,
                        latency_runs=0)["formats"]


def data_label(data_dir):
    """Names the data a row was measured on; the JPEG copy is never mixed with the original.

    Example:

    >>> data_label("data/cifar10-jpeg")
    'JPEG copy (cifar10-jpeg)'
    >>> data_label(None)
    'original (tensorflow-datasets)'
    """
    if data_dir is None:
        return "original (tensorflow-datasets)"
    name = os.path.basename(os.path.normpath(data_dir))
    if name.startswith("cifar-10"):
        return f"original ({name})"
    return f"JPEG copy ({name})" if "jpeg" in name.lower() else f"image folder ({name})"


def build_row(name, args, run_config, per_seed, images_per_epoch, command):
    """One results row from the seeds' evaluations (`evaluate_seed`)."""
    from keras_resnet import variants
    from keras_resnet.config import ResNetConfig
    from keras_resnet.model import count_params
    from keras_resnet.stats import describe
    from keras_resnet.training.runtime import machine_info

    variant = args.variant
    record = variants.VARIANTS[variant]
    seeds = args.seeds

    def spread(name):
        values = [row[name] for row in per_seed if row.get(name) is not None]
        if len(values) != len(per_seed):
            return None
        return {**describe(values), "values": values}

    train_seconds = spread("train_seconds")
    epochs = per_seed[0]["epochs"]
    return {
        "name": name, "variant": variant, "paper": record.paper,
        "paper_accuracy": record.paper_accuracy,
        "seeds": list(seeds), "test_accuracy": spread("test_accuracy"),
        "tta_test_accuracy": spread("tta_test_accuracy"),
        "int8_test_accuracy": spread("int8_test_accuracy"),
        "int8_tta_test_accuracy": spread("int8_tta_test_accuracy"),
        "int8_bytes": per_seed[0].get("int8_bytes"),
        "tflm_test_accuracy": spread("tflm_test_accuracy"),
        "arena_bytes": per_seed[0].get("arena_bytes"),
        "trainable_params": count_params(ResNetConfig.from_dict(run_config["model"]))[
            "trainable"], "epochs": epochs,
        # Only the paper's recipe has a length to fall short of; another is what it is.
        "recipe_epochs": None if args.recipe or args.config else record.recipe.epochs,
        "deviations": deviations(args),
        "train_seconds_per_seed": train_seconds,
        "images_per_second": epochs * images_per_epoch / train_seconds["mean"],
        "trained_on": {key: per_seed[0][key] for key in ("device", "backend", "precision")},
        "machine": machine_info(), "data": data_label(args.data_dir),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command, "run_dir": args.output,
    }


def progress(output, seeds, epochs):
    """Names the epochs each started seed of a run has finished (from its history.csv).

    Args:
        output: the run's folder (one `seed-N` folder per seed).
        seeds: the run's seeds, in order.
        epochs: the recipe's epochs a seed, or `"all"` when a config file sets them.

    Returns:
        A string such as `"seed 0: 50 of 50 epochs done, 84.85% test; seed 1: 12 of 50
        epochs done"` (a finished seed's test accuracy is its final weights'), empty when no
        seed has finished an epoch.

    Example:

    >>> progress("no/such/run", [0, 1], 50)
    ''
    """
    from keras_resnet.training import repeats

    total = "" if epochs == "all" else f" of {epochs}"
    parts = []
    for seed in seeds:
        folder = repeats.seed_dir(output, seed)
        count = len(run_folder.read_history(folder))
        metrics = run_folder.read_metrics(folder) or {}
        tested = (f", {100 * metrics['test_accuracy']:.2f}% test"
                  if "test_accuracy" in metrics else "")
        if count:
            parts.append(f"seed {seed}: {count}{total} epochs done{tested}")
    return "; ".join(parts)


def _train(args, output, command):
    from keras_resnet.results import update_results
    from keras_resnet.training import __main__ as training_command

    def mark_unfinished():
        # Only a run that really started is named in the table; a start refused for bad
        # input leaves the results as they were.
        if os.path.isfile(os.path.join(output, run_folder.CONFIG_FILE)):
            epochs = getattr(args, "epochs", None) or (
                "all" if args.config else get_recipe(args.variant, args.recipe or "paper").epochs)
            # Written when the run starts (once its folder records the configuration) and
            # when it fails: a killed run's note holds the progress of its last start.
            done = progress(output, args.seeds, epochs)
            update_results(args.results, pending=(args.name, (
                f"not finished yet: {epochs} epochs x {len(args.seeds)} seeds, last started "
                f"{datetime.date.today()}{f' ({done})' if done else ''}; `{command}` "
                f"resumes it")))

    code = None
    try:
        code = training_command.main(training_arguments(args, output),
                                     on_start=mark_unfinished)
        return code
    finally:
        if code != 0:
            mark_unfinished()


def main(argv=None):
    from keras_resnet.results import read_results, results_markdown, update_results
    from keras_resnet.training import repeats

    args = build_parser().parse_args(argv)
    args.name = args.name or args.variant
    if not args.name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"A row's name is letters, digits, - and _. Received: name={args.name!r}")
    output = args.output = args.output or os.path.join("runs", "reproduce", args.name)
    read_results(args.results)  # a foreign results file is refused before hours of training
    if args.tflm and args.no_int8:
        raise ValueError("--tflm runs the int8 model, which --no-int8 skips; pass one of them. "
                         "Received: tflm=True, no_int8=True")
    import keras

    if keras.backend.backend() != "tensorflow" and not args.no_int8:
        # TFLite conversion needs TensorFlow's graphs (under JAX it fails on pooling):
        # refused now, not after hours of training.
        raise ValueError("The int8 export runs on the TensorFlow backend: pass --no-int8 "
                         "here, then run the same command with KERAS_BACKEND=tensorflow to "
                         f"add it. Received: backend={keras.backend.backend()!r}")
    command = "python -m keras_resnet.reproduce " + " ".join(
        sys.argv[1:] if argv is None else argv)
    code = _train(args, output, command)
    if code:
        return code
    from keras_resnet.data import load_data

    per_seed = []
    with run_folder.hold(output, resume=True):
        _, config = run_folder.read_finished_run(repeats.seed_dir(output, args.seeds[0]))
        data = load_data(**run_folder.data_arguments(config, args.data_dir))
        for seed in args.seeds:
            per_seed.append(evaluate_seed(repeats.seed_dir(output, seed), data,
                                          int8=not args.no_int8, tflm=args.tflm))
    from keras_resnet.training import TrainConfig

    train_config = TrainConfig.from_dict(config["train"])
    images_per_epoch = train_config.epoch_steps(len(data.x_train)) * train_config.batch_size
    row = build_row(args.name, args, config, per_seed, images_per_epoch, command)
    update_results(args.results, row=row)
    print(results_markdown({args.name: row}, only_rows=True))
    cli.print_json_line({key: row[key] for key in (
        "name", "variant", "test_accuracy", "tta_test_accuracy", "int8_test_accuracy", "epochs")})
    return 0


if __name__ == "__main__":
    cli.run_command(main, keras=True)
