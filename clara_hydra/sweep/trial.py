"""Which Optuna trial the current job runs for.

The sweeper hands it over two ways: in-process launchers (Hydra's basic launcher) find the live
trial in a registry; other processes (our GPU workers, a SLURM launcher) get its study, storage
and number through environment variables and reopen it from the storage. Outside a sweep there
is no trial and nothing is reported.
"""

from __future__ import annotations

import os
from typing import Any

from .protocol import ENV_PRUNER, ENV_STORAGE, ENV_STUDY, ENV_TRIAL

_REGISTRY: dict[tuple[str, int], Any] = {}


def register(study_name: str, trial) -> None:
    _REGISTRY[(study_name, trial.number)] = trial


def unregister(study_name: str, number: int) -> None:
    _REGISTRY.pop((study_name, number), None)


def in_this_process(trial) -> bool:
    """Is ``trial`` the live trial of an in-process launcher's job (its sweep process beats for it)?"""
    return any(t is trial for t in _REGISTRY.values())


def current():
    """The optuna Trial of this job, or None outside a sweep."""
    number = os.environ.get(ENV_TRIAL)
    study_name = os.environ.get(ENV_STUDY)
    if number is None or study_name is None:
        return None
    live = _REGISTRY.get((study_name, int(number)))
    if live is not None:
        return live
    storage = os.environ.get(ENV_STORAGE)
    if not storage:
        return None
    import json

    import optuna

    from . import upstream
    from .options import make_pruner
    from .storage import open_storage
    pruner = make_pruner(json.loads(os.environ[ENV_PRUNER])) if ENV_PRUNER in os.environ else None
    study = optuna.load_study(study_name=study_name, storage=open_storage(storage), pruner=pruner)
    for frozen in study.get_trials(deepcopy=False):
        if frozen.number == int(number):
            return upstream.live_trial(study, frozen)
    return None
