"""`python -m tuner`: search architectures and recipes under a parameter budget.

See `tuner/__init__.py` for the whole story; `python -m tuner --help` lists the flags.
"""

import os
import sys
import time

# Nothing that imports Keras at module level: `__main__` quiets TensorFlow's start-up first.


def build_parser():
    import dataclasses

    from keras_resnet import cli
    from keras_resnet.training import TrainConfig
    from tuner.dimensions import DEFAULT_TUNED, DIMENSIONS

    parser = cli.ArgumentParser(
        prog="python -m tuner",
        description="Hyperparameter search over compact ResNets under a parameter budget. "
                    "Prints one JSON line last: trials, best_config, rejected_over_budget.")
    search = parser.add_argument_group("search")
    search.add_argument("--tuner", default="random", help="random, bayesian or hyperband")
    search.add_argument("--study", help="rerun a paper's grid: optimizers, adam-lr, batch-lr-grid")
    search.add_argument("--variant", help="base architecture and recipe (default efficient; "
                                          "a study's default is its paper's variant)")
    search.add_argument("--max-trials", type=cli.positive("max_trials"), default=10,
                        help="trials (default 10)")
    search.add_argument("--executions-per-trial", type=cli.positive("executions_per_trial"),
                        default=1,
                        help="trainings averaged per trial (default 1)")
    cli.add_budget_arguments(search, verb="rejected")
    search.add_argument("--final-seeds", type=cli.positive("final_seeds", 0), default=0,
                        help="retrain the --final-top best trials with N fresh seeds each and "
                             "rank them by the mean, so a lucky draw does not win (default 0: "
                             "off)")
    search.add_argument("--final-top", type=cli.positive("final_top"), default=3,
                        help="trials --final-seeds retrains (default 3)")
    space = parser.add_argument_group(
        "search space: a dimension flag sets its range and tunes it; one value fixes it. "
        "Lists a,b,c; ranges lo:hi, lo:hi:log, lo:hi:step")
    space.add_argument("--space", help="JSON file {dimension: true|false|[values]|{min,max,...}}; "
                                       "only its dimensions are tuned")
    space.add_argument("--tune", help=f"dimensions to tune, or 'all' (default: "
                                      f"{','.join(DEFAULT_TUNED)})")
    space.add_argument("--freeze", help="dimensions to keep at the base's value")
    for name, (_, default, text) in DIMENSIONS.items():
        shown = default.get("values") or f"{default['min']}:{default['max']}"
        space.add_argument(f"--{name.replace('_', '-')}", dest=f"dim_{name}",
                           help=f"{text} (default {shown})")
    training = parser.add_argument_group(
        "training of every trial: the base recipe's, but for what the space tunes; --epochs "
        "per trial (Hyperband: the most) defaults to 3, --seed (also the oracle's) to 0")
    cli.add_config_arguments(training, TrainConfig, [
        field.name for field in dataclasses.fields(TrainConfig) if field.name not in DIMENSIONS])
    parser.set_defaults(epochs=3, seed=0, val_split=0.1, steps_per_epoch=None)
    data = parser.add_argument_group("data (selection uses the validation split, never test)")
    data.add_argument("--dataset", default="cifar10", help="tensorflow-datasets name")
    data.add_argument("--data-dir", help="local copy: CIFAR-10 archive or image folder")
    cli.add_read_limit_arguments(parser)
    run = parser.add_argument_group("run")
    run.add_argument("--output", help="search folder (default runs/tuner-<time>); "
                                      "rerun with the same folder to resume")
    run.add_argument("--overwrite", action="store_true", help="discard a search in --output")
    run.add_argument("--compile-cache", default="auto",
                     help="JAX's compilation cache folder, as train.py's: auto or off")
    run.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity per trial")
    return parser


def _role():
    from keras_tuner.src.distribute import utils

    if not utils.has_chief_oracle():
        return "standalone"
    return "chief" if utils.is_chief_oracle() else "worker"


def _make_space(args, variant, ranges, data=None):
    import dataclasses

    from keras_resnet import cli
    from keras_resnet.training import TrainConfig
    from keras_resnet.variants import get_recipe, get_variant
    from tuner.dimensions import DIMENSIONS, TRAIN_DIMENSIONS
    from tuner.space import SearchSpace

    base = get_variant(variant)
    if data is not None and (args.data_dir is not None or args.dataset != "cifar10"):
        base = dataclasses.replace(base, num_classes=data.num_classes, mean=data.mean,
                                   std=data.std)
    # A training dimension given one value is part of the recipe, so the recipe's own checks
    # (warm-up needs a schedule that has one) see it before any trial does.
    fixed = {name: DIMENSIONS[name][0](spec["values"][0]) for name, spec in ranges.items()
             if name in TRAIN_DIMENSIONS and len(spec.get("values", ())) == 1}
    recipe = dataclasses.replace(get_recipe(variant), **fixed,
                                 **cli.config_overrides(args, TrainConfig))
    space = SearchSpace(base, recipe, ranges, args.param_budget, args.flash_budget,
                        args.macs_budget, args.arena_budget)
    space.check_feasible(seed=args.seed)
    return space


def _default_output(args):
    return args.output or os.path.join(
        "runs", f"{'study-' + args.study if args.study else 'tuner'}-"
                        f"{time.strftime('%Y%m%d-%H%M%S')}")


def main(argv=None):
    from keras_resnet import cli
    from tuner import hypermodel as hm
    from tuner import folder, studies
    from tuner.dimensions import resolve_ranges

    args = build_parser().parse_args(argv)
    if _role() != "worker":
        folder.check_output(args.output)
    study = studies.get_study(args.study) if args.study else None
    kind = "grid" if study else args.tuner
    if kind not in hm.TUNERS + ("grid",):
        raise ValueError(f"Unknown tuner; expected one of {', '.join(hm.TUNERS)}. "
                         f"Received: tuner={args.tuner!r}")
    variant = args.variant or (study.variant if study else "efficient")
    ranges = resolve_ranges(args, study)
    _make_space(args, variant, ranges)  # fail on a bad space or budget before loading data

    from keras_resnet.data import load_data

    data = load_data(args.dataset, args.data_dir, val_split=args.val_split, seed=args.seed,
                     limits=cli.read_limits(args))
    space = _make_space(args, variant, ranges, data)
    data_info = {"dataset": args.dataset, "data_dir": args.data_dir and os.path.abspath(
        args.data_dir), "val_split": args.val_split}
    role = _role()
    signature = {"tuner": kind, "study": args.study, "variant": variant, "space": space.to_dict(),
                 "epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch,
                 "executions_per_trial": args.executions_per_trial, "data": data_info,
                 "max_trials": args.max_trials}
    output = _default_output(args)
    if role == "worker":  # the chief holds the folder; its workers write trials under it
        return _search(args, role, kind, variant, study, ranges, space, data, data_info, output)
    with folder.hold(output, signature, args.overwrite):
        return _search(args, role, kind, variant, study, ranges, space, data, data_info, output)


def _search(args, role, kind, variant, study, ranges, space, data, data_info, output):
    from keras_resnet import cli
    from tuner import hypermodel as hm
    from tuner import results, studies

    print(f"tuner ({role}): {kind} search over {', '.join(sorted(ranges)) or 'nothing'}; "
          f"base {variant}; budget {args.param_budget:,}; data {data.source}: "
          f"{len(data.x_train)} train, {len(data.x_val)} validation; output {output}", flush=True)

    from keras_resnet.training import runtime

    runtime.enable_compile_cache(args.compile_cache)
    model = hm.ResNetHyperModel(space, data, name=f"tuned_{variant}", verbose=args.verbose)
    max_trials = min(args.max_trials, study.size) if study else args.max_trials
    tuner = hm.build_tuner(kind, model, output, max_trials, args.epochs, seed=args.seed,
                           executions_per_trial=args.executions_per_trial)
    tuner.search(epochs=args.epochs)
    if role == "worker":
        cli.print_json_line({"worker": os.environ.get("KERASTUNER_TUNER_ID"), "output": output})
        return 0

    rows = results.collect_trials(tuner.oracle, space)
    final_note = ""
    if args.final_seeds and rows:
        from tuner import final

        seeds = final.final_seeds(args.seed, args.final_seeds)
        rows = final.reevaluate(model, rows, seeds, args.final_top, output, args.epochs)
        final_note = (f" The best {min(args.final_top, len(rows))} trial(s) were retrained with "
                      f"seeds {', '.join(map(str, seeds))} (not the search's) and are ranked "
                      "first, by their mean.")
    rejected = tuner.oracle.rejected_over_budget
    device = "".join(f", {value:,} {unit}" for value, unit in (
        (args.flash_budget, "bytes of int8 model (estimated)"),
        (args.macs_budget, "MACs per image"),
        (args.arena_budget, "bytes of TFLM arena (estimated)")) if value)
    header = (f"# Search `{kind}` from `{variant}`\n\nBudget {args.param_budget:,} trainable "
              f"parameters{device}; {rejected} draw(s) rejected over budget before building; "
              f"{args.epochs} epoch(s) per trial"
              + (f" of {args.steps_per_epoch} steps" if args.steps_per_epoch else "")
              + f"; selection on the validation split ({len(data.x_val)} images)." + final_note)
    results.write_leaderboard(rows, output, header)
    best_config = None
    if rows:
        results.plot_pareto(rows, os.path.join(output, "pareto.png"), args.param_budget)
        best_config = os.path.join(output, "best_config.json")
        results.write_best_config(rows[0], space, variant, data_info, best_config)
        if study:
            from keras_resnet.files import write_text

            write_text(os.path.join(output, "study.md"),
                       studies.study_table(study, rows, args.epochs, args.steps_per_epoch))
        mean = (f" (over seeds {rows[0]['seed_mean']:.4f} +- {rows[0]['seed_std']:.4f})"
                if "seed_mean" in rows[0] else "")
        print(f"best: trial {rows[0]['trial_id']}, val_accuracy {rows[0]['val_accuracy']:.4f}"
              f"{mean}, {rows[0]['params']:,} parameters -> {best_config}", flush=True)
    cli.print_json_line({
        "trials": [{k: row[k] for k in ("trial_id", "params", "val_accuracy", "hyperparameters",
                                        "seconds", "images_per_second", "rss_mb",
                                        "seed_mean", "seed_std", "seed_scores") if k in row}
                   for row in rows],
        "best_config": best_config, "rejected_over_budget": rejected, "output": output})
    if not rows:
        print("error: no trial completed; see the trial messages above.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from keras_resnet.cli import run_command
    from keras_resnet.quiet import quiet_native_logs

    with quiet_native_logs():
        import keras_tuner  # noqa: F401 - its import logs too, as Keras's does
    run_command(main, keras=True)
