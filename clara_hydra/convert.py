"""Convert a Clara config into a Hydra primary config (YAML).

The YAML keeps the Clara structure (first-level params, ``train``, ``validate``...) so
``epochs=5`` or ``train.model.args.norm=instance`` work as overrides. Search entries
become ``hydra.sweeper.params`` (Optuna sweeper grammar); aliases, apply, refs and
``"{name}"`` references become OmegaConf interpolations, so one override changes every
place that uses the value. A ``clara_hydra`` block at the end holds what only this tool
needs (label tables, the keys that are not part of the Clara config).
Pure: no torch, no code from the config is executed.
"""

from __future__ import annotations

import itertools
import os
import re
import string
import sys
from dataclasses import dataclass, field
from typing import Any

from . import tree as T
from .automl.config import AutoML
from .effective import META_KEY
from .errors import AlternativesError, ClaraHydraError
from .model import ClaraConfig
from .paths import Loc, clara, dotted, get, put
from .reader import RESERVED_TOP
from .space import Param, build

_EXACT = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}\Z")
#: Largest number of combinations the exactly-one-of check enumerates.
MAX_COMBINATIONS = 4096


@dataclass
class Conversion:
    cfg: ClaraConfig
    params: list[Param]
    body: dict
    meta: dict
    warnings: list[str] = field(default_factory=list)
    automl: AutoML | None = None  # the config_automl.json read with it


# --------------------------------------------------------------------------- values

def _is_code(s: str) -> bool:
    return s.startswith("@") or s.startswith("#") or s.lstrip().startswith("lambda")


def escape(s: str, before_interpolation: bool = False, whole: bool = True) -> str:
    """``s`` as an OmegaConf string that reads back exactly as ``s``: ``${`` is escaped (with the
    backslashes in front of it doubled), a string that is ``???`` (OmegaConf's "missing") or
    backslashes before it gets one more backslash, and with ``before_interpolation`` the trailing
    backslashes are doubled (``C:\\{name}`` keeps its backslash before the value)."""
    out = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", s)
    if whole and re.fullmatch(r"\\*\?\?\?", out):  # only a whole "???" is OmegaConf's "missing"
        return "\\" + out
    if before_interpolation:
        m = re.search(r"(\\+)$", out)
        if m:
            out = out[:m.start()] + m.group(1) * 2
    return out


class _Values:
    """Turns Clara ``"{name}"`` strings into OmegaConf interpolations."""

    def __init__(self, defined: set[str], file: str, taken: set[str] | frozenset[str] = frozenset()) -> None:
        self.defined = defined
        self.file = file
        self.taken = taken  # top-level keys with another meaning (aliases, sections, labels)
        self.undefined: dict[str, Loc] = {}

    def conv(self, node: Any, loc: Loc, inert: bool = False) -> Any:
        if isinstance(node, dict):
            return {k: self.conv(v, loc + (k,), inert or (isinstance(k, str) and k.startswith("_")))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [self.conv(v, loc + (i,), inert) for i, v in enumerate(node)]
        if isinstance(node, str):
            return self.string(node, loc, inert)
        return node

    def _use(self, name: str, loc: Loc) -> str:
        if name not in self.defined:
            self.undefined.setdefault(name, loc)
            if name in self.taken:  # an alias is no {name}: it stays as written, always
                return "{" + name + "}"
        return "${" + name + "}"

    def string(self, s: str, loc: Loc, inert: bool) -> str:
        if inert or _is_code(s) or "{" not in s:
            return escape(s)
        m = _EXACT.match(s)
        if m:
            return self._use(m.group(1), loc)
        try:
            parsed = list(string.Formatter().parse(s))
        except ValueError:
            return escape(s)
        if all(fname is None for _, fname, _, _ in parsed):
            return escape(s)  # no {name} in it: nothing to substitute, it stays as written ("{{x}}" too)
        pieces: list[tuple[str, str]] = []  # ("text", literal) or ("interp", "${name}")
        for literal, fname, spec, conv in parsed:
            if literal:
                pieces.append(("text", literal))
            if fname is None:
                continue
            if spec or conv or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", fname):
                return escape(s)  # not a plain {name}: Clara's str.format would not give a name
            used = self._use(fname, loc)
            pieces.append(("interp", used) if used.startswith("${") else ("text", used))
        merged: list[tuple[str, str]] = []
        for kind, text in pieces:  # adjacent literal text is one literal ("{" + "}" of an alias)
            if merged and kind == "text" and merged[-1][0] == "text":
                merged[-1] = ("text", merged[-1][1] + text)
            else:
                merged.append((kind, text))
        out = []
        for i, (kind, text) in enumerate(merged):
            if kind == "interp":
                out.append(text)
            else:
                nxt = merged[i + 1][0] if i + 1 < len(merged) else None
                out.append(escape(text, before_interpolation=nxt == "interp", whole=len(merged) == 1))
        return "".join(out)


# --------------------------------------------------------------------------- convert

def convert(cfg: ClaraConfig, source_label: str | None = None, automl: AutoML | None = None) -> Conversion:
    params = build(cfg)
    defined = set(cfg.first_level) | set(cfg.new_params) | set(cfg.env)
    taken = set(cfg.aliases) | {p.name for p in params if p.generated} | set(cfg.sections) \
        | {k for k in cfg.tree if k.startswith("_")} | RESERVED_TOP
    values = _Values(defined, cfg.file, taken)
    warnings: list[str] = []

    body: dict[str, Any] = {}
    new_params_placed = False

    def place_new_params() -> None:
        for name in cfg.new_params:
            body[name] = None  # filled in below
    for key, value in cfg.tree.items():
        if key in T.TOP_SEARCH_KEYS:
            if not new_params_placed:
                place_new_params()
                new_params_placed = True
            continue
        if key in cfg.env and key in cfg.first_level:
            value = cfg.env[key]  # environment.json overrides the config's own value
        body[key] = values.conv(value, (key,), inert=key.startswith("_"))
    if not new_params_placed:
        place_new_params()

    for loc in cfg.components:
        comp = get(body, loc)
        comp.pop("search", None)
        comp.pop("apply", None)
    for ref in cfg.refs:
        put(body, ref.loc, "${" + dotted(ref.target) + "}")

    drop: list[str] = []
    env_only = [k for k in cfg.env if k not in cfg.first_level and k not in cfg.new_params]
    for key in env_only:
        body[key] = values.conv(cfg.env[key], (key,))
        drop.append(key)

    choices: dict[str, dict[str, list]] = {}
    alias_keys: dict[str, Any] = {}
    for p in params:
        entry = p.entry
        defaults = [values.conv(v, a.target) for v, a in zip(entry.default_values(), entry.args)]
        if p.mode == "direct":
            home_value = defaults[0]
            sources = [f"${{{p.name}}}"] * len(entry.args)
            if p.generated:
                body[p.name] = home_value
                drop.append(p.name)
            else:
                sources[0] = home_value
        else:
            choices[p.name] = {lab: values.conv(opt, entry.loc) for lab, opt in p.choices.items()}
            if p.default_label is not None and p.default_label not in p.choices:
                choices[p.name][p.default_label] = defaults
            body[p.name] = p.default_label
            drop.append(p.name)
            sources = [f"${{{META_KEY}.choices.{p.name}.${{{p.name}}}.{i}}}" for i in range(len(entry.args))]
        for arg, value in zip(entry.args, sources):
            if arg.kind == "param":
                body[arg.name] = value
                if arg.alias:
                    alias_keys[arg.alias] = "${" + arg.name + "}"
            elif arg.alias:
                alias_keys[arg.alias] = value
                put(body, arg.target, "${" + arg.alias + "}")
            else:
                put(body, arg.target, value)
    for alias, value in alias_keys.items():
        body[alias] = value
        drop.append(alias)
    for ap in cfg.applies:
        put(body, ap.target, "${" + ap.name + "}")

    for name, loc in values.undefined.items():
        if name in taken:
            why = "a reserved name" if name in RESERVED_TOP else "an alias is not a {name}"
            warnings.append(f"warning: {cfg.file}: {clara(loc)}: nothing defines '{name}' as a first-level param "
                            f"or environment.json key ({why}): \"{{{name}}}\" stays as written")
            continue
        warnings.append(f"warning: {cfg.file}: {clara(loc)}: nothing defines '{name}' (no first-level param "
                        f"or environment.json key): \"{{{name}}}\" stays as written unless {name}=... is given")
        body[name] = "{" + name + "}"
        drop.append(name)

    meta = {
        "source": source_label or os.path.basename(cfg.file),
        "drop": drop,
        "params": {p.name: _param_meta(p) for p in params},
        "choices": choices,
        "env": [k for k in cfg.env if k in body],  # their values are data, never code
    }
    conv = Conversion(cfg, params, body, meta, warnings, automl)
    check_combinations(conv)
    return conv


def _param_meta(p: Param) -> dict:
    """What the converted YAML records of a sweep param: enough to warn about an override outside
    its search domain (``range`` for float/int, ``options`` for a direct enum)."""
    out: dict[str, Any] = {"type": p.type, "domain": p.domain, "sets": [clara(s) for s in p.sources]}
    if p.at is not None:  # its place, an override key too (the sweeper reads it as this param)
        out["at"] = p.at
    if p.when is not None:  # searched only in trials where it matters (the sweeper reads this)
        out["when"] = p.when.as_json()
    if p.type in ("float", "int"):
        out["range"] = [p.entry.low, p.entry.high]
    elif p.mode == "direct":
        out["options"] = [opt[0] for opt in p.entry.options]
    return out


# --------------------------------------------------------------------------- checking

def check_combinations(conv: Conversion) -> None:
    """Every alternatives slot has exactly one enabled member, in the default run and in every
    combination of the params that touch the members' ``disabled`` (when enumerable).

    Only what decides a member's ``disabled`` is resolved: the top-level keys (params, aliases,
    labels, environment), the label tables and the members' ``disabled`` values, never the whole
    document, so the check costs the same for 10 components or 10,000."""
    from omegaconf.errors import OmegaConfBaseException
    cfg = conv.cfg
    if not cfg.alternatives:
        return
    deciding = _deciding_paths(cfg)
    member_disabled = set(deciding.values())
    for path in list(member_disabled):  # "disabled": "{flag}" follows the first-level param flag
        written = _get_or(cfg.tree, path, None)
        m = _EXACT.match(written) if isinstance(written, str) else None
        if m:
            member_disabled.add((m.group(1),))
    relevant = [p for p in conv.params if any(s in member_disabled for s in p.sources)]
    combos: list[dict] = [{}]
    if relevant and all(p.type == "enum" or (p.type == "int" and p.entry.high - p.entry.low < 64)
                        for p in relevant):
        axes: list[list[tuple[str, Any]]] = []
        for p in relevant:
            if p.type == "int":
                axes.append([(p.name, v) for v in range(p.entry.low, p.entry.high + 1)])
            elif p.mode == "label":
                axes.append([(p.name, lab) for lab in p.labels])
            else:
                axes.append([(p.name, opt[0]) for opt in p.entry.options])
        total = 1
        for axis in axes:
            total *= len(axis)
        if total <= MAX_COMBINATIONS:
            combos += [dict(c) for c in itertools.product(*axes)]
    # the document with only what decides a member's `disabled`: the top-level keys, the label
    # tables, and a skeleton of the sections holding the members' `disabled` values (and the homes
    # of searched values that other args interpolate)
    sections = set(cfg.sections)
    mini: dict[str, Any] = {k: v for k, v in conv.body.items() if k not in sections}
    paths = sorted(member_disabled, key=str) + [p.entry.args[0].target for p in relevant
                                                if p.mode == "direct" and not p.generated]
    for path in paths:
        if path[0] in sections:
            _skeleton_put(mini, conv.body, path)
    mini[META_KEY] = conv.meta
    for combo in combos:
        try:
            _check_slots(cfg, mini, combo, deciding)
        except AlternativesError as exc:
            where = "with the values written in the config" if not combo else \
                "for the combination " + ", ".join(f"{k}={v}" for k, v in combo.items())
            raise AlternativesError(f"{exc.message} {where}", file=cfg.file, location=exc.location,
                                    hint=exc.hint) from None
        except ClaraHydraError:
            return  # other problems show when the config is resolved
        except OmegaConfBaseException:
            return  # an interpolation that only Hydra's command line can fill ("{X}" that nothing defines)


def _deciding_paths(cfg: ClaraConfig) -> dict[Loc, Loc]:
    """Each alternatives member -> the ``disabled`` that decides it: its own, or for a ``ref``
    member the one of the train component it names."""
    ref_at = {ref.loc: ref.target for ref in cfg.refs}
    out: dict[Loc, Loc] = {}
    for aloc in cfg.alternatives:
        for i, _ in enumerate(get(cfg.tree, aloc)):
            member = aloc + (i,)
            out[member] = ref_at.get(member, member) + ("disabled",)
    return out


def _skeleton_put(mini: dict, body: dict, path: Loc) -> None:
    """Copy the value at ``path`` of ``body`` into ``mini``, creating the dicts and lists on the
    way (lists as long as in ``body``, other members empty)."""
    node: Any = mini
    src: Any = body
    for part in path[:-1]:
        src = src[part]
        child = node[int(part)] if isinstance(node, list) else node.get(part)
        if child is None or child == {} and isinstance(src, list):
            child = [{} for _ in src] if isinstance(src, list) else {}
            node[part] = child
        node = child
    value = _get_or(body, path, _NONE)
    if value is not _NONE:  # a member without `disabled` stays without: enabled
        node[path[-1]] = value


def _check_slots(cfg: ClaraConfig, mini: dict, combo: dict, deciding: dict[Loc, Loc]) -> None:
    from omegaconf import OmegaConf

    from .effective import check_alternatives, to_bool
    oc = OmegaConf.create(mini)
    for key, value in combo.items():
        OmegaConf.update(oc, key, value, merge=False)
    for aloc in cfg.alternatives:
        members = []
        for i, member in enumerate(get(cfg.tree, aloc)):
            path = deciding[aloc + (i,)]
            component = get(cfg.tree, path[:-1])  # the member, or the train component a ref names
            if T.is_component(component):
                value = _get_or(oc, path, False)  # resolved; a missing `disabled` is false
                member = dict(component, disabled=to_bool(False if value is None else value, path))
            members.append(member)
        check_alternatives(aloc, members)


_NONE = object()


def _get_or(tree: Any, path: Loc, default: Any) -> Any:
    """The value at ``path`` (keys may hold dots), or ``default`` where there is none."""
    try:
        return get(tree, path)
    except (KeyError, IndexError, AttributeError, TypeError):
        return default


def emit_warnings(conv: Conversion) -> None:
    for w in conv.warnings:
        print(w, file=sys.stderr)


__all__ = ["convert", "emit_warnings", "escape", "check_combinations", "Conversion"]
