"""Does the training loop run at the speed of its own step? train.py against bench.

    python benchmarks/train_vs_bench.py --variant tiny --data-dir data/cifar10-jpeg --epochs 2

Runs `python -m keras_resnet.bench` (the step alone, random images in memory) and
`python train.py` (the real loop on real data, validation included) for the same variant,
recipe, batch size and precision, one after the other on this machine, then writes the ratio
of train.py's steady speed (epochs after the first) to the bench's, with machine, date,
command and load, to benchmarks/results/train_vs_bench_<backend>.{md,json}.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _last_json(text):
    return json.loads(text.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="tiny")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--bench-steps", type=int, default=50)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results"))
    args = parser.parse_args(argv)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    load_before = os.getloadavg()
    bench = subprocess.run(
        [sys.executable, "-m", "keras_resnet.bench", "--variant", args.variant,
         "--steps", str(args.bench_steps), "--repeats", "2", "--skip-inference"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True)
    bench_result = _last_json(bench.stdout)
    with tempfile.TemporaryDirectory() as folder:
        train = subprocess.run(
            [sys.executable, "train.py", "--variant", args.variant, "--data-dir",
             args.data_dir, "--epochs", str(args.epochs), "--output",
             os.path.join(folder, "run")], cwd=REPO, env=env, capture_output=True,
            text=True, check=True)
    metrics = _last_json(train.stdout)
    ratio = metrics["steady_images_per_second"] / bench_result["train_images_per_sec"]
    result = {
        "variant": args.variant, "backend": bench_result["backend"],
        "precision": bench_result["precision"], "jit": bench_result["jit"],
        "batch_size": bench_result["batch_size"],
        "bench_train_images_per_sec": bench_result["train_images_per_sec"],
        "train_steady_images_per_sec": metrics["steady_images_per_second"],
        "train_compile_seconds": metrics["compile_seconds"], "ratio": round(ratio, 3),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "machine": bench_result["machine"], "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python benchmarks/train_vs_bench.py", *(argv or sys.argv[1:])]),
    }
    name = f"train_vs_bench_{result['backend']}"
    with open(os.path.join(args.output, f"{name}.json"), "w") as handle:
        json.dump(result, handle, indent=1)
    with open(os.path.join(args.output, f"{name}.md"), "w") as handle:
        handle.write(
            f"# train.py against bench: `{args.variant}`, {result['backend']} backend\n\n"
            f"- {result['date']}, {result['machine']['cpu']} x{result['machine']['cores']}, "
            f"keras {result['machine']['keras']}; load average before/after "
            f"{load_before[0]:.1f}/{result['load_average_after'][0]:.1f} (other work shared "
            "the machine).\n"
            f"- Command: `{result['command']}`\n\n"
            "| what | images/s |\n|---|---|\n"
            f"| bench: the step alone ({result['precision']}, jit={result['jit']}, batch "
            f"{result['batch_size']}) | {result['bench_train_images_per_sec']:,.0f} |\n"
            f"| train.py: epochs after the first, validation included | "
            f"{result['train_steady_images_per_sec']:,.0f} |\n"
            f"| ratio | {ratio:.2f} |\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
