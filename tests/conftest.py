import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_resnet.quiet import import_keras  # noqa: E402

import_keras()
