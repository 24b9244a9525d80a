"""MONAI bundle ids, references and expressions, spelled with ``monai.bundle``'s own constants
(the separator is ``::`` in MONAI 1.6; a legacy ``#`` in an id is read as one)."""

from __future__ import annotations

import json
from typing import Any

from monai.bundle.config_item import ConfigComponent
from monai.bundle.reference_resolver import ReferenceResolver
from monai.bundle.utils import EXPR_KEY, ID_REF_KEY, ID_SEP_KEY, MACRO_KEY

#: First characters that make MONAI's ConfigParser read a string as code, a reference or a macro.
SPECIAL_PREFIXES = (EXPR_KEY, ID_REF_KEY, MACRO_KEY)


def item_id(*parts: str | int) -> str:
    """``item_id("train", "model")`` -> ``train::model``."""
    return ID_SEP_KEY.join(str(p) for p in parts)


def ref(*parts: str | int) -> str:
    """A reference to the item: ``ref("train", "model")`` -> ``@train::model``."""
    return ID_REF_KEY + item_id(*parts)


def expr(code: str) -> str:
    """A MONAI expression: ``expr("torch.device('cpu')")`` -> ``$torch.device('cpu')``."""
    return EXPR_KEY + code


def split_id(item: str) -> list[str]:
    """An id's parts (``train::pre_transforms::transforms::3``, or the legacy ``#`` form)."""
    return ReferenceResolver.split_id(item)


def looks_special(text: str) -> bool:
    """Would MONAI's ConfigParser read this plain string as anything but the string? (code,
    macro, reference, or an id with a separator, a legacy ``#`` included: MONAI rewrites any ``#`` of a
    string as ``::``)."""
    return text[:1] in SPECIAL_PREFIXES or ID_SEP_KEY in text or "#" in text  # (MONAI reads a legacy "#" as "::")


def special_key(key: Any) -> bool:
    """Would MONAI's ConfigParser read a dict with this key as anything but data? (``_target_``
    and the other keys of a component, or an id separator that breaks the dict's item ids)."""
    return not isinstance(key, str) or key in ConfigComponent.non_arg_keys or ID_SEP_KEY in key or "#" in key


def data(value: Any) -> str:
    """A JSON value as an expression that gives back exactly that value, never built, never
    referenced: a dict of Clara's args that holds a key MONAI would read (``{"_target_": ...}``
    is data in Clara, not an object to build)."""
    text = json.dumps(value, ensure_ascii=True, allow_nan=False)
    return expr(f"__import__('json').loads(bytes.fromhex('{text.encode('utf-8').hex()}').decode('utf-8'))")
