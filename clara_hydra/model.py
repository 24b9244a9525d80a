"""What the reader finds in a Clara config, as frozen values built complete by
:mod:`clara_hydra.reader`: search entries with their args, aliases, apply blocks, refs, and the
config they came from. ``space``, ``convert`` and ``resolve`` read these; nothing changes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .paths import Loc

#: What a search arg sets: a component's init arg, its ``@disabled`` attribute, or a first-level param.
ArgKind = Literal["arg", "attr", "param"]
SearchType = Literal["float", "int", "enum"]
SEARCH_TYPES: tuple[SearchType, ...] = ("float", "int", "enum")


@dataclass(frozen=True)
class ArgRef:
    """One entry of a search's ``args``: ``"name"``, ``"@disabled"``, either with ``"#alias"``."""

    written: str
    name: str
    alias: str | None
    kind: ArgKind
    target: Loc  # what it sets
    has_value: bool  # the config (or environment.json) writes a value for it
    value: Any = None


@dataclass(frozen=True)
class SearchEntry:
    """A search entry (in a component, at the top level, or ``lr_search``), its targets checked:
    ``low``/``high`` for float and int ranges, one list of values per option for enums."""

    loc: Loc
    component: Loc | None  # None: the top-level search
    domain: str | None
    type: SearchType
    targets: list[Any]
    args: tuple[ArgRef, ...]
    low: Any = None
    high: Any = None
    options: tuple[list[Any], ...] = ()

    def default_values(self) -> list[Any]:
        """Values a run that is not a sweep uses (SPEC: the written value, else the first
        enum option or ``low``)."""
        out = []
        for i, arg in enumerate(self.args):
            if arg.has_value:
                out.append(arg.value)
            elif self.type == "enum":
                out.append(self.options[0][i])
            else:
                out.append(self.low)
        return out


@dataclass(frozen=True)
class Apply:
    """``"apply": {"key": "name"}``: the component's ``key`` (or ``@disabled``) takes ``name``'s value."""

    loc: Loc  # the apply block's key
    component: Loc
    key: str
    target: Loc
    name: str


@dataclass(frozen=True)
class Ref:
    """``{"ref": "Name"}`` in validate, and the train component it names."""

    loc: Loc
    name: str
    target: Loc


@dataclass(frozen=True)
class ClaraConfig:
    file: str
    tree: dict
    env: dict
    env_file: str | None
    first_level: dict[str, Any]
    new_params: dict[str, Loc]  # introduced by the top-level search -> entry location
    entries: tuple[SearchEntry, ...]
    aliases: dict[str, tuple[SearchEntry, int]]
    applies: tuple[Apply, ...]
    refs: tuple[Ref, ...]
    components: tuple[Loc, ...]
    alternatives: tuple[Loc, ...]
    sections: tuple[str, ...]

    @property
    def names(self) -> set[str]:
        """Everything ``apply`` may name: aliases and first-level params."""
        return set(self.aliases) | set(self.first_level) | set(self.new_params)
