"""Export to SavedModel and TFLite (float32, float16, dynamic-range and full int8) and to
TensorFlow Lite Micro (`tflm`: the int8 model run under TFLM, with C++ sources), with an
evaluation of every format against the Keras model.

`python -m keras_resnet.export RUN_DIR` is the command; `export_model` the library call
behind it (and behind `train.py --export`); `load_predictor` opens any exported model.
Names are imported on first use, so the command can quiet TensorFlow's start-up logs
before Keras loads.
"""

import importlib

_EXPORTS = {
    "FORMATS": "keras_resnet.export.convert",
    "check_formats": "keras_resnet.export.convert",
    "float32_model": "keras_resnet.model",
    "export_model": "keras_resnet.export.exporter",
    "report_markdown": "keras_resnet.export.exporter",
    "check_model_path": "keras_resnet.export.runtime",
    "load_predictor": "keras_resnet.export.runtime",
    "measure_latency": "keras_resnet.export.runtime",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_resnet.export' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
