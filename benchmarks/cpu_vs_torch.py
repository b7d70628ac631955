"""keras_resnet against the PyTorch reference on this CPU, and the speed levers one by one.

    python benchmarks/cpu_vs_torch.py compare   # -> results/cpu_vs_torch.{json,md}
    python benchmarks/cpu_vs_torch.py levers    # -> results/cpu_levers.{json,md}

Every measurement runs in its own subprocess, one at a time (two at once would share the
cores), `--repeats` times inside that process, keeping the best: on a shared machine other
work only ever slows a run down. Fused batch norm is
`keras_resnet.bench --[no-]fused-batch-norm` (keras_resnet/training/fused_batch_norm.py).
"""

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")


def _last_json(command, env=None):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_keras(variant, bench_args, env=None, fused_bn=False, steps=10, repeats=2):
    """One `keras_resnet.bench` subprocess; returns its JSON (or `{"error": ...}`)."""
    entry = [sys.executable, "-m", "keras_resnet.bench"]
    args = ["--variant", variant, "--steps", str(steps), "--repeats", str(repeats),
            "--fused-batch-norm" if fused_bn else "--no-fused-batch-norm", *bench_args]
    result = _last_json(entry + args, env)
    result["lever_fused_bn"] = fused_bn
    result["lever_env"] = env or {}
    return result


def run_torch(variant, steps=10, repeats=2):
    """One `torch_reference.py` subprocess; returns its JSON."""
    return _last_json([sys.executable, os.path.join(HERE, "torch_reference.py"),
                       "--variant", variant, "--steps", str(steps),
                       "--repeats", str(repeats)])


def peak_gflops(size=2048, repeats=5):
    """Best achieved GFLOP/s of a square matmul: torch bf16 and fp32, numpy fp32.

    A big matmul is the best case of this CPU; the fraction of it a model reaches is
    the honest measure of how much is left.
    """
    import torch

    def best(fn):
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 2 * size ** 3 / min(times) / 1e9

    a32 = torch.randn(size, size)
    a16 = a32.to(torch.bfloat16)
    n32 = a32.numpy()
    return {"matmul_size": size,
            "torch_bf16_gflops": round(best(lambda: a16 @ a16), 1),
            "torch_float32_gflops": round(best(lambda: a32 @ a32), 1),
            "numpy_float32_gflops": round(best(lambda: n32 @ n32), 1)}


def _machine():
    sys.path.insert(0, ROOT)
    from keras_resnet.training.runtime import machine_info

    return {**machine_info(), "load_average_at_start": os.getloadavg()}


# Each lever changes one thing from the baseline (float32, TF backend, defaults).
LEVERS = (
    ("baseline float32", [], None, False),
    ("mixed_bfloat16", ["--precision", "mixed_bfloat16"], None, False),
    ("fused BN, float32", [], None, True),
    ("fused BN, mixed_bfloat16", ["--precision", "mixed_bfloat16"], None, True),
    ("fused BN, bf16, inter-op threads 1",
     ["--precision", "mixed_bfloat16", "--inter-op-threads", "1"], None, True),
    ("fused BN, bf16, intra 2 / inter 2",
     ["--precision", "mixed_bfloat16", "--intra-op-threads", "2", "--inter-op-threads", "2"],
     None, True),
    ("fused BN, bf16, steps_per_execution 4",
     ["--precision", "mixed_bfloat16", "--steps-per-execution", "4"], None, True),
    ("XLA on, float32", ["--jit", "on"], None, False),
    ("XLA on, mixed_bfloat16", ["--precision", "mixed_bfloat16", "--jit", "on"], None, False),
    ("JAX backend, float32", [], {"KERAS_BACKEND": "jax"}, False),
    ("JAX backend, mixed_bfloat16", ["--precision", "mixed_bfloat16"],
     {"KERAS_BACKEND": "jax"}, False),
    ("torch backend, mixed_bfloat16", ["--precision", "mixed_bfloat16"],
     {"KERAS_BACKEND": "torch"}, False),
)
# The settings `compare` uses for keras_resnet: the best levers found by `levers`.
BEST_PACKAGE = ["--precision", "mixed_bfloat16"]
BEST_FUSED = ["--precision", "mixed_bfloat16"]


def _write(name, record, table_rows, header, notes):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"{name}.json"), "w") as f:
        json.dump(record, f, indent=2)
    lines = [f"# {name}", "", f"- date: {record['date']}", f"- command: `{record['command']}`",
             f"- machine: {record['machine']}", f"- peak: {record['peak']}", "", *notes, "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table_rows]
    with open(os.path.join(RESULTS, f"{name}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def _fraction(gflops, peak):
    return round(gflops / peak, 3) if gflops else None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("compare", "levers"))
    parser.add_argument("--variants", nargs="+", default=["efficient", "tiny"])
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 10],
                        help="timed steps per variant, in the order of --variants")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--levers", nargs="*",
                        help="substrings of lever names to run; VARIANT=SUBSTRING for one "
                             "variant only")
    args = parser.parse_args(argv)
    steps = dict(zip(args.variants, args.steps + args.steps[-1:] * len(args.variants)))
    record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": "python benchmarks/cpu_vs_torch.py " + " ".join(argv),
              "machine": _machine(), "peak": peak_gflops(), "results": {}}
    peak = record["peak"]["torch_bf16_gflops"]
    rows = []
    for variant in args.variants:
        n = steps[variant]
        if args.mode == "compare":
            torch_result = run_torch(variant, n, args.repeats)
            keras_base = run_keras(variant, [], steps=n, repeats=args.repeats)
            keras_best = run_keras(variant, BEST_PACKAGE, steps=n, repeats=args.repeats)
            keras_fused = run_keras(variant, BEST_FUSED, fused_bn=True, steps=n,
                                    repeats=args.repeats)
            record["results"][variant] = {"torch": torch_result, "keras_float32": keras_base,
                                          "keras_best_settings": keras_best,
                                          "keras_fused_bn": keras_fused}
            ref = torch_result.get("train_images_per_sec")
            for label, r in (("keras float32 (default)", keras_base),
                             ("keras " + " ".join(BEST_PACKAGE), keras_best),
                             ("keras fused BN " + " ".join(BEST_FUSED), keras_fused)):
                ips = r.get("train_images_per_sec")
                rows.append([variant, label, ips, r.get("inference_images_per_sec"),
                             r.get("achieved_gflops"), _fraction(r.get("achieved_gflops"), peak),
                             ref, round(ips / ref, 2) if ips and ref else r.get("error")])
        else:
            results = record["results"].setdefault(variant, {})
            for name, bench_args, env, fused in LEVERS:
                wanted = [s.split("=", 1)[-1] for s in args.levers or ()
                          if "=" not in s or s.startswith(variant + "=")]
                if args.levers and not any(s in name for s in wanted):
                    continue
                r = run_keras(variant, bench_args, env, fused, n, args.repeats)
                results[name] = r
                rows.append([variant, name, r.get("train_images_per_sec", r.get("error")),
                             r.get("inference_images_per_sec"), r.get("achieved_gflops"),
                             _fraction(r.get("achieved_gflops"), peak)])
                print(rows[-1], flush=True)
    notes = [f"Best of {args.repeats} timed runs per process, runs one at a time; the machine "
             "is shared with other work, so absolute numbers are lower bounds. Fraction = "
             "achieved training GFLOP/s (3 x forward FLOPs x images/s) / torch bf16 matmul "
             "peak."]
    if args.mode == "compare":
        header = ["variant", "keras run", "keras train img/s", "keras infer img/s",
                  "achieved GFLOP/s", "fraction of peak", "torch train img/s (best precision)",
                  "keras/torch"]
        _write("cpu_vs_torch", record, rows, header, notes)
    else:
        header = ["variant", "lever", "train img/s", "infer img/s", "achieved GFLOP/s",
                  "fraction of peak"]
        _write("cpu_levers", record, rows, header, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
