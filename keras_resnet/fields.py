"""Type checks of config fields, so a value of the wrong type fails in one line naming its field.

Configs come from YAML and JSON files as much as from code, and YAML 1.1 reads `1e-3` as
the string `"1e-3"`: numbers written as strings are read as numbers; anything else of the
wrong type (`epochs: 1.5`, `lookahead: "yes"`, `blocks: [1, "x"]`) is refused.
"""

import math
import numbers
import types


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

    Handles `int`, `float`, `bool`, `str` and their `| None` forms; other annotations
    (tuples, checked by the config itself) are left alone.

    Raises:
        ValueError: naming the first field of the wrong type.
    """
    import dataclasses

    for field in dataclasses.fields(config):
        kind, optional = field.type, False
        if isinstance(kind, types.UnionType):
            members = [k for k in kind.__args__ if k is not type(None)]
            optional = len(members) < len(kind.__args__)
            kind = members[0] if len(members) == 1 else None
        if kind not in (int, float, bool, str):
            continue
        value = getattr(config, field.name)
        if value is None and optional:
            continue
        object.__setattr__(config, field.name, check_value(field.name, value, kind))


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
