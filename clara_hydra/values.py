"""How Clara reads a value as a boolean: one rule for every place that needs one (``disabled``,
``@disabled`` search options, well-known boolean params such as ``use_amp``)."""

from __future__ import annotations

import re
from typing import Any

_NAME_REF = re.compile(r"\{\w+\}")

#: Clara's first-level boolean keys that only an evaluation config (config_validation.json) has:
#: ``validate`` and ``infer`` take them on the command line, where no training config types them.
#: (The training config's booleans are :data:`clara_hydra.schema.WELL_KNOWN`'s.)
EVALUATION_BOOLEANS = frozenset({"dont_load_ts_model"})


def as_bool(value: Any) -> bool | None:
    """``true``/``false``, the numbers 0 and 1, and the strings "true"/"false" (any case, spaces
    around) are booleans; anything else is None (not a boolean)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return text == "true"
    return None


def is_name_ref(value: Any) -> bool:
    """A ``"{name}"`` string: the value of a first-level param or environment key, known later."""
    return isinstance(value, str) and bool(_NAME_REF.fullmatch(value))


#: Marks a value of an environment.json key while OmegaConf resolves the config, so that every
#: string built from it (``"{X}"``, ``"{X}/sub"``) is known as data afterwards
DATA_MARK = "\ue000"


class Data(str):
    """A string that holds a value of environment.json: data, never code, whatever it looks like
    (``"#expr"``, ``"lambda x: x"``, ``"@model"``); the config itself is where code is written."""

    __slots__ = ()


def runs_as_code(text: Any) -> bool:
    """Would training read this string as code (Clara's ``#expr``, ``lambda``, ``@name``)?"""
    return isinstance(text, str) and (text.startswith("#") or text.lstrip().startswith("lambda")
                                      or re.fullmatch(r"@\w+", text) is not None)


def unmark(node: Any) -> Any:
    """``node`` with every string that holds :data:`DATA_MARK` made :class:`Data` (mark removed)."""
    if isinstance(node, dict):
        return {k: unmark(v) for k, v in node.items()}
    if isinstance(node, list):
        return [unmark(v) for v in node]
    if isinstance(node, str) and DATA_MARK in node:
        return Data(node.replace(DATA_MARK, ""))
    return node


_DATA_TAG = "__clara_data__"


def to_json(node: Any) -> Any:
    """``node`` as JSON keeps it: a :class:`Data` string as ``{"__clara_data__": text}``."""
    if isinstance(node, dict):
        return {k: to_json(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_json(v) for v in node]
    return {_DATA_TAG: str(node)} if isinstance(node, Data) else node


def from_json(node: Any) -> Any:
    """The inverse of :func:`to_json`."""
    if isinstance(node, dict):
        if len(node) == 1 and isinstance(node.get(_DATA_TAG), str):
            return Data(node[_DATA_TAG])
        return {k: from_json(v) for k, v in node.items()}
    if isinstance(node, list):
        return [from_json(v) for v in node]
    return node
