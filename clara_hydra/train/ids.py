"""MONAI bundle ids, references and expressions, spelled with ``monai.bundle``'s own constants
(the separator is ``::`` in MONAI 1.6; a legacy ``#`` in an id is read as one)."""

from __future__ import annotations

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
    macro, reference, or an id with a separator, legacy ``@#``/``%#`` included)."""
    return (text[:1] in SPECIAL_PREFIXES or ID_SEP_KEY in text
            or f"{ID_REF_KEY}#" in text or f"{MACRO_KEY}#" in text)
