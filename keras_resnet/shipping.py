"""`python -m keras_resnet.shipping RUN_DIR --name NAME`: a trained run into `saved_models/NAME/`.

For the maintainers: exports the run's final model (int8 calibrated on its training images,
TensorFlow Lite Micro sources when `tflite-micro` is installed), measures it on the whole
test set and on a fixed class-balanced spot check (the first 50 test images of each class,
what the tests re-measure), writes the model card and the SHA-256 of every file. The folder
is built beside its destination and renamed into place, so a failure leaves the shipped
models as they were; a folder there that was not shipped (no `sha256.json`) is refused.
"""

import datetime
import os
import shutil
import tempfile

import numpy as np

from keras_resnet import cli, pretrained, run_folder
from keras_resnet.files import read_json, write_json, write_text

SPOT_CHECK_PER_CLASS = 50


def spot_check_indices(labels, per_class=SPOT_CHECK_PER_CLASS):
    """The first `per_class` images of each class, in the split's order.

    Example:

    >>> spot_check_indices(np.array([0, 1, 0, 1, 0]), per_class=2).tolist()
    [0, 1, 2, 3]
    """
    labels = np.asarray(labels)
    return np.sort(np.concatenate([np.flatnonzero(labels == label)[:per_class]
                                   for label in np.unique(labels)]))


def spot_check(folder, images, labels):
    """Accuracy of a shipped folder's float and int8 models on the spot-check images."""
    from keras_resnet.export.runtime import TFLitePredictor, load_keras_model
    from keras_resnet.training.evaluate import predict_probabilities

    index = spot_check_indices(labels)
    images, labels = images[index], labels[index]
    model = load_keras_model(os.path.join(folder, pretrained.FILES["float"]))
    int8 = TFLitePredictor(os.path.join(folder, pretrained.FILES["int8"]), "tflite-int8")
    return {"images": int(len(index)),
            "which": f"the first {SPOT_CHECK_PER_CLASS} test images of each class",
            "accuracy": float((predict_probabilities(model, images).argmax(-1)
                               == labels).mean()),
            "int8_accuracy": float((int8(images).argmax(-1) == labels).mean())}


def _seeds_summary(run_dir):
    # A seed of a repeated run (train.py --seeds / reproduce): its siblings' spread.
    path = os.path.join(os.path.dirname(os.path.abspath(run_dir)), run_folder.SUMMARY_FILE)
    if not os.path.basename(os.path.abspath(run_dir)).startswith("seed-") or \
            not os.path.isfile(path):
        return None
    summary = read_json(path, "summary")
    values = summary["metrics"]["test_accuracy"]
    return {key: values[key] for key in ("mean", "std", "n", "values")} | {
        "seeds": summary["seeds"]}


def build_card(name, run_config, metrics, report, seeds, spot, data_label):
    """The numbers of a model card (`card.json`)."""
    from keras_resnet.model import count_params
    from keras_resnet.config import ResNetConfig

    from keras_resnet.variants import get_variant

    formats = report["formats"]
    tflm = formats.get("tflm") or {}
    int8 = formats["tflite-int8"]
    config = ResNetConfig.from_dict(run_config["model"]).to_dict()
    default = get_variant(run_config["variant"]).to_dict()
    return {
        "name": name, "variant": run_config["variant"],
        # A model searched or configured away from its variant (`--config`) says how.
        "architecture_changes": {key: value for key, value in config.items()
                                 if value != default.get(key)},
        "trainable_params": count_params(ResNetConfig.from_dict(run_config["model"]))[
            "trainable"],
        "macs_per_image": report.get("macs_per_image"),
        "test_accuracy": metrics["test_accuracy"],
        "tta_test_accuracy": formats["keras"]["tta_accuracy"],
        "int8_test_accuracy": int8["accuracy"], "int8_tta_test_accuracy": int8["tta_accuracy"],
        "int8_bytes": int8["bytes"],
        "int8_latency_ms": (int8.get("latency_ms") or {}).get("threads_1"),
        "tflm_test_accuracy": tflm.get("accuracy"), "arena_bytes": tflm.get("arena_bytes"),
        "flash_bytes": tflm.get("flash_bytes"), "float_bytes": formats["keras"]["bytes"],
        "seeds_test_accuracy": seeds, "spot_check": spot, "test_images": report["test_samples"],
        "epochs": metrics["epochs_completed"], "train_seconds": metrics["train_seconds"],
        "trained_on": {key: metrics.get(key) for key in ("device", "backend", "precision")},
        "recipe": run_config["train"], "data": data_label,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def ship_run(run_dir, name, root=None, data_dir=None, latency_runs=100):
    """Ships a finished run as `root/name/`; returns its card.

    Raises:
        ValueError: for an unfinished run, a bad name, or a folder there not shipped by us.
    """
    from keras_resnet import model_card
    from keras_resnet.data import load_data
    from keras_resnet.export import micro
    from keras_resnet.export.exporter import export_model
    from keras_resnet.export.runtime import load_keras_model
    from keras_resnet.reproduce import data_label

    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"A shipped name is letters, digits, - and _. Received: name={name!r}")
    root = root or pretrained.shipped_root()
    target = os.path.join(root, name)
    if os.path.exists(target) and not os.path.isfile(os.path.join(target, pretrained.CHECKSUMS)):
        raise ValueError(f"{target} exists and is not a shipped model; move it away. "
                         f"Received: name={name!r}")
    model_path, run_config = run_folder.read_finished_run(run_dir)
    metrics = run_folder.read_metrics(run_dir)
    data = load_data(**run_folder.data_arguments(run_config, data_dir))
    model = load_keras_model(model_path)
    formats = ("tflite-int8", "tflm") if micro.available() else ("tflite-int8",)
    for entry in os.listdir(root):  # what a killed shipping of this name left
        if entry.startswith(f".{name}-tmp-"):
            shutil.rmtree(os.path.join(root, entry), ignore_errors=True)
    staging = tempfile.mkdtemp(prefix=f".{name}-tmp-", dir=root)
    build = os.path.join(staging, name)
    try:
        report = export_model(model, build, formats, calibration_images=data.x_train,
                              test_images=data.x_test, test_labels=data.y_test,
                              class_names=list(data.class_names), source_config=run_config,
                              latency_runs=latency_runs)
        os.remove(os.path.join(build, "manifest.json"))  # an export's, not a shipped model's
        shutil.copyfile(model_path, os.path.join(build, pretrained.FILES["float"]))
        write_json(os.path.join(build, run_folder.CONFIG_FILE), run_config)
        card = build_card(name, run_config, metrics, report, _seeds_summary(run_dir),
                          spot_check(build, data.x_test, data.y_test),
                          data_label(data_dir or run_config["data"].get("data_dir")))
        write_json(os.path.join(build, pretrained.CARD), card)
        write_text(os.path.join(build, "README.md"), model_card.card_markdown(card))
        write_json(os.path.join(build, pretrained.CHECKSUMS), pretrained.folder_checksums(build))
        if os.path.exists(target):
            os.rename(target, os.path.join(staging, "previous"))
        os.rename(build, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def main(argv=None):
    parser = cli.ArgumentParser(prog="python -m keras_resnet.shipping",
                                description="Ship a finished run as a trained model.")
    parser.add_argument("run_dir", help="a finished run folder (model.keras, config.json)")
    parser.add_argument("--name", required=True, help="the shipped model's name")
    parser.add_argument("--root", default=None, help="default: the package's saved_models")
    parser.add_argument("--data-dir", default=None, help="default: the run's own data")
    args = parser.parse_args(argv)
    card = ship_run(args.run_dir, args.name, args.root, args.data_dir)
    print(pretrained.listing(args.root), end="")
    cli.print_json_line(card)
    return 0


if __name__ == "__main__":
    cli.run_command(main, keras=True)
