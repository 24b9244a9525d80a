"""Locations inside a Clara config.

A location is a tuple of keys (str) and list indices (int). It is written two ways:
``train.pre_transforms[3].args.probability`` for people and error messages (``clara``),
and ``train.pre_transforms.3.args.probability`` for Hydra overrides and OmegaConf
interpolations (``dotted``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

Loc = tuple[str | int, ...]


def clara(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "<top level>"


def dotted(loc: Iterable[str | int]) -> str:
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


def nodes(tree: Any) -> Iterator[tuple[Loc, Any]]:
    """Every node of a JSON-like tree with its location, in document order (the tree itself
    first, at ``()``), without recursion: deeply nested configs never hit Python's limit."""
    stack: list[tuple[Loc, Any]] = [((), tree)]
    while stack:
        loc, node = stack.pop()
        yield loc, node
        if isinstance(node, dict):
            stack.extend((loc + (k,), v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((loc + (i,), v) for i, v in reversed(list(enumerate(node))))
