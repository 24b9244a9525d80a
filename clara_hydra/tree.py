"""Walking a Clara config tree: where the components, refs and alternatives are.

The same walker serves the reader (on the JSON as written) and ``resolve`` (on the
effective tree after Hydra composed it), so both agree on what a component is.
Pure: no Hydra, no torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .paths import Loc

#: Slots that take one component; a list there is a list of alternatives.
SINGULAR_SLOTS = frozenset({
    "model", "loss", "optimizer", "lr_policy", "lr_scheduler", "inferer", "dataset",
    "dataloader", "image_pipeline", "trainer", "evaluator",
})
#: Top-level keys that are always sections, never first-level params.
SECTIONS = frozenset({"train", "validate"})
#: Top-level keys with a meaning of their own (not params, not sections).
TOP_SEARCH_KEYS = frozenset({"search", "lr_search"})
#: A component's keys that search (its own search list, an apply block).
SEARCH_KEYS = frozenset({"search", "apply"})


def is_component(node: Any) -> bool:
    return isinstance(node, dict) and (
        isinstance(node.get("name"), str) or isinstance(node.get("path"), str))


def is_ref(node: Any) -> bool:
    return isinstance(node, dict) and "ref" in node and not is_component(node)


def is_member(node: Any) -> bool:
    return is_component(node) or is_ref(node)


def class_name(comp: dict) -> str:
    """The class a component names, without ``#alias`` (``path`` wins over ``name``)."""
    if isinstance(comp.get("path"), str):
        return comp["path"].split("#", 1)[0].rsplit(".", 1)[-1]
    return str(comp.get("name", "")).split("#", 1)[0]


def validation_metric_names(validate: Any) -> set[str]:
    """The names a run's validation metrics go by (what ``hydra.sweeper.objectives`` may name):
    each metric's ``log_label`` (v4), else its ``args.name`` (v3), else its class, in every era's
    slots (``metrics``; ``key_metric`` and ``additional_metrics``). A v3 section without metrics
    validates with the mean Dice as ``val_mean_dice``."""
    if not isinstance(validate, dict):
        return set()
    comps: list = []
    for slot in ("metrics", "key_metric", "additional_metrics"):
        value = validate.get(slot)
        comps += value if isinstance(value, list) else [value] if value is not None else []
    names = {"val_mean_dice"} if not comps else set()
    for comp in comps:
        if is_component(comp):
            args = comp.get("args") if isinstance(comp.get("args"), dict) else {}
            names.add(str(comp.get("log_label") or args.get("name") or class_name(comp)))
    return names


def component_alias(comp: dict) -> str | None:
    name = comp.get("name")
    if isinstance(name, str) and "#" in name:
        return name.split("#", 1)[1]
    return None


def contains_component(node: Any) -> bool:
    if is_member(node):
        return True
    if isinstance(node, dict):
        return any(contains_component(v) for k, v in node.items()
                   if not (isinstance(k, str) and k.startswith("_")))
    if isinstance(node, list):
        return any(contains_component(v) for v in node)
    return False


@dataclass
class Visit:
    kind: str  # "component", "ref", "alternatives", "container"
    loc: Loc
    node: Any
    key: str | None  # the dict key this node sits under (None for list members)


def _args_child_is_components(value: Any) -> bool:
    """Inside ``args`` only clear component shapes are components (args may hold ``name``)."""
    if isinstance(value, list):
        return bool(value) and all(is_member(v) for v in value)
    return is_component(value) and any(k in value for k in ("args", "search", "apply", "disabled"))


def walk(tree: dict, *, top_level: bool = True) -> Iterator[Visit]:
    """Yield every component, ref, alternatives list and container, in document order."""
    for key, value in tree.items():
        if top_level and key in TOP_SEARCH_KEYS:
            continue
        if isinstance(key, str) and key.startswith("_"):
            continue
        yield from walk_node(value, (key,), key)


def walk_node(node: Any, loc: Loc, key: str | None) -> Iterator[Visit]:
    """:func:`walk` from one node, at ``loc`` (under ``key``)."""
    if isinstance(node, dict):
        if is_ref(node):
            yield Visit("ref", loc, node, key)
        elif is_component(node):
            yield Visit("component", loc, node, key)
            args = node.get("args")
            if isinstance(args, dict):
                for ak, av in args.items():
                    if isinstance(ak, str) and ak.startswith("_"):
                        continue
                    if _args_child_is_components(av):
                        yield from walk_node(av, loc + ("args", ak), ak)
        else:
            yield Visit("container", loc, node, key)
            for k, v in node.items():
                if isinstance(k, str) and k.startswith("_"):
                    continue
                yield from walk_node(v, loc + (k,), k)
    elif isinstance(node, list):
        if key in SINGULAR_SLOTS and node and all(is_member(m) for m in node):
            yield Visit("alternatives", loc, node, key)
        for i, member in enumerate(node):
            if isinstance(member, (dict, list)):
                yield from walk_node(member, loc + (i,), None)
