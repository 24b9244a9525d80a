"""OmegaConf's node internals that typing a converted config needs (:mod:`clara_hydra.typed`):
a child node as it is (not its value), a node's declared type, flags and place in the tree, and
replacing a child without a deep copy; and OmegaConf's own YAML loader (:mod:`clara_hydra.render`
writes strings that it reads back as strings)."""

from __future__ import annotations

from typing import Any

#: What this module reaches into, by owner: the upgrade test checks each is still there.
PRIVATE_NAMES: dict[str, tuple[str, ...]] = {
    "omegaconf.basecontainer.BaseContainer": ("_get_node", "_content"),
    "omegaconf.base.Node": ("_metadata", "_get_parent", "_key", "_get_root", "_is_optional", "_set_flag",
                            "_set_value"),
    "omegaconf.nodes.ValueNode": ("_value",),
    "omegaconf.base.Metadata": ("ref_type", "optional", "flags"),
    "omegaconf._yaml": ("get_yaml_loader",),
}


def child(node: Any, key: Any) -> Any:
    """The child node of a DictConfig or ListConfig under ``key`` (``_get_node``), not its value;
    raises what OmegaConf raises for a key it does not have."""
    return node._get_node(key)


def value(node: Any) -> Any:
    """A ValueNode's value as written (``_value``): an interpolation stays a string."""
    return node._value()


def declare(node: Any, ref_type: Any, optional: bool) -> None:
    """Give a container node a declared type (``_metadata.ref_type``, ``_metadata.optional``)."""
    node._metadata.ref_type, node._metadata.optional = ref_type, optional


def ref_type(node: Any) -> Any:
    """A node's declared type (``_metadata.ref_type``)."""
    return node._metadata.ref_type


def is_optional(node: Any) -> bool:
    return bool(node._is_optional())


def set_flag(node: Any, name: str, value: bool) -> None:
    """Set a flag of one node (``_set_flag``); it stays on the node through merges."""
    node._set_flag(name, value)


def flags(node: Any) -> dict:
    """The flags set on one node itself (``_metadata.flags``; {} for anything else)."""
    return getattr(getattr(node, "_metadata", None), "flags", None) or {}


def parent(node: Any) -> Any:
    return node._get_parent()


def key(node: Any) -> Any:
    """The key a node has in its parent (``_key``)."""
    return node._key()


def root(node: Any) -> Any:
    return node._get_root()


def set_value(node: Any, value: Any) -> None:
    """Set a node's value through its own validation and conversion (``_set_value``): raises
    OmegaConf's ValidationError where the node's type does not take it."""
    node._set_value(value)


def replace_child(node: Any, key: Any, new: Any) -> None:
    """Put ``new`` (a node made with ``parent=node``) in place of ``node``'s child ``key``, as it is
    (``_content``): assigning it would deep-copy it, slow for a config of 10,000 args."""
    node.__dict__["_content"][key] = new


def yaml_loader() -> Any:
    """OmegaConf's YAML loader (``omegaconf._yaml.get_yaml_loader``): it reads ``1e5`` as a float,
    where PyYAML's reads a string."""
    from omegaconf._yaml import get_yaml_loader
    return get_yaml_loader()
