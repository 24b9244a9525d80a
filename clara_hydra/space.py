"""The search space: one sweep parameter per Clara search entry.

Each parameter gets
- a ``name``: the key a command-line override sets, and the name Optuna, the report and the
  trial lines show. A first-level param keeps its name, an alias is its own name, an unaliased
  single arg of a component gets a top-level name that says what it sets, its class and its arg
  (``SegResNet_norm``, ``RandFlipd_disabled``), whose value its place interpolates; its place
  (``at``: ``train.model.args.norm``) works as an override too. A joint choice, or a choice between
  list values, gets a generated top-level name whose value is a label
  (``mySearchLoss1_mySearchLoss2=Focal``, ``UNet_channels=16-32``);
- a Hydra sweep expression in the Optuna sweeper's grammar (``interval``,
  ``int(interval(...))``, ``tag(log, interval(...))``, ``choice``);
- its ``sources``: every location it sets, through search and through apply.

Pure: imports Hydra's override parser (to check that labels round-trip), no torch.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from . import tree as T
from .errors import SearchSpaceError
from .model import ArgRef, ClaraConfig, SearchEntry
from .paths import Loc, clara, dotted, get
from .reader import RESERVED_TOP
from .schema import WELL_KNOWN, check_value
from .values import as_bool

AS_WRITTEN = "as_written"


@dataclass
class Param:
    entry: SearchEntry
    name: str
    mode: str  # "direct": the override sets the value; "label": it picks a labelled option
    sweep: str
    value_keys: list[str]
    sources: list[Loc]
    labels: list[str] = field(default_factory=list)
    choices: dict[str, list[Any]] = field(default_factory=dict)
    default_label: str | None = None
    generated: bool = False  # the name is a top-level key of its own (not a Clara key)
    at: str | None = None  # the override key of the one place a generated name stands for
    when: Condition | None = None  # sampled only when another param enables what it sets

    @property
    def type(self) -> str:
        return self.entry.type

    @property
    def domain(self) -> str | None:
        return self.entry.domain

    def as_json(self) -> dict:
        out: dict[str, Any] = {
            "name": self.name, "type": self.type, "domain": self.domain, "sweep": self.sweep,
            "targets": self.entry.targets,
        }
        if self.type == "enum":
            out["choices"] = self.choices
        out["sources"] = [clara(s) for s in self.sources]
        if self.at is not None:
            out["at"] = self.at
        if self.when is not None:
            out["when"] = self.when.as_json()
        return out


@dataclass(frozen=True)
class Condition:
    """A param is searched only in trials where ``param`` takes one of ``labels`` (as written in
    its sweep expression): the values that enable the component(s) it sets."""

    param: str
    labels: tuple[str, ...]

    def text(self) -> str:
        return f"when {self.param}={'|'.join(self.labels)}"

    def as_json(self) -> dict:
        return {"param": self.param, "in": list(self.labels)}

    def holds(self, value: Any) -> bool:
        """Does the controlling param's value (as Optuna gives it) enable it?"""
        return str(value) in self.labels or hydra_literal(value) in self.labels


def active(names: list[str], conditions: dict[str, Condition], fixed: dict[str, Any],
           value: Callable[[str], Any]) -> list[str]:
    """The params of ``names`` a trial samples: a conditional one only where its controlling
    param (sampled in this trial, read through ``value``, or fixed) enables it, none where its
    controller is absent. In the order of ``names``."""
    on: set[str] = set()
    pending = list(names)
    progress = True
    while pending and progress:
        progress = False
        for name in list(pending):
            cond = conditions.get(name)
            if cond is not None and cond.param in pending:
                continue  # its controller is not decided yet
            if cond is None:
                holds = True
            elif cond.param in fixed:
                holds = cond.holds(fixed[cond.param])
            elif cond.param in on:
                holds = cond.holds(value(cond.param))
            else:
                holds = cond.param not in names  # absent from this trial: so is what it switches
            if holds:
                on.add(name)
            pending.remove(name)
            progress = True
    on.update(pending)  # a cycle (no Clara config makes one): sample them all
    return [name for name in names if name in on]


def count_combinations(grid: dict[str, list], conditions: dict[str, Condition], fixed: dict[str, Any],
                       limit: int = 100_000) -> int:
    """How many different trials a finite space has: combinations that differ only in params
    their condition leaves out are one."""
    total = 1
    for values in grid.values():
        total *= len(values)
    if not conditions or total > limit:
        return total
    names = list(grid)
    seen = set()
    for combo in itertools.product(*grid.values()):
        chosen = dict(zip(names, combo))
        on = active(names, conditions, fixed, chosen.__getitem__)
        seen.add(tuple((name, repr(chosen[name])) for name in on))
    return len(seen)


# --------------------------------------------------------------------------- literals

@cache
def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    return OverridesParser.create()


def _parse_value(text: str) -> Any:
    try:
        return _parser().parse_override(f"k={text}").value()
    except Exception:
        return _Unparsable


class _Unparsable:  # sentinel
    pass


def hydra_literal(value: Any) -> str | None:
    """How ``value`` is written on the command line, or None when no plain form round-trips
    (through our label and through ``str(value)``, which the Optuna sweeper emits)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str):
        if "$" in value or "\\" in value or "???" in value:
            return None  # OmegaConf would read an interpolation, an escape or "missing": use a label
        text = value
    else:
        return None
    for form in {text, str(value)}:
        parsed = _parse_value(form)
        if type(parsed) is not type(value) or parsed != value:
            return None
    return text


def key_is_overridable(key: str) -> bool:
    try:
        return _parser().parse_override(f"{key}=1").key_or_group == key
    except Exception:
        return False


_LABEL_OK = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*\Z")


def _label_ok(label: str) -> bool:
    return bool(_LABEL_OK.match(label)) and _parse_value(label) == label and len(label) <= 60


def _value_label(value: Any) -> str:
    if isinstance(value, list):
        return "-".join(_value_label(v) for v in value) or "empty"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        value = repr(value).replace(".", "p").replace("-", "m").replace("+", "")
    elif isinstance(value, int):
        value = str(value).replace("-", "m")
    elif isinstance(value, dict):
        value = "-".join(f"{k}_{_value_label(v)}" for k, v in value.items())
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(value)).strip("_") or "x"


# --------------------------------------------------------------------------- building

def build(cfg: ClaraConfig) -> list[Param]:
    taken = set(cfg.tree) | set(cfg.env) | set(cfg.aliases) | set(cfg.new_params) | RESERVED_TOP
    params = []
    for entry in cfg.entries:
        p = _param(cfg, entry, taken)
        taken.add(p.name)
        params.append(p)
    check_schema_types(cfg, params)
    for p in params:
        p.when = _condition(cfg, p, params)
    return params


def _switched(cfg: ClaraConfig, params: list[Param]) -> dict[Loc, tuple[str, dict[str, bool]]]:
    """Components whose ``disabled`` an enum param decides: component -> (param, label ->
    disabled). An alternatives member, or any component searched on ``@disabled``."""
    out: dict[Loc, tuple[str, dict[str, bool]]] = {}
    for p in params:
        if p.type != "enum" or not p.choices:
            continue
        for i, arg in enumerate(p.entry.args):
            for target in arg_targets(cfg, arg):
                if not target or target[-1] != "disabled" or not T.is_component(get(cfg.tree, target[:-1])):
                    continue
                decided = {lab: as_bool(values[i]) for lab, values in p.choices.items() if i < len(values)}
                if all(v is not None for v in decided.values()):
                    out[target[:-1]] = (p.name, {lab: bool(v) for lab, v in decided.items()})
    return out


def _condition(cfg: ClaraConfig, p: Param, params: list[Param]) -> Condition | None:
    """``p`` sets args of components that one other enum param switches on and off: it matters
    only in trials where that param enables at least one of them (Optuna's define-by-run then
    samples it there only). None when any of its places is always in force."""
    switched = _switched(cfg, params)
    controller: str | None = None
    enabling: set[str] = set()
    for source in p.sources:
        inside = [c for c in switched if len(source) > len(c) and source[:len(c)] == c
                  and source != c + ("disabled",)]
        if not inside:
            return None  # a place no param switches off: always in force
        deepest = max(inside, key=len)
        name, disabled = switched[deepest]
        if name == p.name or (controller is not None and name != controller):
            return None
        controller = name
        enabling |= {lab for lab, off in disabled.items() if not off}
    if controller is None:
        return None
    labels = next(q.labels for q in params if q.name == controller)
    if set(labels) <= enabling:
        return None  # enabled whatever the value
    return Condition(controller, tuple(lab for lab in labels if lab in enabling))


def check_schema_types(cfg: ClaraConfig, params: list[Param]) -> None:
    for name, typ in WELL_KNOWN.items():
        value = cfg.env.get(name, cfg.first_level.get(name))
        if name in cfg.first_level or name in cfg.env:
            problem = check_value(typ, value)
            if problem:
                raise SearchSpaceError(f"first-level param '{name}' {problem}", location=name,
                                       file=cfg.env_file if name in cfg.env and cfg.env_file else cfg.file)
    for p in params:
        for i, arg in enumerate(p.entry.args):
            want = WELL_KNOWN.get(arg.name) if arg.kind == "param" else None
            if want is None:
                continue
            if p.type == "float" and want is int:
                raise SearchSpaceError(f"'{arg.name}' is an integer but this entry searches floats",
                                       file=cfg.file, location=clara(p.entry.loc + ("type",)),
                                       hint='use "type": "int"')
            for opt in p.entry.options:
                problem = check_value(want, opt[i])
                if problem:
                    raise SearchSpaceError(f"option for '{arg.name}' {problem}", file=cfg.file,
                                           location=clara(p.entry.loc + ("targets",)))


def _value_key(arg) -> str:
    if arg.kind == "param":
        return arg.name
    if arg.alias is not None:
        return arg.alias
    return dotted(arg.target)


def _generated_name(entry: SearchEntry, taken: set[str]) -> str:
    if entry.component is None:
        base = "_".join(a.name for a in entry.args)
    else:
        parts = [str(p) for p in entry.component if p != "args"]
        base = "_".join(parts + [a.name for a in entry.args])
    base = re.sub(r"[^A-Za-z0-9_]+", "_", base).strip("_") or "param"
    if base[0].isdigit():
        base = "p_" + base
    name, n = base, 1
    if name in taken:
        name = base + "_choice"
    while name in taken:
        n += 1
        name = f"{base}_choice{n}"
    return name


def arg_targets(cfg: ClaraConfig, arg: ArgRef) -> list[Loc]:
    """The places a searched arg sets: its own, and each place an ``apply`` sets from its alias
    (or from the first-level param it is)."""
    names = {arg.alias} if arg.alias else set()
    if arg.kind == "param":
        names.add(arg.name)
    return [arg.target] + [ap.target for ap in cfg.applies if ap.name in names]


def _sources(cfg: ClaraConfig, entry: SearchEntry) -> list[Loc]:
    return [target for arg in entry.args for target in arg_targets(cfg, arg)]


def _param(cfg: ClaraConfig, entry: SearchEntry, taken: set[str]) -> Param:
    value_keys = [_value_key(a) for a in entry.args]
    sources = _sources(cfg, entry)
    if entry.type in ("float", "int"):
        if entry.type == "int":
            sweep = f"int(interval({entry.low}, {entry.high}))"
        else:
            sweep = f"interval({entry.low!r}, {entry.high!r})"
            if entry.domain == "lr" and entry.low > 0 and entry.high / entry.low >= 10:
                sweep = f"tag(log, {sweep})"
        return _direct(cfg, entry, sweep, value_keys, sources, taken)

    literals = [hydra_literal(opt[0]) for opt in entry.options] if len(entry.args) == 1 else [None]
    written = [lit for lit in literals if lit is not None]
    if len(written) == len(literals) and not _equal_in_python(entry.options):  # Hydra's grammar writes each
        p = _direct(cfg, entry, "", value_keys, sources, taken)
        p.labels = list(dict.fromkeys(written))  # drop duplicate options, keep order
        p.sweep = f"choice({', '.join(p.labels)})"
        p.choices = {lab: [opt[0]] for lab, opt in zip(written, entry.options) if lab not in p.choices}
        return p

    labels = _labels(cfg, entry)
    name = _readable_name(cfg, entry, taken) if entry.component is not None else _generated_name(entry, taken)
    choices = {lab: opt for lab, opt in zip(labels, entry.options)}
    defaults = entry.default_values()
    default_label = next((lab for lab, opt in choices.items() if opt == defaults), None)
    if default_label is None:
        default_label = AS_WRITTEN
        while default_label in choices:
            default_label += "_"
    return Param(entry, name, "label", f"choice({', '.join(labels)})", value_keys, sources,
                 labels=labels, choices=choices, default_label=default_label, generated=True)


def _equal_in_python(options: Sequence) -> bool:
    """Are two options one value to Python, and so to Optuna's choice index, though JSON tells
    them apart (``1``, ``true``, ``1.0``)? Then they are picked by label, each its own option."""
    return any(a == b and json.dumps(a) != json.dumps(b) for i, a in enumerate(options) for b in options[i + 1:])


def _direct(cfg, entry, sweep, value_keys, sources, taken) -> Param:
    home = value_keys[0]
    arg = entry.args[0]
    if arg.kind == "param" or arg.alias is not None:  # a name the user wrote
        if key_is_overridable(home):
            return Param(entry, home, "direct", sweep, value_keys, sources)
        return Param(entry, _generated_name(entry, taken), "direct", sweep, value_keys, sources, generated=True)
    # an unaliased arg: a name that says what it sets; its place stays an override key where it
    # reads back as that place (a key with a dot in it, "a.b", would be read as two keys)
    at = None if len(entry.args) > 1 or any(isinstance(part, str) and ("." in part or not key_is_overridable(part))
                                            for part in arg.target) else home
    return Param(entry, _readable_name(cfg, entry, taken), "direct", sweep, value_keys, sources,
                 generated=True, at=at)


def _readable_name(cfg: ClaraConfig, entry: SearchEntry, taken: set[str]) -> str:
    """``Class_arg`` for the args of a component (``RandFlipd_disabled``; ``Shift_a_b`` for one
    value that two args share), numbered where two components of one class search the same args
    (``RandFlipd_disabled_2``)."""
    component = get(cfg.tree, entry.component) if entry.component is not None else None
    cls = T.class_name(component).rsplit(".", 1)[-1] if isinstance(component, dict) else ""
    base = re.sub(r"[^A-Za-z0-9_]+", "_", "_".join([cls] + [a.alias or a.name for a in entry.args])).strip("_")
    if not base or base[0].isdigit() or not key_is_overridable(base):
        return _generated_name(entry, taken)
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name


def _labels(cfg: ClaraConfig, entry: SearchEntry) -> list[str]:
    candidates = [_enabling_labels(cfg, entry),
                  [_value_label(opt if len(opt) > 1 else opt[0]) for opt in entry.options]]
    for labels in candidates:
        if labels is None:
            continue
        fixed = [lab if _label_ok(lab) else "v" + lab for lab in labels]
        if all(_label_ok(lab) for lab in fixed) and len(set(fixed)) == len(fixed) and AS_WRITTEN not in fixed:
            return fixed
    return [f"opt{i + 1}" for i in range(len(entry.options))]


def _enabling_labels(cfg: ClaraConfig, entry: SearchEntry) -> list[str] | None:
    """For the exactly-one-of pattern: label each option by the components it enables."""
    alt_members: dict[Loc, dict] = {}
    for aloc in cfg.alternatives:
        for i, member in enumerate(get(cfg.tree, aloc)):
            if T.is_component(member):
                alt_members[aloc + (i, "disabled")] = member
    if not alt_members:
        return None
    controlled: list[list[dict]] = []
    for arg in entry.args:
        controlled.append([alt_members[t] for t in arg_targets(cfg, arg) if t in alt_members])
    if not any(controlled):
        return None
    labels = []
    for opt in entry.options:
        enabled: list[str] = []
        for value, members in zip(opt, controlled):
            if members and as_bool(value) is False:
                enabled.extend(T.class_name(m) for m in members)
        if not enabled:
            return None
        labels.append("-".join(dict.fromkeys(re.sub(r"[^A-Za-z0-9_]+", "_", n) for n in enabled)))
    return labels


def to_json(params: list[Param]) -> str:
    return json.dumps([p.as_json() for p in params], indent=2)
