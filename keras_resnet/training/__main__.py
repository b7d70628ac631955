"""Trains a compact ResNet: `python train.py --variant efficient`.

The command behind the checkout's `train.py`, also `python -m keras_resnet.training` after
a plain `pip install .`; `--help` lists every flag. Settings resolve in this order, later
winning: the variant's architecture and its paper's recipe, then `--config FILE`, then the
flags given.
"""

import sys

EXIT_DIVERGED = 3
EXIT_OVER_FLASH_BUDGET = 4
EXIT_OVER_ARENA_BUDGET = 5

def build_parser():
    from keras_resnet import cli, variants
    from keras_resnet.config import ResNetConfig
    from keras_resnet.training import TrainConfig
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
    architecture = parser.add_argument_group("architecture (overrides the variant's fields)")
    cli.add_config_arguments(architecture, ResNetConfig)
    cli.add_budget_arguments(architecture)
    architecture.add_argument("--allow-over-budget", action="store_true",
                              help="build a configuration over the budget anyway")
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=None, help="tensorflow-datasets name (cifar10)")
    data.add_argument("--data-dir", default=None,
                      help="local copy: cifar-10-python.tar.gz, cifar-10-batches-py/, or an "
                           "image folder DIR/{train,test}/<class>/ (or its .tar.gz)")
    cli.add_read_limit_arguments(parser)
    training = parser.add_argument_group("training (overrides the variant's recipe)")
    training.add_argument("--recipe", default="paper",
                          help="paper (the variant's paper's recipe, default) or fast "
                               "(time to accuracy: one-cycle, batch 512, label smoothing, TTA)")
    cli.add_config_arguments(training, TrainConfig)
    run = parser.add_argument_group("run")
    run.add_argument("--output", help="run folder (default runs/<variant>-<time>/)")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --output from its last completed epoch")
    run.add_argument("--compile-cache", default="auto",
                     help="JAX: keep compiled steps in this folder, so that a rerun skips "
                          "compilation; auto (~/.cache/keras_resnet/jax) or off")
    run.add_argument("--seeds", type=cli.argument_type(parse_seeds), default=None,
                     help="train once per seed into OUTPUT/seed-<n>/ and write OUTPUT/summary.md "
                          "(mean, std, min, max), e.g. 0,1,2")
    run.add_argument("--repeats", type=cli.positive("repeats"), default=None,
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


def over_export_budget(export_dir, config, flash_budget=None, arena_budget=None):
    """The message and exit code of the first budget the export is over, else None.

    The int8 model's bytes are checked against `flash_budget`; the TFLM arena the `tflm`
    export measured by running the int8 model (`keras_resnet.export.micro.measure_arena`)
    against `arena_budget`. The message names the estimate made before training.
    """
    import os

    from keras_resnet.files import read_json
    from keras_resnet.run_folder import REPORT_FILE
    from keras_resnet.model import estimate_arena_bytes, estimate_int8_bytes

    formats = read_json(os.path.join(export_dir, REPORT_FILE), "report")["formats"]
    int8, tflm = formats.get("tflite-int8"), formats.get("tflm")
    for name, budget, measured, what, estimate, code in (
            ("flash", flash_budget, int8 and int8["bytes"], "is {:,} bytes", estimate_int8_bytes,
             EXIT_OVER_FLASH_BUDGET),
            ("arena", arena_budget, tflm and tflm["arena"]["arena_bytes"],
             "needs a TFLM arena of {:,} bytes", estimate_arena_bytes, EXIT_OVER_ARENA_BUDGET)):
        if budget and measured is not None and measured > budget:
            return (f"The exported int8 model {what.format(measured)}, over the {name} budget "
                    f"of {budget:,} (estimated before training: {estimate(config):,}); the run "
                    f"and its export are kept in {os.path.dirname(export_dir)}. "
                    f"Received: {name}_budget={budget}", code)
    return None


def main(argv=None, on_start=None):
    """Runs `train.py`: trains, evaluates and optionally exports one run or repeated seeds.

    Args:
        argv: list of str or None. The command line (`sys.argv[1:]` when `None`).
        on_start: callable or None. Called without arguments once a repeated run's folder
            records its configuration, before its first epoch (`reproduce` names the run in
            the results table then).

    Returns:
        The exit code: 0, or non-zero for a diverged run or an export over its budget.
    """
    import os
    import time

    from keras_resnet import build_resnet, check_budget, cli, count_params

    args = build_parser().parse_args(argv)
    if args.list_variants:
        list_variants()
        return 0
    from keras_resnet.settings import resolve_settings

    variant, config, train_config, data_info = resolve_settings(args)
    param_budget = args.param_budget
    budgets = {"flash_budget": args.flash_budget, "macs_budget": args.macs_budget,
               "arena_budget": args.arena_budget}
    check_budget(config, param_budget, args.allow_over_budget, **budgets)
    if args.dry_run:
        from keras_resnet.model import (
            estimate_arena_bytes,
            estimate_flops,
            estimate_int8_bytes,
        )

        counts = count_params(config)
        build_resnet(config, name=variant).summary()
        cli.print_json_line({
            "variant": variant, "trainable_params": counts["trainable"],
            "non_trainable_params": counts["non_trainable"], "param_budget": param_budget,
            "int8_bytes_estimate": estimate_int8_bytes(config),
            "macs_per_image": estimate_flops(config) // 2,
            "arena_bytes_estimate": estimate_arena_bytes(config), **budgets,
            "config": config.to_dict(), "train": train_config.to_dict(),
        })
        return 0
    output = args.output or os.path.join(
        "runs", f"{variant}-{time.strftime('%Y%m%d-%H%M%S')}")
    from keras_resnet import run_folder
    from keras_resnet.training import repeats

    seeds = repeats.resolve_seeds(args.seeds, args.repeats, train_config.seed, output,
                                  args.resume)
    if seeds is not None and args.export:
        raise ValueError("--export exports one model; export one seed's run instead. "
                         f"Received: export={args.export!r} with seeds={list(seeds)}")
    export_formats = None
    if args.export:
        from keras_resnet.export import check_formats
        from keras_resnet.export.exporter import export_names
        from keras_resnet.export.manifest import check_export_folder

        export_formats = check_formats(args.export)
        if args.arena_budget and "tflm" not in export_formats:
            # Only a tflm export runs the model under TFLM; an unchecked budget would pass
            # silently.
            raise ValueError("--arena-budget is checked on the export by running the model "
                             "under TFLite Micro: add tflm to --export. Received: "
                             f"export={args.export!r}, arena_budget={args.arena_budget}")
        # Refused now, not after hours of training: an export over a file of the user's.
        check_export_folder(os.path.join(output, run_folder.EXPORT),
                            export_names(export_formats))
    # Checked, created and locked before the data is read: a wrong --output or a second
    # process on the same run should not cost a minute of loading. (Repeated seeds hold
    # their folder too: the outer one in run_repeats, each seed's in fit.)
    with run_folder.hold(output, args.resume):
        return _train(args, output, variant, config, train_config, data_info, param_budget,
                      budgets, export_formats, seeds, on_start)


def _train(args, output, variant, config, train_config, data_info, param_budget, budgets,
           export_formats, seeds, on_start):
    import dataclasses
    import os

    from keras_resnet import check_budget, cli, run_folder
    from keras_resnet.data import load_data

    height, width, channels = config.input_shape
    data = load_data(**data_info, image_size=(height, width), channels=channels,
                     val_split=train_config.val_split, seed=train_config.seed,
                     limits=cli.read_limits(args))
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
                                          data_info=data_info, verbose=verbose,
                                          on_start=on_start)
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
        export_dir = os.path.join(output, run_folder.EXPORT)
        export_model(load_keras_model(model_path), export_dir,
                     export_formats, calibration_images=data.x_train,
                     test_images=data.x_test, test_labels=data.y_test,
                     class_names=list(data.class_names), source_config=run_config)
        with open(os.path.join(export_dir, "report.md")) as report:
            print(report.read())
        over = over_export_budget(export_dir, config, args.flash_budget, args.arena_budget)
        if over:
            print(f"error: {over[0]}", file=sys.stderr)
            return over[1]
    cli.print_json_line({k: v for k, v in metrics.items()
                         if k not in ("confusion_matrix", "per_class_accuracy")})
    return 0


if __name__ == "__main__":
    from keras_resnet.cli import run_command

    run_command(main, keras=True)
