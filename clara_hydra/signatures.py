"""The constructor signatures of the classes a Clara component can name, as a table that ships
with the package (``signatures.json``), so that typing a converted config never imports torch or
MONAI.

The table holds, for every bare name a component may use (looked up in MONAI, then torch, then
ignite, as the builder does: ``names.NAME_MODULES``), the class it resolves to, and for every
class its parameters: the kinds of value each takes (from the annotation, see
:func:`annotation_kinds`; ``null`` where it cannot be said), whether it is required, and whether
the class takes ``**kwargs`` (then any arg is accepted).

``python -m clara_hydra.signatures`` regenerates the table from the installed MONAI, torch and
ignite (``--check`` says whether it has drifted; a test runs that check).
"""

from __future__ import annotations

import json
import os
import sys
from functools import cache
from typing import Any

from .kinds import Kinds, kind_of

TABLE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "signatures.json")


@cache
def table() -> dict:
    with open(TABLE_FILE, encoding="utf-8") as fh:
        return json.load(fh)


def class_of(name: str) -> str | None:
    """The dotted class a bare component ``name`` resolves to (a renamed MONAI class under its
    name of today), or None."""
    t = table()
    name = t["renamed"].get(name, name)
    return t["names"].get(name)


def params(dotted: str) -> dict[str, Kinds | None] | None:
    """``{param: kinds}`` of the class at ``dotted`` (None: not in the table)."""
    sig = table()["classes"].get(dotted)
    if sig is None:
        return None
    return {p: (frozenset(k) if k is not None else None) for p, (k, _req) in sig["params"].items()}


def takes_any_arg(dotted: str) -> bool:
    sig = table()["classes"].get(dotted)
    return bool(sig and sig["kwargs"])


# --------------------------------------------------------------------------- generating

#: Types a JSON config cannot write (a tensor, a module, a callable...): dropped from a union, so
#: ``lr: float | Tensor`` is a float; a parameter that only takes those is untyped.
_NOT_WRITABLE = "unwritable"
_ARRAY = "array"  # a numpy array or a torch tensor


def annotation_kinds(ann: Any) -> frozenset[str] | None:
    """The kinds of JSON value an annotation admits: None (anything), or a set of ``bool``,
    ``int``, ``float``, ``str``, ``list``, ``dict``, ``none`` (``_NOT_WRITABLE`` for a type no
    JSON value is)."""
    import collections.abc as cabc
    import enum
    import types
    import typing

    if ann is typing.Any or ann is object:
        return None
    if ann is None or ann is type(None):
        return frozenset({"none"})
    origin = typing.get_origin(ann)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        out: set[str] = set()
        for member in typing.get_args(ann):
            k = annotation_kinds(member)
            if k is None:
                return None
            out |= k
        out.discard(_NOT_WRITABLE)
        if _ARRAY in out:  # an array takes numbers and lists too (MONAI converts them), unless a number is given
            out.discard(_ARRAY)
            if "float" not in out:
                out |= {"float", "int", "list"}
        return frozenset(out) if out else frozenset({_NOT_WRITABLE})
    if origin is typing.Literal:
        return frozenset(kind_of(v) for v in typing.get_args(ann))
    if origin is not None:
        ann = origin
    if ann is bool:
        return frozenset({"bool"})
    if ann is int:
        return frozenset({"int"})
    if ann is float:
        return frozenset({"float", "int"})
    if ann is str:
        return frozenset({"str"})
    if isinstance(ann, type):
        if (ann.__module__.split(".")[0], ann.__name__) in (("numpy", "ndarray"), ("torch", "Tensor")):
            return frozenset({_ARRAY})
        if issubclass(ann, enum.Enum):
            return frozenset({"str"}) if issubclass(ann, str) else None
        if issubclass(ann, str):
            return frozenset({"str"})
        if issubclass(ann, (dict, cabc.Mapping)):
            return frozenset({"dict"})
        if issubclass(ann, (list, tuple, cabc.Sequence)):
            return frozenset({"list"})
        if ann in (cabc.Collection, cabc.Iterable) or issubclass(ann, (set, frozenset)):
            return frozenset({"list"})
        if ann in (cabc.Hashable,):
            return None
        return frozenset({_NOT_WRITABLE})
    if ann in (cabc.Callable, typing.Callable) or callable(ann):
        return frozenset({_NOT_WRITABLE})
    return None


def _signature(cls: Any) -> dict | None:
    import inspect
    import typing
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return None
    try:
        hints = typing.get_type_hints(cls.__init__ if inspect.isclass(cls) else cls)
    except Exception:  # noqa: BLE001 - a forward reference the module cannot resolve: untyped
        hints = {}
    out: dict[str, Any] = {}
    kwargs = False
    for name, p in sig.parameters.items():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            kwargs = True
            continue
        if p.kind is inspect.Parameter.VAR_POSITIONAL or name == "self":
            continue
        kinds = annotation_kinds(hints[name]) if name in hints else None
        if kinds is not None and _ARRAY in kinds:
            kinds = frozenset({"float", "int", "list"})
        if kinds is not None:
            if _NOT_WRITABLE in kinds:
                kinds = None  # only values a config cannot write: untyped (a reference gives it)
            elif p.default is None:
                kinds = kinds | {"none"}
        required = p.default is inspect.Parameter.empty
        out[name] = [sorted(kinds) if kinds is not None else None, required]
    return {"params": out, "kwargs": kwargs}


@cache
def generate() -> dict:
    """The table, from the installed packages (imports MONAI, torch and ignite)."""
    import inspect
    import warnings

    import monai
    import torch

    from .train.names import NAME_MODULES, RENAMED_CLASSES, _module
    warnings.simplefilter("ignore")
    names: dict[str, str] = {}
    classes: dict[str, dict] = {}
    for mod in NAME_MODULES:
        m = _module(mod)
        if m is None:
            continue
        for name in sorted(dir(m)):
            if not name[:1].isupper() or name in names:
                continue
            obj = getattr(m, name, None)
            if not (inspect.isclass(obj) or callable(obj)):
                continue
            dotted = f"{mod}.{name}"
            names[name] = dotted
            sig = _signature(obj)
            if sig is not None:
                classes[dotted] = sig
    import ignite
    return {"generated_from": {"monai": monai.__version__, "torch": torch.__version__.split("+")[0],
                               "ignite": ignite.__version__},
            "renamed": {old: new for old, (new, _) in RENAMED_CLASSES.items()},
            "names": names, "classes": classes}


def dumps(data: dict) -> str:
    """The table as JSON with one class (one name) per line, so that a drift reads as a diff."""
    parts = []
    for key in sorted(data):
        value = data[key]
        if isinstance(value, dict) and key in ("classes", "names"):
            lines = [f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(value.items())]
            parts.append(f"{json.dumps(key)}: {{\n" + ",\n".join(lines) + "\n}")
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value, sort_keys=True)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    data = generate()
    fresh = dumps(data)
    table_file = argv[argv.index("--table") + 1] if "--table" in argv else TABLE_FILE
    if "--check" in argv:
        with open(table_file, encoding="utf-8") as fh:
            shipped = json.load(fh)
        same = {k: v for k, v in shipped.items() if k != "generated_from"} == \
            {k: v for k, v in data.items() if k != "generated_from"}  # another patch release may sign alike
        print(f"{table_file} is up to date" if same else
              f"{table_file} has drifted from the installed MONAI/torch/ignite: "
              "run `python -m clara_hydra.signatures` and commit it", file=sys.stderr)
        return 0 if same else 1
    with open(table_file, "w", encoding="utf-8") as fh:
        fh.write(fresh)
    print(f"wrote {table_file}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
