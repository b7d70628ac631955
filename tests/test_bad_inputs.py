"""Bad input, hostile or careless, against every command: exit 2, one line, nothing touched.

Each row of `CASES` sets up a workspace of the user's files, runs a command's `main` the way
its `__main__` does (`cli.run_main`), and checks that it exits with 2, writes exactly one
line to stderr that names the problem, shows no traceback, and leaves every file of the
workspace as it was, with nothing added (a failed start leaves no half-made run folder).
"""

import functools
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_resnet.cli import run_main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import train  # noqa: E402
from keras_resnet import predict  # noqa: E402
from keras_resnet.export import __main__ as export_main  # noqa: E402
from tuner import __main__ as tuner_main  # noqa: E402

TINY = ["--variant", "tiny", "--channels", "4,8,16", "--blocks", "1,1,1", "--batch-size", "8",
        "--precision", "float32", "--jit", "off", "--epochs", "1"]
TUNER_TINY = ["--variant", "tiny", "--max-trials", "1", "--epochs", "1", "--data-dir"]
COMMANDS = {"train": train.main, "predict": predict.main, "export": export_main.main,
            "tuner": tuner_main.main}


def write(path, content):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def png(path, size=(8, 8), mode="RGB", value=128):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode != "RGB" else (value, value, value)).save(path)
    return str(path)


def image_folder(root, extra=None, count=2):
    for split in ("train", "test"):
        for label, value in (("a", 40), ("b", 200)):
            for index in range(count):
                png(Path(root) / split / label / f"{index}.png", value=value)
    if extra:
        extra(Path(root))
    return str(root)


def tar_of(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def fake_run(root, config=None, files=None):
    """A run folder as training leaves it, without training: config.json and model.keras."""
    config = config if config is not None else json.dumps({
        "variant": "tiny", "model": {"blocks": [1, 1, 1], "channels": [4, 8, 16]},
        "train": {"optimizer": "adam", "learning_rate": 0.01, "epochs": 2},
        "data": {"dataset": "cifar10", "data_dir": None}})
    write(Path(root) / "config.json", config)
    for name, content in (files or {}).items():
        write(Path(root) / name, content)
    return str(root)


def live_lock(root):
    # The parent of this test process is alive for as long as the test runs.
    write(Path(root) / ".lock", json.dumps({"pid": os.getppid(), "host": os.uname().nodename}))


def space(tmp, entries):
    return write(Path(tmp) / "space.json", entries if isinstance(entries, str)
                 else json.dumps(entries))


# (id, command, setup(tmp) -> argv, what the one line must contain)
CASES = [
    # --config: types, YAML's quirks, shapes
    ("epochs-fraction", "train", lambda t: ["--config", write(t / "c.yaml", "train:\n  epochs: 1.5\n")],
     "`epochs` must be an integer. Received: epochs=1.5"),
    ("epochs-string", "train", lambda t: ["--config", write(t / "c.json", '{"train": {"epochs": "10"}}')],
     "`epochs` must be an integer"),
    ("lr-word", "train", lambda t: ["--config", write(t / "c.yaml", "train:\n  learning_rate: fast\n")],
     "`learning_rate` must be a finite number"),
    ("lr-infinite", "train", lambda t: ["--config", write(t / "c.yaml", "train:\n  learning_rate: .inf\n")],
     "`learning_rate` must be a finite number"),
    ("bool-as-word", "train", lambda t: ["--config", write(t / "c.json", '{"train": {"lookahead": "yes"}}')],
     "`lookahead` must be true or false"),
    ("augment-number", "train", lambda t: ["--config", write(t / "c.json", '{"train": {"augment": [1]}}')],
     "`augment` must be a string or a list"),
    ("blocks-word", "train", lambda t: ["--config", write(t / "c.json", '{"model": {"blocks": [1, "x"]}}')],
     "Received: blocks=(1, 'x')"),
    ("input-shape-string", "train",
     lambda t: ["--config", write(t / "c.json", '{"model": {"input_shape": [32, 32, "3"]}}')],
     "`input_shape` must be (height, width, channels)"),
    ("dropout-list", "train", lambda t: ["--config", write(t / "c.json", '{"model": {"dropout": [0.1]}}')],
     "`dropout` must be a finite number"),
    ("section-list", "train", lambda t: ["--config", write(t / "c.json", '{"train": [1, 2]}')],
     "section `train` must be a mapping"),
    ("config-list", "train", lambda t: ["--config", write(t / "c.yaml", "- 1\n- 2\n")],
     "must be a mapping with sections"),
    ("config-scalar", "train", lambda t: ["--config", write(t / "c.json", "5")],
     "must be a mapping with sections"),
    ("config-binary", "train", lambda t: ["--config", write(t / "c.json", b"\xff\xfe\x00garbage")],
     "could not be parsed"),
    ("config-unknown-section", "train", lambda t: ["--config", write(t / "c.json", '{"optimizer": "sgd"}')],
     "Received: ['optimizer']"),
    ("config-yaml-alias-bomb", "train", lambda t: ["--config", write(t / "c.yaml", alias_bomb())],
     "its aliases expand to over 100,000 values"),
    ("config-json-too-many-values", "train",
     lambda t: ["--config", write(t / "c.json", json.dumps({"train": {"milestones": [1] * 200_000}}))],
     "The settings hold over 100,000 values"),
    ("config-folder", "train", lambda t: ["--config", str(t)], "is a folder; expected a JSON"),
    ("config-device", "train", lambda t: ["--config", "/dev/zero"], "is not a regular file"),
    ("data-dir-number", "train", lambda t: ["--config", write(t / "c.json", '{"data": {"data_dir": 5}}')],
     "`data.data_dir` must be a string"),
    ("seed-negative", "train", lambda t: [*TINY, "--seed", "-1"], "`seed` must be 0 or more"),
    ("lr-nan-flag", "train", lambda t: [*TINY, "--learning-rate", "nan"],
     "`learning_rate` must be a finite number"),
    ("yaml-python-object", "train",
     lambda t: ["--config", write(t / "c.yaml", "train: !!python/object/apply:os.system [echo hi]\n")],
     "could not be parsed"),
    ("unknown-train-field", "train", lambda t: ["--config", write(t / "c.json", '{"train": {"lr": 1}}')],
     "Unknown training field(s) lr"),
    # --output: never a user's folder, never a file, never a folder another process holds
    ("output-user-folder", "train",
     lambda t: [*TINY, "--output", str(t / "docs"),
                "--data-dir", (write(t / "docs" / "model.keras", "my model"), image_folder(t / "d"))[1]],
     "is not empty and is not a run folder"),
    ("output-is-file", "train", lambda t: [*TINY, "--output", write(t / "notes.txt", "mine")],
     "--output must be a folder"),
    ("output-held", "train",
     lambda t: (fake_run(t / "run"), live_lock(t / "run"),
                ["--output", str(t / "run"), "--resume"])[-1],
     "is in use by process"),
    ("resume-other-variant", "train",
     lambda t: ["--output", fake_run(t / "run"), "--resume", "--variant", "efficient"],
     "cannot continue as another variant"),
    ("resume-other-blocks", "train",
     lambda t: ["--output", fake_run(t / "run"), "--resume", "--blocks", "2,2,2"],
     "The architecture of a run cannot change on --resume (blocks"),
    ("resume-with-config", "train",
     lambda t: ["--output", fake_run(t / "run"), "--resume", "--config", write(t / "c.json", "{}")],
     "--resume continues from the run's own config.json"),
    ("resume-other-recipe", "train",
     lambda t: ["--output", fake_run(t / "run"), "--resume", "--recipe", "fast"],
     "--resume continues the run's own recipe"),
    ("resume-config-not-object", "train",
     lambda t: ["--output", fake_run(t / "run", config="[1, 2]"), "--resume"],
     "must be a mapping with sections"),
    ("resume-new-batch-size", "train",
     lambda t: ["--output", fake_run(t / "run", config=json.dumps({
         "variant": "tiny", "model": {"blocks": [1, 1, 1], "channels": [4, 8, 16]},
         "train": {"batch_size": 100, "epochs": 2}, "data": {}})), "--resume", "--batch-size", "50"],
     "--resume cannot change batch_size (the schedule's position is counted in steps of the old"),
    ("resume-new-seed", "train",
     lambda t: ["--output", fake_run(t / "run", config=json.dumps({
         "variant": "tiny", "model": {"blocks": [1, 1, 1], "channels": [4, 8, 16]},
         "train": {"seed": 0, "epochs": 2}, "data": {}})), "--resume", "--seed", "1"],
     "--resume cannot change seed (a new split would validate on images already trained on)"),
    ("resume-nothing", "train", lambda t: [*TINY, "--output", str(t), "--resume"],
     "Nothing to resume"),
    ("export-over-user-file", "train",
     lambda t: ["--output", fake_run(t / "run", files={"export/model_int8.tflite": "mine"}),
                "--resume", "--export", "tflite-int8"],
     "model_int8.tflite was not written by an export"),
    # data: limits, corrupt files, modes
    ("limit-flag-zero", "train", lambda t: [*TINY, "--max-member-mb", "0"],
     "--max-member-mb must be positive"),
    ("archive-member-too-big", "train",
     lambda t: [*TINY, "--output", str(t / "run"), "--max-member-mb", "1", "--data-dir",
                tar_of(t / "d.tar.gz", {"train/a/big.png": bytes(2 << 20)})],
     "member train/a/big.png would inflate to 2 MB, over the limit of 1 MB"),
    ("archive-total-too-big", "train",
     lambda t: [*TINY, "--output", str(t / "run"), "--max-archive-mb", "1", "--data-dir",
                tar_of(t / "d.tar.gz", {f"train/a/{i}.png": bytes(600_000) for i in range(2)})],
     "its members together would inflate to 1 MB, over the limit of 1 MB"),
    ("image-too-many-pixels", "train",
     lambda t: [*TINY, "--output", str(t / "run"), "--max-image-pixels", "1000", "--data-dir",
                image_folder(t / "d", lambda r: png(r / "train" / "a" / "big.png", (100, 100)))],
     "has 100x100 pixels, over the limit of 1,000"),
    ("corrupt-image", "train",
     lambda t: [*TINY, "--output", str(t / "run"), "--data-dir",
                image_folder(t / "d", lambda r: write(r / "train" / "a" / "bad.png", b"\x89PNG\r\n"))],
     "Cannot decode image"),
    ("cifar-pickle-declares-huge-array", "train",
     lambda t: [*TINY, "--output", str(t / "run"), "--max-member-mb", "1", "--max-archive-mb", "1",
                "--data-dir", tar_of(t / "cifar-10-python.tar.gz", {
                    f"cifar-10-batches-py/{name}": huge_array_pickle()
                    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]})],
     "an array of shape (200000, 3072) (614,400,000 bytes) declared in"),
    ("data-dir-fifo", "train",
     lambda t: [*TINY, "--output", str(t / "run"), "--data-dir", fifo(t / "d.tar.gz")],
     "is neither a folder nor a regular file"),
    ("cifar-batch-fifo", "train",
     lambda t: ([fifo(t / "c" / n) for n in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]],
                [*TINY, "--output", str(t / "run"), "--data-dir", str(t / "c")])[-1],
     "data_batch_1 is not a regular file: expected a CIFAR-10 batch"),
    ("image-folder-empty-test", "train",
     lambda t: [*TINY, "--output", str(t / "run"), "--data-dir",
                image_folder(t / "d", lambda r: [p.unlink() for p in (r / "test").rglob("*.png")]
                             + [p.rmdir() for p in (r / "test").iterdir()])],
     "/test has no class folders"),
    ("data-dir-missing", "train", lambda t: [*TINY, "--output", str(t / "run"), "--data-dir", str(t / "nope")],
     "does not exist"),
    # predict: untrusted models and images
    ("predict-saved-model", "predict",
     lambda t: [(write(t / "sm" / "saved_model.pb", b"graph"), str(t / "sm"))[1], png(t / "x.png")],
     "--trust-saved-model"),
    ("predict-garbage-keras", "predict",
     lambda t: [write(t / "m.keras", b"PK\x03\x04 not a zip"), png(t / "x.png")],
     "Cannot load the Keras model safely"),
    ("predict-lambda-keras", "predict", lambda t: [lambda_model(t), png(t / "x.png")],
     "Cannot load the Keras model safely"),
    ("predict-flex-tflite", "predict", lambda t: [flex_tflite(t), png(t / "x.png")],
     "needs TensorFlow operators (FlexAsString, FlexWriteFile)"),
    ("predict-truncated-tflite", "predict",
     lambda t: [write(t / "m.tflite", conv_tflite()[:len(conv_tflite()) * 7 // 10]), png(t / "x.png")],
     "Not a valid TFLite model (truncated or corrupt"),
    ("predict-random-tflite", "predict",
     lambda t: [write(t / "m.tflite", np.random.default_rng(0).bytes(4096)), png(t / "x.png")],
     "lacks the TFL3 flatbuffer identifier"),
    ("predict-corrupt-image", "predict",
     lambda t: [plain_model(t), write(t / "x.png", b"\x89PNG\r\n\x1a\n truncated")],
     "Cannot decode image"),
    ("predict-huge-image", "predict",
     lambda t: [plain_model(t), png(t / "x.png", (200, 200)), "--max-image-pixels", "100"],
     "has 200x200 pixels, over the limit of 100"),
    ("predict-float-image", "predict",
     lambda t: [plain_model(t), float_tiff(t / "x.tiff")],
     "floating-point pixels (mode F)"),
    ("predict-binary-labels", "predict",
     lambda t: [plain_model(t), png(t / "x.png"), "--labels", write(t / "l.txt", b"\xff\xfe\x00")],
     "--labels must be a text file"),
    ("predict-top-k", "predict", lambda t: [plain_model(t), png(t / "x.png"), "--top-k", "0"],
     "--top-k must be positive. Received: top_k=0"),
    # export: run folders it must not damage
    ("export-config-not-object", "export",
     lambda t: [fake_run(t / "run", config="[1]", files={"model.keras": "m"})],
     "must hold a JSON object"),
    ("export-over-user-file", "export",
     lambda t: [fake_run(t / "run", files={"model.keras": "m", "export/report.md": "my notes"}),
                "--skip-eval", "--formats", "tflite"],
     "report.md was not written by an export"),
    ("export-held", "export",
     lambda t: [(fake_run(t / "run", files={"model.keras": "m"}), live_lock(t / "run"), str(t / "run"))[-1],
                "--skip-eval", "--formats", "tflite"],
     "is in use by process"),
    # tuner: space files and range flags
    ("space-step-zero", "tuner", lambda t: ["--space", space(t, {"blocks": {"min": 1, "max": 3, "step": 0}})],
     "`blocks`'s step must be positive"),
    ("space-unknown-key", "tuner", lambda t: ["--space", space(t, {"blocks": {"min": 1, "maxi": 3}})],
     "unknown key(s) maxi"),
    ("space-infinite", "tuner", lambda t: ["--space", space(t, '{"learning_rate": {"min": 0.001, "max": Infinity}}')],
     "Received: learning_rate="),
    ("space-nan", "tuner", lambda t: ["--space", space(t, '{"dropout": [0.1, NaN]}')],
     "Received: dropout="),
    ("space-absurd", "tuner", lambda t: ["--space", space(t, {"blocks": {"min": 1, "max": 1000000}})],
     "`blocks` must stay within [1, 64]"),
    ("space-unknown-dimension", "tuner", lambda t: ["--space", space(t, {"depth": True})],
     "names an unknown search dimension"),
    ("space-not-object", "tuner", lambda t: ["--space", space(t, "[1, 2]")],
     "must hold a JSON object"),
    ("tuner-output-user-folder", "tuner",
     lambda t: ["--output", (write(t / "mine" / "leaderboard.md", "my notes"), str(t / "mine"))[1]],
     "is not empty and holds no search"),
    ("tuner-overwrite-user-search-json", "tuner",
     lambda t: (write(t / "mine" / "search.json", '{"query": "cats"}'),
                write(t / "mine" / "search" / "notes.md", "my notes"),
                ["--output", str(t / "mine"), "--overwrite", *TUNER_TINY, image_folder(t / "d", count=10)])[-1],
     "search.json is not a search record written by the tuner"),
    ("tuner-output-user-search-folder", "tuner",
     lambda t: ["--output", (write(t / "mine" / "search" / "oracle.json", "{}"),
                             write(t / "mine" / "search" / "notes.md", "mine"), str(t / "mine"))[-1]],
     "search holds files a search does not write (notes.md)"),
    ("tuner-search-json-list", "tuner",
     lambda t: ["--output", (write(t / "s" / "search.json", "[1, 2]"), str(t / "s"))[1]],
     "search.json is not a search record written by the tuner"),
    ("tuner-output-held", "tuner",
     lambda t: (write(t / "s" / "search.json", json.dumps(dict.fromkeys(
         ("tuner", "variant", "space", "epochs", "data")))), live_lock(t / "s"),
                ["--output", str(t / "s"), *TUNER_TINY, image_folder(t / "d", count=10)])[-1],
     "is in use by process"),
    ("tuner-absurd-flag", "tuner", lambda t: ["--blocks", "1:1e6"], "`blocks` must stay within"),
    ("tuner-limit-zero", "tuner", lambda t: ["--max-archive-mb", "0"], "--max-archive-mb must be positive"),
]


def plain_model(tmp, name="plain.keras", lambda_layer=False):
    import keras

    path = tmp / name
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    if lambda_layer:
        # What a crafted file carries: a function to run at load time.
        x = keras.layers.Lambda(lambda v: v * 1.0)(x)
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(path)
    return str(path)


def lambda_model(tmp):
    return plain_model(tmp, "lambda.keras", lambda_layer=True)


def flex_tflite(tmp):
    """A TFLite file whose graph writes a file, through TensorFlow ("Flex") operators."""
    import tensorflow as tf

    target = str(tmp / "written-by-the-model.txt")

    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
        def __call__(self, x):
            tf.io.write_file(target, tf.strings.as_string(x[0, 0, 0, 0]))
            return tf.nn.softmax(tf.reduce_mean(x, axis=[1, 2])[:, :2])

    module = Writer()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.__call__.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    return write(tmp / "writer.tflite", converter.convert())


@functools.lru_cache(maxsize=1)
def conv_tflite():
    """A float TFLite model whose file, cut at 70%, crashes the interpreter unchecked (SIGSEGV)."""
    import keras
    import tensorflow as tf

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(256, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def huge_array_pickle():
    """A CIFAR batch of 200 bytes whose arrays numpy would allocate at 614 MB, uninitialized."""
    import pickle

    class Declared:
        def __init__(self, shape, dtype):
            self.shape, self.dtype = shape, dtype

        def __reduce__(self):
            return np.ndarray, (self.shape, self.dtype)

    return pickle.dumps({b"data": Declared((200_000, 3072), "u1"),
                         b"labels": Declared((200_000,), "i4")}, protocol=2)


def alias_bomb():
    """400 bytes of YAML whose aliases expand to 9**9 values (billion laughs)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\ntrain:\n  milestones: *a8\n"


def float_tiff(path):
    Image.fromarray(np.full((8, 8), 0.5, np.float32), "F").save(path)
    return str(path)


def fifo(path):
    """A named pipe: opening it to read blocks until someone writes."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return str(path)


def snapshot(root):
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            files[os.path.relpath(path, root)] = hashlib.sha256(
                Path(path).read_bytes()).hexdigest() if os.path.isfile(path) else "special"
        if not names and folder != str(root):
            files[os.path.relpath(folder, root) + "/"] = "dir"
    return files


@pytest.mark.parametrize("command, setup, message", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(tmp_path, monkeypatch, capsys,
                                                          command, setup, message):
    monkeypatch.chdir(tmp_path)  # a default output folder would land here, and be seen
    argv = setup(tmp_path)
    before = snapshot(tmp_path)
    capsys.readouterr()
    code = run_main(COMMANDS[command], argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert message in err, err
    assert snapshot(tmp_path) == before


def test_the_command_line_shows_one_line_and_debug_shows_the_traceback(tmp_path):
    config = write(tmp_path / "c.yaml", "train:\n  epochs: 1.5\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "train.py", "--config", config, "--dry-run"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: `epochs` must be an integer. Received: epochs=1.5")
    assert "Traceback" not in result.stderr
    with pytest.raises(ValueError, match="epochs"):
        run_main(train.main, ["--config", config, "--dry-run", "--debug"])


def test_yaml_1e_3_is_a_learning_rate_not_an_error(tmp_path, capsys):
    config = write(tmp_path / "c.yaml", "train:\n  learning_rate: 1e-3\n  epochs: 12\n")
    assert run_main(train.main, ["--variant", "tiny", "--config", config, "--dry-run"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["train"]["learning_rate"] == 0.001 and result["train"]["epochs"] == 12


@pytest.mark.parametrize("error, code, line", [
    (PermissionError(13, "Permission denied", "/read-only/run"), 2,
     "error: PermissionError: [Errno 13] Permission denied: '/read-only/run'"),
    (OSError(28, "No space left on device"), 2, "error: OSError: [Errno 28] No space left"),
    (RuntimeError("SaveV2 .../variables.data: No space left on device [Op:SaveV2]"), 2,
     "error: RuntimeError: SaveV2 .../variables.data: No space left on device [Op:SaveV2]"),
    (KeyError("weights"), 1, "error: KeyError: 'weights' (an internal error; rerun with --debug"),
    (KeyboardInterrupt(), 130, "error: interrupted"),
])
def test_run_main_turns_any_error_into_one_line(capsys, error, code, line):
    def main(argv):
        raise error

    assert run_main(main, []) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(line), err


def test_a_write_that_fails_leaves_the_previous_file_and_no_temporary(tmp_path):
    from keras_resnet.files import atomic_path, write_json

    path = tmp_path / "metrics.json"
    write_json(path, {"accuracy": 0.5})
    with pytest.raises(TypeError):
        with atomic_path(str(path)) as temporary:
            Path(temporary).write_text('{"accuracy": 0.')  # half written, then the writer fails
            raise TypeError("disk full")
    assert json.loads(path.read_text()) == {"accuracy": 0.5}
    assert os.listdir(tmp_path) == ["metrics.json"]
