"""Trains a compact ResNet: `python train.py --variant efficient`.

A thin command line over keras_resnet; `python train.py --help` lists every flag. Settings
resolve in this order, later winning: the variant's architecture and its paper's recipe,
then `--config FILE`, then the flags given.
"""

import sys

EXIT_DIVERGED = 3
EXIT_OVER_FLASH_BUDGET = 4

# Flag -> TrainConfig field; type conversion happens in argparse.
TRAINING_FLAGS = (
    ("--optimizer", str, "sgd, adam, adamw, rmsprop, adagrad, adadelta"),
    ("--learning-rate", float, "peak learning rate"),
    ("--momentum", float, "SGD/RMSprop momentum"),
    ("--weight-decay", float, "weight decay (see --weight-decay-mode)"),
    ("--weight-decay-mode", str, "l2 (coupled, PyTorch-style) or decoupled (AdamW-style)"),
    ("--schedule", str, "constant, cosine, cosine_restarts, step, multistep, exponential, "
                        "one_cycle, plateau"),
    ("--warmup-epochs", float, "linear warm-up epochs (cosine, one_cycle)"),
    ("--decay-epochs", int, "period of step/exponential decay, in epochs"),
    ("--decay-rate", float, "decay factor of step, multistep, exponential, plateau"),
    ("--restart-epochs", int, "first period of cosine_restarts"),
    ("--plateau-patience", int, "epochs without improvement before plateau decays"),
    ("--min-learning-rate", float, "floor of cosine schedules and plateau"),
    ("--epochs", int, "epochs"),
    ("--batch-size", int, "global batch size"),
    ("--clip-value", float, "clip gradients by value"),
    ("--clip-norm", float, "clip each gradient by norm"),
    ("--global-clip-norm", float, "clip all gradients by global norm"),
    ("--label-smoothing", float, "label smoothing"),
    ("--lookahead-k", int, "Lookahead sync period"),
    ("--lookahead-alpha", float, "Lookahead slow step size"),
    ("--augment-on", str, "host (tf.data), device (in the train step) or auto"),
    ("--val-split", float, "fraction of train held out for validation (never test)"),
    ("--seed", int, "random seed"),
    ("--precision", str, "auto, float32, mixed_float16, mixed_bfloat16"),
    ("--jit", str, "XLA: auto, on, off"),
    ("--strategy", str, "auto, none, mirrored, multi_worker"),
    ("--steps-per-epoch", int, "limit each epoch to N steps (quick runs)"),
    ("--steps-per-execution", int, "train steps per compiled call"),
)


def build_parser():
    from keras_resnet import cli, variants
    from keras_resnet.data.augment import parse_augment
    from keras_resnet.training.repeats import parse_seeds

    parser = cli.ArgumentParser(
        prog="train.py", description="Build, train and evaluate a compact ResNet.")
    parser.add_argument(
        "--variant", default=None,
        help=f"one of {', '.join(variants.VARIANTS)}. Default: efficient, or, when --blocks "
             "or --channels is given without --variant, the plain family (no SE, ReLU)")
    parser.add_argument("--list-variants", action="store_true",
                        help="print the registered variants and exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="build the model, print its summary and a JSON line, and exit")
    parser.add_argument("--config", help="JSON or YAML file with variant/model/train/data "
                                         "sections (e.g. the tuner's best_config.json)")
    cli.add_architecture_arguments(parser)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=None, help="tensorflow-datasets name (cifar10)")
    data.add_argument("--data-dir", default=None,
                      help="local copy: cifar-10-python.tar.gz, cifar-10-batches-py/, or an "
                           "image folder DIR/{train,test}/<class>/ (or its .tar.gz)")
    data.add_argument("--augment", type=cli.argument_type(parse_augment), default=None,
                      help="comma-separated: crop, flip, cutout, zoom, translate, rotate, "
                           "color, mixup, cutmix; or none")
    cli.add_read_limit_arguments(parser)
    training = parser.add_argument_group("training (overrides the variant's recipe)")
    training.add_argument("--recipe", default="paper",
                          help="paper (the variant's paper's recipe, default) or fast "
                               "(time to accuracy: one-cycle, batch 512, label smoothing, TTA)")
    for flag, kind, text in TRAINING_FLAGS:
        training.add_argument(flag, type=kind, default=None, help=text)
    training.add_argument("--milestones", type=cli.int_list, default=None,
                          help="epochs at which the multistep schedule decays, e.g. 60,120")
    for flag, text in (("lookahead", "wrap the optimizer in Lookahead"),
                       ("nesterov", "Nesterov momentum"),
                       ("tta", "also report test accuracy with flip test-time augmentation"),
                       ("fused-batch-norm", "TensorFlow's fused batch-norm kernel in training "
                                            "(default on)")):
        training.add_argument(f"--{flag}", action=cli.argparse.BooleanOptionalAction,
                              default=None, help=text)
    run = parser.add_argument_group("run")
    run.add_argument("--output", help="run folder (default saved_models/<variant>-<time>/)")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --output from its last completed epoch")
    run.add_argument("--compile-cache", default="auto",
                     help="JAX: keep compiled steps in this folder, so that a rerun skips "
                          "compilation; auto (~/.cache/keras_resnet/jax) or off")
    run.add_argument("--seeds", type=cli.argument_type(parse_seeds), default=None,
                     help="train once per seed into OUTPUT/seed-<n>/ and write OUTPUT/summary.md "
                          "(mean, std, min, max), e.g. 0,1,2")
    run.add_argument("--repeats", type=int, default=None,
                     help="like --seeds with seeds --seed .. --seed + N - 1")
    run.add_argument("--export", default=None,
                     help="after training, export these formats (see keras_resnet.export)")
    return parser


def list_variants():
    from keras_resnet import count_params, variants

    rows = [("name", "trainable params", "paper", "paper's accuracy")]
    for name, variant in variants.VARIANTS.items():
        rows.append((name, f"{count_params(variant.config)['trainable']:,}", variant.paper,
                     variant.paper_accuracy))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


CONFIG_SECTIONS = {"variant": str, "model": dict, "train": dict, "data": dict,
                   "resumes": list}


def read_config_file(path):
    """Reads a JSON or YAML run configuration into a dict of checked sections."""
    import json
    import os

    if not os.path.isfile(path):
        raise ValueError(f"--config {path} does not exist; expected a JSON or YAML file.")
    try:
        with open(path) as handle:
            text = handle.read()
        if path.endswith((".yaml", ".yml")):
            import yaml

            values = yaml.safe_load(text)
        else:
            values = json.loads(text)
    except Exception as error:  # noqa: BLE001 - any read or parse error is the user's file
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"--config {path} could not be parsed: {reason}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f"--config {path} must be a mapping with sections variant, model, "
                         f"train, data. Received: {type(values).__name__}")
    unknown = sorted(str(key) for key in set(values) - set(CONFIG_SECTIONS))
    if unknown:
        raise ValueError(f"--config {path} must be a mapping with sections variant, model, "
                         f"train, data. Received: {unknown}")
    for section, kind in CONFIG_SECTIONS.items():
        if section in values and not isinstance(values[section], kind):
            raise ValueError(f"--config {path}: section `{section}` must be a "
                             f"{'string' if kind is str else 'mapping' if kind is dict else 'list'}"
                             f". Received: {section}={values[section]!r}"[:300])
    for key, value in values.get("data", {}).items():
        if key in ("dataset", "data_dir") and value is not None and not isinstance(value, str):
            raise ValueError(f"--config {path}: `data.{key}` must be a string. "
                             f"Received: {key}={value!r}")
    return values


def _check_resume_architecture(args, file, overrides):
    """Refuses a resume whose flags change the network the checkpoint holds."""
    from keras_resnet.config import ResNetConfig

    if args.variant is not None and args.variant != file.get("variant"):
        raise ValueError(f"The run in {args.output} is a {file.get('variant')!r} network; its "
                         "checkpoint cannot continue as another variant. Drop --variant or "
                         f"start a new --output. Received: variant={args.variant!r}")
    saved = ResNetConfig.from_dict(file.get("model", {}))
    changed = sorted(field for field, value in overrides.items()
                     if getattr(saved, field) != getattr(
                         ResNetConfig.from_dict({**saved.to_dict(), field: value}), field))
    if changed:
        raise ValueError(f"The architecture of a run cannot change on --resume "
                         f"({', '.join(changed)} differ from the run's); start a new --output. "
                         f"Received: {', '.join(f'{n}={overrides[n]!r}' for n in changed)}")


def resolve(args):
    """Resolves the flags (and --config, --resume) into (variant, ResNetConfig, TrainConfig, data)."""
    import dataclasses

    from keras_resnet import cli
    from keras_resnet.config import ResNetConfig
    from keras_resnet.training import TrainConfig, get_recipe

    if args.resume:
        import os

        if not args.output:
            raise ValueError("--resume needs --output naming the run folder to continue.")
        if args.recipe != "paper":
            raise ValueError("--resume continues the run's own recipe (its config.json); "
                             "give changes as flags. Received: recipe="
                             f"{args.recipe!r}")
        if args.config:
            raise ValueError("--resume continues from the run's own config.json; give "
                             "changes as flags, not --config. Received: config="
                             f"{args.config!r}")
        args.config = os.path.join(args.output, "config.json")
        if not os.path.exists(args.config):
            raise ValueError(f"Nothing to resume: {args.config} does not exist.")
    file = read_config_file(args.config) if args.config else {}
    overrides = cli.architecture_overrides(args)
    if args.resume:
        _check_resume_architecture(args, file, overrides)
    variant = args.variant or file.get("variant")
    if "model" in file:
        base = ResNetConfig.from_dict(file["model"])
        model_config = dataclasses.replace(base, **overrides)
        variant = variant or "custom"
    else:
        variant, model_config = cli.resolve_architecture(variant, overrides)
    # On resume config.json holds the run's effective recipe: the recipe flag is not reapplied.
    train_values = {} if args.resume else get_recipe(variant, args.recipe).to_dict()
    train_values.update(file.get("train", {}))
    for flag, _, _ in TRAINING_FLAGS:
        name = flag[2:].replace("-", "_")
        if getattr(args, name) is not None:
            train_values[name] = getattr(args, name)
    for name in ("lookahead", "nesterov", "tta", "augment", "milestones", "fused_batch_norm"):
        if getattr(args, name) is not None:
            train_values[name] = getattr(args, name)
    train_config = TrainConfig.from_dict(train_values)
    data = dict(file.get("data", {}))
    for name in ("dataset", "data_dir"):
        if getattr(args, name) is not None:
            data[name] = getattr(args, name)
    data.setdefault("dataset", "cifar10")
    data.setdefault("data_dir", None)
    # Only where the data comes from is an input; the rest is recorded from the data.
    data = {"dataset": data["dataset"], "data_dir": data["data_dir"]}
    return variant, model_config, train_config, data


def over_flash_budget(export_dir, flash_budget, config):
    """The message if the exported int8 model is larger than `flash_budget`, else None."""
    import json
    import os

    from keras_resnet.model import estimate_int8_bytes

    with open(os.path.join(export_dir, "report.json")) as file:
        int8 = json.load(file)["formats"].get("tflite-int8")
    if not flash_budget or int8 is None or int8["bytes"] <= flash_budget:
        return None
    return (f"The exported int8 model is {int8['bytes']:,} bytes, over the flash budget of "
            f"{flash_budget:,} (estimated before training: {estimate_int8_bytes(config):,}); "
            f"the run and its export are kept in {os.path.dirname(export_dir)}. "
            f"Received: flash_budget={flash_budget}")


def main(argv=None):
    import os
    import time

    from keras_resnet import DEFAULT_PARAM_BUDGET, build_resnet, check_budget, cli, count_params

    args = build_parser().parse_args(argv)
    if args.list_variants:
        list_variants()
        return 0
    variant, config, train_config, data_info = resolve(args)
    param_budget = DEFAULT_PARAM_BUDGET if args.param_budget is None else args.param_budget
    budgets = {"flash_budget": args.flash_budget, "macs_budget": args.macs_budget}
    check_budget(config, param_budget, args.allow_over_budget, **budgets)
    if args.dry_run:
        from keras_resnet.model import estimate_flops, estimate_int8_bytes

        counts = count_params(config)
        build_resnet(config, name=variant).summary()
        cli.print_json_line({
            "variant": variant, "trainable_params": counts["trainable"],
            "non_trainable_params": counts["non_trainable"], "param_budget": param_budget,
            "int8_bytes_estimate": estimate_int8_bytes(config),
            "macs_per_image": estimate_flops(config) // 2, **budgets,
            "config": config.to_dict(), "train": train_config.to_dict(),
        })
        return 0
    output = args.output or os.path.join(
        "saved_models", f"{variant}-{time.strftime('%Y%m%d-%H%M%S')}")
    from keras_resnet import run_folder
    from keras_resnet.training import repeats

    seeds = repeats.resolve_seeds(args.seeds, args.repeats, train_config.seed, output,
                                  args.resume)
    if seeds is not None and args.export:
        raise ValueError("--export exports one model; export one seed's run instead. "
                         f"Received: export={args.export!r} with seeds={list(seeds)}")
    cli.read_limits(args)  # bad limits fail before the run folder is made
    export_formats = None
    if args.export:
        from keras_resnet.export import check_formats
        from keras_resnet.export.exporter import export_names
        from keras_resnet.export.manifest import check_export_folder

        export_formats = check_formats(args.export)
        # Refused now, not after hours of training: an export over a file of the user's.
        check_export_folder(os.path.join(output, "export"), export_names(export_formats))
    # Checked, created and locked before the data is read: a wrong --output or a second
    # process on the same run should not cost a minute of loading. (Repeated seeds hold
    # their folder too: the outer one in run_repeats, each seed's in fit.)
    with run_folder.hold(output, args.resume):
        return _train(args, output, variant, config, train_config, data_info, param_budget,
                      budgets, export_formats, seeds)


def _train(args, output, variant, config, train_config, data_info, param_budget, budgets,
           export_formats, seeds):
    import dataclasses
    import os

    from keras_resnet import check_budget, cli, run_folder
    from keras_resnet.data import load_data

    data = load_data(**run_folder.data_arguments(run_folder.run_config(
        variant, config, train_config, data_info)), limits=cli.read_limits(args))
    if data_info["data_dir"] is not None or data_info["dataset"] != "cifar10":
        # A user's own data: classes and statistics follow it.
        config = dataclasses.replace(config, num_classes=data.num_classes, mean=data.mean,
                                     std=data.std)
        check_budget(config, param_budget, args.allow_over_budget, **budgets)
    data_info = {**data_info, "image_size": list(config.input_shape[:2]),
                 "val_split": train_config.val_split, "seed": train_config.seed,
                 "class_names": list(data.class_names), "source": data.source}
    print(f"data: {data.source}: {len(data.x_train)} train, {len(data.x_val)} validation, "
          f"{len(data.x_test)} test images, {data.num_classes} classes", flush=True)

    from keras_resnet.training import fit, records, repeats, runtime

    runtime.enable_compile_cache(args.compile_cache)
    try:
        # Keras' live progress bar into a file or pipe is a wall of text: one line per epoch.
        verbose = "auto" if sys.stdout.isatty() else 2
        if seeds is not None:
            summary = repeats.run_repeats(config, train_config, data, output, seeds,
                                          variant=variant, resume=args.resume,
                                          data_info=data_info, verbose=verbose)
            print(repeats.summary_markdown(summary))
            cli.print_json_line({"run_dir": output, "seeds": summary["seeds"], **{
                name: values["mean"] for name, values in summary["metrics"].items()}})
            return 0
        metrics = fit.fit(config, train_config, data, output, variant=variant,
                          resume=args.resume, data_info=data_info, verbose=verbose)
    except fit.TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DIVERGED
    print(records.summary_text(metrics))
    if export_formats:
        from keras_resnet.export import export_model
        from keras_resnet.export.runtime import load_keras_model

        model_path, run_config = run_folder.read_finished_run(output)
        # The data is already in memory: calibrate and evaluate on it, not on a re-read.
        export_model(load_keras_model(model_path), os.path.join(output, "export"),
                     export_formats, calibration_images=data.x_train,
                     test_images=data.x_test, test_labels=data.y_test,
                     class_names=list(data.class_names), source_config=run_config)
        with open(os.path.join(output, "export", "report.md")) as report:
            print(report.read())
        over = over_flash_budget(os.path.join(output, "export"), args.flash_budget, config)
        if over:
            print(f"error: {over}", file=sys.stderr)
            return EXIT_OVER_FLASH_BUDGET
    cli.print_json_line({k: v for k, v in metrics.items()
                         if k not in ("confusion_matrix", "per_class_accuracy")})
    return 0


if __name__ == "__main__":
    from keras_resnet.quiet import import_keras

    import_keras()
    from keras_resnet.cli import run_main

    sys.exit(run_main(main))
