"""The tensor arena an int8 model needs under TensorFlow Lite Micro, estimated unbuilt.

A budget beside the parameter, flash and MACs budgets (`keras_resnet.model.check_budget`):
the activations walked from the block plan and placed by a copy of TFLM's greedy memory
planner, plus TFLM's own records. `benchmarks/arena_estimate.py` measures it against TFLM.
"""

import math

from keras_resnet import blocks

# TFLM's arena beyond the activations (its "tail"): per operator a NodeAndRegistration (64
# bytes), a TfLiteEvalTensor (24) for its output and each constant it reads, and the
# kernel's op data; per output channel of a convolution an int32 multiplier and shift; a
# fixed part (the interpreter's input and output TfLiteTensors, the allocator's records,
# TFLM's 16-byte margin for an unaligned arena, `export.micro.ARENA_MARGIN_BYTES`). Fitted
# on 18 int8 models under tflite-micro's interpreter (reference kernels); the fixed part is
# the largest residual plus 128 bytes, as a trained model's distinct biases measured up to
# 32 bytes more than its untrained copy (benchmarks/results/arena_estimate.md). The
# activations themselves are exact on all of them.
ARENA_BYTES_PER_OP = 224
ARENA_BYTES_PER_CHANNEL = 8
ARENA_BYTES_FIXED = 768
# TFLM aligns every planned buffer to 16 bytes (kBufferAlignment).
ARENA_ALIGNMENT = 16


def estimate_arena_bytes(config):
    """Tensor arena the int8 model needs under TFLite Micro, unbuilt.

    TFLM keeps the activations of a model in one arena, planned by its greedy memory
    planner: largest tensor first, each at the lowest offset free during its lifetime.
    This walks `blocks.block_plan` into the int8 activation tensors TFLite's graph has (the
    normalization's SUB and MUL, every convolution's output, squeeze-and-excitation, the
    residual additions with the shortcut kept alive across the block, the head), runs
    the same planner over them, and adds TFLM's per-operator and per-channel records
    (`ARENA_BYTES_*`). ReLU is fused into its convolution or addition; any other
    activation is counted as two operators (e.g. SiLU's LOGISTIC and MUL), each with a
    full-size output. Calibrated against `measure_arena` on exported models with TFLM's
    reference kernels; optimized kernels (CMSIS-NN) add scratch buffers this does not
    count, so re-measure on the device.

    Args:
        config: `ResNetConfig`.

    Returns:
        int, estimated bytes of the tensor arena.

    Example:

    >>> from keras_resnet.variants import get_variant
    >>> estimate_arena_bytes(get_variant("resnet8"))  # trained, measured: 56,880 bytes
    57312
    """
    tensors, operators = _activation_tensors(config)
    # Every convolution's output channels: the stem's, and each block's two and projection.
    channels = config.channels[0] + sum(
        block.outputs * (3 if block.skip_kernel else 2) for block in blocks.block_plan(config))
    return (_greedy_plan_bytes(tensors) + ARENA_BYTES_PER_OP * operators
            + ARENA_BYTES_PER_CHANNEL * channels + ARENA_BYTES_FIXED)


def _activation_tensors(config):
    """The int8 activations as `[bytes, first operator, last operator]`, and the count
    of operators, in the order TFLite runs them (the builder's)."""
    tensors, operators = [[math.prod(config.input_shape), 0, 0]], 0

    def run(inputs, size):  # one operator: reads `inputs`, writes a tensor of `size`
        nonlocal operators
        for tensor in inputs:
            tensors[tensor][2] = operators
        tensors.append([size, operators, operators])
        operators += 1
        return len(tensors) - 1

    def activate(tensor):  # ReLU is fused; another activation is two more operators
        if config.activation == "relu":
            return tensor
        size = tensors[tensor][0]
        return run([tensor, run([tensor], size)], size)

    def squeeze_excite(tensor, channels):
        squeezed = blocks.squeeze_width(channels, config.se_ratio)
        scale = run([run([run([tensor], channels)], squeezed)], channels)
        return run([tensor, run([scale], channels)], tensors[tensor][0])  # sigmoid, product

    x = run([run([0], tensors[0][0])], tensors[0][0])  # normalization: SUB, MUL
    height, width = config.input_shape[:2]
    channels = config.channels[0]
    x = activate(run([x], height * width * channels))  # the stem
    if config.se == "stem":
        x = squeeze_excite(x, channels)
    for block in blocks.block_plan(config):
        size = block.height * block.width * block.outputs
        y = run([activate(run([x], size))], size)
        if config.se == "block":
            y = squeeze_excite(y, block.outputs)
        # A projection reads the block's input, which stays alive until then.
        shortcut = run([x], size) if block.skip_kernel else x
        x = activate(run([y, shortcut], size))
        height, width, channels = block.height, block.width, block.outputs
    heads = 2 if config.head == "avg_max" else 1
    grid = 1 if config.pool_size is None else (
        (height // config.pool_size) * (width // config.pool_size))
    pooled = [run([x], channels * grid) for _ in range(heads)]
    if config.pool_size is not None:  # Flatten: SHAPE, STRIDED_SLICE, PACK, RESHAPE
        pooled = [run([run([run([run([p], 16)], 4)], 8), p], channels * grid) for p in pooled]
    features = pooled[0] if heads == 1 else run(pooled, heads * channels * grid)
    run([run([features], config.num_classes)], config.num_classes)  # classifier, softmax
    tensors[-1][2] = operators - 1
    return tensors, operators


def _greedy_plan_bytes(tensors):
    """Arena bytes of TFLM's GreedyMemoryPlanner for `[bytes, first, last]` tensors.

    Largest first (ties: the later tensor first, as TFLM's stable sort of its reversed
    list), each at the lowest offset that no tensor live at the same time overlaps.
    """
    order = sorted(range(len(tensors)), key=lambda t: (-tensors[t][0], -t))
    placed, end = [], 0
    for tensor in order:
        size, first, last = tensors[tensor]
        size = -(-size // ARENA_ALIGNMENT) * ARENA_ALIGNMENT
        offset = 0
        for start, stop in sorted((o, o + s) for o, s, f, l in placed
                                  if f <= last and first <= l):
            if start - offset >= size:
                break
            offset = max(offset, stop)
        placed.append((offset, size, first, last))
        end = max(end, offset + size)
    return end
