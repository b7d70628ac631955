"""`export_model`: write every asked format, evaluate each against the Keras model, report.

Everything is built in a temporary folder beside the export folder and moved in at the
end, so a failed conversion never leaves half an export where a deployment script would
pick it up; only the files an earlier export wrote (its `manifest.json`) are replaced, and
a user's own files in the folder are left alone.
"""

import datetime
import os
import shutil
import tempfile

import numpy as np

from keras_resnet.export import convert, manifest, micro, runtime
from keras_resnet.files import write_json, write_text
from keras_resnet.run_folder import REPORT_FILE


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


def _predictors(model, formats, folder, entries, num_threads):
    yield "keras", runtime.KerasPredictor(model)
    for fmt in formats:
        path = os.path.join(folder, convert.FORMATS[fmt])
        if fmt == "saved_model":
            yield fmt, runtime.SavedModelPredictor(path)
        elif fmt in convert.TFLITE_FORMATS:
            yield fmt, runtime.TFLitePredictor(path, fmt, num_threads=num_threads)
        elif fmt == "tflm":
            # Run in exactly the measured arena: the whole evaluation proves it is enough.
            with open(os.path.join(folder, convert.FORMATS["tflite-int8"]), "rb") as file:
                yield fmt, micro.MicroPredictor(file.read(), entries[fmt]["arena"]["arena_bytes"])


def _flip_accuracy(predictor, images, probabilities, labels):
    flipped = predictor(np.asarray(images)[:, :, ::-1])
    predictions = ((probabilities + flipped) / 2).argmax(-1)
    return round(float(np.mean(predictions == np.asarray(labels))), 6)


def _evaluate(model, formats, folder, entries, test_images, test_labels, latency_runs,
              tflm_tolerance):
    rows = {}
    reference = None
    outputs = {}
    threads = os.cpu_count()
    for fmt, predictor in _predictors(model, formats, folder, entries, threads):
        row = {"file": entries[fmt]["file"], "bytes": entries[fmt]["bytes"]}
        if fmt in convert.TFLITE_FORMATS or fmt == "tflm":
            # What a device stores: the flatbuffer (for tflm, the same int8 one in C++).
            row["flash_bytes"] = entries[fmt].get("flash_bytes", entries[fmt]["bytes"])
        if fmt == "tflm":
            row.update(arena_bytes=entries[fmt]["arena"]["arena_bytes"],
                       arena=entries[fmt]["arena"], ops=entries[fmt]["ops"])
        if test_images is not None:
            probabilities = outputs[fmt] = predictor(test_images)
            predictions = probabilities.argmax(-1)
            if reference is None:
                reference = probabilities
            row["agreement"] = round(float(np.mean(predictions == reference.argmax(-1))), 6)
            row["max_abs_diff"] = float(np.abs(probabilities - reference).max())
            if test_labels is not None:
                row["accuracy"] = round(float(np.mean(predictions == np.asarray(test_labels))), 6)
                if fmt != "tflm":
                    # What a device that can afford two passes reaches: flip test-time
                    # augmentation, the mean of the image's and its mirror's probabilities.
                    # Not under TFLM: its Python runtime (reference kernels) is the slow
                    # pass of an export, and its arithmetic is checked against
                    # tflite-int8's just below.
                    row["tta_accuracy"] = _flip_accuracy(predictor, test_images,
                                                         probabilities, test_labels)
            if fmt == "tflm":
                # Checked against TFLite running the same int8 model with its reference
                # kernels, the arithmetic TFLM implements; the optimized kernels (XNNPACK)
                # round differently and flip a near tie now and then, reported beside.
                reference_kernels = runtime.TFLitePredictor(
                    os.path.join(folder, convert.FORMATS["tflite-int8"]), "tflite-int8",
                    reference_kernels=True)(test_images)
                scale = entries["tflite-int8"]["output"]["quantization"]["scale"]
                row["vs_tflite_int8"] = {
                    "kernels": "reference",
                    **micro.check_agreement(probabilities, reference_kernels, scale,
                                            tflm_tolerance),
                    "optimized_agreement": round(float(np.mean(
                        predictions == outputs["tflite-int8"].argmax(-1))), 6)}
        if fmt == "tflm":
            # TFLM's reference kernels on this host say nothing about a device's speed.
            row["latency_ms"] = None
            rows[fmt] = row
            continue
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


def _macs_per_image(source_config):
    # The analytic count of the run's architecture (model.estimate_flops / 2).
    model_section = (source_config or {}).get("model")
    if not isinstance(model_section, dict):
        return None
    from keras_resnet.config import ResNetConfig
    from keras_resnet.model import estimate_flops

    try:
        return estimate_flops(ResNetConfig.from_dict(model_section)) // 2
    except (TypeError, ValueError):
        return None


def report_markdown(report):
    """Renders a report of `export_model` as a markdown table."""
    formats = report["formats"]
    float_bytes = formats.get("tflite", {}).get("bytes")
    macs = report.get("macs_per_image")
    lines = ["| format | file | bytes | vs float32 tflite | flash bytes | arena bytes | "
             "MACs/image | accuracy | flip TTA accuracy | agreement | max abs prob diff | "
             "latency ms, 1 thread (mean / p50 / p99) | latency ms, {report['machine']['cores']} threads "
             "(mean / p50 / p99) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def number(value, spec):
        return "-" if value is None else format(value, spec)

    def latency(row, key):
        stats = (row.get("latency_ms") or {}).get(key)
        return "-" if not stats else " / ".join(f"{stats[k]:.3f}" for k in ("mean", "p50", "p99"))

    for fmt, row in formats.items():
        ratio = row["bytes"] / float_bytes if float_bytes else None
        lines.append(
            f"| {fmt} | {row['file'] or '-'} | {row['bytes']:,} | {number(ratio, '.1%')} | "
            f"{number(row.get('flash_bytes'), ',')} | {number(row.get('arena_bytes'), ',')} | "
            f"{number(macs, ',')} | "
            f"{number(row.get('accuracy'), '.4f')} | {number(row.get('tta_accuracy'), '.4f')} | "
            f"{number(row.get('agreement'), '.4f')} | "
            f"{number(row.get('max_abs_diff'), '.2e')} | {latency(row, 'threads_1')} | "
            f"{latency(row, 'threads_all')} |")
    lines += ["", f"Test images: {report['test_samples']}; int8 calibration images "
              f"(training set): {report['calibration_samples']}; {report['date']}; "
              f"{report['machine']['platform']}, TensorFlow {report['machine']['tensorflow']}."]
    tflm = formats.get("tflm")
    if tflm:
        arena = tflm["arena"]
        versus = tflm.get("vs_tflite_int8")
        lines += ["", f"TFLite Micro (tflm/): flash {tflm['flash_bytes']:,} bytes (the model "
                  f"array; TFLM's own code not counted); tensor arena {arena['arena_bytes']:,} "
                  f"bytes = {arena['used_bytes']:,} used under TFLM's reference kernels + "
                  f"{arena['margin_bytes']} (TFLM's margin for an arena not 16-byte aligned); "
                  f"ops for MicroMutableOpResolver: {', '.join(tflm['ops'])}."
                  + (f" Accuracy {tflm['accuracy']:.4f}; top-1 agreement with tflite-int8 "
                     f"{versus['agreement']:.4f} on TFLite's reference kernels (outputs at "
                     f"most {versus['max_abs_diff_steps']} quantization step(s) apart), "
                     f"{versus['optimized_agreement']:.4f} on its optimized ones (XNNPACK, "
                     "whose int8 rounding differs)." if versus and "accuracy" in tflm else "")]
    return "\n".join(lines) + "\n"


def export_names(formats):
    """The entries `export_model` writes into its folder for `formats`."""
    return [convert.FORMATS[fmt] for fmt in convert.check_formats(formats)] + list(
        manifest.RECORDS)


def export_model(model, output_dir, formats, calibration_images=None, test_images=None,
                 test_labels=None, class_names=None, source_config=None,
                 calibration_samples=convert.DEFAULT_CALIBRATION_SAMPLES, latency_runs=100,
                 seed=0, tflm_tolerance=micro.DEFAULT_TOLERANCE):
    """Exports `model` to every format asked, evaluates each, and writes a report.

    The float32 Keras model is the reference: each format is scored on the same test
    images for accuracy (and, but under TFLM, accuracy with flip test-time augmentation),
    agreement with its predictions and largest probability difference, file size, and
    single-image CPU latency. A model trained under a mixed precision policy is exported
    in float32 (see `keras_resnet.model.float32_model`).

    `tflm` (TensorFlow Lite Micro, needs the `tflm` extra) implies `tflite-int8`: that
    model is run under TFLM's interpreter on every test image, in the tensor arena found
    by running it (`micro.measure_arena`), and must agree with TFLite's int8 predictions
    (reference kernels) on all but `tflm_tolerance` of them; `tflm/` holds it as C++ sources
    (`firmware.write_sources`). Flash bytes, arena bytes and MACs per image (from the
    architecture in `source_config["model"]`) join the report.

    Args:
        model: `keras.Model` taking raw 0-255 images and returning probabilities.
        output_dir: str. Folder to write, e.g. `RUN_DIR/export`; of an existing one only
            the files of the previous export are replaced. Its parent holds the temporary
            build folder.
        formats: str or sequence of str. Among `keras`, `saved_model`, `tflite`,
            `tflite-fp16`, `tflite-dynamic`, `tflite-int8`, `tflm`.
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
        tflm_tolerance: float. Largest fraction of test images on which TFLM's top-1
            class may differ from TFLite int8's (run with TFLite's reference kernels, the
            arithmetic TFLM implements). Defaults to `0.01`.

    Returns:
        The report: `{"formats": {name: {"file", "bytes", "accuracy", "tta_accuracy",
        "agreement", "max_abs_diff", "latency_ms"}}, ...}`, also written to `report.json`
        and `report.md`.

    Raises:
        ValueError: on an unknown format, int8 without calibration images, labels
            without matching images, or a file in `output_dir` that an export did not
            write and this one would overwrite; `micro.MicroMismatchError` (a ValueError)
            if TFLM disagrees with TFLite int8 beyond `tflm_tolerance` (nothing is written
            then).

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
    if "tflm" in formats and "tflite-int8" not in formats:
        formats = tuple(f for f in formats if f != "tflm") + ("tflite-int8", "tflm")
    _check_arrays(calibration_images, test_images, test_labels, formats)
    if not 0 <= tflm_tolerance < 1:
        raise ValueError("`tflm_tolerance` must be in [0, 1). "
                         f"Received: tflm_tolerance={tflm_tolerance!r}")
    if not isinstance(calibration_samples, int) or calibration_samples < 1:
        raise ValueError("`calibration_samples` must be a positive integer. "
                         f"Received: calibration_samples={calibration_samples!r}")
    from keras_resnet.model import float32_model
    from keras_resnet.training.runtime import machine_info

    model = float32_model(model)
    if calibration_images is not None:
        calibration_images = _calibration_sample(calibration_images, calibration_samples, seed)
    output_dir = os.path.abspath(output_dir)
    manifest.check_export_folder(output_dir, export_names(formats))
    os.makedirs(os.path.dirname(output_dir), exist_ok=True)
    build = tempfile.mkdtemp(prefix=".export-tmp-", dir=os.path.dirname(output_dir))
    # mkdtemp's folder is private (0700); the export is renamed into place, so it gets the
    # mode any folder made here would (a shipped model's folder is read by other users).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(build, 0o777 & ~umask)
    try:
        # The TFLite converter reads the SavedModel, so it is always written first; so is
        # the Keras file, whose size the report gives. Those not asked are dropped below.
        tflite = tuple(fmt for fmt in formats if fmt in convert.TFLITE_FORMATS)
        written = ("keras", "saved_model") + tflite
        entries = {fmt: convert.write_format(model, fmt, build, calibration_images)
                   for fmt in written}
        if "tflm" in formats:
            entries["tflm"] = micro.write_tflm(
                build, convert.FORMATS["tflm"], entries["tflite-int8"], class_names,
                (source_config or {}).get("variant") or "")
        rows = _evaluate(model, formats, build, entries, test_images, test_labels,
                         latency_runs, tflm_tolerance)
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
            "macs_per_image": _macs_per_image(source_config),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "source_config": source_config,
        }
        metadata = {"class_names": None if class_names is None else list(class_names),
                    "formats": entries, "source_config": source_config}
        for name, payload in (("metadata.json", metadata), (REPORT_FILE, report)):
            write_json(os.path.join(build, name), payload)
        write_text(os.path.join(build, "report.md"), report_markdown(report))
        manifest.write_manifest(build)
        manifest.move_into_place(build, output_dir)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return report
