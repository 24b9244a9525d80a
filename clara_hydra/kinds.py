"""The kinds of value a param or component arg takes (``bool``, ``int``, ``float``, ``str``,
``list``, ``dict``, ``none``), and whether a value fits them. Pure: the one rule that typing a
converted config, checking a composed one and checking a sweep's values share."""

from __future__ import annotations

import re
from typing import Any

#: A set of kinds; ``None`` in its place means untyped (anything goes).
Kinds = frozenset

_WORDS = {"bool": "a boolean", "int": "an integer", "float": "a number", "str": "a string",
          "list": "a list", "dict": "a mapping", "none": "null"}
_ORDER = ("bool", "int", "float", "str", "list", "dict", "none")
_INTERPOLATION = re.compile(r"\$\{")


def kind_of(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "other"


def is_code(value: Any) -> bool:
    """A value Clara evaluates or that names another value: ``"@obj"``, ``"#expr"``, a lambda,
    an interpolation (``${...}``, from ``{name}``, aliases, apply and refs) or ``"{name}"``.
    Such a value stays untyped: what it gives is known only when it is built."""
    if not isinstance(value, str):
        return False
    s = value.lstrip()
    return s.startswith(("@", "#", "lambda")) or bool(_INTERPOLATION.search(value)) or \
        (s.startswith("{") and s.endswith("}"))


def is_interpolation(value: Any) -> bool:
    """An OmegaConf interpolation (``${...}``): its value is typed when it is resolved."""
    return isinstance(value, str) and bool(_INTERPOLATION.search(value))


def fits(kinds: Kinds | None, value: Any) -> bool:
    if kinds is None or is_code(value):
        return True
    k = kind_of(value)
    if k in kinds:
        return True
    return k == "int" and "float" in kinds  # an integer is a number


def describe(kinds: Kinds | None) -> str:
    """``"an integer"``, ``"a number, a list or null"``..."""
    if kinds is None:
        return "anything"
    words = [_WORDS[k] for k in _ORDER if k in kinds and not (k == "int" and "float" in kinds)]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
