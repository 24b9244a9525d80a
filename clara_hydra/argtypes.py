"""What each component arg of a Clara config takes: its kinds of value, and the args its class
takes at all. Pure (no torch, no MONAI: the MONAI-era classes come from ``signatures.json``).

- MONAI-era components (v4): the real constructor signature of the class the ``name`` resolves
  to (or the ``path`` names, when it is a class in the table): the annotation's kinds, widened by
  the written value's kind when the annotation is narrower than what the config writes (the
  config is the user's truth), and the class's parameters as the args it takes (unless it takes
  ``**kwargs``).
- v3 components: the written value's kind, or the kinds of the MONAI arg the v3 table maps it to
  one to one; the args the v3 table knows for the name are those it takes.
- your own classes (``path``), and names nothing knows: the written value's kind, any arg.

Values that Clara evaluates or that name other values (``"@obj"``, ``"#expr"``, lambdas,
interpolations) are untyped; so is an arg holding components.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import signatures as S
from . import tree as T
from .errors import OverrideError, did_you_mean
from .kinds import Kinds, describe, fits, is_code, is_interpolation, kind_of
from .paths import Loc, clara

_V3_ERA_TOP = ("num_training_epoch_per_valid", "use_amp")


def detect_era(tree: dict) -> str:
    """``v3`` (TensorFlow-era config) or ``v4`` (MONAI-era: v4.0, v4.1)."""
    train = tree.get("train", {}) if isinstance(tree.get("train"), dict) else {}
    if "image_pipeline" in train or "lr_policy" in train or any(k in tree for k in _V3_ERA_TOP):
        return "v3"
    for comp in train.get("pre_transforms", []) or []:
        if isinstance(comp, dict) and isinstance(comp.get("args"), dict) and "fields" in comp["args"]:
            return "v3"
    return "v4"


@dataclass(frozen=True)
class Spec:
    """What one component's class takes."""
    label: str  # for messages: "RandFlipd", "SegResnet (v3)", "custom.Net"
    kinds: dict[str, Kinds | None] = field(default_factory=dict)  # per known arg
    closed: bool = False  # True: an arg outside ``kinds`` (and ``aliases``) is an error
    aliases: frozenset[str] = frozenset()  # taken, not listed: old names the builder renames, v3 layout args
    as_written: bool = False  # an arg without kinds of its own is typed as written (v3), not left untyped
    untyped: frozenset[str] = frozenset()  # args that take anything, whatever is written (a v3 arg mapped to one)

    def takes(self, arg: str) -> bool:
        return not self.closed or arg in self.kinds or arg in self.aliases or arg.startswith("_")

    def arg_kinds(self, arg: str, written: Any = None, has_written: bool = False) -> Kinds | None:
        """The kinds of ``arg``: the class's, widened by the written value's; untyped for a value
        that is code or components."""
        kinds = self.kinds.get(arg)
        if arg in self.untyped:
            return None
        if not has_written or is_interpolation(written):
            return kinds  # an interpolation's value is typed as the class takes it, once resolved
        if is_code(written) or _holds_components(written):
            return None
        own = frozenset({kind_of(written)}) - {"other"}  # as written: an int stays an int
        if kinds is None:
            return None if arg in self.kinds and not self.as_written else own or None
        return kinds if fits(kinds, written) else kinds | own

    def names(self) -> list[str]:
        return sorted(self.kinds)

    def no_argument(self, arg: str, location: str, *, file: str | None = None, note: str = "") -> OverrideError:
        """The error for an arg this class does not take, with the close names."""
        return OverrideError(f"{self.label} has no argument '{arg}'" + (f" ({note})" if note else ""), file=file,
                             location=location, hint=did_you_mean(arg, self.names()) + "its arguments are: "
                             + ", ".join(self.names()))


def takes_error(subject: str, kinds: Kinds | None, got: str | None, location: str, *, file: str | None = None,
                note: str = "") -> OverrideError:
    """The error for a value that does not fit: what ``subject`` takes, and what it got."""
    return OverrideError(f"{subject} takes {describe(kinds)}" + (f", got {got}" if got is not None else "")
                         + (f" ({note})" if note else ""), file=file, location=location,
                         hint=f"give {describe(kinds)}")


def _holds_components(value: Any) -> bool:
    if isinstance(value, list):
        return any(T.is_member(v) for v in value)
    return T.is_member(value)


def spec_of(comp: dict, era: str) -> Spec:
    """What the class of ``comp`` takes."""
    path = comp.get("path")
    if isinstance(path, str):
        dotted = path.split("#", 1)[0]
        return _monai_spec(dotted, dotted) or Spec(dotted)
    name = str(comp.get("name", "")).split("#", 1)[0]
    if era == "v3":
        return _v3_spec(name)
    found = S.class_of(name)
    return (_monai_spec(found, name) if found else None) or Spec(name)


#: What Clara's configs give a MONAI arg beyond its annotation, which the builder turns into it:
#: a list of names for a checkpoint handler's dict ("model" -> "@model").
CLARA_TAKES: dict[str, dict[str, frozenset[str]]] = {
    "monai.handlers.CheckpointSaver": {"save_dict": frozenset({"list"})},
    "monai.handlers.CheckpointLoader": {"load_dict": frozenset({"list"})},
}


def _monai_spec(dotted: str, label: str) -> Spec | None:
    params = S.params(dotted)
    if params is None:
        return None
    for arg, extra in CLARA_TAKES.get(dotted, {}).items():
        taken = params.get(arg)
        if taken is not None:
            params[arg] = taken | extra
    aliases = set()
    if "spatial_dims" in params:
        aliases.add("dimensions")
    if "to_onehot" in params:
        aliases.add("n_classes")
    return Spec(label, params, closed=not S.takes_any_arg(dotted), aliases=frozenset(aliases))


def _v3_spec(name: str) -> Spec:
    from .train.v3_table import LAYOUT_ARGS, TABLE, V3_ARGS
    rows = TABLE.get(name)
    if rows is None:
        known = V3_ARGS.get(name)
        return Spec(f"{name} (v3)", dict.fromkeys(known or ()), closed=known is not None,
                    aliases=frozenset(LAYOUT_ARGS), as_written=True)
    kinds: dict[str, Kinds | None] = {}
    untyped = set()
    for row in rows:
        target = S.params(row.target) or {}
        for v3arg, spec in row.args.items():
            if isinstance(spec, str) and spec in target:  # one to one: what the MONAI arg takes
                kinds[v3arg] = target[spec]
                if target[spec] is None:
                    untyped.add(v3arg)  # (fields -> keys: a name or a list of names)
            else:
                kinds.setdefault(v3arg, None)
        for v3arg in row.drop:
            kinds.setdefault(v3arg, None)
    return Spec(f"{name} (v3)", kinds, closed=bool(rows), aliases=frozenset(LAYOUT_ARGS), as_written=True,
                untyped=frozenset(untyped))


def components(tree: dict) -> Iterator[tuple[Loc, dict]]:
    for visit in T.walk(tree):
        if visit.kind == "component":
            yield visit.loc, visit.node


def loc_of(tree: Any, key: str) -> Loc:
    """An override key (``train.pre_transforms.4.args.prob``) as a location in ``tree`` (list
    indices as ints)."""
    loc: list[str | int] = []
    node = tree
    for part in key.split("."):
        if isinstance(node, list) and part.lstrip("-").isdigit():
            loc.append(int(part))
            node = node[int(part)] if -len(node) <= int(part) < len(node) else None
        else:
            loc.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    return tuple(loc)


def check_override(tree: dict, key: str, value: Any, *, era: str | None = None, file: str | None = None,
                   what: str = "override", shown: str | None = None, kinds: Kinds | None = None) -> None:
    """An override (or sweep value) ``key=value`` of a component arg fits the class: an arg it
    does not take, or a value of a kind it does not take, is one located error. ``tree``: the
    composed config (unresolved is enough); ``kinds``: what the arg takes as the config was
    typed when loaded (the class's, widened by what the config writes), else the class's;
    ``shown``: the value as the user wrote it. Typed nodes refuse a wrong value of an arg that
    takes one kind while Hydra composes; this catches the rest (``+`` args, args that take
    several kinds: ``int | list``), before anything trains."""
    era = era or detect_era(tree)
    loc = loc_of(tree, key.lstrip("+~"))
    found = spec_at(tree, loc, era)
    if found is None:
        return
    spec, arg = found
    where = clara(loc)
    if key.startswith("+") and not spec.takes(arg):  # (an arg the config writes is the builder's to judge)
        raise spec.no_argument(arg, where, file=file, note=f"{what} {key}")
    if kinds is None and era != "v3":
        kinds = spec.kinds.get(arg)
    if kinds is not None and not fits(kinds, value) and not _holds_components(value):
        raise takes_error(f"{spec.label}'s '{arg}'", kinds, shown if shown is not None else _short(value), where,
                          file=file, note=f"{what} {key}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def spec_at(tree: dict, loc: Loc, era: str) -> tuple[Spec, str] | None:
    """The spec and arg name of the component arg at ``loc`` (``...args.<arg>``), or None."""
    if len(loc) < 3 or loc[-2] != "args" or not isinstance(loc[-1], str):
        return None
    try:
        comp: Any = tree
        for part in loc[:-2]:
            comp = comp[part]
    except (KeyError, IndexError, TypeError):
        return None
    if not T.is_component(comp):
        return None
    return spec_of(comp, era), loc[-1]
