"""Benchmark command: training and inference throughput of a variant on this machine.

    python -m keras_resnet.bench --variant efficient --precision mixed_bfloat16

Builds `build_resnet(get_variant(name))`, compiles it with SGD (momentum 0.9) and
categorical crossentropy, and times `model.fit` and `model.predict` on random images
held in memory, after a warm-up that pays for tracing and compilation. Backend-neutral
(TensorFlow, JAX, torch): precision goes through the Keras dtype policy and XLA through
`jit_compile`. The last line of stdout is one JSON object: the numbers, the resolved
settings, the command, the date and the machine.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from keras_resnet.cli import ArgumentParser

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
JIT_CHOICES = ("on", "off", "auto")


def _positive(kind_name, minimum=1):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be an integer >= {minimum}. Received: {kind_name}={text!r}")
        return value
    return parse


def build_parser():
    """Returns the argument parser of the benchmark command."""
    parser = ArgumentParser(prog="python -m keras_resnet.bench",
                     description="Training and inference throughput of a variant.")
    model = parser.add_argument_group("model")
    model.add_argument("--variant", required=True, help="a key of keras_resnet.VARIANTS")
    model.add_argument("--precision", default="float32", choices=PRECISIONS,
                       help="Keras dtype policy. Defaults to float32.")
    run = parser.add_argument_group("run")
    run.add_argument("--batch-size", type=_positive("batch_size"), default=128)
    run.add_argument("--steps", type=_positive("steps"), default=20,
                     help="timed training steps (and inference batches) per repeat")
    run.add_argument("--warmup-steps", type=_positive("warmup_steps", 0), default=None,
                     help="untimed steps first; defaults to 2 x steps_per_execution")
    run.add_argument("--repeats", type=_positive("repeats"), default=1,
                     help="timed runs; the best is reported (the machine may be shared)")
    run.add_argument("--skip-inference", action="store_true")
    compiler = parser.add_argument_group("compilation and threads")
    compiler.add_argument("--jit", default="auto", choices=JIT_CHOICES,
                          help="jit_compile: on, off or auto (Keras resolves it; on the "
                               "TensorFlow backend auto is off on CPU). Defaults to auto.")
    compiler.add_argument("--fused-batch-norm", default="auto", choices=("auto", "on", "off"),
                          help="TensorFlow's fused batch-norm kernel (training's default on "
                               "the TensorFlow backend). Defaults to auto (on for TensorFlow).")
    compiler.add_argument("--steps-per-execution", type=_positive("steps_per_execution"),
                          default=1)
    compiler.add_argument("--intra-op-threads", type=_positive("intra_op_threads", 0),
                          default=0, help="TensorFlow/torch only; 0 keeps the default")
    compiler.add_argument("--inter-op-threads", type=_positive("inter_op_threads", 0),
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


def _device():
    import keras
    try:
        devices = keras.distribution.list_devices()
    except Exception:  # torch backend has no distribution lib; it runs on CPU here
        devices = ["cpu:0"]
    return str(devices[0]).lower().split(":")[0] if devices else "cpu"


def machine_info():
    """Returns the CPU model, core count, platform and Python version."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


def _timed(fn, repeats):
    # Best of `repeats`: other work on a shared machine only ever slows a run down.
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run_benchmark(args):
    """Builds, compiles and times the model; returns the result dict."""
    import keras

    from keras_resnet.model import build_resnet, count_params, estimate_flops
    from keras_resnet.variants import get_variant

    config = get_variant(args.variant)
    backend = keras.backend.backend()
    _configure_threads(backend, args.intra_op_threads, args.inter_op_threads)
    keras.mixed_precision.set_dtype_policy(args.precision)
    keras.utils.set_random_seed(0)
    model = build_resnet(config)
    fused = args.fused_batch_norm == "on" or (
        args.fused_batch_norm == "auto" and backend == "tensorflow")
    if fused:
        from keras_resnet.training.fused_batch_norm import use_fused_batch_norm

        use_fused_batch_norm(model)
    jit = {"on": True, "off": False, "auto": "auto"}[args.jit]
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
                  loss="categorical_crossentropy", jit_compile=jit,
                  steps_per_execution=args.steps_per_execution)
    spe = args.steps_per_execution
    warmup = 2 * spe if args.warmup_steps is None else args.warmup_steps
    # Whole executions only, so every timed fit runs exactly `steps` steps.
    steps = -(-args.steps // spe) * spe
    rng = np.random.default_rng(0)
    batch = args.batch_size
    images = rng.uniform(0, 255, (steps * batch, *config.input_shape)).astype("float32")
    labels = np.eye(config.num_classes, dtype="float32")[
        rng.integers(0, config.num_classes, steps * batch)]

    def fit(num_steps):
        model.fit(images[:num_steps * batch], labels[:num_steps * batch], batch_size=batch,
                  epochs=1, shuffle=False, verbose=0)

    # The warm-up traces and compiles the train step; at least one execution.
    fit(max(warmup, spe))
    train_seconds = _timed(lambda: fit(steps), args.repeats)
    result = {"train_images_per_sec": steps * batch / train_seconds}
    if not args.skip_inference:
        def predict():
            model.predict(images, batch_size=batch, verbose=0)
        predict()
        result["inference_images_per_sec"] = steps * batch / _timed(predict, args.repeats)
    flops = estimate_flops(config)
    # Training costs about three forward passes: forward, and backward to inputs and weights.
    result.update(
        gflops_per_image=flops / 1e9, train_gflops_per_image=3 * flops / 1e9,
        achieved_gflops=3 * flops * result["train_images_per_sec"] / 1e9,
    )
    if "inference_images_per_sec" in result:
        result["inference_achieved_gflops"] = flops * result["inference_images_per_sec"] / 1e9
    return {
        "variant": args.variant, "backend": backend, "device": _device(),
        "precision": args.precision, "jit": bool(model.jit_compile),
        "jit_requested": args.jit, "fused_batch_norm": fused, "batch_size": batch, "steps": steps,
        "warmup_steps": max(warmup, spe), "repeats": args.repeats,
        "steps_per_execution": spe, "intra_op_threads": args.intra_op_threads,
        "inter_op_threads": args.inter_op_threads,
        "trainable_params": count_params(config)["trainable"],
        **{k: round(v, 4) for k, v in result.items()},
        "keras_version": keras.__version__,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python -m keras_resnet.bench"] + list(args.argv)),
        "machine": machine_info(), "config": config.to_dict(),
    }


def main(argv=None):
    """Runs the benchmark command; returns the exit code (2 for a bad argument)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    from keras_resnet.variants import VARIANTS
    if args.variant not in VARIANTS:
        print(f"{parser.prog}: error: Unknown variant; expected one of "
              f"{', '.join(VARIANTS)}. Received: variant={args.variant!r}", file=sys.stderr)
        return 2
    try:
        result = run_benchmark(args)
    except ValueError as error:
        print(f"{parser.prog}: error: {error}".replace("\n", " "), file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
