"""keras_resnet: compact ResNets for CIFAR-10 under a parameter budget."""

from keras_resnet.config import DEFAULT_PARAM_BUDGET, ResNetConfig
from keras_resnet.model import build_resnet, check_budget, count_params
from keras_resnet.variants import VARIANTS, Variant, get_variant, register_variant

__all__ = [
    "DEFAULT_PARAM_BUDGET", "ResNetConfig", "VARIANTS", "Variant", "build_resnet",
    "check_budget", "count_params", "get_variant", "register_variant",
]
__version__ = "0.1.0"
