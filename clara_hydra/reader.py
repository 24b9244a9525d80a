"""Read and validate a Clara ``config_train.json`` (and the ``environment.json`` beside it).

The result, a :class:`~clara_hydra.model.ClaraConfig`, knows every first-level param, component,
search entry, alias, apply and ref, with its location. Every mistake SPEC lists is raised as
a located :class:`~clara_hydra.errors.ClaraHydraError`, in document order. Pure: no
Hydra, no torch, no code from the config is executed.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

from . import tree as T
from .errors import ConfigSyntaxError, ReferenceError_, SearchSpaceError, did_you_mean
from .jsonfile import load_json
from .model import SEARCH_TYPES, Apply, ArgRef, ClaraConfig, Ref, SearchEntry, SearchType
from .paths import Loc, clara
from .schema import SCHEMA_NAME
from .values import as_bool, is_name_ref

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
#: Keys Hydra or this tool own at the top of a converted config.
RESERVED_TOP = frozenset({"hydra", "defaults", "clara_hydra"})


def read(path: str, env_path: str | None = None) -> ClaraConfig:
    data = load_json(path)
    from .automl.config import is_automl, is_evaluation
    if is_evaluation(data):
        raise ConfigSyntaxError("this is a Clara validation or inference config (config_validation.json), not a "
                                "training config", file=path,
                                hint="convert the training config; clara-hydra validate --mmar MMAR runs the "
                                     "config_validation.json beside it (or --eval-config FILE)")
    if is_automl(data):
        raise ConfigSyntaxError("this is a Clara AutoML config (config_automl.json), not a training config",
                                file=path, hint="convert the training config; the AutoML config is read with it: "
                                                f"clara-hydra convert config_train.json --automl {path}")
    if env_path is None:
        beside = os.path.join(os.path.dirname(os.path.abspath(path)), "environment.json")
        env_path = beside if os.path.isfile(beside) else None
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem in RESERVED_TOP or stem == SCHEMA_NAME:
        raise ConfigSyntaxError(f"a config named '{stem}' would clash with a name Hydra or clara-hydra reserve",
                                file=path, hint="rename the file (e.g. config_train.json)")
    env: dict = {}
    if env_path is not None:
        env = load_json(env_path, "environment")
        if not isinstance(env, dict):
            raise ConfigSyntaxError(f"environment.json must be a JSON object, got {_kind(env)}",
                                    file=env_path, location="<top level>")
        for key in env:
            if key in RESERVED_TOP:
                raise ConfigSyntaxError(f"'{key}' is reserved by Hydra and clara-hydra at the top level",
                                        file=env_path, location=key, hint=f"rename the environment key '{key}'")
    try:
        return analyse(data, env, file=path, env_file=env_path)
    except SearchSpaceError as exc:
        raise exc.with_file(path) from None


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------- analysis

def analyse(data: Any, env: dict | None = None, *, file: str = "<config>",
            env_file: str | None = None) -> ClaraConfig:
    env = env or {}
    if not isinstance(data, dict):
        raise ConfigSyntaxError(
            f"the top level must be a JSON object (a Clara config), got {_kind(data)}",
            file=file, location="<top level>")
    if "apply" in data:
        raise SearchSpaceError("'apply' outside a component", file=file, location="apply",
                               hint="'apply' belongs inside a component (an object with \"name\" or \"path\")")
    for key in data:
        if key in RESERVED_TOP:
            raise SearchSpaceError(
                f"'{key}' is reserved by Hydra and clara-hydra at the top level",
                file=file, location=key, hint=f"rename the first-level param '{key}'")

    sections = [k for k, v in data.items()
                if k in T.SECTIONS or (k not in T.TOP_SEARCH_KEYS and not k.startswith("_")
                                       and isinstance(v, (dict, list)) and T.contains_component(v))]
    first_level = {k: v for k, v in data.items()
                   if k not in sections and k not in T.TOP_SEARCH_KEYS and not k.startswith("_")}

    for key in env:
        if key in sections or key in T.SECTIONS or key in T.TOP_SEARCH_KEYS:
            raise ConfigSyntaxError(f"the environment key '{key}' names a "
                                    f"{'section' if key not in T.TOP_SEARCH_KEYS else 'search list'} of the config: "
                                    f"an environment key gives a value", file=env_file or "environment.json",
                                    location=key, hint=f"rename the environment key '{key}'")
    r = _Reader(file, data, env, first_level)
    for key, value in data.items():
        if key == "search":
            r.top_search(value)
        elif key == "lr_search":
            r.lr_search(value)
        elif key in sections:
            for visit in T.walk_node(value, (key,), key):
                r.visit(visit)
        # first-level params and `_`-keys carry no components
    r.cross_check()
    r.visited = set(r.components)
    r.stray_blocks(data, (), file)
    if env:
        r.stray_blocks(env, (), env_file or "environment.json")
    return ClaraConfig(
        file=file, tree=data, env=env, env_file=env_file, first_level=first_level,
        new_params=r.new_params, entries=tuple(r.entries), aliases=r.aliases, applies=tuple(r.applies),
        refs=tuple(r.refs), components=tuple(r.components), alternatives=tuple(r.alternatives),
        sections=tuple(sections))


def _looks_like_block(key: Any, value: Any) -> bool:
    """A search block (a list of entries: objects with args, targets or a type) or an apply block."""
    if key == "search":
        return isinstance(value, list) and bool(value) and all(
            isinstance(e, dict) and any(k in e for k in ("args", "targets", "type", "domain")) for e in value)
    return key == "apply" and isinstance(value, dict)


def _stray_where(node: dict, file: str, config_file: str) -> str:
    if file != config_file:
        return "in environment.json, whose values are data: it is never searched"
    if T.is_ref(node):
        return f"beside a ref: the ref takes train's component '{node['ref']}' as it is, never searched here"
    if T.is_component(node):
        return "of a component nested deeper in args than Clara builds components: never searched"
    return "outside a component: never searched there"


class _Reader:
    def __init__(self, file: str, data: dict, env: dict, first_level: dict) -> None:
        self.file = file
        self.data = data
        self.env = env
        self.first_level = first_level
        self.entries: list[SearchEntry] = []
        self.aliases: dict[str, tuple[SearchEntry, int]] = {}
        self.applies: list[Apply] = []
        self.written_refs: list[tuple[Loc, str]] = []  # (where, the name): resolved by cross_check
        self.refs: list[Ref] = []
        self.components: list[Loc] = []
        self.alternatives: list[Loc] = []
        self.new_params: dict[str, Loc] = {}
        self.train_components: list[tuple[Loc, dict]] = []
        self.searched: dict[Loc, Loc] = {}
        self.alias_at: dict[str, Loc] = {}
        self.visited: set[Loc] = set()  # the components' places, once the walk is done

    def err(self, loc: Loc, msg: str, hint: str | None = None, cls=SearchSpaceError):
        return cls(msg, file=self.file, location=clara(loc), hint=hint)

    # -- the walk ---------------------------------------------------------------
    def visit(self, v: T.Visit) -> None:
        if v.kind == "container":
            for bad in ("search", "apply"):
                if bad in v.node:
                    raise self.err(v.loc + (bad,), f"'{bad}' outside a component",
                                   f"'{bad}' belongs inside a component (an object with \"name\" or "
                                   f"\"path\")" + (", or for search at the top level" if bad == "search" else ""))
        elif v.kind == "alternatives":
            self.alternatives.append(v.loc)
        elif v.kind == "ref":
            if not isinstance(v.node["ref"], str) or not v.node["ref"]:
                raise self.err(v.loc + ("ref",), f"a ref must name a train component, got {_show(v.node['ref'])}",
                               cls=ReferenceError_)
            self.written_refs.append((v.loc, v.node["ref"]))
        elif v.kind == "component":
            self.component(v.loc, v.node)

    def component(self, loc: Loc, comp: dict) -> None:
        self.components.append(loc)
        if loc[0] == "train":
            self.train_components.append((loc, comp))
        for key in ("name", "path"):
            if key in comp and not isinstance(comp[key], str):
                raise self.err(loc + (key,), f"'{key}' must be a string, got {_show(comp[key])}")
        if "args" in comp and not isinstance(comp["args"], dict):
            raise self.err(loc + ("args",), f"'args' must be an object of init args, got {_kind(comp['args'])}")
        if "disabled" in comp and as_bool(comp["disabled"]) is None and not is_name_ref(comp["disabled"]):
            raise self.err(loc + ("disabled",),
                           f"'disabled' must be true/false or a \"{{name}}\" string, got {_show(comp['disabled'])}",
                           "write true or false, or \"{name}\" naming a boolean first-level param")
        if isinstance(comp.get("args"), dict):
            self._no_blocks_in_args(comp["args"], loc + ("args",))
        if "search" in comp:
            search = comp["search"]
            if not isinstance(search, list):
                raise self.err(loc + ("search",), f"'search' must be a list of search entries, got {_kind(search)}")
            for i, entry in enumerate(search):
                self.entry(loc + ("search", i), entry, comp, loc)
        if "apply" in comp:
            self.apply(loc, comp)

    def stray_blocks(self, node: Any, loc: Loc, file: str) -> None:
        """A ``search`` or ``apply`` block anywhere the walk did not read one (a first-level
        object, a ref, a component nested deeper in args than Clara builds, environment.json) is
        refused in one located line: never silently dropped."""
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and key.startswith("_"):
                    continue
                if loc and loc not in self.visited and _looks_like_block(key, value):
                    where = _stray_where(node, file, self.file) if loc[-1] != "args" else \
                        "inside args, where it is an init arg: a component's search sits beside its args"
                    if key == "apply":
                        where = where.replace("searched", "applied")
                    raise SearchSpaceError(f"'{key}' {where}", file=file,
                                           location=clara(loc + (key,)),
                                           hint=f"'{key}' is read in a component of train or validate (an object "
                                                f"with \"name\" or \"path\")"
                                                + (", and 'search' at the top level" if key == "search" else ""))
                self.stray_blocks(value, loc + (key,), file)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                self.stray_blocks(value, loc + (i,), file)

    def _no_blocks_in_args(self, node: Any, loc: Loc) -> None:
        """search/apply in a plain object inside args is outside a component (SPEC)."""
        if isinstance(node, dict):
            if T.is_member(node):
                return  # a component inside args: the walker visits it
            for key, value in node.items():
                if isinstance(key, str) and key.startswith("_"):
                    continue
                if loc[-1] != "args" and ((key == "search" and isinstance(value, list)) or
                                          (key == "apply" and isinstance(value, dict))):
                    raise self.err(loc + (key,), f"'{key}' outside a component",
                                   f"'{key}' belongs inside a component (an object with \"name\" or \"path\")")
                self._no_blocks_in_args(value, loc + (key,))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                self._no_blocks_in_args(value, loc + (i,))

    # -- search entries ------------------------------------------------------------
    def entry(self, eloc: Loc, entry: Any, comp: dict | None, cloc: Loc | None) -> None:
        if not isinstance(entry, dict):
            raise self.err(eloc, f"a search entry must be an object, got {_kind(entry)}")
        raw_args = entry.get("args")
        if isinstance(raw_args, str):
            raw_args = [raw_args]
        if raw_args is None or raw_args == []:
            raise self.err(eloc, "search entry without args",
                           'add "args": ["<init arg>"], or ["@disabled"] to search the attribute')
        if not isinstance(raw_args, list) or not all(isinstance(a, str) for a in raw_args):
            raise self.err(eloc + ("args",), f"'args' must be a list of arg names, got {_show(raw_args)}")
        domain = entry.get("domain")
        if domain is not None and not isinstance(domain, str):
            raise self.err(eloc + ("domain",), f"'domain' must be a string such as \"lr\", \"net\" or "
                                               f"\"transform\", got {_show(domain)}")
        stype = entry.get("type")
        if stype is None:
            raise self.err(eloc, "search entry without a type", 'add "type": "float", "int" or "enum"')
        if stype not in SEARCH_TYPES:
            raise self.err(eloc + ("type",), f"unknown search type {_show(stype)}",
                           'use "float", "int" or "enum"')
        args = tuple(self.arg(eloc + ("args", i), a, comp, cloc) for i, a in enumerate(raw_args))
        if stype == "float" and any(a.kind == "attr" for a in args):
            raise self.err(eloc + ("type",), "@disabled takes true/false, not a float range",
                           'use "type": "enum" with "targets": [[true], [false]]')
        for i, arg in enumerate(args):  # duplicates are reported where they first show
            aloc = eloc + ("args", i) if eloc != ("lr_search",) else eloc
            twice = [j for j, other in enumerate(args[:i]) if other.target == arg.target]
            if twice:
                raise self.err(aloc, f"'{clara(arg.target)}' is written twice in this entry (args[{twice[0]}] "
                                     f"and args[{i}])", "name each arg once; apply shares one value with another")
            prev = self.searched.get(arg.target)
            if prev is not None:
                raise self.err(aloc, f"'{clara(arg.target)}' is searched by two entries "
                                     f"({clara(prev)} and this one)", "merge them into one entry, or drop one")
            if arg.alias is not None and arg.alias in self.alias_at:
                raise self.err(aloc, f"alias '{arg.alias}' is defined twice (first at "
                                     f"{clara(self.alias_at[arg.alias])})",
                               "give each searched arg its own alias; use apply to share one value")
        for arg in args:
            self.searched[arg.target] = eloc
            if arg.alias is not None:
                self.alias_at[arg.alias] = eloc
        targets: Any = entry.get("targets")
        low, high, options = self.targets(eloc, stype, targets, args)
        self.entries.append(SearchEntry(eloc, cloc, domain, stype, targets, args, low, high, options))

    def arg(self, aloc: Loc, written: str, comp: dict | None, cloc: Loc | None) -> ArgRef:
        """One written search arg; ``comp``/``cloc`` are its component (None: the top-level search)."""
        m = re.fullmatch(r"(@?)([^#@]*)(?:#(.*))?", written)
        if not m or not m.group(2):
            raise self.err(aloc, f"malformed search arg {_show(written)}",
                           'write "arg", "@disabled", or either followed by "#alias"')
        at, name, alias = m.group(1), m.group(2), m.group(3)
        if alias is not None and not IDENT.match(alias):
            raise self.err(aloc, f"alias {_show(alias)} is not a valid name",
                           "an alias is letters, digits and '_', not starting with a digit")
        if alias is not None and alias in RESERVED_TOP:
            raise self.err(aloc, f"alias '{alias}' is reserved by Hydra and clara-hydra", "rename the alias")
        if comp is None and name in RESERVED_TOP:
            raise self.err(aloc, f"'{name}' is reserved by Hydra and clara-hydra", "rename the param or tag")
        if comp is None or cloc is None:  # top level: first-level params, `@tag` introduces one
            if name in self.data and name not in self.first_level:
                raise self.err(aloc, f"'{name}' is not a first-level param (it is a section, a component or "
                                     f"a commented-out key)", "a top-level search sets first-level params only; "
                                                              "search the component's args in its own search")
            if not IDENT.match(name):
                raise self.err(aloc, f"first-level param name {_show(name)} is not a valid name",
                               "use letters, digits and '_', not starting with a digit")
            if name in self.first_level:
                value = self.env.get(name, self.first_level[name])
                return ArgRef(written, name, alias, "param", (name,), True, value)
            if name in self.env:
                return ArgRef(written, name, alias, "param", (name,), True, self.env[name])
            return ArgRef(written, name, alias, "param", (name,), False)
        if at:
            if name != "disabled":
                raise self.err(aloc, f"unknown attribute '@{name}'",
                               "the only component attribute is @disabled; drop '@' to search an init arg")
            # SPEC: a run that is not a sweep uses the attribute's value, or false
            return ArgRef(written, name, alias, "attr", cloc + ("disabled",), True, comp.get("disabled", False))
        args = comp.get("args") or {}
        if re.search(r"\s", name):  # " poly_power ": an arg no class has, the real one never searched
            raise self.err(aloc, f"search arg {_show(name)} is not an arg name (it holds blanks)",
                           did_you_mean(name.strip(), set(args) if isinstance(args, dict) else set(), quote=True)
                           + "write the init arg's name as the class takes it")
        return ArgRef(written, name, alias, "arg", cloc + ("args", name), name in args, args.get(name))

    def targets(self, eloc: Loc, stype: SearchType, t: Any,
                args: tuple[ArgRef, ...]) -> tuple[Any, Any, tuple[list[Any], ...]]:
        """(low, high, options) of a search entry's targets, checked against its type and args."""
        tloc = eloc + ("targets",)
        if t is None:
            raise self.err(eloc, "search entry without targets",
                           'add "targets": [low, high] for float/int, or a list of options for enum')
        if not isinstance(t, list):
            raise self.err(tloc, f"targets must be a list, got {_kind(t)}")
        if not t:
            raise self.err(tloc, "empty targets", "list [low, high], or at least one enum option")
        if stype in ("float", "int"):
            if len(t) != 2:
                raise self.err(tloc, f"{stype} targets must be [low, high], got {_show(t)}")
            for i, x in enumerate(t):
                ok = (isinstance(x, int) if stype == "int" else isinstance(x, (int, float)))
                if isinstance(x, bool) or not ok or (isinstance(x, float) and not math.isfinite(x)):
                    want = "an integer" if stype == "int" else "a number"
                    raise self.err(tloc + (i,), f"{stype} targets must be {want}, got {_show(x)}",
                                   'use "type": "enum" for a list of options' if stype == "float" else
                                   'use "type": "float" for a real-valued range')
            low, high = t
            if low > high:
                raise self.err(tloc, f"low > high: {_show(low)} > {_show(high)}", "write [low, high]")
            return (float(low), float(high), ()) if stype == "float" else (low, high, ())
        k = len(args)
        options: list[list[Any]] = []
        for i, opt in enumerate(t):
            if k == 1:
                if isinstance(opt, list):
                    if len(opt) != 1:
                        raise self.err(tloc + (i,), f"option {_show(opt)} has {len(opt)} values but the entry "
                                                    f"has 1 arg", "with one arg write each option as a value or "
                                                                  "as [value]; a list value is [[...]]")
                    options.append([opt[0]])
                else:
                    options.append([opt])
            else:
                if not isinstance(opt, list) or len(opt) != k:
                    n = len(opt) if isinstance(opt, list) else 1
                    raise self.err(tloc + (i,), f"option {_show(opt)} has {n} value{'s' * (n != 1)} but the "
                                                f"entry has {k} args {_show([a.written for a in args])}",
                                   f"give each option {k} values, one per arg, in order")
                options.append(list(opt))
        for i, opt in enumerate(options):
            for arg, value in zip(args, opt):
                if arg.kind == "attr" and as_bool(value) is None and not is_name_ref(value):
                    raise self.err(tloc + (i,), f"@disabled option {_show(value)} is not a boolean",
                                   "write true/false (or 0/1)")
        return None, None, tuple(options)

    def top_search(self, search: Any) -> None:
        if not isinstance(search, list):
            raise self.err(("search",), f"'search' must be a list of search entries, got {_kind(search)}")
        for i, entry in enumerate(search):
            self.entry(("search", i), entry, None, None)
            for arg in self.entries[-1].args:
                if not arg.has_value and arg.name not in self.new_params:
                    self.new_params[arg.name] = ("search", i)

    def lr_search(self, value: Any) -> None:
        entry = {"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": value}
        if not isinstance(value, list):
            raise self.err(("lr_search",), f"lr_search must be [low, high], got {_kind(value)}")
        self.entry(("lr_search",), entry, None, None)
        e = self.entries[-1]
        if not e.args[0].has_value:
            self.new_params.setdefault("learning_rate", ("lr_search",))

    # -- apply -------------------------------------------------------------------------
    def apply(self, cloc: Loc, comp: dict) -> None:
        block = comp["apply"]
        aloc = cloc + ("apply",)
        if not isinstance(block, dict):
            raise self.err(aloc, f"'apply' must be an object such as {{\"prob\": \"myAlias\"}}, got {_kind(block)}")
        for key, name in block.items():
            kloc = aloc + (key,)
            if key.startswith("@"):
                if key != "@disabled":
                    raise self.err(kloc, f"unknown attribute '{key}'", "the only component attribute is @disabled")
                target = cloc + ("disabled",)
            else:
                target = cloc + ("args", key)
            if not isinstance(name, str) or not name:
                raise self.err(kloc, f"apply must name an alias or a first-level param, got {_show(name)}")
            self.applies.append(Apply(kloc, cloc, key, target, name))

    # -- checks that need the whole file --------------------------------------------------
    def cross_check(self) -> None:
        """Checks that need the whole file (entry() already refused duplicate searches and aliases)."""
        for e in self.entries:
            for i, arg in enumerate(e.args):
                if arg.alias is None:
                    continue
                aloc = e.loc + ("args", i) if e.loc != ("lr_search",) else e.loc
                if arg.alias in self.first_level or arg.alias in self.new_params:
                    raise self.err(aloc, f"alias '{arg.alias}' clashes with the first-level param "
                                         f"'{arg.alias}'", "aliases and first-level params share one "
                                                           "namespace; rename the alias")
                if arg.alias in self.env or arg.alias in self.data:
                    clash = "an environment.json key" if arg.alias in self.env else "a top-level key"
                    raise self.err(aloc, f"alias '{arg.alias}' clashes with {clash} of that name", "rename the alias")
                self.aliases[arg.alias] = (e, i)
        names = set(self.aliases) | set(self.first_level) | set(self.new_params)
        for ap in self.applies:
            if ap.name not in names:
                raise self.err(ap.loc, f"apply names '{ap.name}', which nothing defines",
                               did_you_mean(ap.name, names, quote=True)
                               + "apply can name an alias (\"arg#alias\" in a search) or a first-level param",
                               cls=ReferenceError_)
            if ap.target in self.searched:
                raise self.err(ap.loc, f"'{clara(ap.target)}' is set both by search "
                                       f"({clara(self.searched[ap.target])}) and by apply",
                               "search it once and apply the alias elsewhere, or drop one")
        self.refs = [Ref(loc, name, self._find_ref(loc, name)) for loc, name in self.written_refs]

    def _find_ref(self, where: Loc, name: str) -> Loc:
        for match in (lambda c: T.component_alias(c) == name,
                      lambda c: T.component_alias(c) is None and T.class_name(c) == name,
                      lambda c: T.class_name(c) == name):
            found = [loc for loc, comp in self.train_components if match(comp)]
            same_slot = [loc for loc in found if loc[1:2] == where[1:2] and len(loc) == len(where)]
            if len(found) > 1 and len(same_slot) == 1:  # (deepgrow: train.pre_transforms, not a nested chain's)
                return same_slot[0]
            if len(found) > 1:
                raise self.err(where + ("ref",), f"ref '{name}' is ambiguous: {len(found)} train components go by "
                                                 f"that name ({', '.join(clara(loc) for loc in found)})",
                               f"give the one you mean an alias (\"name\": \"{name}#my_{name.lower()}\") and "
                               f"ref that alias", cls=ReferenceError_)
            if found:
                return found[0]
        known = {T.component_alias(c) or T.class_name(c) for _, c in self.train_components}
        raise self.err(where + ("ref",), f"ref '{name}' names no train component",
                       did_you_mean(name, known, quote=True)
                       + "a ref names a train component by class name or by its \"Cls#alias\" alias",
                       cls=ReferenceError_)
