"""keras_resnet: compact ResNets for CIFAR-10 under a parameter budget.

Names are imported on first use, so that a command can quiet TensorFlow's start-up logs
(`keras_resnet.quiet`) before Keras is imported.
"""

import importlib

_EXPORTS = {
    "DEFAULT_PARAM_BUDGET": "keras_resnet.config",
    "ResNetConfig": "keras_resnet.config",
    "build_resnet": "keras_resnet.model",
    "check_budget": "keras_resnet.model",
    "count_params": "keras_resnet.model",
    "VARIANTS": "keras_resnet.variants",
    "Variant": "keras_resnet.variants",
    "get_variant": "keras_resnet.variants",
    "load_pretrained": "keras_resnet.pretrained",
    "register_variant": "keras_resnet.variants",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_resnet' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
