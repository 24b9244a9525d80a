"""Locations inside a Clara config.

A location is a tuple of keys (str) and list indices (int). It is written two ways:
``train.pre_transforms[3].args.probability`` for people and error messages (``clara``),
and ``train.pre_transforms.3.args.probability`` for Hydra overrides and OmegaConf
interpolations (``dotted``).
"""

from __future__ import annotations

from typing import Any, Iterable, Tuple, Union

Loc = Tuple[Union[str, int], ...]


def clara(loc: Iterable[Union[str, int]]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "<top level>"


def dotted(loc: Iterable[Union[str, int]]) -> str:
    return ".".join(str(p) for p in loc)


def get(tree: Any, loc: Loc) -> Any:
    node = tree
    for part in loc:
        node = node[part]
    return node


def put(tree: Any, loc: Loc, value: Any) -> None:
    """Set ``value`` at ``loc``, creating dicts on the way (``args`` of a component)."""
    node = tree
    for part in loc[:-1]:
        if isinstance(node, dict) and part not in node:
            node[part] = {}
        node = node[part]
    node[loc[-1]] = value
