"""A Clara AutoML controller of your own (``"controller": {"path": ...}``) as an Optuna sampler.

The ``clara_controller`` sampler (``hydra/sweeper/sampler=clara_controller``) loads the class,
gives it the search space in Clara's form, queues the recommendations it makes and hands them to
the sweep's trials, one recommendation per trial; when a trial finishes its outcome goes back
through ``refine_recommendation``. The controller ends the search by asking ``ctx.stop_work``,
or by having no recommendation left when no trial is running. See :mod:`.defs` for the interface
and what was inferred of it.
"""

from __future__ import annotations

import collections
import os
import sys
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from ..better import MAXIMIZE, Goal
from ..errors import ClaraHydraError, first_line
from . import defs

SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim")


def load(path: str, dirs: list[str], where: str) -> Any:
    """Import ``module.Class`` as BYOC components are imported (the MMAR's folders, then installed
    packages), with Clara's ``automl`` package names available to it."""
    from ..train.names import import_path
    if SHIM not in sys.path:
        sys.path.append(SHIM)  # appended: an installed automl package wins
    try:
        return import_path(path, where, dirs)
    except ClaraHydraError:
        raise
    except Exception as exc:  # the user's module fails as it is imported
        raise ClaraHydraError(f"cannot import '{path}': {type(exc).__name__}: {first_line(exc)}",
                              location=where) from None


def prl_key(name: str, dist: BaseDistribution, domain: str | None) -> str:
    kind = "enum" if isinstance(dist, CategoricalDistribution) else "float"
    return f"{domain or 'param'}.{kind}:{name}"


def clara_space(dists: dict[str, BaseDistribution], domains: dict[str, str]) -> tuple[defs.SearchSpace, dict]:
    """Optuna's distributions in Clara's form: (the space, param name -> PRL key)."""
    targets: dict[str, list] = {}
    keys = {}
    for name, dist in dists.items():
        key = prl_key(name, dist, domains.get(name))
        keys[name] = key
        if isinstance(dist, CategoricalDistribution):
            targets[key] = list(dist.choices)
        elif isinstance(dist, (FloatDistribution, IntDistribution)):
            targets[key] = [defs.SearchRange(dist.low, dist.high)]
        else:  # pragma: no cover - Optuna has no other kind
            raise TypeError(type(dist).__name__)
    return defs.SearchSpace("clara_hydra", targets), keys


class ControllerSampler(optuna.samplers.BaseSampler):
    """Runs a Clara controller class; values it does not give are sampled at random."""

    clara_controller = True  # the sweeper asks it before starting a trial (see ``ready``)

    def __init__(self, path: str, args: dict | None = None, seed: int | None = None) -> None:
        self.path = path
        self.args = dict(args or {})
        self.seed = seed
        self.ctx = defs.Context()
        self._random_sampler = optuna.samplers.RandomSampler(seed=seed)  # (the name resume reseeds)
        self._queue: collections.deque = collections.deque()
        self._of_trial: dict[int, Any] = {}  # trial number -> its recommendation
        self._told: set[int] = set()
        self.controller: Any = None
        self.keys: dict[str, str] = {}
        self.space: defs.SearchSpace | None = None
        self.goal = Goal(MAXIMIZE)
        self.exhausted: str | None = None

    # -- set up by the sweeper --------------------------------------------------------------
    def start(self, dists: dict[str, BaseDistribution], domains: dict[str, str], dirs: list[str],
              goal: Goal, study: optuna.Study) -> None:
        """Load the controller, give it the space, take its initial recommendations. A resumed
        study's finished trials are not replayed to it (Clara's engine had no resume)."""
        self.goal = goal
        self.space, self.keys = clara_space(dists, domains)
        cls = load(self.path, dirs, "hydra.sweeper.sampler.path")
        try:
            self.controller = cls(**self.args)
            self.controller.set_search_space(self.space, self.ctx)
            self.ctx.set_prop(defs.ContextKey.SEARCH_SPACE, self.space)
            self._add(self.controller.initial_recommendation(self.ctx), "initial_recommendation")
        except ClaraHydraError:
            raise
        except Exception as exc:
            raise ClaraHydraError(f"the controller {self.path} failed: {type(exc).__name__}: {first_line(exc)}",
                                  location="hydra.sweeper.sampler") from None
        if not self._queue:
            self.exhausted = "the controller made no initial recommendation"
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)):
            self._told.add(t.number)  # a resumed study: the controller starts afresh (Clara had no resume)

    def _add(self, recs: Any, what: str) -> None:
        if recs is None:
            return
        if isinstance(recs, defs.Recommendation) or not isinstance(recs, (list, tuple)):
            recs = [recs]
        for rec in recs:
            if not hasattr(rec, "result") or not hasattr(getattr(rec, "result", None), "values"):
                raise ClaraHydraError(f"{what} of {self.path} returned {rec!r}, not a Recommendation",
                                      location="hydra.sweeper.sampler",
                                      hint="return Recommendation(rec_id, SearchResult(space, values)) objects")
            self._queue.append(rec)
        if recs:
            self.ctx.set_prop(defs.ContextKey.RECOMMENDATIONS, list(recs))

    def ready(self) -> bool:
        """Is there a recommendation for the next trial (and no stop asked)?"""
        if self.ctx.stop_requested and not self.exhausted:
            self.exhausted = self.ctx.stop_requested
        return not self.exhausted and bool(self._queue)

    # -- Optuna's sampler interface --------------------------------------------------------
    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return {}

    def before_trial(self, study, trial: FrozenTrial) -> None:
        if trial.number not in self._of_trial and self._queue:
            rec = self._queue.popleft()
            self._of_trial[trial.number] = rec

    def recommendation_of(self, number: int) -> Any:
        """The recommendation trial ``number`` runs (None: it was sampled at random)."""
        return self._of_trial.get(number)

    def sample_independent(self, study, trial, param_name: str, param_distribution: BaseDistribution) -> Any:
        rec = self._of_trial.get(trial.number)
        key = self.keys.get(param_name)
        values = rec.result.values if rec is not None else {}
        if key is None or key not in values:
            return self._random_sampler.sample_independent(study, trial, param_name, param_distribution)
        value = values[key]
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = value[0]
        dist = param_distribution
        try:
            if isinstance(dist, CategoricalDistribution):  # Clara's enum value: the choice's index
                if isinstance(value, bool) or float(value) != int(value) or not 0 <= int(value) < len(dist.choices):
                    raise ValueError(value)
                return dist.choices[int(value)]
            number = min(max(float(value), dist.low), dist.high)  # type: ignore[attr-defined]
            return int(round(number)) if isinstance(dist, IntDistribution) else number
        except (TypeError, ValueError, IndexError):
            raise ClaraHydraError(f"the controller {self.path} recommended {value!r} for {key}",
                                  location="hydra.sweeper.sampler",
                                  hint="an enum value is the choice's index; a float a number in the range") from None

    def after_trial(self, study, trial: FrozenTrial, state: TrialState, values) -> None:
        rec = self._of_trial.get(trial.number)
        if rec is None or trial.number in self._told or self.controller is None:
            return
        self._told.add(trial.number)
        outcome = defs.Outcome(rec.rec_id, score_of(trial, state, values, self.goal), status_of(state),
                               str(trial.number))
        self.ctx.set_prop(defs.ContextKey.OUTCOME, outcome)
        try:  # (inside study.tell: a failure here stops the search, it never leaves a trial unrecorded)
            self._add(self.controller.refine_recommendation(outcome, self.ctx), "refine_recommendation")
        except Exception as exc:
            self.exhausted = f"the controller failed: {first_line(exc)}"


def status_of(state: TrialState) -> defs.Status:
    """Clara's status of a finished trial."""
    return {TrialState.COMPLETE: defs.Status.OK, TrialState.PRUNED: defs.Status.PRUNED}.get(state, defs.Status.FAILED)


def score_of(trial: FrozenTrial, state: TrialState, values, goal: Goal) -> float:
    """Clara's score of a finished trial: its value (negated when minimized), the last reported
    value of a pruned one, FAILED_SCORE for a failure."""
    if state == TrialState.COMPLETE and values:
        value = float(values[0])
    elif state == TrialState.PRUNED and trial.intermediate_values:
        value = float(trial.intermediate_values[max(trial.intermediate_values)])
    else:
        return defs.FAILED_SCORE
    return goal.score(value)
