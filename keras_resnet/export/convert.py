"""Conversion of a trained model to each deployable format, and the metadata beside them.

Every format starts from one float32 SavedModel: the TFLite converter reads it directly,
so the four TFLite files and the SavedModel are the same graph, quantized differently.
Keras and TensorFlow are imported inside the functions that need them, so the command
line can validate its arguments (with `FORMATS`) before they load.
"""

import os
import warnings

import numpy as np

from keras_resnet.files import path_bytes

# Format name -> file (or folder) it is written to inside the export folder.
FORMATS = {
    "keras": "model.keras",
    "saved_model": "saved_model",
    "tflite": "model_float32.tflite",
    "tflite-fp16": "model_float16.tflite",
    "tflite-dynamic": "model_dynamic.tflite",
    "tflite-int8": "model_int8.tflite",
    # TensorFlow Lite Micro: the int8 model checked under TFLM, as C++ sources
    # (keras_resnet.export.micro); it implies tflite-int8.
    "tflm": "tflm",
}
TFLITE_FORMATS = tuple(name for name in FORMATS if name.startswith("tflite"))
# The calibration size: a few hundred images pin the activation ranges of a
# CIFAR-sized network; more buys little and costs conversion time.
DEFAULT_CALIBRATION_SAMPLES = 500


def check_formats(formats):
    """Validates and de-duplicates a list of format names, keeping their order.

    Args:
        formats: str (comma-separated) or sequence of str. Names among `FORMATS`.

    Returns:
        A tuple of format names.

    Raises:
        ValueError: if `formats` is empty or names an unknown format, or names `tflm`
            without the `tflite-micro` package installed.

    Example:

    >>> check_formats("tflite,tflite-int8,tflite")
    ('tflite', 'tflite-int8')
    """
    if isinstance(formats, str):
        formats = [name.strip() for name in formats.split(",") if name.strip()]
    formats = tuple(dict.fromkeys(formats))
    unknown = [name for name in formats if name not in FORMATS]
    if not formats or unknown:
        raise ValueError(
            f"Unknown or no export format; expected some of {', '.join(FORMATS)}. "
            f"Received: formats={','.join(unknown) if unknown else ''!r}"
        )
    if "tflm" in formats:
        from keras_resnet.export import micro

        micro.check_available()
    return formats


def without_optimizer(model):
    """Returns `model`, or an uncompiled copy of it if it holds an optimizer.

    `model.save` stores the optimizer's slots too (twice the weights under Adam): right
    for resuming training, dead weight in a deployment file.
    """
    if getattr(model, "optimizer", None) is None:
        return model
    import keras

    # A new Functional model over the same layers: shares the weights, is not compiled
    # (`clone_model` would compile its copy with the same optimizer).
    return keras.Model(model.inputs, model.outputs, name=model.name)


def write_saved_model(model, path):
    """Writes a TF SavedModel whose `serving_default` signature takes raw 0-255 images."""
    model.export(path, format="tf_saved_model", verbose=False)


def convert_tflite(saved_model_dir, fmt, calibration_images=None):
    """Converts a SavedModel to one TFLite flavour.

    Args:
        saved_model_dir: str. Folder written by `write_saved_model`.
        fmt: str. One of `TFLITE_FORMATS`: `"tflite"` (float32), `"tflite-fp16"` (float16
            weights, float32 compute), `"tflite-dynamic"` (int8 weights, activations
            quantized on the fly) or `"tflite-int8"` (full integer, int8 input and output).
        calibration_images: array `(n, height, width, channels)` of raw training pixels.
            Required for `"tflite-int8"`, ignored otherwise.

    Returns:
        The flatbuffer as bytes.

    Raises:
        ValueError: if `fmt` is unknown, or int8 is asked without calibration images.
    """
    import tensorflow as tf

    if fmt not in TFLITE_FORMATS:
        raise ValueError(f"Expected one of {', '.join(TFLITE_FORMATS)}. Received: fmt={fmt!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    if fmt != "tflite":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if fmt == "tflite-fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif fmt == "tflite-int8":
        if calibration_images is None or len(calibration_images) == 0:
            raise ValueError(
                "Full-integer (int8) export needs training images to calibrate on. "
                "Received: calibration_images=None"
            )
        samples = np.asarray(calibration_images, dtype=np.float32)

        def representative_dataset():
            # One image at a time: the batch dimension the converter calibrates with is
            # the serving one.
            for image in samples:
                yield [image[None]]

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def tensor_metadata(detail):
    """Name, shape, dtype and quantization of one TFLite input or output tensor."""
    scale, zero_point = detail["quantization"]
    return {
        "name": detail["name"],
        "shape": [int(d) for d in detail["shape_signature"]],
        "dtype": np.dtype(detail["dtype"]).name,
        # (0.0, 0) is TFLite's "not quantized".
        "quantization": ({"scale": float(scale), "zero_point": int(zero_point)}
                         if scale else None),
    }


def tflite_io_metadata(path):
    """Input and output metadata of a `.tflite` file, read back from the file itself."""
    import tensorflow as tf

    with warnings.catch_warnings():
        # tf.lite.Interpreter warns that it moves to ai_edge_litert, not installed here.
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=path)
    return {
        "input": tensor_metadata(interpreter.get_input_details()[0]),
        "output": tensor_metadata(interpreter.get_output_details()[0]),
    }


def write_format(model, fmt, output_dir, calibration_images=None):
    """Writes `model` in format `fmt` into `output_dir`; returns its metadata entry.

    The SavedModel must be written first when any TFLite format is asked: the converter
    reads it. `export_model` takes care of that order.
    """
    path = os.path.join(output_dir, FORMATS[fmt])
    float_io = {"name": model.input.name if hasattr(model.input, "name") else "image",
                "shape": [None, *model.input_shape[1:]], "dtype": "float32",
                "quantization": None}
    entry = {"file": FORMATS[fmt]}
    if fmt == "keras":
        without_optimizer(model).save(path)
        entry.update(input=float_io, output={"shape": list(model.output_shape),
                                             "dtype": "float32", "quantization": None})
    elif fmt == "saved_model":
        write_saved_model(model, path)
        entry.update(signature="serving_default", input={**float_io, "name": "image"},
                     output={"name": "output_0", "shape": list(model.output_shape),
                             "dtype": "float32", "quantization": None})
    else:
        flatbuffer = convert_tflite(os.path.join(output_dir, FORMATS["saved_model"]), fmt,
                                    calibration_images)
        with open(path, "wb") as file:
            file.write(flatbuffer)
        entry.update(tflite_io_metadata(path))
        if fmt == "tflite-int8":
            entry["calibration_samples"] = int(len(calibration_images))
    entry["bytes"] = path_bytes(path)
    return entry
