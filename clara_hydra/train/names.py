"""Finding the class a Clara component names, and today's MONAI spelling of old arguments."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from functools import cache
from typing import Any

from ..errors import BuildError, did_you_mean
from ..logs import notice

#: Where a bare ``name`` is looked up, in order (SPEC: MONAI first, then torch, then ignite).
NAME_MODULES = (
    "monai.transforms", "monai.networks.nets", "monai.losses", "monai.handlers", "monai.metrics",
    "monai.inferers", "monai.optimizers", "monai.data", "monai.engines", "monai.apps",
    "torch.optim", "torch.optim.lr_scheduler", "torch.nn", "ignite.metrics",
)
#: Names MONAI renamed since Clara v4 (old -> (new, extra args)).
RENAMED_CLASSES = {
    "AddChanneld": ("EnsureChannelFirstd", {"channel_dim": "no_channel"}),
    "AddChannel": ("EnsureChannelFirst", {"channel_dim": "no_channel"}),
    "TorchVisionFullyConvModel": ("TorchVisionFCModel", {}),
    "BasicUnet": ("BasicUNet", {}),
}


@cache
def _module(name: str):
    try:
        return importlib.import_module(name)
    except Exception:
        return None


@cache
def all_names() -> tuple[str, ...]:
    names = set()
    for mod in NAME_MODULES:
        m = _module(mod)
        if m is not None:
            names |= {n for n in dir(m) if n[:1].isupper()}
    return tuple(sorted(names))


def lookup(name: str, where: str) -> str:
    """Dotted path of the class a bare Clara ``name`` means."""
    if name in RENAMED_CLASSES:
        new, _ = RENAMED_CLASSES[name]
        notice(f"{where}: {name} is called {new} in MONAI today; using {new}")
        name = new
    for mod in NAME_MODULES:
        m = _module(mod)
        obj = getattr(m, name, None) if m is not None else None
        if inspect.isclass(obj) or (callable(obj) and name[:1].isupper()):
            return f"{mod}.{name}"
    raise BuildError(f"no MONAI, torch or ignite class is called '{name}'", location=where,
                     hint=did_you_mean(name, all_names(), cutoff=0.7) + "use \"path\" for your own class")


def import_path(path: str, where: str, search_dirs: list[str]) -> Any:
    """Import a BYOC ``path`` (``module.Class``) from the MMAR's folders or installed packages."""
    for d in reversed(search_dirs):  # each goes to the front: the first folder is looked in first
        if d and os.path.isdir(d) and d not in sys.path:
            sys.path.insert(0, d)
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise BuildError(f"path '{path}' is not a dotted class path", location=where,
                         hint="write \"path\": \"module.Class\"")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        looked = ", ".join(d for d in search_dirs if d and os.path.isdir(d))
        raise BuildError(f"cannot import '{path}': module '{exc.name}' not found (looked in "
                         + (f"{looked} and " if looked else "") + "installed packages)", location=where,
                         hint="put the module in the MMAR's custom/ folder or beside the config") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise BuildError(f"module '{module_name}' has no '{attr}'", location=where) from None


def resolve_class(dotted: str) -> Any:
    module_name, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def rename_args(cls: Any, cls_name: str, args: dict, where: str) -> dict:
    """Old MONAI argument names in Clara v4 configs -> today's, with a one-line notice."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return args
    args = dict(args)
    if "dimensions" in args and "dimensions" not in params and "spatial_dims" in params:
        notice(f"{where}: {cls_name} 'dimensions' is now 'spatial_dims'")
        args["spatial_dims"] = args.pop("dimensions")
    if "n_classes" in args and "n_classes" not in params and "to_onehot" in params:
        n = args.pop("n_classes")
        onehot = args.get("to_onehot")
        if isinstance(onehot, list):
            args["to_onehot"] = [n if v is True else (None if v is False else v) for v in onehot]
        elif onehot is True:
            args["to_onehot"] = n
        notice(f"{where}: {cls_name} 'to_onehot: true' with 'n_classes: {n}' is now 'to_onehot: {n}'")
    return args


def check_args(cls: Any, cls_name: str, args: dict, where: str) -> None:
    """Every arg must be a parameter of the real signature (unless it takes **kwargs)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for name in args:
        if name.startswith("_") or name in params:
            continue
        raise BuildError(f"{cls_name} has no argument '{name}'", location=f"{where}.args.{name}",
                         hint=did_you_mean(name, [p for p in params if p != "self"])
                         + "its arguments are: " + ", ".join(p for p in params if p != "self"))
