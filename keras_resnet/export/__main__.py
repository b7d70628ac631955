"""`python -m keras_resnet.export RUN_DIR`: export a training run and evaluate every format.

Reads RUN_DIR/model.keras and RUN_DIR/config.json, loads the run's data set (training
images to calibrate int8 on, test images to evaluate), writes RUN_DIR/export/ whole or
not at all, prints the markdown report and, as the last line, the JSON report.
"""

import os

from keras_resnet import cli, lock, run_folder
from keras_resnet.export import convert

DEFAULT_FORMATS = "saved_model,tflite,tflite-fp16,tflite-dynamic,tflite-int8"


def build_parser():
    parser = cli.ArgumentParser(
        prog="python -m keras_resnet.export",
        description="Export a trained run to SavedModel and TFLite, and evaluate each format.")
    parser.add_argument("run_dir", help="training run folder with model.keras and config.json, "
                                        "or a shipped model's name (python -m "
                                        "keras_resnet.pretrained lists them)")
    parser.add_argument("--output", default=None,
                        help="export folder (default RUN_DIR/export; needed for a shipped model)")
    parser.add_argument("--formats", default=DEFAULT_FORMATS,
                        help=f"comma-separated, among {','.join(convert.FORMATS)} "
                             f"(default {DEFAULT_FORMATS}); keras is always evaluated")
    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", help="data set folder (default: the run's data_dir)")
    data.add_argument("--calibration-samples", type=int,
                      default=convert.DEFAULT_CALIBRATION_SAMPLES,
                      help="training images to calibrate int8 on (default 500)")
    data.add_argument("--test-samples", type=int, default=None,
                      help="evaluate on the first N test images only (default: all)")
    data.add_argument("--skip-eval", action="store_true",
                      help="write the formats without evaluating them")
    parser.add_argument("--latency-runs", type=int, default=100,
                        help="timed single-image calls per format and thread count; 0 skips")
    return parser


def _load_data(run_config, data_dir, formats):
    if "tflm" in formats:
        formats = (*formats, "tflite-int8")  # tflm is the int8 model, calibrated the same
    try:
        from keras_resnet.data import load_data

        # The run's own split and seed, so int8 calibrates on its training images only.
        return load_data(**run_folder.data_arguments(run_config, data_dir))
    except Exception as error:  # noqa: BLE001 - any failure here is "no data", said once.
        need = ("tflite-int8 needs training images to calibrate on"
                if "tflite-int8" in formats else "evaluation needs the test set")
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"{need}, and the data set could not be loaded ({reason}); pass "
                         f"--data-dir{'' if 'tflite-int8' in formats else ' or --skip-eval'}. "
                         f"Received: data_dir={data_dir!r}") from None


def main(argv=None):
    args = build_parser().parse_args(argv)
    formats = convert.check_formats(args.formats)
    for flag, value, minimum in (("calibration_samples", args.calibration_samples, 1),
                                 ("latency_runs", args.latency_runs, 0),
                                 ("test_samples", args.test_samples or 1, 1)):
        if value < minimum:
            raise ValueError(f"--{flag.replace('_', '-')} must be at least {minimum}. "
                             f"Received: {flag}={value}")
    from keras_resnet import pretrained

    shipped = not os.path.exists(args.run_dir) and args.run_dir in pretrained.shipped_names()
    if shipped:
        args.run_dir = pretrained.pretrained_folder(args.run_dir)
        if args.output is None:
            raise ValueError("A shipped model is exported into a folder of yours: pass "
                             "--output DIR. Received: output=None")
    output = args.output or os.path.join(args.run_dir, run_folder.EXPORT)
    model_path, run_config = run_folder.read_finished_run(args.run_dir)
    from keras_resnet.export.exporter import export_names
    from keras_resnet.export.manifest import check_export_folder

    check_export_folder(output, export_names(formats))
    data_config = run_config.get("data") or {}
    data_dir = args.data_dir or data_config.get("data_dir")
    # A folder or an archive (.tar.gz of CIFAR-10 or of an image folder), as training reads.
    if data_dir is not None and not os.path.exists(data_dir):
        raise ValueError(f"The data set does not exist: expected a folder or an archive. "
                         f"Received: data_dir={data_dir!r}")

    # Training or another export writing this run at the same time would mix two runs.
    # A shipped model's folder is read-only package data: its export writes only --output.
    took = not shipped and lock.acquire_lock(args.run_dir)
    if took:
        from keras_resnet.files import remove_litter

        remove_litter(args.run_dir)  # a killed export's build folder
    try:
        return _export(args, formats, model_path, run_config, data_config, data_dir, output)
    finally:
        if took:
            lock.release_lock(args.run_dir)


def _export(args, formats, model_path, run_config, data_config, data_dir, output):
    from keras_resnet.quiet import import_keras

    import_keras()
    from keras_resnet.export.exporter import export_model
    from keras_resnet.export.runtime import load_keras_model

    splits = None
    if {"tflite-int8", "tflm"} & set(formats) or not args.skip_eval:
        splits = _load_data(run_config, data_dir, formats)
    test_images = test_labels = None
    if splits is not None and not args.skip_eval:
        test_images, test_labels = splits.x_test, splits.y_test
        if args.test_samples:
            test_images, test_labels = (test_images[:args.test_samples],
                                        test_labels[:args.test_samples])
    class_names = (list(splits.class_names) if splits is not None
                   else data_config.get("class_names"))
    model = load_keras_model(model_path)
    report = export_model(
        model, output, formats,
        calibration_images=None if splits is None else splits.x_train,
        test_images=test_images, test_labels=test_labels, class_names=class_names,
        source_config=run_config or None, calibration_samples=args.calibration_samples,
        latency_runs=args.latency_runs if not args.skip_eval else 0)
    with open(os.path.join(output, "report.md")) as file:
        print(file.read())
    cli.print_json_line(report)
    return 0


if __name__ == "__main__":
    cli.run_command(main)
