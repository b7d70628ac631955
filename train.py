"""Trains a compact ResNet: `python train.py --variant efficient`.

A thin command line over keras_resnet; `python train.py --help` lists every flag.
"""

import sys



def build_parser():
    from keras_resnet import cli, variants

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
    cli.add_architecture_arguments(parser)
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


def main(argv=None):
    import dataclasses

    from keras_resnet import DEFAULT_PARAM_BUDGET, check_budget, cli, count_params, variants

    args = build_parser().parse_args(argv)
    if args.list_variants:
        list_variants()
        return 0
    variant, config = cli.resolve_architecture(args.variant, cli.architecture_overrides(args))
    param_budget = DEFAULT_PARAM_BUDGET if args.param_budget is None else args.param_budget
    check_budget(config, param_budget, args.allow_over_budget)
    counts = count_params(config)
    if args.dry_run:
        from keras_resnet import build_resnet

        build_resnet(config, name=variant).summary()
        cli.print_json_line({
            "variant": variant, "trainable_params": counts["trainable"],
            "non_trainable_params": counts["non_trainable"], "param_budget": param_budget,
            "config": config.to_dict(),
        })
        return 0
    raise ValueError("Training is not wired yet; use --dry-run.")


if __name__ == "__main__":
    from keras_resnet.quiet import import_keras

    import_keras()
    from keras_resnet.cli import run_main

    sys.exit(run_main(main))
