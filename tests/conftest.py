import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_resnet.quiet import import_keras  # noqa: E402

import_keras()

import pytest  # noqa: E402

from keras_resnet.training import runtime  # noqa: E402

# CI runs the suite a second time on JAX with KERAS_RESNET_TEST_JIT=on: every compiled
# step then goes through XLA, as on a GPU, where jit bugs (donated buffers, tracing)
# appear that the eager CPU path hides.
FORCE_JIT = os.environ.get("KERAS_RESNET_TEST_JIT") == "on"


@pytest.fixture(autouse=True)
def _force_jit(monkeypatch, request):
    # Tests of the resolution itself keep the real function.
    if FORCE_JIT and not request.node.get_closest_marker("real_jit_resolution"):
        monkeypatch.setattr(runtime, "resolve_jit", lambda jit: True)
