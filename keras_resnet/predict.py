"""`python -m keras_resnet.predict MODEL IMAGE...`: the top classes of images, any format.

MODEL is a `.keras` file (loaded in safe mode), a `.tflite` file (int8 included: its input
is quantized here; TFLite builtin operators only) or, with `--trust-saved-model`, a
SavedModel folder, whose graph runs as code. Class names come from `--labels`, else from the
`metadata.json` the exporter wrote beside the model, else they are `class_<index>`.
"""

import json
import os

import numpy as np

from keras_resnet import cli
from keras_resnet.export import runtime


def read_images(paths, input_shape, max_pixels=None):
    """Reads image files as raw pixels, resized to the model's input.

    Args:
        paths: list of str. Image files Pillow can open (PNG, JPEG, ...).
        input_shape: tuple. `(height, width, channels)`; channels 1 or 3.
        max_pixels: int or None. Most pixels of one image, checked before decoding;
            `None` for `keras_resnet.limits.MAX_IMAGE_PIXELS`.

    Returns:
        A uint8 array `(len(paths), height, width, channels)`.

    Raises:
        ValueError: if a file is missing, is not an image, is larger than
            `keras_resnet.limits.MAX_IMAGE_PIXELS`, or has a mode that cannot be
            converted (e.g. floating-point pixels).
    """
    from keras_resnet.data import images as image_files

    height, width, channels = input_shape
    items = [(path, path) for path in paths]
    try:
        return image_files.decode_images(items, (height, width), channels, formats=None,
                                         max_pixels=max_pixels)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as error:
        raise ValueError(f"Cannot read the image ({type(error).__name__}). "
                         f"Received: image={error.filename!r}") from None


def class_names_for(model_path, num_classes, labels=None):
    """Class names: `labels` if given, else the exporter's metadata.json beside the model.

    Args:
        model_path: str. The model file or SavedModel folder.
        num_classes: int. Outputs of the model.
        labels: list of str, or None.

    Returns:
        A list of `num_classes` names; `class_<index>` where nothing names them.

    Raises:
        ValueError: if `labels` has not one name per class.

    Example:

    >>> class_names_for("no/metadata/model.tflite", 3)
    ['class_0', 'class_1', 'class_2']
    """
    if labels is None:
        metadata = os.path.join(os.path.dirname(os.path.abspath(model_path.rstrip("/\\"))),
                                "metadata.json")
        if os.path.isfile(metadata):
            try:
                with open(metadata) as file:
                    labels = json.load(file).get("class_names")
            except (OSError, ValueError, AttributeError):
                labels = None  # not the exporter's metadata: names are unknown
            if not isinstance(labels, list) or not all(isinstance(n, str) for n in labels):
                labels = None
    if labels is None:
        return [f"class_{index}" for index in range(num_classes)]
    if len(labels) != num_classes:
        raise ValueError(f"Expected one label per class ({num_classes}). "
                         f"Received: labels={list(labels)!r}")
    return list(labels)


def predict_files(model_path, image_paths, top_k=3, labels=None, trust_saved_model=False,
                  max_pixels=None):
    """Top-k classes and probabilities of each image under the model at `model_path`.

    Args:
        model_path: str. A `.keras` file, SavedModel folder or `.tflite` file.
        image_paths: list of str. Image files.
        top_k: int. Classes per image. Defaults to `3`.
        labels: list of str or None. Class names; see `class_names_for`.
        trust_saved_model: bool. Allow a SavedModel, whose graph runs as code; see
            `keras_resnet.export.load_predictor`. Defaults to `False`.
        max_pixels: int or None. Most pixels of one image; see `read_images`.

    Returns:
        One dict per image: `{"image": path, "top_k": [{"class", "index",
        "probability"}, ...]}`, most probable first.

    Raises:
        ValueError: on a bad model path or format, a model that cannot be loaded safely,
            a SavedModel without `trust_saved_model`, an unreadable image, or `top_k < 1`.

    Example:

    >>> result = predict_files(os.path.join(export_dir, "model_int8.tflite"), [png], top_k=2)
    >>> [len(entry["top_k"]) for entry in result]
    [2]
    """
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"`top_k` must be a positive integer. Received: top_k={top_k!r}")
    predictor = runtime.load_predictor(model_path, trust_saved_model=trust_saved_model)
    probabilities = predictor(read_images(image_paths, predictor.input_shape, max_pixels))
    names = class_names_for(model_path, probabilities.shape[-1], labels)
    results = []
    for path, row in zip(image_paths, probabilities):
        order = np.argsort(-row, kind="stable")[:top_k]
        results.append({"image": path, "top_k": [
            {"class": names[i], "index": int(i), "probability": round(float(row[i]), 6)}
            for i in order]})
    return results


def _labels(text):
    if text is None:
        return None
    if os.path.isfile(text):
        try:
            with open(text, encoding="utf-8") as file:
                return [line.strip() for line in file if line.strip()]
        except UnicodeDecodeError:
            raise ValueError("--labels must be a text file with one class name per line. "
                             f"Received: labels={text!r}") from None
    return [name.strip() for name in text.split(",")]


def build_parser():
    parser = cli.ArgumentParser(
        prog="python -m keras_resnet.predict",
        description="Print the top classes of images under an exported model.")
    parser.add_argument("model", help=".keras file, SavedModel folder or .tflite file, or a "
                                      "shipped model: NAME (float) or NAME:int8")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--top-k", type=cli.positive("top_k"), default=3,
                        help="classes per image (default 3)")
    parser.add_argument(runtime.SAVED_MODEL_FLAG, action="store_true",
                        help="allow a SavedModel folder: its graph runs as code and can read "
                             "and write files, so only for models you made or trust")
    cli.add_pixel_limit_argument(parser)
    parser.add_argument("--labels", help="class names: comma-separated, or a file with one "
                                         "per line (default: metadata.json beside the model)")
    return parser


def main(argv=None):
    from keras_resnet.pretrained import resolve_model

    args = build_parser().parse_args(argv)
    args.model = resolve_model(args.model)
    # Every check that needs no TensorFlow comes first, so bad input fails in milliseconds.
    fmt = runtime.check_model_path(args.model)
    if fmt == "saved_model" and not args.trust_saved_model:
        runtime.load_predictor(args.model)  # refuses it, naming the flag
    if fmt == "tflite":
        from keras_resnet.export.tflite_file import check_tflite

        check_tflite(args.model)
    for path in args.images:
        if not os.path.isfile(path):
            raise ValueError(f"No image at that path. Received: image={path!r}")
    from keras_resnet.quiet import import_keras

    import_keras()
    results = predict_files(args.model, args.images, args.top_k, _labels(args.labels),
                            trust_saved_model=args.trust_saved_model,
                            max_pixels=args.max_image_pixels)
    for result in results:
        print(f"{result['image']}: " + ", ".join(
            f"{entry['class']} {entry['probability']:.4f}" for entry in result["top_k"]))
    cli.print_json_line({"predictions": results})
    return 0


if __name__ == "__main__":
    cli.run_command(main)
