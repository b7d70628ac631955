"""TensorFlow Lite for Microcontrollers (TFLM): run the int8 model under TFLM's interpreter.

The `tflm` export format checks that the full-integer model runs under TFLM's op set
(`tflite_micro`'s Python interpreter, TFLM's reference kernels), measures the tensor arena
it needs, lists the operators a `tflite::MicroMutableOpResolver` must register, and writes
the model as an aligned C++ byte array. Only this module imports `tflite_micro`, an
optional extra (`pip install "keras-resnet[tflm]"`).
"""

import importlib.util
import os
import re

import numpy as np

from keras_resnet.export import runtime
from keras_resnet.files import path_bytes

EXTRA = "tflm"
# TFLM's micro_interpreter.h: arena_used_bytes() is the optimal size for a 16-byte aligned
# arena, "If it's not the case, the optimal arena size would be arena_used_bytes() + 16".
# The generated header declares the size with this margin, so any arena placement works.
ARENA_MARGIN_BYTES = 16
# TFLM and TFLite run the same integer arithmetic through different kernels (reference
# vs optimized), whose rounding may differ in the last bit: a top-1 flip now and then is
# expected, more than this fraction of the test images is a broken deployment.
DEFAULT_TOLERANCE = 0.01
_ARENA_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
FILES = ("model_data.h", "model_data.cc", "model_ops.h")


class MicroMismatchError(ValueError):
    """The model under TFLM disagrees with the TFLite int8 model beyond the tolerance."""


def available():
    """True if the `tflite_micro` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("tflite_micro") is not None


def check_available():
    """Raises ValueError naming the extra to install if `tflite_micro` is missing."""
    if not available():
        raise ValueError(f"Format tflm needs the tflite-micro package: pip install "
                         f"'keras-resnet[{EXTRA}]' (or pip install tflite-micro). "
                         "Received: formats='tflm'")


def _runtime():
    from tflite_micro.python.tflite_micro import runtime as micro_runtime

    return micro_runtime


def _interpreter(flatbuffer, arena_size):
    return _runtime().Interpreter.from_bytes(bytes(flatbuffer), arena_size=int(arena_size))


def _runs_in(flatbuffer, arena_size, image):
    """True if the model allocates and runs one inference in an arena of `arena_size`."""
    from keras_resnet.quiet import captured_native_stderr

    # A failed allocation prints TFLM's diagnosis to the descriptor; it is expected here.
    with captured_native_stderr():
        try:
            interpreter = _interpreter(flatbuffer, arena_size)
            interpreter.set_input(image, 0)
            interpreter.invoke()
        except RuntimeError:
            return False
    return True


def measure_arena(flatbuffer):
    """Tensor arena the model needs under TFLM, found by running it.

    Runs one inference in a large arena under TFLM's recording allocator and reads the
    total it reports; then runs again in exactly that total plus `ARENA_MARGIN_BYTES`. If
    that fails (the recording misses a temporary allocation), the smallest arena that runs
    is searched for by bisection and the margin added to it.

    Args:
        flatbuffer: bytes. A full-integer `.tflite` model.

    Returns:
        A dict: `used_bytes` (the recording's total), `margin_bytes`, `arena_bytes` (the
        size to declare, verified to run).

    Raises:
        RuntimeError: if the model does not run under TFLM at all (an unsupported op).
    """
    from keras_resnet.quiet import captured_native_stderr

    # TFLM's own default is 10x the model; activations of a small model can need more.
    large = max(10 * len(flatbuffer), 1 << 22)
    with captured_native_stderr() as logs:
        try:
            interpreter = _interpreter(flatbuffer, large)
            image = np.zeros(_quantization(interpreter.get_input_details(0))["shape"],
                             np.int8)
            interpreter.set_input(image, 0)
            interpreter.invoke()
        except RuntimeError as error:
            raise RuntimeError(f"The int8 model does not run under TFLite Micro ({error}): "
                               f"{' '.join(logs().split())[:500]}") from None
        mark = len(logs())
        interpreter.print_allocations()
        match = _ARENA_TOTAL.search(logs()[mark:])
    if match is None:
        raise RuntimeError("TFLite Micro did not report its arena allocation.")
    used = int(match.group(1))
    arena = used + ARENA_MARGIN_BYTES
    if not _runs_in(flatbuffer, arena, image):
        low, high = used, large  # low fails, high runs
        while high - low > ARENA_MARGIN_BYTES:
            middle = (low + high) // 2
            low, high = (low, middle) if _runs_in(flatbuffer, middle, image) else (middle, high)
        arena = high + ARENA_MARGIN_BYTES
    return {"used_bytes": used, "margin_bytes": ARENA_MARGIN_BYTES, "arena_bytes": arena}


def resolver_ops(flatbuffer):
    """The `MicroMutableOpResolver` methods that register the model's operators.

    Args:
        flatbuffer: bytes. A `.tflite` model.

    Returns:
        A list of method names in the model's operator-code order, e.g.
        `["AddConv2D", "AddAdd", "AddMean", "AddFullyConnected", "AddSoftmax"]`.

    Example:

    >>> flatbuffer = open(os.path.join(export_dir, "model_int8.tflite"), "rb").read()
    >>> "AddConv2D" in resolver_ops(flatbuffer)
    True
    """
    micro_runtime = _runtime()
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    names = {code: name for name, code in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    model = micro_runtime.convert_bytearray_to_object(bytearray(flatbuffer))
    ops = []
    for opcode in model.operatorCodes:
        name = names[micro_runtime.get_builtin_code_from_operator_code(opcode)]
        method = "Add" + _RESOLVER_NAMES.get(name, "".join(
            part.upper() if part[0].isdigit() else part.capitalize() for part in name.split("_")))
        if method not in ops:
            ops.append(method)
    return ops


# Builtin operators whose resolver method is not the CamelCase of the name
# (tensorflow/lite/micro/micro_mutable_op_resolver.h).
_RESOLVER_NAMES = {"PADV2": "PadV2", "CUMSUM": "CumSum", "BATCH_MATMUL": "BatchMatMul"}


class MicroPredictor(runtime.Predictor):
    """A full-integer model in the TFLM interpreter, one image per invoke (batch 1).

    Args:
        flatbuffer: bytes. The int8 `.tflite` model.
        arena_size: int. Tensor arena in bytes; the measured one checks that the whole
            evaluation fits in it.
        name: str. The format name. Defaults to `"tflm"`.
    """

    def __init__(self, flatbuffer, arena_size, name="tflm"):
        self.interpreter = _interpreter(flatbuffer, arena_size)
        self.input = _quantization(self.interpreter.get_input_details(0))
        self.output = _quantization(self.interpreter.get_output_details(0))
        super().__init__(name, self.input["shape"][1:])

    def predict_batch(self, images):
        quantized = runtime.quantize(images, self.input["scale"], self.input["zero_point"],
                                     self.input["dtype"])
        outputs = []
        for image in quantized:
            self.interpreter.set_input(image[None], 0)
            self.interpreter.invoke()
            outputs.append(self.interpreter.get_output(0)[0])
        outputs = np.asarray(outputs)
        return (outputs.astype(np.float32) - self.output["zero_point"]) * self.output["scale"]


def _quantization(details):
    parameters = details["quantization_parameters"]
    return {"shape": [int(d) for d in details["shape"]], "dtype": np.dtype(details["dtype"]),
            "scale": float(parameters["scales"][0]),
            "zero_point": int(parameters["zero_points"][0])}


def check_agreement(micro_probabilities, int8_probabilities, output_scale,
                    tolerance=DEFAULT_TOLERANCE):
    """Compares TFLM's outputs with TFLite's for the same int8 model and images.

    Args:
        micro_probabilities: array `(n, classes)` from `MicroPredictor`.
        int8_probabilities: array `(n, classes)` from the TFLite int8 model.
        output_scale: float. The output tensor's quantization step.
        tolerance: float. Largest fraction of images whose top-1 class may differ.
            Defaults to `0.01`.

    Returns:
        A dict: `agreement` (top-1, fraction) and `max_abs_diff_steps` (largest output
        difference in quantization steps).

    Raises:
        MicroMismatchError: if the top-1 classes differ on more than `tolerance`.
    """
    agreement = float(np.mean(micro_probabilities.argmax(-1) == int8_probabilities.argmax(-1)))
    steps = int(np.rint(np.abs(micro_probabilities - int8_probabilities).max() / output_scale))
    if agreement < 1.0 - tolerance:
        raise MicroMismatchError(
            f"The model under TFLite Micro disagrees with the TFLite int8 model on "
            f"{1 - agreement:.2%} of {len(micro_probabilities)} test images (outputs up to "
            f"{steps} quantization steps apart), over the tolerance of {tolerance:.2%}; "
            f"the export was not written. Received: tolerance={tolerance}")
    return {"agreement": round(agreement, 6), "max_abs_diff_steps": steps}


def write_tflm(build, name, int8_entry, class_names=None, source=""):
    """Measures an exported int8 model under TFLM and writes its C++ sources.

    Args:
        build: str. The export folder holding the int8 model (`int8_entry["file"]`).
        name: str. Sub-folder of `build` to create for the sources.
        int8_entry: dict. The int8 model's metadata entry (`convert.write_format`).
        class_names: list of str or None. Written into the sources.
        source: str. Where the model comes from (e.g. the variant), for the headers.

    Returns:
        The format's metadata entry: `file`, `files`, `bytes` (of the sources),
        `flash_bytes` (of the model array), `arena` (`measure_arena`), `ops`, `input`,
        `output`.
    """
    from keras_resnet.export import firmware

    with open(os.path.join(build, int8_entry["file"]), "rb") as file:
        flatbuffer = file.read()
    arena = measure_arena(flatbuffer)
    ops = resolver_ops(flatbuffer)
    folder = os.path.join(build, name)
    os.makedirs(folder)
    quantization = {key: {**int8_entry[key]["quantization"],
                          "shape": [1, *int8_entry[key]["shape"][1:]]}
                    for key in ("input", "output")}
    files = firmware.write_sources(folder, flatbuffer, arena, ops, quantization["input"],
                                   quantization["output"], class_names, source)
    return {"file": name, "files": files, "bytes": path_bytes(folder),
            "flash_bytes": len(flatbuffer), "arena": arena, "ops": ops,
            "input": int8_entry["input"], "output": int8_entry["output"]}
