"""From a resolved tree to the effective Clara-level config.

Shared by ``clara-hydra resolve`` and ``train.py``: every ``disabled`` becomes a boolean,
each alternatives slot is checked to end with exactly one enabled member, and with
``enabled_only`` disabled components are dropped and each alternatives list becomes its
one enabled member. Pure: no Hydra, no torch.
"""

from __future__ import annotations

from typing import Any

from . import tree as T
from .errors import AlternativesError, ClaraHydraError
from .paths import Loc, clara
from .values import as_bool

META_KEY = "clara_hydra"


def strip_meta(tree: dict, meta: dict | None) -> dict:
    """Drop the keys that exist only for Hydra (aliases, environment keys, labels)."""
    drop = set((meta or {}).get("drop", []))
    return {k: v for k, v in tree.items() if k not in drop and k != META_KEY and k != "hydra"}


def to_bool(value: Any, loc: Loc) -> bool:
    flag = as_bool(value)
    if flag is not None:
        return flag
    raise ClaraHydraError(f"'disabled' must be a boolean, got {value!r}", location=clara(loc),
                          hint="write true/false, or \"{name}\" naming a boolean first-level param")


def effective(tree: dict, *, enabled_only: bool = False) -> dict:
    visits = list(T.walk(tree))
    for v in visits:
        if v.kind == "component" and "disabled" in v.node:
            v.node["disabled"] = to_bool(v.node["disabled"], v.loc + ("disabled",))
    for v in visits:
        if v.kind == "alternatives":
            check_alternatives(v.loc, v.node)
    if enabled_only:
        tree = _prune(tree)
    return tree


def is_enabled(node: Any) -> bool:
    return not (T.is_component(node) and node.get("disabled", False) is True)


def check_alternatives(loc: Loc, members: list) -> None:
    enabled = [m for m in members if is_enabled(m)]
    if len(enabled) == 1:
        return
    listing = ", ".join(f"[{i}] {T.class_name(m) if T.is_component(m) else m}"
                        f" disabled={str(m.get('disabled', False)).lower()}"
                        for i, m in enumerate(members))
    raise AlternativesError(
        f"exactly one of the {len(members)} alternatives must be enabled, {len(enabled)} "
        f"{'is' if len(enabled) == 1 else 'are'}: {listing}", location=clara(loc),
        hint="set the tags (or @disabled) so that one and only one member is enabled")


def _prune(node: Any, key: str | None = None) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if isinstance(k, str) and k.startswith("_"):
                out[k] = v
                continue
            if T.is_component(v) and not is_enabled(v) and k != "args":
                continue
            out[k] = _prune(v, k)
        return out
    if isinstance(node, list):
        members = [_prune(m) for m in node if is_enabled(m)]
        if key in T.SINGULAR_SLOTS and node and all(T.is_member(m) for m in node):
            return members[0]
        return members
    return node


def enabled_only(tree: dict) -> dict:
    """Disabled components dropped, each alternatives list its one enabled member (of an
    effective tree whose alternatives were already checked)."""
    return _prune(tree)


__all__ = ["effective", "strip_meta", "enabled_only", "check_alternatives"]
