"""``keep_best`` (Clara's MMARHandler ``num_mmars_to_keep``): the N best trials keep their
folders whole; the others lose their heavy files (the checkpoints in ``models/``) as the sweep
goes. Config, log, TensorBoard events and the outcome stay, so trials.csv and the report still
describe every trial."""

from __future__ import annotations

import os
from pathlib import Path

from optuna.trial import TrialState

from .. import better
from . import protocol as P
from . import results

HEAVY_DIRS = ("models",)


def ranked(study) -> list:
    """Finished trials, best first: complete ones by value (the first objective of a
    multi-objective study), then pruned, then failed. A trial only ever moves down this order as
    trials finish, so one whose files were removed is never wanted back."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    complete = better.of_study(study).ranked(complete, lambda t: t.values[0])
    rest = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)) \
        + study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    return complete + rest


def trim(study, keep: int) -> list[int]:
    """Remove the heavy files of finished trials outside the ``keep`` best; gives the numbers of
    the trials whose files were removed now. A multi-objective study also keeps its whole Pareto
    front (a trial off the front never returns to it; a front ranked into ``keep`` places would
    drop a member that a later change of the front wants back)."""
    order = ranked(study)
    kept_dirs: set = set()
    for t in order:  # the best `keep` folders (a reused trial shares its twin's)
        if len(kept_dirs) >= keep:
            break
        kept_dirs.add(t.user_attrs.get(P.ATTR_JOB_DIR))
    keepers = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) + results.front(study)
    kept_dirs |= {t.user_attrs.get(P.ATTR_JOB_DIR) for t in keepers}
    removed = []
    for t in order:
        job_dir = t.user_attrs.get(P.ATTR_JOB_DIR)
        if not job_dir or job_dir in kept_dirs:  # a reused trial shares its twin's folder
            continue
        gone = False
        for sub in HEAVY_DIRS:
            folder = Path(job_dir) / sub
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*"), reverse=True):
                if path.is_file() or path.is_symlink():
                    path.unlink(missing_ok=True)
                    gone = True
                elif path.is_dir():
                    try:
                        os.rmdir(path)
                    except OSError:
                        pass
        if gone:
            removed.append(t.number)
    return removed
