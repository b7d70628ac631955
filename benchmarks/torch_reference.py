"""PyTorch build of a keras_resnet architecture, to compare training speed on one machine.

`build_torch_resnet(config)` makes the same network as `keras_resnet.build_resnet(config)`
(same layers, shapes and trainable parameter count; the script asserts the count for every
registered variant) so that images/s of the two frameworks measure the same work. torch is
an optional extra (`pip install .[torch-reference]`); the package never imports this file.

    python benchmarks/torch_reference.py --variant efficient --steps 10

The last line of stdout is one JSON object with float32 and bf16-autocast throughput and
the best of the two.
"""

import argparse
import json
import math
import os
import platform
import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import keras_resnet  # noqa: E402  (path set above so the script runs from a checkout)

# Keras 3's defaults for the activations that take a parameter: gelu is exact
# (approximate=False) and leaky_relu has negative_slope 0.2, not PyTorch's 0.01.
_ACTIVATIONS = {
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "swish": nn.SiLU, "elu": nn.ELU,
    "selu": nn.SELU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "mish": nn.Mish,
    "tanh": nn.Tanh,
}


def _same_padding(size, kernel, stride):
    # TensorFlow's "same": output ceil(n / s), the odd pixel of padding goes after.
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _ConvBN(nn.Sequential):
    """Conv (no bias, TF "same" padding) + BatchNorm, with PyTorch's BN defaults."""

    def __init__(self, cin, cout, kernel, stride, size):
        before, after = _same_padding(size, kernel, stride)
        layers = []
        if before != after:
            layers.append(nn.ZeroPad2d((before, after, before, after)))
            before = 0
        layers += [nn.Conv2d(cin, cout, kernel, stride, before, bias=False),
                   nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)]
        super().__init__(*layers)


class _SqueezeExcite(nn.Module):
    def __init__(self, channels, ratio):
        super().__init__()
        squeezed = max(1, channels // ratio)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x):
        scale = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.expand(F.relu(self.reduce(scale))))


class _Block(nn.Module):
    def __init__(self, cin, cout, stride, kernel, skip_kernel, dropout, size, config):
        super().__init__()
        out_size = math.ceil(size / stride)
        self.conv1 = _ConvBN(cin, cout, kernel, stride, size)
        self.act1 = _ACTIVATIONS[config.activation]()
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.conv2 = _ConvBN(cout, cout, kernel, 1, out_size)
        self.se = _SqueezeExcite(cout, config.se_ratio) if config.se == "block" else nn.Identity()
        project = stride != 1 or cin != cout
        self.skip = _ConvBN(cin, cout, skip_kernel, stride, size) if project else nn.Identity()
        self.act2 = _ACTIVATIONS[config.activation]()

    def forward(self, x):
        y = self.se(self.conv2(self.dropout(self.act1(self.conv1(x)))))
        return self.act2(y + self.skip(x))


class TorchResNet(nn.Module):
    """The network of `keras_resnet.build_resnet(config)`; returns logits.

    Args:
        config: `keras_resnet.ResNetConfig` (square inputs).
    """

    def __init__(self, config):
        super().__init__()
        size, _, in_channels = config.input_shape
        mean = torch.tensor([255.0 * m for m in config.mean]).view(1, -1, 1, 1)
        std = torch.tensor([255.0 * s for s in config.std]).view(1, -1, 1, 1)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        stem = [_ConvBN(in_channels, config.channels[0], 3, 1, size),
                _ACTIVATIONS[config.activation]()]
        if config.se == "stem":
            stem.append(_SqueezeExcite(config.channels[0], config.se_ratio))
        self.stem = nn.Sequential(*stem)
        blocks, cin = [], config.channels[0]
        for layer, num_blocks in enumerate(config.blocks):
            for block in range(num_blocks):
                stride = 2 if layer > 0 and block == 0 else 1
                blocks.append(_Block(cin, config.channels[layer], stride,
                                     config.conv_kernels[layer], config.skip_kernels[layer],
                                     config.block_dropout[layer], size, config))
                size, cin = math.ceil(size / stride), config.channels[layer]
        self.blocks = nn.Sequential(*blocks)
        self.pool_size = config.pool_size
        self.avg_max = config.head == "avg_max"
        self.dropout = nn.Dropout(config.dropout) if config.dropout else nn.Identity()
        grid = 1 if config.pool_size is None else (size // config.pool_size) ** 2
        features = cin * grid * (2 if self.avg_max else 1)
        self.classifier = nn.Linear(features, config.num_classes)

    def _pool(self, x, pool):
        if self.pool_size is None:
            return pool(x, x.shape[-2:]).flatten(1)
        return pool(x, self.pool_size).flatten(1)

    def forward(self, x):
        x = self.blocks(self.stem((x - self.mean) / self.std))
        pooled = [self._pool(x, F.avg_pool2d)]
        if self.avg_max:
            pooled.append(self._pool(x, F.max_pool2d))
        return self.classifier(self.dropout(torch.cat(pooled, 1)))


def trainable_params(module):
    """Number of trainable parameters of a torch module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def check_all_variants():
    """Raises AssertionError unless every variant has keras_resnet's trainable count."""
    for name, variant in keras_resnet.VARIANTS.items():
        expected = keras_resnet.count_params(variant.config)["trainable"]
        got = trainable_params(TorchResNet(variant.config))
        assert got == expected, f"{name}: torch {got} != keras {expected}"


def measure_training(config, batch_size, steps, warmup_steps, bf16, repeats=1,
                     device="cpu", compile_model=False):
    """Images/s of forward + backward + SGD step on in-memory data, channels_last.

    Returns the best of `repeats` timed runs of `steps` steps, after `warmup_steps`.
    """
    torch.manual_seed(0)
    model = TorchResNet(config).to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = (torch.rand(batch_size, *config.input_shape) * 255).permute(0, 3, 1, 2)
    images = images.contiguous(memory_format=torch.channels_last).to(device)
    labels = torch.randint(0, config.num_classes, (batch_size,)).to(device)
    forward = torch.compile(model) if compile_model else model

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(forward(images), labels)
        loss.backward()
        optimizer.step()

    def wait():
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup_steps):
        step()
    wait()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wait()
        best = max(best, steps * batch_size / (time.perf_counter() - start))
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="efficient")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed runs; the best is kept (the machine may be shared)")
    parser.add_argument("--threads", type=int, default=0, help="0 keeps torch's default")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--precisions", default="float32,bf16_autocast",
                        help="comma-separated: float32, bf16_autocast")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    check_all_variants()
    config = keras_resnet.get_variant(args.variant)
    result = {"framework": "torch", "torch_version": torch.__version__,
              "variant": args.variant, "batch_size": args.batch_size, "steps": args.steps,
              "warmup_steps": args.warmup_steps, "repeats": args.repeats,
              "threads": torch.get_num_threads(), "memory_format": "channels_last",
              "device": (torch.cuda.get_device_name() if args.device == "cuda" else "cpu"),
              "torch_compile": args.compile,
              "trainable_params": trainable_params(TorchResNet(config)),
              "machine": platform.machine(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "command": " ".join([os.path.basename(sys.argv[0])] + (argv or sys.argv[1:]))}
    keys = args.precisions.split(",")
    for key in keys:
        result[f"train_images_per_sec_{key}"] = round(measure_training(
            config, args.batch_size, args.steps, args.warmup_steps, key == "bf16_autocast",
            args.repeats, args.device, args.compile), 2)
    best = max(keys, key=lambda k: result[f"train_images_per_sec_{k}"])
    result["best_precision"] = best
    result["train_images_per_sec"] = result[f"train_images_per_sec_{best}"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
