"""The config as ``--cfg job`` and ``--help`` print it, with the place of each component of a list
written beside it (``- name: RandFlipd  # train.pre_transforms.9``), so that an override of one
of its args (``train.pre_transforms.9.args.prob=0.2``) is written without counting items.

Pure: reads the YAML text back with PyYAML (its line marks), adds comments, changes nothing else.
"""

from __future__ import annotations

from typing import Any


def with_indices(text: str) -> str:
    """``text`` (one YAML document, as OmegaConf writes it) with ``# <path>.<i>`` at the end of
    the first line of each mapping in a list; ``text`` unchanged where it does not read back."""
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader)
    except yaml.YAMLError:
        return text
    if root is None:
        return text
    lines = text.split("\n")
    notes: dict[int, str] = {}
    _walk(root, [], notes)
    for line_no, path in notes.items():
        if 0 <= line_no < len(lines) and "#" not in lines[line_no]:
            lines[line_no] += f"  # {path}"
    return "\n".join(lines)


def _walk(node: Any, path: list[str], notes: dict[int, str]) -> None:
    import yaml
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _walk(value, path + [str(key.value)], notes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            if isinstance(item, yaml.MappingNode) and item.value and _first_line_is_own(item):
                notes[item.start_mark.line] = ".".join(path + [str(i)])
            _walk(item, path + [str(i)], notes)


def _first_line_is_own(item: Any) -> bool:
    """Does the item's first key and value end on the line the item starts on (a comment there
    is outside any scalar)?"""
    key, value = item.value[0]
    import yaml
    if isinstance(value, yaml.ScalarNode):
        return value.end_mark.line == item.start_mark.line and value.style not in ("|", ">")
    return key.end_mark.line == item.start_mark.line
