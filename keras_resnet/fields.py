"""Config fields: their type checks, and the metadata that makes each one a command-line flag.

Configs come from YAML and JSON files as much as from code, and YAML 1.1 reads `1e-3` as
the string `"1e-3"`: numbers written as strings are read as numbers; anything else of the
wrong type (`epochs: 1.5`, `lookahead: "yes"`, `blocks: [1, "x"]`) is refused.

`ConfigDict` gives every config the same dict and JSON form.

A field declared with `option` carries its help text, its choices and, for a tuple, the
type of its items; `keras_resnet.cli.add_config_arguments` turns those into flags, so a
field is documented and checked in one place and every command offers it the same way.
"""

import dataclasses
import json
import math
import numbers
import types


def option(default, help, *, choices=None, item=None, flag=None):
    """A dataclass field that is also a command-line flag.

    Args:
        default: the field's default.
        help: str. One line for `--help`.
        choices: tuple or None. The allowed values, checked by `check_fields` and by the
            flag. Defaults to `None`.
        item: type or None. For a tuple field, the type of its comma-separated items on
            the command line. Defaults to `None` (`str`).
        flag: str or None. The flag's name when it is not the field's (without `--`).
            Defaults to `None`.

    Returns:
        A `dataclasses.Field`.
    """
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": choices, "item": item, "flag": flag})


def field_kind(field):
    """Returns `(kind, optional)`: the field's plain type and whether it may be None."""
    kind, optional = field.type, False
    if isinstance(kind, types.UnionType):
        members = [k for k in kind.__args__ if k is not type(None)]
        optional = len(members) < len(kind.__args__)
        kind = members[0] if len(members) == 1 else None
    return kind, optional


def parse_text(field, text):
    """Converts a flag's text to the value of `field`: a number, a string, a tuple, None.

    Raises:
        ValueError: naming the field, if `text` is not of its type.

    Example:

    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class Example:
    ...     milestones: tuple = option((), "epochs", item=int)
    ...     pool_size: int | None = option(None, "kernel")
    >>> milestones, pool_size = dataclasses.fields(Example)
    >>> parse_text(milestones, "60,120"), parse_text(pool_size, "none")
    ((60, 120), None)
    >>> parse_text(pool_size, "2.5")
    Traceback (most recent call last):
    ...
    ValueError: `pool_size` must be an integer or none. Received: pool_size='2.5'
    """
    kind, optional = field_kind(field)
    if optional and text.strip().lower() == "none":
        return None
    if kind is tuple:
        item = field.metadata.get("item") or str
        try:
            return tuple(_from_text(field.name, part, item) for part in text.split(",")
                         if part.strip())
        except ValueError:
            raise ValueError(f"`{field.name}` must be {_describe(item)} or a comma-separated "
                             f"list of them. Received: {field.name}={text!r}") from None
    try:
        return _from_text(field.name, text, kind)
    except ValueError:
        if not optional:
            raise
        raise ValueError(f"`{field.name}` must be {_describe(kind)} or none. "
                         f"Received: {field.name}={text!r}") from None


def _from_text(name, text, kind):
    if kind is str:
        return text.strip()
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"`{name}` must be {_describe(kind)}. Received: {name}={text!r}") from None


def _describe(kind):
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string",
            tuple: "a list"}.get(kind, kind.__name__)


def check_value(name, value, kind):
    """Returns `value` as `kind` (int, float, bool or str), or raises naming the field.

    Floats accept integers and numeric strings (YAML's `1e-3`); integers accept floats
    with no fraction (`10.0`); neither accepts booleans, and non-finite numbers are refused.

    Raises:
        ValueError: if `value` is not of `kind`.

    Example:

    >>> check_value("learning_rate", "1e-3", float)
    0.001
    >>> check_value("epochs", 1.5, int)
    Traceback (most recent call last):
    ...
    ValueError: `epochs` must be an integer. Received: epochs=1.5
    """
    if kind in (int, float):
        number = value
        if isinstance(value, str) and kind is float:
            try:
                number = float(value)
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, numbers.Real) or \
                not math.isfinite(number):
            expected = "a finite number" if kind is float else _describe(kind)
            raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
        if kind is float:
            return float(number)
        if not float(number).is_integer():
            raise ValueError(f"`{name}` must be an integer. Received: {name}={value!r}")
        return int(number)
    if not isinstance(value, kind):
        raise ValueError(f"`{name}` must be {_describe(kind)}. Received: {name}={value!r}")
    return value


def check_fields(config):
    """Checks and converts every field of a dataclass by its annotation, in place.

    Handles `int`, `float`, `bool`, `str` and their `| None` forms, and the `choices` of an
    `option`; other annotations (tuples, checked by the config itself) are left alone.

    Raises:
        ValueError: naming the first field of the wrong type or outside its choices.
    """
    for field in dataclasses.fields(config):
        kind, optional = field_kind(field)
        value = getattr(config, field.name)
        if kind not in (int, float, bool, str) or (value is None and optional):
            continue
        value = check_value(field.name, value, kind)
        choices = field.metadata.get("choices")
        if choices and value not in choices:
            raise ValueError(f"`{field.name}` must be one of {', '.join(map(str, choices))}. "
                             f"Received: {field.name}={value!r}")
        object.__setattr__(config, field.name, value)


def check_sequence(name, value, kind):
    """Returns `value` (a list, tuple or one item) as a tuple of `kind`.

    Raises:
        ValueError: if `value` is neither, or an item is not of `kind`.

    Example:

    >>> check_sequence("milestones", [60, 120.0], int)
    (60, 120)
    """
    items = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    try:
        return tuple(check_value(name, item, kind) for item in items)
    except ValueError:
        raise ValueError(f"`{name}` must be {_describe(kind)} or a list of them. "
                         f"Received: {name}={value!r}") from None


class ConfigDict:
    """The dict form every config dataclass shares: `to_dict`, `to_json` and `from_dict`.

    A config class inherits it and names what it describes in `config_name`, for messages.

    Example:

    >>> from keras_resnet.config import ResNetConfig
    >>> ResNetConfig.from_dict({"blocks": [1, 1], "channels": [8, 16]}).to_dict()["blocks"]
    [1, 1]
    """

    config_name = "configuration"

    def to_dict(self):
        """Returns the config as a JSON-safe dict (tuples become lists)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    def to_json(self):
        """Returns the config as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        """Builds the config from a dict (`to_dict()` output, a config file's section).

        Lists become tuples; unknown keys are refused rather than silently ignored.

        Raises:
            ValueError: if `values` is not a dict, has a key that is not a field, or a
                value of the wrong type.
        """
        if not isinstance(values, dict):
            raise ValueError(f"A {cls.config_name} configuration must be a mapping of field "
                             f"names to values. Received: {type(values).__name__}")
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(str(key) for key in set(values) - names)
        if unknown:
            raise ValueError(f"Unknown {cls.config_name} field(s) {', '.join(unknown)}; "
                             f"expected some of {', '.join(sorted(names))}. Received: {unknown}")
        return cls(**{key: tuple(value) if isinstance(value, list) else value
                      for key, value in values.items()})
