"""How Clara reads a value as a boolean: one rule for every place that needs one (``disabled``,
``@disabled`` search options, well-known boolean params such as ``use_amp``)."""

from __future__ import annotations

import re
from typing import Any

_NAME_REF = re.compile(r"\{\w+\}")


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
