"""Why grouped steps (`GroupedSteps`) are off on a CPU: XLA:CPU runs convolutions inside a
loop far slower than the same convolutions unrolled or dispatched one step at a time.

    KERAS_BACKEND=jax python benchmarks/scan_cpu.py

Times 13 SGD steps of a 4-convolution network three ways under `jax.jit`: 13 dispatches
of one step, one `lax.scan` of 13 steps (an XLA while loop), and the same scan unrolled.
Writes benchmarks/results/scan_cpu.md with machine, date and command.
"""

import os
import sys
import time

import jax
import jax.numpy as jnp

STEPS = 13


def loss(weights, images):
    hidden = images
    for _ in range(4):
        hidden = jnp.tanh(jax.lax.conv_general_dilated(
            hidden, weights, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
    return jnp.mean(hidden ** 2)


def sgd(weights, images):
    return weights - 0.1 * jax.grad(loss)(weights, images)


def best_of(function, repeats=3):
    function()  # compiles
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def main():
    images = jnp.ones((32, 32, 32, 16))
    weights = jnp.full((3, 3, 16, 16), 0.01)
    stacked = jnp.stack([images] * STEPS)
    one_step = jax.jit(sgd)

    def dispatched():
        current = weights
        for _ in range(STEPS):
            current = one_step(current, images)
        return current.block_until_ready()

    scans = {unroll: jax.jit(lambda w, xs, unroll=unroll: jax.lax.scan(
        lambda w, x: (sgd(w, x), None), w, xs, unroll=unroll)[0]) for unroll in (1, STEPS)}
    seconds = {"13 dispatches of one jitted step": best_of(dispatched)}
    for unroll, scan in scans.items():
        name = "one scan of 13 steps" + (" (unrolled)" if unroll > 1 else " (XLA while loop)")
        seconds[name] = best_of(lambda scan=scan: scan(weights, stacked).block_until_ready())
    base = seconds["13 dispatches of one jitted step"]
    from keras_resnet.training.runtime import machine_info

    machine = machine_info()
    lines = ["# Convolutions in an XLA loop on a CPU", "",
             f"Date: {time.strftime('%Y-%m-%d %H:%M %Z')}. Machine: {machine['cpu']}, "
             f"{machine['cores']} cores, JAX {jax.__version__}, {jax.devices()[0].platform}. "
             f"Command: `KERAS_BACKEND=jax python {' '.join(sys.argv)}` (best of 3).", "",
             "| how | seconds | vs dispatches |", "|---|---|---|"]
    lines += [f"| {name} | {value:.3f} | {value / base:.1f}x |" for name, value in seconds.items()]
    lines += ["", "So `steps_per_call` groups steps only on accelerators; on a CPU Keras' own "
              "per-step loop stays."]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "scan_cpu.md")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
