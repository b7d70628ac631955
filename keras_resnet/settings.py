"""How a run's settings resolve: the variant and its paper's recipe, a config file, flags.

Later wins: a variant's architecture and recipe, then `--config FILE` (JSON or YAML, with
`variant`, `model`, `train`, `data` sections, e.g. the tuner's `best_config.json`), then
the flags given. On `--resume` the run's own `config.json` is the file, and flags may
change the recipe but not the network the checkpoint holds.
"""

import dataclasses
import json
import os

from keras_resnet import cli, limits, run_folder
from keras_resnet.config import ResNetConfig
from keras_resnet.training import TrainConfig
from keras_resnet.variants import get_recipe, get_variant

def resolve_architecture(variant, overrides):
    """Resolves `--variant` and the architecture flags into a name and a config.

    A variant's fields are overridden by the flags. Without `--variant`, a command line
    that gives `--blocks` or `--channels` describes a new network: it starts from the
    plain family (`ResNetConfig` defaults: no SE, ReLU) and is called `custom`, rather
    than silently inheriting the default variant's SE; otherwise the default is
    `efficient`.

    Returns:
        A `(name, ResNetConfig)` tuple.
    """
    if variant is None and ("blocks" in overrides or "channels" in overrides):
        return "custom", ResNetConfig(**overrides)
    variant = variant or "efficient"
    return variant, get_variant(variant, **overrides)


CONFIG_SECTIONS = {"variant": str, "model": dict, "train": dict, "data": dict,
                   "resumes": list}


def read_config_file(path):
    """Reads a JSON or YAML run configuration into a dict of checked sections.

    Raises:
        ValueError: if the file is missing, cannot be parsed, or its sections are not
            those of a run (`variant`, `model`, `train`, `data`, `resumes`).
    """
    text = limits.read_settings_text(path, "config")
    try:
        if path.endswith((".yaml", ".yml")):
            values = _load_yaml(text)
        else:
            values = json.loads(text)
        limits.count_values(values)
    except Exception as error:  # noqa: BLE001 - any read or parse error is the user's file
        reason = cli.one_line(error)[:300]
        raise ValueError(f"--config {path} could not be parsed: {reason}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f"--config {path} must be a mapping with sections variant, model, "
                         f"train, data. Received: {type(values).__name__}")
    unknown = sorted(str(key) for key in set(values) - set(CONFIG_SECTIONS))
    if unknown:
        raise ValueError(f"--config {path} must be a mapping with sections variant, model, "
                         f"train, data. Received: {unknown}")
    for section, kind in CONFIG_SECTIONS.items():
        if section in values and not isinstance(values[section], kind):
            raise ValueError(f"--config {path}: section `{section}` must be a "
                             f"{'string' if kind is str else 'mapping' if kind is dict else 'list'}"
                             f". Received: {section}={values[section]!r}"[:300])
    for key, value in values.get("data", {}).items():
        if key in ("dataset", "data_dir") and value is not None and not isinstance(value, str):
            raise ValueError(f"--config {path}: `data.{key}` must be a string. "
                             f"Received: {key}={value!r}")
    return values


def _load_yaml(text):
    import yaml

    # Aliases make a 400-byte file build gigabytes: its size is counted on the parsed
    # nodes, aliases expanded, before any Python value is made.
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        stack, count = [node], 0
        while stack:
            item = stack.pop()
            count += 1
            if count > limits.MAX_CONFIG_VALUES:
                raise ValueError(f"its aliases expand to over {limits.MAX_CONFIG_VALUES:,} "
                                 "values; a run's settings are a few dozen")
            if isinstance(item, yaml.SequenceNode):
                stack.extend(item.value)
            elif isinstance(item, yaml.MappingNode):
                stack.extend(child for pair in item.value for child in pair)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def check_resume_architecture(args, file, overrides):
    """Refuses a resume whose flags change the network the checkpoint holds."""
    if args.variant is not None and args.variant != file.get("variant"):
        raise ValueError(f"The run in {args.output} is a {file.get('variant')!r} network; its "
                         "checkpoint cannot continue as another variant. Drop --variant or "
                         f"start a new --output. Received: variant={args.variant!r}")
    saved = ResNetConfig.from_dict(file.get("model", {}))
    changed = sorted(field for field, value in overrides.items()
                     if getattr(saved, field) != getattr(
                         ResNetConfig.from_dict({**saved.to_dict(), field: value}), field))
    if changed:
        raise ValueError(f"The architecture of a run cannot change on --resume "
                         f"({', '.join(changed)} differ from the run's); start a new --output. "
                         f"Received: {', '.join(f'{n}={overrides[n]!r}' for n in changed)}")


# Resumed, these would change what a checkpoint's step counter means or what data it saw:
# the schedule's position is counted in optimizer steps of the recorded batch, and the
# seed and validation split draw which images are trained on, so a new draw would put
# trained images into validation.
RESUME_FIXED = {"batch_size": "the schedule's position is counted in steps of the old batch",
                "steps_per_epoch": "the schedule's position is counted in the old epochs",
                "val_split": "a new split would validate on images already trained on",
                "seed": "a new split would validate on images already trained on"}


def check_resume_data(file, train_overrides):
    """Refuses a resume whose flags change the batch, epoch length, split or seed."""
    recorded = file.get("train") or {}
    for name, reason in RESUME_FIXED.items():
        if name in train_overrides and name in recorded and \
                train_overrides[name] != recorded[name]:
            raise ValueError(f"--resume cannot change {name} ({reason}); resume without it "
                             f"(the run's is {recorded[name]!r}) or start a new --output. "
                             f"Received: {name}={train_overrides[name]!r}")


def resolve_settings(args):
    """Resolves train.py's parsed flags, `--config` and `--resume` into one run's settings.

    Args:
        args: `argparse.Namespace` of `train.build_parser()`.

    Returns:
        `(variant, ResNetConfig, TrainConfig, data)`, `data` being where the images come
        from: `{"dataset", "data_dir"}`.

    Raises:
        ValueError: for a config file or flags that do not make a valid run.
    """
    if args.resume:
        if not args.output:
            raise ValueError("--resume needs --output naming the run folder to continue.")
        if args.recipe != "paper":
            raise ValueError("--resume continues the run's own recipe (its config.json); "
                             "give changes as flags. Received: recipe="
                             f"{args.recipe!r}")
        if args.config:
            raise ValueError("--resume continues from the run's own config.json; give "
                             "changes as flags, not --config. Received: config="
                             f"{args.config!r}")
        args.config = os.path.join(args.output, run_folder.CONFIG_FILE)
        if not os.path.exists(args.config):
            raise ValueError(f"Nothing to resume: {args.config} does not exist.")
    file = read_config_file(args.config) if args.config else {}
    overrides = cli.config_overrides(args, ResNetConfig)
    if args.resume:
        check_resume_architecture(args, file, overrides)
        check_resume_data(file, cli.config_overrides(args, TrainConfig))
    variant = args.variant or file.get("variant")
    if "model" in file:
        base = ResNetConfig.from_dict(file["model"])
        model_config = dataclasses.replace(base, **overrides)
        variant = variant or "custom"
    else:
        variant, model_config = resolve_architecture(variant, overrides)
    # On resume config.json holds the run's effective recipe: the recipe flag is not reapplied.
    train_values = {} if args.resume else get_recipe(variant, args.recipe).to_dict()
    train_values.update(file.get("train", {}))
    train_values.update(cli.config_overrides(args, TrainConfig))
    train_config = TrainConfig.from_dict(train_values)
    data = dict(file.get("data", {}))
    for name in ("dataset", "data_dir"):
        if getattr(args, name) is not None:
            data[name] = getattr(args, name)
    data.setdefault("dataset", "cifar10")
    data.setdefault("data_dir", None)
    # Only where the data comes from is an input; the rest is recorded from the data.
    data = {"dataset": data["dataset"], "data_dir": data["data_dir"]}
    return variant, model_config, train_config, data
