"""Running every exported format the same way: raw images in, float32 probabilities out.

One `Predictor` per format hides what differs between them (a Keras model, a SavedModel
signature, a TFLite interpreter with int8 input and output), so evaluation, latency and
the predict command treat all formats alike.
"""

import os
import time
import warnings

import numpy as np

from keras_resnet.cli import one_line

# Images per interpreter call when evaluating a whole test set: big enough to amortize
# the per-invoke overhead, small enough to keep a CIFAR-sized activation buffer in cache.
EVAL_BATCH_SIZE = 250


def quantize(images, scale, zero_point, dtype):
    """Raw pixels to a model's input type: `round(x / scale) + zero_point`, saturated.

    A `scale` of 0 is TFLite's "not quantized": the images are only cast.
    """
    dtype = np.dtype(dtype)
    if not scale:
        return np.asarray(images).astype(dtype)
    info = np.iinfo(dtype)
    quantized = np.round(np.asarray(images, np.float32) / scale + zero_point)
    return np.clip(quantized, info.min, info.max).astype(dtype)


class Predictor:
    """Maps a batch of raw 0-255 images `(n, height, width, channels)` to probabilities.

    Args:
        name: str. The format, as in the report.
        input_shape: tuple. `(height, width, channels)` the model takes.
    """

    def __init__(self, name, input_shape):
        self.name = name
        self.input_shape = tuple(int(d) for d in input_shape)

    def predict_batch(self, images):
        """Probabilities of one batch; subclasses implement it."""
        raise NotImplementedError

    def __call__(self, images, batch_size=EVAL_BATCH_SIZE):
        images = np.asarray(images)
        outputs = [self.predict_batch(images[start:start + batch_size])
                   for start in range(0, len(images), batch_size)]
        return np.concatenate(outputs).astype(np.float32)


class KerasPredictor(Predictor):
    """A Keras model, through `predict_on_batch` (its compiled inference function)."""

    def __init__(self, model, name="keras"):
        super().__init__(name, model.input_shape[1:])
        self.model = model

    def predict_batch(self, images):
        return np.asarray(self.model.predict_on_batch(images.astype(np.float32)))


class SavedModelPredictor(Predictor):
    """A SavedModel folder, through its `serving_default` signature."""

    def __init__(self, path, name="saved_model"):
        import tensorflow as tf

        self._tf = tf
        self.function = tf.saved_model.load(path).signatures["serving_default"]
        _, inputs = self.function.structured_input_signature
        self.input_key = next(iter(inputs))
        super().__init__(name, inputs[self.input_key].shape[1:])

    def predict_batch(self, images):
        outputs = self.function(**{self.input_key: self._tf.constant(images, self._tf.float32)})
        return next(iter(outputs.values())).numpy()


class TFLitePredictor(Predictor):
    """A `.tflite` file in the TFLite interpreter; quantizes int8 input, dequantizes output.

    Args:
        path: str. The `.tflite` file.
        name: str. The format name. Defaults to `"tflite"`.
        num_threads: int or None. Interpreter threads; `None` uses every core.
        reference_kernels: bool. Run TFLite's reference kernels (the arithmetic TFLite
            Micro's kernels implement) instead of the optimized ones and XNNPACK, whose
            int8 rounding differs. Defaults to `False`.
    """

    def __init__(self, path, name="tflite", num_threads=None, reference_kernels=False):
        import tensorflow as tf

        from keras_resnet.export.tflite_file import check_tflite

        check_tflite(path)  # the interpreter trusts its file: a bad one would crash it

        resolver = (tf.lite.experimental.OpResolverType.BUILTIN_REF if reference_kernels
                    else tf.lite.experimental.OpResolverType.AUTO)
        with warnings.catch_warnings():
            # tf.lite.Interpreter warns that it moves to ai_edge_litert, not installed here.
            warnings.simplefilter("ignore")
            self.interpreter = tf.lite.Interpreter(
                model_path=path, num_threads=num_threads or os.cpu_count(),
                experimental_op_resolver_type=resolver)
        # TensorFlow ("Flex") operators would run arbitrary TensorFlow kernels (file
        # writes included) if a Flex delegate were linked: refused whatever the build.
        flex = sorted({op["op_name"] for op in self.interpreter._get_ops_details()
                       if op["op_name"].startswith("Flex")})
        if flex:
            raise ValueError("The TFLite model needs TensorFlow operators "
                             f"({', '.join(flex[:5])}), which are not run here: only "
                             f"TFLite's builtin operators are. Received: model={path!r}")
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch_size = None
        super().__init__(name, self.input["shape"][1:])

    def predict_batch(self, images):
        if len(images) != self.batch_size:
            # Resizing re-plans the graph: do it only when the batch size changes.
            self.interpreter.resize_tensor_input(self.input["index"], [len(images),
                                                                       *self.input_shape])
            self.interpreter.allocate_tensors()
            self.batch_size = len(images)
        scale, zero_point = self.input["quantization"]
        self.interpreter.set_tensor(self.input["index"],
                                   quantize(images, scale, zero_point, self.input["dtype"]))
        self.interpreter.invoke()
        outputs = self.interpreter.get_tensor(self.output["index"])
        scale, zero_point = self.output["quantization"]
        if scale:
            outputs = (outputs.astype(np.float32) - zero_point) * scale
        return outputs


def check_model_path(path):
    """Returns the format of the model at `path` (`keras`, `saved_model` or `tflite`).

    Needs neither Keras nor TensorFlow, so commands can refuse a bad path before they load.

    Raises:
        ValueError: if `path` does not exist or is not a model of a known format.

    Example:

    >>> check_model_path("no/such/model.tflite")
    Traceback (most recent call last):
    ...
    ValueError: No model at that path. Received: model='no/such/model.tflite'
    """
    if not os.path.exists(path):
        raise ValueError(f"No model at that path. Received: model={path!r}")
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise ValueError("A model folder must be a SavedModel (with saved_model.pb). "
                             f"Received: model={path!r}")
        return "saved_model"
    for suffix, fmt in ((".tflite", "tflite"), (".keras", "keras")):
        if path.endswith(suffix):
            return fmt
    raise ValueError(
        "Unknown model format; expected a .keras file, a SavedModel folder or a .tflite "
        f"file. Received: model={path!r}"
    )


SAVED_MODEL_FLAG = "--trust-saved-model"


def load_keras_model(path):
    """Loads a `.keras` file in Keras' safe mode: no code inside the file runs.

    A `Lambda` layer's pickled function or another object that would execute code is
    refused by Keras; so is anything that is not a Keras archive.

    Raises:
        ValueError: in one line, if the file cannot be loaded safely.
    """
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - anything in the file is the file's fault
        reason = one_line(error)[:200]
        raise ValueError(f"Cannot load the Keras model safely ({type(error).__name__}: "
                         f"{reason}). Received: model={path!r}") from None


def load_predictor(path, num_threads=None, trust_saved_model=False):
    """Opens any exported model: a `.keras` file, a SavedModel folder or a `.tflite` file.

    What is safe to open from an untrusted source: a `.keras` file (loaded in safe mode)
    and a `.tflite` file (run with TFLite's builtin operators only, never TensorFlow ops).
    A SavedModel is a TensorFlow graph that can read and write files when called, so it is
    opened only with `trust_saved_model=True`.

    Args:
        path: str. The model file or folder.
        num_threads: int or None. TFLite interpreter threads; `None` uses every core.
        trust_saved_model: bool. Allow running a SavedModel's graph. Defaults to `False`.

    Returns:
        A `Predictor`.

    Raises:
        ValueError: if `path` does not exist, is not a model of a known format, cannot be
            loaded, or is a SavedModel without `trust_saved_model`.

    Example:

    >>> predictor = load_predictor(os.path.join(export_dir, "model_int8.tflite"))
    >>> predictor(test_images).shape == (len(test_images), num_classes)
    True
    """
    fmt = check_model_path(path)
    if fmt == "saved_model" and not trust_saved_model:
        raise ValueError(
            "A SavedModel runs its own TensorFlow graph, which can read and write files; "
            f"open one you made or trust with {SAVED_MODEL_FLAG}, or use its .keras or "
            f".tflite export. Received: model={path!r}")
    try:
        if fmt == "saved_model":
            return SavedModelPredictor(path)
        if fmt == "tflite":
            return TFLitePredictor(path, num_threads=num_threads)
    except ValueError:
        raise
    except Exception as error:  # noqa: BLE001 - a corrupt file fails in many ways
        reason = one_line(error)[:200]
        raise ValueError(f"Cannot load the model ({type(error).__name__}: {reason}). "
                         f"Received: model={path!r}") from None
    return KerasPredictor(load_keras_model(path))


def measure_latency(predictor, image, runs=100, warmup=10):
    """Single-image latency in milliseconds: mean, median and 99th percentile.

    Args:
        predictor: `Predictor`.
        image: array `(height, width, channels)`.
        runs: int. Timed calls. Defaults to `100`.
        warmup: int. Untimed calls first (allocation, XNNPACK packing, tracing).
            Defaults to `10`.

    Returns:
        A dict `{"mean": ..., "p50": ..., "p99": ..., "runs": ...}` in milliseconds.
    """
    batch = np.asarray(image)[None]
    for _ in range(warmup):
        predictor.predict_batch(batch)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        predictor.predict_batch(batch)
        times.append(time.perf_counter() - start)
    times = 1000.0 * np.asarray(times)
    return {"mean": round(float(times.mean()), 4),
            "p50": round(float(np.percentile(times, 50)), 4),
            "p99": round(float(np.percentile(times, 99)), 4), "runs": int(runs)}
