"""Typing a converted config as Hydra loads it: every component arg whose class takes one kind of
value becomes an OmegaConf typed node (``IntegerNode``, ``FloatNode``, ``BooleanNode``,
``StringNode``, a list or a mapping that only a list or a mapping replaces), so OmegaConf refuses a
wrong-typed override while Hydra composes, in every command and in every sweep trial, and
``--cfg job`` shows the values as their type (``prob=1`` is ``1.0``).

Hydra's compose merges a list as a whole, so a schema from the ConfigStore cannot type the members
of ``train.pre_transforms`` one by one: the typing happens where the converted YAML is loaded, by
the config source of ``hydra_plugins.clara_hydra_schema`` (``TypedConfigSource``). The kinds come
from :mod:`argtypes` (the signature table, never MONAI itself). Args that take several kinds
(``int | list``), ``+`` args and interpolated values are checked on the composed config by
:func:`check_overrides`, before anything trains.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from . import tree as T
from .argtypes import check_override, components, detect_era, spec_of, takes_error
from .effective import META_KEY
from .kinds import Kinds, is_code, is_interpolation, kind_of
from .paths import clara, dotted
from .private import omegaconf as nodes
from .schema import WELL_KNOWN
from .values import EVALUATION_BOOLEANS, as_bool, is_name_ref

#: The first line of every converted config (``render.render``): the configs typed here.
MARKER = "# Converted by clara-hydra"


def search_kinds(meta: Any) -> dict[str, Kinds | None]:
    """The kinds the search space gives each Clara path it sets (so a typed arg takes every value
    its search gives: a float range on an arg written as ``0``)."""
    out: dict[str, Kinds | None] = {}
    if not isinstance(meta, dict):
        return out
    params = meta.get("params") or {}
    choices = meta.get("choices") or {}
    for name, p in params.items():
        if not isinstance(p, dict):
            continue
        sets = [s for s in p.get("sets") or [] if isinstance(s, str)]
        kinds: list[Kinds | None]
        if name in choices and isinstance(choices[name], dict):
            kinds = []
            for i in range(len(sets)):
                values = [v[i] for v in choices[name].values() if isinstance(v, list) and len(v) > i]
                kinds.append(_kinds_of(values))
        elif p.get("type") == "float":
            kinds = [frozenset({"float", "int"})] * len(sets)
        elif p.get("type") == "int":
            kinds = [frozenset({"int"})] * len(sets)
        elif isinstance(p.get("options"), list):
            kinds = [_kinds_of(p["options"])] * len(sets)
        else:
            kinds = [None] * len(sets)
        for s, k in zip(sets, kinds):
            out[s] = _union(out[s], k) if s in out else k
    return out


def param_kinds(meta: Any) -> dict[str, Kinds | None]:
    """The kinds of each search param's own key (a float range is a number, a label a string)."""
    out: dict[str, Kinds | None] = {}
    if not isinstance(meta, dict):
        return out
    choices = meta.get("choices") or {}
    for name, p in (meta.get("params") or {}).items():
        if not isinstance(p, dict):
            continue
        if name in choices:
            out[name] = frozenset({"str"})  # a label (the choices table says which)
        elif p.get("type") == "float":
            out[name] = frozenset({"float", "int"})
        elif p.get("type") == "int":
            out[name] = frozenset({"int"})
        elif isinstance(p.get("options"), list):
            out[name] = _kinds_of(p["options"])
        else:
            out[name] = None
    return out


def _first_level_kinds(value: Any) -> Kinds | None:
    """A first-level param's kinds as written: its own, and a number for an integer (a config
    writes ``"cache_rate": 1``; ``cache_rate=0.5`` is a value of it; the 1 stays an integer)."""
    kind = kind_of(value)
    if kind == "other":
        return None
    return frozenset({"int", "float"}) if kind == "int" else frozenset({kind})


def _kinds_of(values: list) -> Kinds | None:
    kinds = {kind_of(v) for v in values}
    return None if "other" in kinds or not kinds else frozenset(kinds)


def _union(a: Kinds | None, b: Kinds | None) -> Kinds | None:
    return None if a is None or b is None else a | b


def apply_types(cfg: Any) -> Any:
    """Type the component args of a loaded converted config (a DictConfig), in place."""
    from omegaconf import OmegaConf
    data = OmegaConf.to_container(cfg, resolve=False)
    if not isinstance(data, dict):
        return cfg
    era = detect_era(data)
    meta = data.get(META_KEY)
    searched = search_kinds(meta)
    body = {k: v for k, v in data.items() if k not in ("hydra", "defaults", META_KEY)}
    own = param_kinds(meta)
    for key, value in body.items():  # first-level params: as written (int stays int), or as searched
        if not isinstance(key, str) or key in WELL_KNOWN or isinstance(value, dict) or is_code(value) \
                or T.contains_component(value):
            continue  # well-known params: the clara_schema defaults type them; interpolations: their target
        first: Kinds | None = _first_level_kinds(value)
        if key in own:
            first = _union(first, own[key])
        if first is not None:
            _type(cfg, key, first)
    for loc, comp in components(body):
        args = comp.get("args")
        if not isinstance(args, dict) or not args:
            continue
        spec = spec_of(comp, era)
        node = _select_node(cfg, dotted(loc + ("args",)))
        if node is None:
            continue
        for arg, written in args.items():
            if not isinstance(arg, str) or arg.startswith("_"):
                continue
            where = clara(loc + ("args", arg))
            if where in searched and isinstance(written, str) and written.startswith("${") \
                    and written[2:-1] in body and written.endswith("}"):
                written = body[written[2:-1]]  # a searched place: its param's value is the one written
            kinds: Kinds | None = spec.arg_kinds(arg, written, has_written=True)
            if kinds is not None and where in searched:
                kinds = _union(kinds, searched[where])
            if kinds is not None:
                _type(node, arg, kinds)
    return cfg


#: A flag on an ``args`` node naming what an arg of several kinds takes, as typed when loaded
#: (``clara_kinds:pixdim=float|int|list``): the node of such an arg cannot hold its type, and an
#: override replaces it, but its parent's flags stay for the check before training.
KINDS_FLAG = "clara_kinds:"


def _type(parent: Any, key: str | int, kinds: Kinds) -> None:
    from typing import Any as _Any
    from typing import Union

    from omegaconf import DictConfig, ListConfig, UnionNode, ValueNode
    optional = "none" in kinds
    base = kinds - {"none"}
    child = nodes.child(parent, key)
    value = nodes.value(child) if isinstance(child, ValueNode) else None
    if base == {"float", "int"} and isinstance(value, int) and not isinstance(value, bool):
        # an integer as written stays an integer; a float may replace it (OmegaConf takes typing.Union)
        node: Any = UnionNode(value, Union[int, float], key=key, parent=parent, is_optional=optional)  # noqa: UP007
    elif _value_nodes().get(base) is not None and isinstance(child, ValueNode):
        node = _value_nodes()[base](value, key=key, parent=parent, is_optional=optional)
    elif base and base <= _PRIMITIVES.keys() and isinstance(child, ValueNode):
        union = Union[tuple(_PRIMITIVES[k] for k in sorted(base))]  # type: ignore[valid-type]  # noqa: UP007
        node = UnionNode(value, union, key=key, parent=parent, is_optional=optional)
    elif base == {"list"} and isinstance(child, ListConfig):
        nodes.declare(child, list[_Any], optional)
        return
    elif base == {"list"} and isinstance(child, ValueNode) and is_interpolation(value):
        node = ListConfig(content=value, ref_type=list[_Any], is_optional=optional, key=key,
                          parent=parent)  # an interpolation that gives a list: only a list replaces it
    elif base == {"dict"} and isinstance(child, DictConfig):
        nodes.declare(child, dict[_Any, _Any], optional)
        return
    else:
        if isinstance(key, str):
            nodes.set_flag(parent, f"{KINDS_FLAG}{key}={'|'.join(sorted(kinds))}", True)
        return
    nodes.replace_child(parent, key, node)


_PRIMITIVES = {"bool": bool, "int": int, "float": float, "str": str}


def recorded_kinds(args_node: Any, arg: str) -> Kinds | None:
    """What the arg ``arg`` of several kinds takes, as typed when the config was loaded."""
    flags = nodes.flags(args_node)
    prefix = f"{KINDS_FLAG}{arg}="
    for flag in flags:
        if flag.startswith(prefix):
            return frozenset(flag[len(prefix):].split("|"))
    return None


@lru_cache(maxsize=1)
def _value_nodes() -> dict:
    from omegaconf import BooleanNode, FloatNode, IntegerNode, StringNode
    return {frozenset({"int"}): IntegerNode, frozenset({"float", "int"}): FloatNode, frozenset({"float"}): FloatNode,
            frozenset({"bool"}): BooleanNode, frozenset({"str"}): StringNode}


def check_overrides(cfg: Any, overrides: Any, file: str | None = None) -> None:
    """Each ``KEY=VALUE`` of ``overrides`` that sets a component arg fits its class (see
    :func:`argtypes.check_override`); the value is the composed one."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    given = dict(str(o).split("=", 1) for o in overrides or () if "=" in str(o))
    check_booleans(cfg, given, file)
    keys = [k for k in given if ".args." in k and not k.startswith("~") and not k.startswith("hydra.")]
    if not keys:
        return
    tree = OmegaConf.to_container(cfg, resolve=False)
    if not isinstance(tree, dict):
        return
    era = detect_era(tree)
    for key in keys:
        path = key.lstrip("+")
        parent = _select_node(cfg, path.rsplit(".", 1)[0])
        if not OmegaConf.is_dict(parent) or path.rsplit(".", 1)[1] not in parent:
            continue  # not in the composed config (a sweep's own key, before its trials): nothing to check
        try:
            value = OmegaConf.select(cfg, path, default=None)
            if OmegaConf.is_config(value):
                value = OmegaConf.to_container(value, resolve=True)
        except OmegaConfBaseException:
            continue  # a value that does not resolve: resolving the config says why
        check_override(tree, key, value, era=era, file=file, shown=given[key],
                       kinds=recorded_kinds(parent, path.rsplit(".", 1)[1]))


#: Clara's first-level keys that hold a boolean: the training config's and the evaluation config's.
BOOLEANS = frozenset(k for k, t in WELL_KNOWN.items() if t is bool) | EVALUATION_BOOLEANS


def check_booleans(cfg: Any, given: dict[str, str], file: str | None = None) -> None:
    """Each of Clara's first-level booleans that an override sets (``given``: key -> the value as
    written) is a boolean in the composed config, as Clara reads one (:func:`values.as_bool`). The
    config's schema types those the training config has; one it does not have comes in untyped
    (``++dont_load_ts_model=ture``, which validate and infer add for the evaluation config's keys)
    and would reach Clara as a string that is neither true nor false."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException
    for key, shown in given.items():
        name = key.lstrip("+")
        if name not in BOOLEANS:
            continue
        try:
            value = OmegaConf.select(cfg, name, default=None)
        except OmegaConfBaseException:
            continue  # a value that does not resolve: resolving the config says why
        if as_bool(value) is None and not is_name_ref(value):
            raise takes_error(f"'{name}'", frozenset({"bool"}), shown, name, file=file)


def explain(exc: BaseException, file: str | None = None) -> Any:
    """An OverrideError (of ``file``) naming the class, the arg and what it takes, for Hydra's
    failure to apply an override to a component arg ("Could not override ...", "Error merging
    override ...") or a typed first-level param, or None when ``exc`` is not one."""
    error = _explained(exc)
    if error is not None and error.file is None:
        error.file = file
    return error


def _explained(exc: BaseException) -> Any:
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    from .errors import OverrideError, did_you_mean
    cause = exc.__cause__ or exc.__context__
    parent, key, full = (getattr(cause, a, None) for a in ("parent_node", "key", "full_key"))
    text = str(exc).splitlines()[0] if str(exc) else ""
    given = text.split("=", 1)[1] if text.startswith("Error merging override") and "=" in text else None
    if parent is not None and nodes.parent(parent) is None and isinstance(cause, ValidationError) \
            and isinstance(key, str) and full == key:
        kinds = node_kinds(getattr(cause, "child_node", None))  # a first-level param
        if kinds is not None:
            return takes_error(f"'{key}'", kinds, given, key)
    if parent is None or not isinstance(key, str) or not full or nodes.key(parent) != "args":
        return None
    comp_node = nodes.parent(parent)
    comp = OmegaConf.to_container(comp_node, resolve=False) if comp_node is not None else None
    if not isinstance(comp, dict) or not T.is_component(comp):
        return None
    root = OmegaConf.to_container(nodes.root(parent), resolve=False)
    spec = spec_of(comp, detect_era(root) if isinstance(root, dict) else "v4")
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)):
        if spec.closed and not spec.takes(key):
            return spec.no_argument(key, full)
        written = [str(k) for k in parent.keys()]
        return OverrideError(f"{spec.label}'s '{key}' is not in this config", location=full,
                             hint=did_you_mean(key, written) + f"to add an arg: +{full}=VALUE")
    if isinstance(cause, ValidationError):
        kinds = node_kinds(getattr(cause, "child_node", None))
        if kinds is None:
            return None
        return takes_error(f"{spec.label}'s '{key}'", kinds, given, full)
    return None


def node_kinds(node: Any) -> Kinds | None:
    """The kinds a typed OmegaConf node takes (None: untyped)."""
    from typing import Any as _Any

    from omegaconf import BooleanNode, DictConfig, FloatNode, IntegerNode, ListConfig, StringNode, UnionNode
    if isinstance(node, (ListConfig, DictConfig)) and nodes.ref_type(node) is _Any:
        return None
    if isinstance(node, UnionNode):
        names = {bool: "bool", int: "int", float: "float", str: "str"}
        members = getattr(nodes.ref_type(node), "__args__", ())
        union = {names[t] for t in members if t in names}
        return frozenset(union | ({"none"} if nodes.is_optional(node) else set())) if union else None
    kinds = next((k for t, k in ((BooleanNode, {"bool"}), (IntegerNode, {"int"}), (FloatNode, {"float", "int"}),
                                 (StringNode, {"str"}), (ListConfig, {"list"}), (DictConfig, {"dict"}))
                  if isinstance(node, t)), None)
    if kinds is None:
        return None
    return frozenset(kinds | ({"none"} if nodes.is_optional(node) else set()))


def check_sweep(cfg: Any, values: dict[str, list], file: str | None = None) -> None:
    """Every value a sweep may give a param (a choice, a range's ends) fits it, before any trial
    starts: a label is one of the param's labels, a value converts to the typed node's type and
    fits the class of the component arg it sets. One located error for the first that does not."""
    import copy

    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from .errors import OverrideError
    from .kinds import describe
    meta = cfg.get(META_KEY) if hasattr(cfg, "get") else None
    choices = (meta or {}).get("choices") or {}
    tree: Any = None
    for name, candidates in values.items():
        where = f"hydra.sweeper.params.{name}"
        if name in choices:
            for v in candidates:
                check_label(name, v, choices[name], file=file, location=where)
            continue
        node = _select_node(cfg, name.lstrip("+"))
        kinds = node_kinds(node)
        parent = _select_node(cfg, name.lstrip("+").rsplit(".", 1)[0]) if "." in name else None
        for v in map(_decoded, candidates):
            if kinds is not None:
                try:
                    nodes.set_value(copy.deepcopy(node), v)  # the node's own conversion: "5" is an integer
                    fits_node = True
                except OmegaConfBaseException:
                    fits_node = False
                if not fits_node:
                    raise OverrideError(f"'{name}' takes {describe(kinds)}, but the sweep gives it {v!r}", file=file,
                                        location=where, hint=f"give {describe(kinds)} in the sweep expression")
            if ".args." in name:
                if tree is None:
                    tree = OmegaConf.to_container(cfg, resolve=False)
                check_override(tree, name, v, file=file, what="sweep value of",
                               kinds=recorded_kinds(parent, name.rsplit(".", 1)[1]))


def check_label(name: str, label: Any, table: Any, *, file: str | None, location: str) -> None:
    """``label`` is one of the labels of the label param ``name`` (its choices ``table``)."""
    from .errors import OverrideError
    if str(label) not in [str(k) for k in table]:
        labels = ", ".join(str(k) for k in table if not str(k).startswith("as_written"))
        raise OverrideError(f"'{label}' is not one of the choices of '{name}': {labels}", file=file,
                            location=location, hint="see `clara-hydra space` for what each label sets")


def _decoded(value: Any) -> Any:
    """A sweep value as the value its trial's override gives: the Optuna sweeper keeps a list
    choice as its override text (``[8,16]``) and a fixed value as text (``3``), which Hydra parses
    in the trial."""
    if not isinstance(value, str):
        return value
    from hydra.core.override_parser.overrides_parser import OverridesParser
    try:
        return OverridesParser.create().parse_override(f"x={value}").value()
    except Exception:  # noqa: BLE001 - not an override value: the text itself
        return value


def _select_node(cfg: Any, key: str) -> Any:
    """The node at a dotted override key (list indices as numbers), or None."""
    from omegaconf import OmegaConf
    node = cfg
    for part in key.split("."):
        if not OmegaConf.is_config(node):
            return None
        index: Any = int(part) if OmegaConf.is_list(node) and part.lstrip("-").isdigit() else part
        try:
            node = nodes.child(node, index)
        except Exception:  # noqa: BLE001 - a key the config does not have: Hydra says so when it composes
            return None
    return node
