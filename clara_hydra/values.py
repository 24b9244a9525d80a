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
