"""``keep_best`` (Clara's MMARHandler ``num_mmars_to_keep``): the N best trials keep their
folders whole; the others lose their heavy files (the checkpoints in ``models/``) as the sweep
goes. Config, log, TensorBoard events and the outcome stay, so trials.csv and the report still
describe every trial."""

from __future__ import annotations

import os
from pathlib import Path

from optuna.trial import TrialState

from . import protocol as P

HEAVY_DIRS = ("models",)


def ranked(study) -> list:
    """Finished trials, best first: complete ones by value (a multi-objective study: the Pareto
    front first, then by the first objective), then pruned, then failed."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    directions = study.directions
    sign = 1.0 if directions[0].name == "MAXIMIZE" else -1.0
    front = {t.number for t in study.best_trials} if len(directions) > 1 and complete else set()
    complete.sort(key=lambda t: (t.number not in front, -sign * t.values[0]))
    rest = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)) \
        + study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    return complete + rest


def trim(study, keep: int) -> list[int]:
    """Remove the heavy files of finished trials outside the ``keep`` best; gives the numbers of
    the trials whose files were removed now."""
    order = ranked(study)
    kept_dirs: set = set()
    for t in order:  # the best `keep` folders (a reused trial shares its twin's)
        if len(kept_dirs) >= keep:
            break
        kept_dirs.add(t.user_attrs.get(P.ATTR_JOB_DIR))
    kept_dirs |= {t.user_attrs.get(P.ATTR_JOB_DIR) for t in study.get_trials(deepcopy=False,
                                                                             states=(TrialState.RUNNING,))}
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
