"""`export_model`: write every asked format, evaluate each against the Keras model, report.

Everything is built in a temporary folder beside the export folder and moved in at the
end, so a failed conversion never leaves half an export where a deployment script would
pick it up; only the files an earlier export wrote (its `manifest.json`) are replaced, and
a user's own files in the folder are left alone.
"""

import datetime
import json
import os
import platform
import shutil
import tempfile

import numpy as np

from keras_resnet.export import convert, manifest, runtime


def _check_arrays(calibration_images, test_images, test_labels, formats):
    if "tflite-int8" in formats and (calibration_images is None or len(calibration_images) == 0):
        raise ValueError(
            "Format tflite-int8 needs training images to calibrate on (pass calibration_images, "
            "or --data-dir on the command line). Received: calibration_images=None"
        )
    if test_labels is not None and (test_images is None or len(test_labels) != len(test_images)):
        raise ValueError(
            "`test_labels` needs `test_images` of the same length. Received: "
            f"{None if test_images is None else len(test_images)} images and "
            f"{len(test_labels)} labels"
        )


def _calibration_sample(images, samples, seed):
    # A random subset, not the first images: a class-sorted folder would otherwise
    # calibrate on one class only.
    if len(images) <= samples:
        return np.asarray(images)
    index = np.random.default_rng(seed).choice(len(images), samples, replace=False)
    return np.asarray(images)[np.sort(index)]


def machine_info():
    """Platform, CPU count and versions: what a latency number needs beside it."""
    import tensorflow as tf

    return {"platform": platform.platform(), "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": tf.__version__}


def _predictors(model, formats, folder, num_threads):
    yield "keras", runtime.KerasPredictor(model)
    for fmt in formats:
        path = os.path.join(folder, convert.FORMATS[fmt])
        if fmt == "saved_model":
            yield fmt, runtime.SavedModelPredictor(path)
        elif fmt in convert.TFLITE_FORMATS:
            yield fmt, runtime.TFLitePredictor(path, fmt, num_threads=num_threads)


def _evaluate(model, formats, folder, entries, test_images, test_labels, latency_runs):
    rows = {}
    reference = None
    threads = os.cpu_count()
    for fmt, predictor in _predictors(model, formats, folder, threads):
        row = {"file": entries[fmt]["file"], "bytes": entries[fmt]["bytes"]}
        if test_images is not None:
            probabilities = predictor(test_images)
            predictions = probabilities.argmax(-1)
            if reference is None:
                reference = probabilities
            row["agreement"] = round(float(np.mean(predictions == reference.argmax(-1))), 6)
            row["max_abs_diff"] = float(np.abs(probabilities - reference).max())
            if test_labels is not None:
                row["accuracy"] = round(float(np.mean(predictions == np.asarray(test_labels))), 6)
        if latency_runs:
            image = (test_images[0] if test_images is not None
                     else np.full(predictor.input_shape, 128, np.uint8))
            latency = {"threads_all": runtime.measure_latency(predictor, image, latency_runs)}
            # Keras and SavedModel run in TensorFlow's process-wide thread pools, which
            # cannot be resized once started: only TFLite gets a one-thread number.
            latency["threads_1"] = (runtime.measure_latency(
                runtime.TFLitePredictor(os.path.join(folder, row["file"]), fmt, num_threads=1),
                image, latency_runs) if fmt in convert.TFLITE_FORMATS else None)
            row["latency_ms"] = latency
        rows[fmt] = row
    return rows


def report_markdown(report):
    """Renders a report of `export_model` as a markdown table."""
    formats = report["formats"]
    float_bytes = formats.get("tflite", {}).get("bytes")
    lines = ["| format | file | bytes | vs float32 tflite | accuracy | agreement | max abs "
             "prob diff | latency ms, 1 thread (mean / p50 / p99) | latency ms, "
             f"{report['machine']['cpu_count']} threads (mean / p50 / p99) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]

    def number(value, spec):
        return "-" if value is None else format(value, spec)

    def latency(row, key):
        stats = (row.get("latency_ms") or {}).get(key)
        return "-" if not stats else " / ".join(f"{stats[k]:.3f}" for k in ("mean", "p50", "p99"))

    for fmt, row in formats.items():
        ratio = row["bytes"] / float_bytes if float_bytes else None
        lines.append(
            f"| {fmt} | {row['file'] or '-'} | {row['bytes']:,} | {number(ratio, '.1%')} | "
            f"{number(row.get('accuracy'), '.4f')} | {number(row.get('agreement'), '.4f')} | "
            f"{number(row.get('max_abs_diff'), '.2e')} | {latency(row, 'threads_1')} | "
            f"{latency(row, 'threads_all')} |")
    lines += ["", f"Test images: {report['test_samples']}; int8 calibration images "
              f"(training set): {report['calibration_samples']}; {report['date']}; "
              f"{report['machine']['platform']}, TensorFlow {report['machine']['tensorflow']}."]
    return "\n".join(lines) + "\n"


def export_names(formats):
    """The entries `export_model` writes into its folder for `formats`."""
    return [convert.FORMATS[fmt] for fmt in convert.check_formats(formats)] + list(
        manifest.RECORDS)


def export_model(model, output_dir, formats, calibration_images=None, test_images=None,
                 test_labels=None, class_names=None, source_config=None,
                 calibration_samples=convert.DEFAULT_CALIBRATION_SAMPLES, latency_runs=100,
                 seed=0):
    """Exports `model` to every format asked, evaluates each, and writes a report.

    The float32 Keras model is the reference: each format is scored on the same test
    images for accuracy, agreement with its predictions and largest probability
    difference, file size, and single-image CPU latency. A model trained under a mixed
    precision policy is exported in float32 (see `convert.float32_model`).

    Args:
        model: `keras.Model` taking raw 0-255 images and returning probabilities.
        output_dir: str. Folder to write, e.g. `RUN_DIR/export`; of an existing one only
            the files of the previous export are replaced. Its parent holds the temporary
            build folder.
        formats: str or sequence of str. Among `keras`, `saved_model`, `tflite`,
            `tflite-fp16`, `tflite-dynamic`, `tflite-int8`.
        calibration_images: array `(n, height, width, channels)` of raw TRAINING pixels
            (never test images). Needed for `tflite-int8`. Defaults to `None`.
        test_images: array of raw pixels to evaluate on, or `None` to skip evaluation.
        test_labels: int array of their classes, or `None` (then no accuracy).
        class_names: list of str, written to `metadata.json`. Defaults to `None`.
        source_config: JSON-safe dict (the run's config.json), written to
            `metadata.json` and the report. Defaults to `None`.
        calibration_samples: int. Calibration images drawn at random from
            `calibration_images`. Defaults to `500`.
        latency_runs: int. Timed single-image calls per format and thread count; `0`
            skips latency. Defaults to `100`.
        seed: int. Seed of the calibration draw. Defaults to `0`.

    Returns:
        The report: `{"formats": {name: {"file", "bytes", "accuracy", "agreement",
        "max_abs_diff", "latency_ms"}}, ...}`, also written to `report.json`/`report.md`.

    Raises:
        ValueError: on an unknown format, int8 without calibration images, labels
            without matching images, or a file in `output_dir` that an export did not
            write and this one would overwrite.

    Example:

    >>> report = export_model(model, os.path.join(run_dir, "export"), "tflite,tflite-int8",
    ...                       calibration_images=x_train, test_images=x_test,
    ...                       test_labels=y_test, latency_runs=0)
    >>> sorted(report["formats"])
    ['keras', 'tflite', 'tflite-int8']
    >>> report["formats"]["tflite-int8"]["agreement"] >= 0.9
    True
    """
    formats = convert.check_formats(formats)
    _check_arrays(calibration_images, test_images, test_labels, formats)
    if not isinstance(calibration_samples, int) or calibration_samples < 1:
        raise ValueError("`calibration_samples` must be a positive integer. "
                         f"Received: calibration_samples={calibration_samples!r}")
    model = convert.float32_model(model)
    if calibration_images is not None:
        calibration_images = _calibration_sample(calibration_images, calibration_samples, seed)
    output_dir = os.path.abspath(output_dir)
    manifest.check_export_folder(output_dir, export_names(formats))
    os.makedirs(os.path.dirname(output_dir), exist_ok=True)
    build = tempfile.mkdtemp(prefix=".export-tmp-", dir=os.path.dirname(output_dir))
    try:
        # The TFLite converter reads the SavedModel, so it is always written first; so is
        # the Keras file, whose size the report gives. Those not asked are dropped below.
        tflite = tuple(fmt for fmt in formats if fmt in convert.TFLITE_FORMATS)
        written = ("keras", "saved_model") + tflite
        entries = {fmt: convert.write_format(model, fmt, build, calibration_images)
                   for fmt in written}
        rows = _evaluate(model, formats, build, entries, test_images, test_labels,
                         latency_runs)
        for fmt in ("keras", "saved_model"):
            if fmt not in formats:
                path = os.path.join(build, entries.pop(fmt)["file"])
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
        rows["keras"]["file"] = entries.get("keras", {}).get("file")
        report = {
            "formats": rows,
            "test_samples": None if test_images is None else int(len(test_images)),
            "calibration_samples": (int(len(calibration_images))
                                    if "tflite-int8" in formats else None),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "source_config": source_config,
        }
        metadata = {"class_names": None if class_names is None else list(class_names),
                    "formats": entries, "source_config": source_config}
        for name, payload in (("metadata.json", metadata), ("report.json", report)):
            with open(os.path.join(build, name), "w") as file:
                json.dump(payload, file, indent=2, sort_keys=True, default=str)
        with open(os.path.join(build, "report.md"), "w") as file:
            file.write(report_markdown(report))
        manifest.write_manifest(build)
        manifest.move_into_place(build, output_dir)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return report
