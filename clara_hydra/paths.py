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


#: environment.json keys that name a file or folder of the MMAR: Clara read a relative one from
#: the MMAR root (MMAR_CKPT_DIR is not one: each run writes its checkpoints in its own folder).
#: ``clara-hydra train --mmar DIR`` tells its run the MMAR it trains: a plain run leaves its model
#: there, as Clara's train.sh did (export.publish)
ENV_MMAR = "CLARA_HYDRA_MMAR"
MMAR_PATH_KEYS = ("DATASET_JSON", "DATA_ROOT", "MMAR_CKPT", "MMAR_TORCHSCRIPT", "PRETRAIN_WEIGHTS_FILE",
                  "MMAR_EVAL_OUTPUT_PATH")


def mmar_root(config_file: str) -> str:
    """The MMAR a Clara config belongs to: the parent of its ``config/`` folder (else its own folder)."""
    import os
    cdir = os.path.dirname(os.path.abspath(config_file))
    return os.path.dirname(cdir) if os.path.basename(cdir) == "config" else cdir


def in_mmar(path: str, root: str) -> str:
    """A relative path of an MMAR's environment.json, as Clara took it: from the MMAR root; one
    that is not there but is from the MMAR's ``commands/`` folder (v3 MMARs wrote
    ``../config/dataset_0.json`` for the scripts run there) from there."""
    import os
    for base in (root, os.path.join(root, "commands")):
        candidate = os.path.normpath(os.path.join(base, path))
        if os.path.exists(candidate):
            return candidate
    return os.path.normpath(os.path.join(root, path))


def search_dirs(config_file: str | None) -> list[str]:
    """Where a config's own code (BYOC components, a BYO AutoML controller or handler) is looked
    for: the config's folder, the MMAR root (parent of config/) and their custom/ folders."""
    if not config_file:
        return []
    import os
    cdir = os.path.dirname(os.path.abspath(config_file))
    root = mmar_root(config_file)
    return list(dict.fromkeys([os.path.join(root, "custom"), os.path.join(cdir, "custom"), cdir, root]))


def config_dirs(config_sources) -> list[str]:
    """The file config folders of a Hydra run (``hydra.runtime.config_sources``), ``--config-dir``
    first: the folder a converted config was found in comes before the app's own."""
    return [s.path for provider in ("command-line", "main") for s in config_sources
            if s.schema == "file" and s.provider == provider and s.path]


def source_file(source: str, config_dirs: list[str]) -> str | None:
    """The Clara JSON a converted config came from (``clara_hydra.source``, relative to its
    config folder), found in the first of ``config_dirs`` that has it; None when none does."""
    import os
    for d in config_dirs:
        path = os.path.normpath(os.path.join(d, source))
        if os.path.exists(path):
            return os.path.relpath(path) if not os.path.relpath(path).startswith("../..") else path
    return None
