"""What makes a study's trials comparable: its search space and direction(s).

A sweep records them on its study (a study system attribute: bookkeeping, kept out of the user
attributes that Optuna's dashboard and tools show; a study of an earlier version has it as a
user attribute, read as well); a later sweep that would add trials of another search space to the
same study is refused, so one study never mixes two spaces and never picks a "best" across them."""

from __future__ import annotations

import json
from typing import Any

from ..errors import StorageError
from . import upstream
from .storage import masked

ATTR = "clara_hydra_space"


def fingerprint(dists: dict, directions: list) -> dict:
    from optuna.distributions import distribution_to_json
    return {"params": {name: json.loads(distribution_to_json(d)) for name, d in sorted(dists.items())},
            "directions": [str(getattr(d, "name", d)).lower() for d in directions]}


def _describe(fp: dict) -> str:
    params = ", ".join(fp.get("params", {})) or "no params"
    return f"{params}; {'/'.join(fp.get('directions', []))}"


def check(study: Any, dists: dict, directions: list, storage: str | None) -> None:
    """Record the space on a new study; refuse a study that holds another space."""
    mine = fingerprint(dists, directions)
    theirs = upstream.study_system_attrs(study).get(ATTR, study.user_attrs.get(ATTR))
    if theirs is None:
        if study.get_trials(deepcopy=False):
            raise StorageError(
                f"study '{study.study_name}' already has trials that no clara-hydra sweep recorded a search space "
                f"for", file=masked(storage) if storage else "memory", location="hydra.sweeper.study_name",
                hint="give this sweep its own study: hydra.sweeper.study_name=NEW_NAME")
        upstream.set_study_system_attr(study, ATTR, mine)
        return
    if theirs != mine:
        changed = sorted(set(theirs.get("params", {})) ^ set(mine["params"])) or \
            [n for n in mine["params"] if theirs["params"].get(n) != mine["params"][n]] or ["direction"]
        raise StorageError(
            f"study '{study.study_name}' holds trials of another search space (it has: {_describe(theirs)}; this "
            f"sweep: {_describe(mine)}; differs in {', '.join(changed)})",
            file=masked(storage) if storage else "memory",
            location="hydra.sweeper.study_name",
            hint="give this sweep its own study (hydra.sweeper.study_name=NEW_NAME) or storage "
                 "(hydra.sweeper.storage=...)")
