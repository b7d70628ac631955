"""Benchmark command: training and inference throughput of a variant on this machine.

    python -m keras_resnet.bench --variant efficient

Times exactly the step `train.py` runs: the model, its compiled step and the batches
(tf.data on TensorFlow, arrays held on the device elsewhere) come from
`keras_resnet.training.run.TrainingRun` with the variant's recipe (or `--recipe fast`) and
training's defaults (precision and XLA `auto`), over random images. A warm-up pays for
tracing and compilation first. The last line of stdout is one JSON object: the numbers,
the resolved settings, the command, the date and the machine.
"""

import json
import sys
import time

import numpy as np

from keras_resnet import cli


def build_parser():
    """Returns the argument parser of the benchmark command."""
    from keras_resnet.training.config import TrainConfig
    from keras_resnet.variants import RECIPE_NAMES

    parser = cli.ArgumentParser(prog="python -m keras_resnet.bench",
                                description="Training and inference throughput of a variant.")
    model = parser.add_argument_group("model and recipe")
    model.add_argument("--variant", required=True, help="a key of keras_resnet.VARIANTS")
    model.add_argument("--recipe", default="paper", choices=RECIPE_NAMES,
                       help="the variant's paper recipe (default) or fast")
    cli.add_config_arguments(parser.add_argument_group(
        "training, as train.py's flags (default: the recipe's)"), TrainConfig)
    run = parser.add_argument_group("run")
    run.add_argument("--steps", type=cli.positive("steps"), default=20,
                     help="timed training steps (and inference batches) per repeat")
    run.add_argument("--warmup-steps", type=cli.positive("warmup_steps", 0), default=None,
                     help="untimed steps first; defaults to 2 x steps_per_execution")
    run.add_argument("--repeats", type=cli.positive("repeats"), default=1,
                     help="timed runs; the best is reported (the machine may be shared)")
    run.add_argument("--skip-inference", action="store_true")
    compiler = parser.add_argument_group("compilation and threads")
    compiler.add_argument("--compile-cache", default="auto",
                          help="JAX's compilation cache folder, as training's: auto (the "
                               "user's cache folder) or off")
    compiler.add_argument("--intra-op-threads", type=cli.positive("intra_op_threads", 0),
                          default=0, help="TensorFlow/torch only; 0 keeps the default")
    compiler.add_argument("--inter-op-threads", type=cli.positive("inter_op_threads", 0),
                          default=0, help="TensorFlow/torch only; 0 keeps the default")
    return parser


def _configure_threads(backend, intra, inter):
    # Must run before the backend creates its thread pools (before the first op).
    if not (intra or inter):
        return
    if backend == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    elif backend == "torch":
        import torch
        if intra:
            torch.set_num_threads(intra)
        if inter:
            torch.set_num_interop_threads(inter)
    else:
        raise ValueError(
            "`--intra-op-threads`/`--inter-op-threads` are for the tensorflow and torch "
            f"backends (for JAX use XLA_FLAGS). Received: backend={backend!r}")


def run_benchmark(args):
    """Builds, compiles and times the training step; returns the result dict."""
    import dataclasses

    import keras

    from keras_resnet.data.sources import DataSplits
    from keras_resnet.model import count_params, estimate_flops
    from keras_resnet.training import TrainConfig, runtime
    from keras_resnet.training.run import TrainingRun
    from keras_resnet.variants import get_recipe, get_variant

    config = get_variant(args.variant)
    backend = keras.backend.backend()
    _configure_threads(backend, args.intra_op_threads, args.inter_op_threads)
    runtime.enable_compile_cache(args.compile_cache)
    train_config = dataclasses.replace(
        get_recipe(args.variant, args.recipe), **cli.config_overrides(args, TrainConfig),
        steps_per_epoch=None, val_split=0.0)
    spe = train_config.steps_per_execution
    # Whole executions only, so every timed fit runs exactly `steps` steps.
    steps = -(-args.steps // spe) * spe
    warmup = -(-(2 * spe if args.warmup_steps is None else args.warmup_steps) // spe) * spe
    warmup = max(warmup, spe)
    batch = train_config.batch_size
    rng = np.random.default_rng(0)
    count = max(steps, warmup) * batch
    images = rng.integers(0, 256, (count, *config.input_shape), dtype=np.uint8)
    labels = rng.integers(0, config.num_classes, count).astype(np.int32)
    empty = images[:0]
    data = DataSplits(images, labels, empty, labels[:0], empty, labels[:0],
                      tuple(str(i) for i in range(config.num_classes)), config.mean,
                      config.std, "random")
    keras.utils.set_random_seed(0)
    run = TrainingRun(config, train_config, len(images), name=args.variant)
    with run:
        model, train_model = run.build()
        train_data, _ = run.data(data)
        # The warm-up traces and compiles the train step (or loads it from the cache).
        run.fit(train_data, epochs=1, steps=warmup)
        result = {"warmup_seconds": run.seconds, "train_images_per_sec": 0.0}
        # The best of the repeats: other work on a shared machine only ever slows a run down.
        for _ in range(args.repeats):
            run.fit(train_data, epochs=1, steps=steps)
            result["train_images_per_sec"] = max(result["train_images_per_sec"],
                                                 run.images_per_second)
        if not args.skip_inference:
            inputs, best = images[:steps * batch].astype("float32"), float("inf")
            for repeat in range(args.repeats + 1):  # the first traces the step
                started = time.perf_counter()
                model.predict(inputs, batch_size=batch, verbose=0)
                best = min(best, time.perf_counter() - started) if repeat else best
            result["inference_images_per_sec"] = steps * batch / best
    flops = estimate_flops(config)
    # Training costs about three forward passes: forward, and backward to inputs and weights.
    result.update(
        gflops_per_image=flops / 1e9, train_gflops_per_image=3 * flops / 1e9,
        achieved_gflops=3 * flops * result["train_images_per_sec"] / 1e9,
    )
    if "inference_images_per_sec" in result:
        result["inference_achieved_gflops"] = flops * result["inference_images_per_sec"] / 1e9
    return {
        "variant": args.variant, "recipe": args.recipe, "backend": backend,
        "device": runtime.device_description(), "precision": run.precision,
        "jit": run.jit, "augment_on": run.augment_on, "replicas": run.replicas,
        "optimizer": type(train_model.optimizer).__name__,
        "fused_batch_norm": train_config.fused_batch_norm and backend == "tensorflow",
        "batch_size": batch, "steps": steps, "warmup_steps": warmup, "repeats": args.repeats,
        "steps_per_execution": spe, "intra_op_threads": args.intra_op_threads,
        "inter_op_threads": args.inter_op_threads,
        "trainable_params": count_params(config)["trainable"],
        **{k: round(v, 4) for k, v in result.items()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python -m keras_resnet.bench"] + list(args.argv)),
        "machine": runtime.machine_info(), "config": config.to_dict(),
        "train": train_config.to_dict(),
    }


def main(argv=None):
    """Runs the benchmark command (through `cli.run_main`, as every command)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    print(json.dumps(run_benchmark(args)))
    return 0


if __name__ == "__main__":
    cli.run_command(main, keras=True)
