"""The clara_optuna sweeper's work: built on hydra-optuna-sweeper's pieces (its params grammar,
distributions and trial overrides, reached through :mod:`clara_hydra.sweep.upstream`), Optuna's
public study API and Hydra's launchers. Imported only when a sweep starts."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from optuna.trial import TrialState

from clara_hydra import better, faults, procs
from clara_hydra.errors import ClaraHydraError, SweepError, first_line
from clara_hydra.logs import notice, warn
from clara_hydra.paths import config_dirs
from clara_hydra.space import active, count_combinations
from clara_hydra.sweep import identity, liveness, results, upstream
from clara_hydra.sweep import trial as trial_ctx
from clara_hydra.sweep.options import make_pruner, parse_workers, with_startup
from clara_hydra.sweep.protocol import (
    ATTR_DURATION,
    ATTR_HOST,
    ATTR_JOB_DIR,
    ATTR_OBJECTIVES,
    ATTR_PID,
    ATTR_RECOMMENDATION,
    ATTR_RESUMABLE,
    ATTR_WORKER_PID,
    ENV_CACHE_DIR,
    ENV_HEARTBEAT,
    ENV_NPROC,
    ENV_OBJECTIVES,
    ENV_PRUNER,
    ENV_RESULT,
    ENV_STORAGE,
    ENV_STUDY,
    ENV_TRIAL,
    ENV_TRIAL_TIMEOUT,
    INTERRUPTED,
    KEY_METRIC,
    RESULT_FILE,
    RESUMABLE,
    TRAIN_TIME,
    outcome_file,
    read_outcome,
    resume_epoch,
    resume_file,
)
from clara_hydra.sweep.protocol import ATTR_REASON as REASON
from clara_hydra.sweep.storage import absolute, masked, open_storage, retrying

LAUNCHER_LOGGERS = ("hydra._internal.core_plugins.basic_launcher",
                    "hydra_plugins.hydra_submitit_launcher.submitit_launcher")


class _HidePlumbing(logging.Filter):
    """Drop the sweeper's internal overrides (job environment, job folder) from launch lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "hydra." in record.msg:
            record.msg = re.sub(r" ?\+\+hydra\.job\.env_set\.CLARA_HYDRA_\w+=(?:'(?:[^'\\]|\\.)*'|\S+)|"
                                r" ?hydra\.sweep\.subdir=\S+", "", record.msg)
        return True


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class ClaraOptunaSweeperImpl:
    def __init__(self, *, sampler: Any, direction: Any, storage: Any, study_name: str | None, n_trials: int,
                 n_jobs: int, max_failure_rate: float, custom_search_space: str | None, params: DictConfig | None,
                 pruner: Any = "median", workers: int | str | None = None, study_trials: int | None = None,
                 finite_space: str = "enumerate", trial_timeout: float | None = None,
                 timeout: float | None = None, objectives: Any = None, stop_threshold: float | None = None,
                 keep_best: int | None = None, tensorboard: bool = False, handlers: Any = None,
                 remove_search_augs: bool = False, startup_trials: Any = "auto", export_best: bool = True,
                 heartbeat_interval: float = liveness.DEFAULT_INTERVAL,
                 grace_period: float = liveness.DEFAULT_GRACE) -> None:
        self.pruner_spec = OmegaConf.to_container(pruner) if isinstance(pruner, DictConfig) else pruner
        self.workers = workers
        self.study_trials = study_trials
        if finite_space not in ("enumerate", "sample"):
            raise ClaraHydraError(f"finite_space must be enumerate or sample, got {finite_space!r}",
                                  location="hydra.sweeper.finite_space",
                                  hint="set hydra.sweeper.finite_space=enumerate (each combination once) or sample")
        self.finite_space = finite_space
        for key, limit in (("trial_timeout", trial_timeout), ("timeout", timeout)):
            if limit is not None and not limit > 0:
                raise ClaraHydraError(f"{key} must be a number of seconds > 0, or null; got {limit!r}",
                                      location=f"hydra.sweeper.{key}", hint=f"set hydra.sweeper.{key}=3600 (or null)")
        self.trial_timeout = trial_timeout
        self.timeout = timeout
        for key, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ClaraHydraError(f"{key} must be a number of seconds > 0, got {value!r}",
                                      location=f"hydra.sweeper.{key}", hint=f"set hydra.sweeper.{key}=<seconds>")
        if grace_period <= 2 * heartbeat_interval:
            raise ClaraHydraError(f"grace_period ({grace_period:g}s) must be more than twice heartbeat_interval "
                                  f"({heartbeat_interval:g}s): a live trial could pass for dead between two beats",
                                  location="hydra.sweeper.grace_period",
                                  hint=f"set hydra.sweeper.grace_period={max(3 * heartbeat_interval, 120):g}")
        self.heartbeat_interval, self.grace = float(heartbeat_interval), float(grace_period)
        self.objectives = _objectives(objectives, direction)
        if keep_best is not None and (isinstance(keep_best, bool) or not isinstance(keep_best, int) or keep_best < 1):
            raise ClaraHydraError(f"keep_best must be a whole number >= 1, or null; got {keep_best!r}",
                                  location="hydra.sweeper.keep_best", hint="set hydra.sweeper.keep_best=30 (or null)")
        if stop_threshold is not None and not math.isfinite(stop_threshold):
            raise ClaraHydraError(f"stop_threshold must be a finite number, or null; got {stop_threshold!r}",
                                  location="hydra.sweeper.stop_threshold",
                                  hint="set hydra.sweeper.stop_threshold=0.9 (the key metric to stop at), or null")
        self.stop_threshold = stop_threshold
        self.keep_best = keep_best
        self.tensorboard = bool(tensorboard)
        self.handler_specs = _handler_specs(handlers)
        self.remove_search_augs = bool(remove_search_augs)
        self.export_best = bool(export_best)
        self.pruner = _validate(n_trials, n_jobs, max_failure_rate, study_trials, workers, self.pruner_spec,
                                direction)
        sampler, self.startup = with_startup(sampler, startup_trials,
                                             study_trials if study_trials is not None else n_trials)
        sampler_seed = sampler.get("seed") if hasattr(sampler, "get") else None
        if sampler_seed is not None and (isinstance(sampler_seed, bool) or not isinstance(sampler_seed, int)
                                         or not 0 <= sampler_seed < 2**32):
            raise ClaraHydraError(f"the sampler's seed must be a whole number from 0 to 2**32 - 1, got "
                                  f"{sampler_seed!r}", location="hydra.sweeper.sampler.seed",
                                  hint="set hydra.sweeper.sampler.seed=123 (or null: a new seed each run)")
        sampler = instantiate(sampler, _execution_whitelist_=("hydra_plugins.hydra_optuna_sweeper.*",
                                                               "optuna.samplers.*",
                                                               "clara_hydra.automl.controller.*"))
        self.impl = upstream.stock_sweeper(sampler, direction, storage, study_name, n_trials, n_jobs,
                                           max_failure_rate, custom_search_space, params)
        self.seed = sampler_seed

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.impl.setup(hydra_context=hydra_context, task_function=_NoExit(task_function), config=config)
        if self.impl.launcher is None:  # pragma: no cover - Hydra's setup always makes one
            raise RuntimeError("Hydra gave the sweeper no launcher")
        self.launcher = self.impl.launcher
        self.config = config
        optuna.logging.disable_default_handler()  # Optuna's lines in the run's one log format
        optuna.logging.enable_propagation()
        for name in LAUNCHER_LOGGERS:  # the user's overrides in "#N : ..." lines, not our plumbing
            logger = logging.getLogger(name)
            if not any(isinstance(f, _HidePlumbing) for f in logger.filters):
                logger.addFilter(_HidePlumbing())

    # ------------------------------------------------------------------------------ sweep
    def sweep(self, arguments: list[str]) -> None:
        self.started = time.time()  # the sweep's time limit counts from here
        self.said_out_of_time = False
        impl = self.impl
        try:
            dists, fixed_params, fixed_overrides = upstream.search_space(impl, arguments)
        except ClaraHydraError:
            raise
        except Exception as exc:  # interval(1, 0), choice() ...: the user's sweep expression
            raise ClaraHydraError(f"a sweep parameter cannot be made: {first_line(exc)}",
                                  location="hydra.sweeper.params",
                                  hint="write choice(a, b, ...), interval(low, high) or int(interval(low, high)) "
                                       "with low <= high") from None
        self.dists, self.fixed_params, self.fixed_overrides = dists, fixed_params, fixed_overrides
        meta: Any = OmegaConf.to_container(self.config.clara_hydra.params) \
            if "clara_hydra" in self.config and "params" in self.config.clara_hydra else {}
        self.param_meta: dict = meta  # what the converter recorded of each param (domain, when)
        self.conditions = self._read_conditions(dists)
        self._check_values(dists, fixed_params, fixed_overrides)
        try:
            grid: dict[str, list] | None = upstream.grid(dists)
        except ValueError as exc:  # a continuous range
            grid, continuous = None, exc
        combinations = count_combinations(grid, self.conditions, fixed_params) if grid is not None else None
        grid_size = None  # set when each combination runs once: n_trials is capped at what is left
        if upstream.is_deferred_grid(impl.sampler):
            if grid is None:
                raise ClaraHydraError(f"the grid sampler needs a finite search space: {first_line(continuous)}",
                                      location="hydra.sweeper.params",
                                      hint="give each range a step (int(interval(a, b)), choice(...)), or use "
                                           "another sampler (hydra/sweeper/sampler=tpe)") from None
            # the grid walks every point of the product, also those that differ only in a param a
            # condition leaves out (reused, not trained): its cap is the whole product
            impl.sampler, grid_size = impl.sampler(grid), math.prod(len(v) for v in grid.values())
        elif grid is not None and dists and self.finite_space == "enumerate" and not _log_range(dists) \
                and not getattr(impl.sampler, "clara_controller", False) \
                and _enumerates(self.config):  # (a controller of your own decides; a sampler you name samples)
            impl.sampler, grid_size = _brute_force(self.seed), combinations
            notice(f"the search space is finite ({grid_size} combination(s)): each runs once, then the sweep "
                   f"stops (hydra.sweeper.finite_space=sample keeps the configured sampler)")
        directions = upstream.directions(impl)
        if len(directions) > 1 and self.objectives is None and "clara_hydra" in self.config:
            raise ClaraHydraError(f"{len(directions)} directions, but a Clara config's run returns one value "
                                  f"(its key metric) unless told which ones", location="hydra.sweeper.objectives",
                                  hint="name one value per direction, e.g. hydra.sweeper.direction=[maximize,"
                                       "minimize] hydra.sweeper.objectives=[key_metric,train_time]")
        self._check_objective_names()
        self.key_goal = better.key_direction(directions, self.objectives, self._key_names())
        self.storage_spec = absolute(impl.storage)
        storage = open_storage(self.storage_spec)
        study = retrying(lambda: optuna.create_study(
            study_name=impl.study_name, storage=storage, sampler=impl.sampler, pruner=self.pruner,
            directions=directions, load_if_exists=True), what=str(self.storage_spec))
        self.study = study
        identity.check(study, dists, directions, impl.storage)
        stored = study.user_attrs.get(ATTR_OBJECTIVES)
        if stored is not None and self.objectives is not None and list(stored) != self.objectives \
                and study.get_trials(deepcopy=False):
            raise ClaraHydraError(f"study '{study.study_name}' holds trials of the objectives {stored}, not "
                                  f"{self.objectives}", location="hydra.sweeper.objectives",
                                  hint="give this sweep its own study: hydra.sweeper.study_name=NEW_NAME")
        if self.objectives is not None:
            study.set_user_attr(ATTR_OBJECTIVES, self.objectives)  # for `clara-hydra report`
        self.sweep_dir = Path(str(self.config.hydra.sweep.dir))
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        # liveness (a persistent storage: other processes may share the study): this process beats for
        # itself and the trials it holds; the in-memory study is this process's alone
        self.beater = liveness.Beater(study, self.heartbeat_interval, sweep=True).start() if self.storage_spec \
            else None
        self.to_resume: list = []
        self.resumed_after_death: dict[int, int] = {}  # trial number -> resumes after its worker died
        self.checked = 0.0
        marked = self._recover(study)
        self.stop_reason: str | None = None
        self._start_engine(study, dists, directions)
        done = [t for t in study.get_trials(deepcopy=False)
                if t.state in FINISHED and not str(t.user_attrs.get(REASON, "")).startswith(INTERRUPTED)]
        to_go = impl.n_trials
        if self.study_trials is not None:
            to_go = max(0, min(to_go, int(self.study_trials) - len(done)))
        if grid_size is not None:  # as the stock sweeper: a grid runs each combination once, then stops
            to_go = max(0, min(to_go, grid_size - len(done)))
        if study.get_trials(deepcopy=False):
            _reseed(study.sampler, len(study.get_trials(deepcopy=False)), self.seed)  # no replay of samples
        where = masked(impl.storage) if impl.storage else "memory"
        notice(f"study '{study.study_name}' in {where}: {len(done)} finished trial(s)"
                 + (f", {marked} interrupted one(s) marked failed" if marked else "")
                 + (f", {len(self.to_resume)} interrupted one(s) to resume" if self.to_resume else "")
                 + f"; this run: {to_go} trial(s)"
                 + (f" (study_trials={self.study_trials})" if self.study_trials is not None else "")
                 + (f" ({grid_size} combination(s) in all)" if grid_size is not None else "")
                 + (f"; TPE models the results after {self.startup} random start-up trial(s) (startup_trials)"
                    if self.startup is not None and isinstance(study.sampler, optuna.samplers.TPESampler) else ""))
        self.failed = 0
        self.first_error: str | None = None  # the first failure's cause: the failure-rate stop names it
        self.finished = 0
        self.completed = 0
        if to_go:
            previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
            try:
                if self.workers is not None:
                    self._run_workers(to_go)
                else:
                    self._run_launcher(to_go)
            finally:
                signal.signal(signal.SIGTERM, previous)
                self.events.fire("shutdown")
                if self.beater is not None:
                    self.beater.stop()
        else:
            self.events.fire("shutdown")
            if self.beater is not None:
                self.beater.stop()
        self._write()
        best = results.best(study)
        if best is not None:
            notice(f"best trial: #{best.number}, value {best.value:.4f}, {results.format_params(best.params)}; "
                   f"results in {self.sweep_dir}")
            if self.export_best and "clara_hydra" in self.config:
                self._export_best(best)
        for t in results.front(study):
            notice(f"Pareto front: trial #{t.number}, {results.format_values(t.values, self.objectives)}, "
                   f"{results.format_params(t.params)}")
        if to_go and self.completed == 0 and not (self.stop_reason and self.finished == 0):
            raise SweepError(f"no trial completed: {self.finished} ran, {self.failed} failed, "
                             f"{self.finished - self.failed - self.completed} pruned", location="hydra.sweeper",
                             hint=f"see the reasons in {self.sweep_dir / 'trials.csv'}")

    def _export_best(self, best) -> None:
        """The best trial as a complete MMAR in ``<sweep dir>/best_mmar`` (clara-hydra export); a
        failure is a warning: the sweep's results stand."""
        from clara_hydra.export import export
        job_dir = best.user_attrs.get(ATTR_JOB_DIR)
        out = self.sweep_dir / "best_mmar"
        if not job_dir or not os.path.isdir(job_dir):
            warn(f"the best trial's folder is not here ({job_dir or 'not recorded'}): no best_mmar; export it where "
                 f"it is: clara-hydra export DIR -o best_mmar")
            return
        try:
            notes = export(job_dir, str(out), force=True, remove_disabled=self.remove_search_augs)
        except Exception as exc:  # noqa: BLE001 - the sweep's results stand; the line says why
            warn(f"the best trial was not exported as an MMAR: {first_line(exc)} (clara-hydra export {job_dir} "
                 f"-o DIR tries again)")
            return
        ts = next((n for n in notes if n.startswith("models/model.ts")), "")
        notice(f"the best trial as an MMAR: {out} (validate, infer or finetune it: clara-hydra validate --mmar "
               f"{out}); {ts}")

    def _recover(self, study, *, periodic: bool = False) -> int:
        """RUNNING trials whose process is dead (:mod:`clara_hydra.sweep.liveness`: no heartbeat for
        grace_period, wherever they ran; at once where their process on this host is gone), left by a
        crash, kill -9, a stop or a dead node: one whose job wrote its outcome is told it; one that
        saved a resume point after an epoch is resumed by this run (first, before new trials: same
        number, same params); any other is failed, reason ``interrupted``. A trial that beats is never
        touched. Gives the number failed."""
        marked = 0
        self.checked = time.time()
        if self.beater is None:
            return 0  # an in-memory study: no other process, nothing left by one
        held = {t.number for t in self.to_resume} | set(self.beater.trials)
        others = liveness.sweeps_alive(study, self.grace)
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.number in held:
                continue
            why = liveness.dead(t, self.grace, others_alive=others)
            if why is None:
                continue  # it beats: another process (of this host or another) runs it
            job_dir = t.user_attrs.get(ATTR_JOB_DIR)
            outcome = read_outcome(outcome_file(job_dir), study=study.study_name, trial=t.number) if job_dir else None
            try:
                if outcome is not None:
                    if liveness.claim(job_dir, t, self.grace):
                        self._tell_recovered(study, t, outcome)
                    continue
                if job_dir and os.path.isfile(resume_file(job_dir)):
                    if not liveness.claim(job_dir, t, self.grace):
                        continue  # another sweep process took it over
                    trial = upstream.live_trial(study, t)
                    trial.set_user_attr(ATTR_PID, os.getpid())  # this run owns it now
                    trial.set_user_attr(ATTR_HOST, liveness.host())
                    self.beater.add(trial)
                    self.to_resume.append(trial)
                    if periodic:  # (at the start, the sweep's first line counts them)
                        notice(f"trial #{t.number}: {why}: resuming it from its last epoch")
                    continue
                upstream.fail_orphan(study, t, REASON, f"{INTERRUPTED} ({why})")
                marked += 1
            except Exception:  # another process recovered it first: it is not RUNNING any more
                if upstream.stored_trial(study, t).state == TrialState.RUNNING:
                    raise
        return marked

    def _tell_recovered(self, study, frozen, outcome: dict) -> None:
        """Tell a dead trial the outcome its job wrote before the sweep could tell it."""
        trial = upstream.live_trial(study, frozen)
        reason = outcome.get("reason")
        if reason:
            trial.set_user_attr(REASON, str(reason)[:500])
        if outcome["state"] == "complete":
            value, problem = _values(outcome.get("value"), len(study.directions), self.objectives)
            if problem is None:
                _tell(study, trial, values=value)
                notice(f"trial #{frozen.number}: told the outcome its job wrote before the sweep stopped")
                return
            trial.set_user_attr(REASON, problem[:500])
        _tell(study, trial, state=TrialState.PRUNED if outcome["state"] == "pruned" else TrialState.FAIL)

    def _recheck(self) -> None:
        """Every heartbeat interval of a running sweep: trials of the study that died since (on any
        host) are recovered, their resumable ones resumed by this sweep."""
        if self.beater is None or time.time() - self.checked < self.heartbeat_interval:
            return
        marked = self._recover(self.study, periodic=True)
        if marked:
            notice(f"{marked} trial(s) of the study found dead (no heartbeat): marked failed")
            self._write()

    def _next(self):
        """(trial, overrides, job folder, resumed) of the next job: an interrupted trial to resume,
        else a new trial."""
        if not self.to_resume:
            return (*self._ask(), False)
        trial = self.to_resume.pop(0)
        overrides = upstream.trial_overrides(self.impl, trial, self._active(trial), self.fixed_params,
                                             self.fixed_overrides)
        job_dir = Path(trial.user_attrs[ATTR_JOB_DIR])
        epoch = resume_epoch(str(job_dir))
        notice(f"trial #{trial.number}: resuming it in {job_dir} (interrupted after epoch "
               f"{epoch if epoch is not None else '?'})")
        return trial, overrides, job_dir, True

    def _ask(self):
        trial = self.study.ask()
        faults.point("after_ask", trial.number)
        try:
            if self.beater is not None:
                self.beater.add(trial)  # it beats from now on: alive to every sweep process of the study
            return self._prepare(trial)
        except BaseException as exc:  # e.g. a controller's value that fits no distribution
            trial.set_user_attr(REASON, first_line(exc)[:500])
            _tell(self.study, trial, state=TrialState.FAIL)
            raise

    def _prepare(self, trial):
        trial.set_user_attr(ATTR_PID, os.getpid())
        trial.set_user_attr(ATTR_HOST, os.uname().nodename)
        overrides = upstream.trial_overrides(self.impl, trial, self._active(trial), self.fixed_params,
                                             self.fixed_overrides)
        job_dir = self.sweep_dir / str(trial.number)
        trial.set_user_attr(ATTR_JOB_DIR, str(job_dir))
        rec = self._controller().recommendation_of(trial.number) if self._controller() is not None else None
        if rec is not None:
            trial.set_user_attr(ATTR_RECOMMENDATION, str(rec.rec_id))
        return trial, overrides, job_dir

    def _active(self, trial) -> dict:
        """The params this trial samples: a conditional one (``clara_hydra.params.X.when``: it sets
        a component that another param switches off) only where its controlling param enables it,
        sampled first (Optuna's define-by-run); an absent one keeps the config's value, unused."""
        names = active(list(self.dists), self.conditions, self.fixed_params,
                       lambda name: upstream.suggest(trial, name, self.dists[name]))
        return {name: self.dists[name] for name in names}

    def _check_objective_names(self) -> None:
        """An objective a Clara config's validation cannot give is one line before any trial trains
        (not a failure of every trial after it trained)."""
        if self.objectives is None or "clara_hydra" not in self.config or "validate" not in self.config:
            return
        from clara_hydra.errors import did_you_mean
        from clara_hydra.tree import validation_metric_names
        known = sorted(validation_metric_names(OmegaConf.to_container(self.config.validate, resolve=False)))
        names = [KEY_METRIC, TRAIN_TIME, *known]
        for name in self.objectives:
            if name not in names:
                raise ClaraHydraError(f"no objective '{name}': the config's validation has no such metric",
                                      location="hydra.sweeper.objectives",
                                      hint=did_you_mean(name, names) + "known: " + ", ".join(names))

    def _key_names(self) -> tuple[str, ...]:
        """The names an objective may give the key metric: key_metric, and the metric's own label."""
        label = None
        if "clara_hydra" in self.config and "validate" in self.config:
            label = better.key_label({"validate": OmegaConf.to_container(self.config.validate, resolve=False)})
        return (KEY_METRIC,) + ((label,) if label else ())

    def _check_values(self, dists: dict, fixed_params: dict, fixed_overrides: list) -> None:
        """Every value the sweep may give (a choice, a range's ends, a fixed value) fits its param,
        and every fixed override its component arg: one line before any trial starts."""
        from clara_hydra.typed import check_overrides, check_sweep
        values: dict[str, list] = {name: [value] for name, value in fixed_params.items()}
        for name, dist in dists.items():
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                values[name] = list(dist.choices)
            elif isinstance(dist, (optuna.distributions.FloatDistribution, optuna.distributions.IntDistribution)):
                values[name] = [dist.low, dist.high]
        for name, dist in dists.items():
            ends = (dist.low, dist.high) if hasattr(dist, "low") else (0, 0)
            if not all(math.isfinite(v) for v in (*ends, ends[1] - ends[0])):
                raise ClaraHydraError(f"the range of '{name}' must have finite ends (and a finite width), got "
                                      f"[{ends[0]}, {ends[1]}]", location=name,
                                      hint="write interval(low, high) with finite numbers")
        check_sweep(self.config, values)
        swept = {name.lstrip("+") for name in values}  # (their values are checked above)
        plain = [o for o in list(self.config.hydra.overrides.task) + list(fixed_overrides)
                 if str(o).split("=", 1)[0].lstrip("+") not in swept]
        check_overrides(self.config, plain)
        self._check_composes(dists, fixed_params, fixed_overrides)

    def _check_composes(self, dists: dict, fixed_params: dict, fixed_overrides: list) -> None:
        """A job's config composes (every key the sweep sets is the config's, or added with ``+``):
        refused here, before the study is opened, not as a failed trial that would record this
        search space in the study."""
        from clara_hydra.resolve import override_error
        absent = object()
        if all(name.startswith("+") or OmegaConf.select(self.config, name, default=absent) is not absent
               for name in (*dists, *fixed_params)) and not fixed_overrides:
            return  # every key is the config's: it composes (composing costs a second on a large config)
        first = {name: dist.choices[0] if isinstance(dist, optuna.distributions.CategoricalDistribution)
                 else dist.low for name, dist in dists.items()}
        overrides = [f"{name}={value}" for name, value in {**first, **fixed_params}.items()] + list(fixed_overrides)
        context = self.impl.hydra_context
        if context is None:  # pragma: no cover - Hydra's setup always gives one
            return
        try:
            context.config_loader.load_sweep_config(self.config, overrides)
        except ClaraHydraError:
            raise
        except Exception as exc:
            raise override_error(exc, overrides, None) from None

    def _read_conditions(self, dists: dict) -> dict:
        """The conditions the converter recorded (``clara_hydra.params.X.when``) for this sweep's params."""
        from clara_hydra.space import Condition
        out = {}
        for name, m in self.param_meta.items():
            when = (m or {}).get("when")
            if name in dists and isinstance(when, dict) and when.get("param") in set(dists) | set(self.fixed_params):
                out[name] = Condition(str(when["param"]), tuple(str(x) for x in when.get("in") or ()))
        return out

    # -- Clara's AutoML engine: a controller of your own, handlers, stop rules --------------
    def _controller(self):
        """The sampler, when it runs a Clara controller of your own."""
        return self.impl.sampler if getattr(self.impl.sampler, "clara_controller", False) else None

    def _space(self):
        controller = self._controller()
        return controller.space if controller is not None else None

    def _start_engine(self, study, dists: dict, directions: list) -> None:
        from clara_hydra.automl.handlers import Events
        domains = {str(name): str((m or {}).get("domain") or "param") for name, m in self.param_meta.items()}
        dirs = self._byo_dirs()
        controller = self._controller()
        if controller is not None:
            controller.start(dists, domains, dirs, goal=better.of_study(study), study=study)
        self.events = Events(self.handler_specs, dirs, dists, domains,
                             ctx=controller.ctx if controller is not None else None)
        self.events.fire("startup")
        # a resumed study may have reached the stop threshold already
        self._check_threshold(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    def _check_threshold(self, complete: list) -> None:
        """MMARHandler's stop_threshold: the first of these complete trials whose (first) value
        reaches it stops the sweep."""
        if self.stop_threshold is None or self.stop_reason:
            return
        goal = better.of_study(self.study)
        for t in complete:
            value = t.values[0] if t.values else None
            if value is not None and goal.reached(value, self.stop_threshold):
                self.stop_reason = (f"trial #{t.number} reached stop_threshold={self.stop_threshold:g} "
                                    f"(value {value:.4f})")
                notice(f"the sweep stops: {self.stop_reason}")
                return

    def _byo_dirs(self) -> list[str]:
        """Where a controller or handler of your own is looked for: the converted config's Clara
        JSON's folder, its MMAR root and their custom/ folders, and the current folder."""
        from clara_hydra.paths import search_dirs, source_file
        source = str(self.config.clara_hydra.get("source") or "") if "clara_hydra" in self.config else ""
        found = source_file(source, config_dirs(self.config.hydra.runtime.config_sources)) if source else None
        return search_dirs(found) + [os.getcwd()]

    def _stopping(self, *, running: bool) -> bool:
        """No new trial: the stop threshold was reached, or the controller asked to stop or has
        nothing to recommend (while trials run it may still: then it waits)."""
        if self.stop_reason:
            return True
        if self.events.ctx.stop_requested:  # a handler (or the controller) called ctx.stop_work
            self.stop_reason = self.events.ctx.stop_requested
            notice(f"the sweep stops: {self.stop_reason}")
            return True
        controller = self._controller()
        if controller is None or controller.ready():
            return False
        if controller.exhausted or not running:  # (while trials run, the controller may still recommend)
            self.stop_reason = controller.exhausted or "the controller has no recommendation left"
            notice(f"the sweep stops: {self.stop_reason}")
        return True

    def _after_tell(self, trial, state: TrialState) -> None:
        from clara_hydra.automl.controller import score_of, status_of
        stored = upstream.stored_trial(self.study, trial)
        self.events.job_ended(trial.number, stored.params, score_of(stored, state, stored.values,
                                                                    better.of_study(self.study)), status_of(state))
        if self.tensorboard and state == TrialState.COMPLETE and stored.values:
            from clara_hydra.sweep import hparams
            try:
                hparams.write(stored.user_attrs.get(ATTR_JOB_DIR, str(self.sweep_dir / str(trial.number))),
                              stored.params, list(stored.values), self.objectives or ["value"])
            except Exception as exc:  # TensorBoard is a view, not the sweep's result
                notice(f"warning: trial #{trial.number}: no TensorBoard HParams written: {first_line(exc)}")
        if self.keep_best is not None:
            from clara_hydra.sweep import keep
            for number in keep.trim(self.study, self.keep_best):
                notice(f"trial #{number}: checkpoints removed (not among the {self.keep_best} best; keep_best)")
        if state == TrialState.COMPLETE:
            self._check_threshold([stored])

    def _reuse(self, trial) -> bool:
        """A trial whose values a finished trial of the study already trained is not trained again:
        it completes with that trial's value, recorded as reused (any sampler may propose a finished
        combination again; on a finite space TPE does it often)."""
        twins = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if t.params == trial.params and t.number != trial.number]
        if not twins:
            return False
        twin = better.of_study(self.study).ranked(twins, lambda t: t.values[0])[0]  # (twins that differ: the best)
        trial.set_user_attr(ATTR_JOB_DIR, twin.user_attrs.get(ATTR_JOB_DIR, ""))
        self.events.job_started(trial.number, trial.params, self._space())  # (a job whose outcome is known)
        self._tell(trial, "complete", value=twin.values if len(twin.values) > 1 else twin.value,
                   reason=f"reused: the same values as trial #{twin.number}", started=time.time())
        return True

    def _env(self, trial) -> dict[str, str]:
        env = {ENV_TRIAL: str(trial.number), ENV_STUDY: self.study.study_name,
               ENV_CACHE_DIR: str(self.sweep_dir / ".data_cache")}
        if self.storage_spec:
            env[ENV_STORAGE] = str(self.storage_spec)
        if self.trial_timeout is not None:
            env[ENV_TRIAL_TIMEOUT] = repr(float(self.trial_timeout))
        env[ENV_PRUNER] = json.dumps(self.pruner_spec)
        if self.objectives is not None:
            env[ENV_OBJECTIVES] = json.dumps(self.objectives)
        if self.beater is not None:  # a job in another process beats for its trial
            env[ENV_HEARTBEAT] = repr(self.heartbeat_interval)
        if self.key_goal is not None:  # what "better" is for the job's key metric (its best value, checkpoint)
            env[better.ENV_DIRECTION] = self.key_goal.direction
        return env

    def _write(self) -> None:
        results.write_all(self.study, self.sweep_dir, list(self.dists), self.objectives,
                          remove_search_augs=self.remove_search_augs)

    # -- through Hydra's launcher (in-process by default; SLURM with submitit) ---------------
    def _run_launcher(self, to_go: int) -> None:
        """Batches of n_jobs trials through Hydra's launcher (in-process by default; a SLURM array
        with hydra-submitit-launcher). Each job's folder is its trial number."""
        launcher = self.launcher
        while to_go > 0 and not self._out_of_time() and not self._stopping(running=False):
            self._recheck()
            batch: list[tuple[Any, list[str]]] = []
            while len(batch) < max(1, int(self.impl.n_jobs)) and to_go > 0 and not self._stopping(running=bool(batch)):
                trial, overrides, job_dir, resumed = self._next()
                to_go -= 1
                if not resumed and self._reuse(trial):
                    continue
                overrides += [f"++hydra.job.env_set.{k}={_quote(v)}" for k, v in self._env(trial).items()]
                overrides += [f"hydra.sweep.dir={_quote(str(job_dir.parent))}", f"hydra.sweep.subdir={job_dir.name}"]
                Path(outcome_file(str(job_dir))).unlink(missing_ok=True)  # never an earlier run's outcome
                trial_ctx.register(self.study.study_name, trial)
                self.events.job_started(trial.number, trial.params, self._space())
                batch.append((trial, overrides))
            if not batch:
                continue
            start = time.time()
            try:
                returns = launcher.launch([ov for _, ov in batch], initial_job_idx=batch[0][0].number)
            except BaseException:  # Ctrl-C, SIGTERM, a launcher failure: never leave a trial RUNNING
                for trial, _ in batch:
                    self._interrupted(trial)
                self._write()
                raise
            finally:
                for trial, _ in batch:
                    trial_ctx.unregister(self.study.study_name, trial.number)
            for (trial, _), ret in zip(batch, returns):
                if ret.status == JobStatus.COMPLETED:
                    self._tell(trial, "complete", value=ret.return_value, started=start)
                else:
                    exc = upstream.job_exception(ret)
                    if isinstance(exc, optuna.TrialPruned):
                        self._tell(trial, "pruned", reason=str(exc), started=start)
                    else:
                        self.first_error = self.first_error or f"{type(exc).__name__}: {first_line(exc)}"
                        self._tell(trial, "fail", reason=first_line(exc), started=start)
            self._check_failure_rate()

    # -- Clara's workers: asynchronous subprocesses, each with its own GPUs -----------------
    def _run_workers(self, to_go: int) -> None:
        slots = parse_workers(self.workers)
        if not self.storage_spec:
            raise ClaraHydraError("workers need a persistent storage, so that worker processes can report to "
                                  "their trials; storage is null", location="hydra.sweeper.storage",
                                  hint="set hydra.sweeper.storage=sqlite:///clara_hydra_sweeps.db (or "
                                       "postgresql://..., journal:PATH)")
        cuda = _cuda_count() > 0
        if not cuda:
            size = max(len(s) for s in slots)
            notice(f"no CUDA: running {len(slots)} CPU worker(s)" + (", a trial of several GPUs in as many CPU "
                                                                     "processes (DDP, gloo)" if size > 1 else ""))
        base = self._base_command()
        running: dict[int, tuple] = {}
        try:
            self._worker_loop(to_go, slots, cuda, base, running)
        except BaseException:
            self._stop_workers(running)
            self._write()
            raise

    def _worker_loop(self, to_go: int, slots, cuda: bool, base: list, running: dict) -> None:
        stop = False
        while (to_go > 0 and not stop) or running:
            if to_go > 0 and not stop and self._out_of_time():
                to_go = 0
            for slot in range(len(slots)):
                if slot in running or to_go <= 0 or stop:
                    continue
                if self._stopping(running=bool(running)):
                    if self.stop_reason or not running:
                        to_go = 0  # stopped, or a controller with nothing left to recommend
                    break  # (a controller waits for a running trial's outcome)
                trial, overrides, job_dir, resumed = self._next()
                if not resumed and self._reuse(trial):
                    to_go -= 1
                    continue
                job_dir.mkdir(parents=True, exist_ok=True)
                env = dict(os.environ, **self._env(trial))
                result_file = job_dir / RESULT_FILE
                result_file.unlink(missing_ok=True)  # never read an outcome of an earlier sweep
                env[ENV_RESULT] = str(result_file)
                if not cuda:
                    env["CUDA_VISIBLE_DEVICES"] = ""
                elif slots[slot]:
                    env["CUDA_VISIBLE_DEVICES"] = ",".join(slots[slot])
                # (a worker given as a count keeps the GPUs this process sees)
                env.pop(ENV_NPROC, None)  # the worker's GPUs say how many processes a trial trains in
                if len(slots[slot]) > 1:  # a trial of several GPUs trains with DDP (without CUDA: CPU processes)
                    env[ENV_NPROC] = str(len(slots[slot]))
                cmd = base + overrides + [f"hydra.run.dir={_quote(str(job_dir))}"]
                logf = open(job_dir / "worker.log", "w")
                proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, cwd=os.getcwd(),
                                        preexec_fn=procs.die_with_parent)
                trial.set_user_attr(ATTR_WORKER_PID, proc.pid)
                self.events.job_started(trial.number, trial.params, self._space())
                where = ("GPU " + ",".join(slots[slot]) if slots[slot] else "all GPUs") if cuda else "CPU"
                notice(f"trial #{trial.number} on worker {slot} ({where}): {' '.join(overrides)}")
                running[slot] = (trial, proc, time.time(), job_dir, logf)
                to_go -= 1
            time.sleep(0.2)
            self._recheck()
            for slot, (trial, proc, start, job_dir, logf) in list(running.items()):
                if proc.poll() is None:
                    if self.trial_timeout is None or time.time() - start < self.trial_timeout:
                        continue
                    procs.stop(proc)  # past its time limit (the job also stops itself, where it trains)
                    logf.close()
                    del running[slot]
                    self._tell(trial, "fail", reason=f"stopped at the trial time limit "
                                                     f"(trial_timeout={self.trial_timeout:g}s)", started=start)
                    continue
                logf.close()
                del running[slot]
                if self._tell_from_file(trial, job_dir, proc.returncode, start):
                    to_go += 1  # resumed: it takes a worker again, not one of the new trials
                    continue
                if self._failure_rate_exceeded():
                    stop = True
        for trial in self.to_resume:  # resumable, but the sweep stopped first: the next run resumes them
            self._interrupted(trial)
        if stop:
            self._raise_failure_rate()

    def _out_of_time(self) -> bool:
        """Past the sweep's time limit: no new trial starts (said once)."""
        if self.timeout is None or time.time() - self.started < self.timeout:
            return False
        if not self.said_out_of_time:
            notice(f"the sweep's time limit is reached (timeout={self.timeout:g}s): no new trials")
            self.said_out_of_time = True
        return True

    def _stop_workers(self, running: dict) -> None:
        """Ctrl-C or SIGTERM: stop the workers and record their trials as interrupted."""
        procs.stop_all([proc for _, proc, _, _, _ in running.values()])
        for trial, _, _, _, logf in running.values():
            logf.close()
            self._interrupted(trial)
        running.clear()

    def _interrupted(self, trial) -> None:
        """Record a trial the stop cut short, at once: one that saved a resume point after an epoch
        stays RUNNING, marked resumable (the next run of the sweep continues it); any other is
        failed, reason ``interrupted``."""
        try:
            stored = upstream.stored_trial(self.study, trial)
            if stored.state != TrialState.RUNNING:
                return
            job_dir = stored.user_attrs.get(ATTR_JOB_DIR)
            if job_dir and os.path.isfile(resume_file(job_dir)):
                epoch = resume_epoch(job_dir)
                trial.set_user_attr(REASON, RESUMABLE)
                trial.set_user_attr(ATTR_RESUMABLE, epoch)
                notice(f"trial #{stored.number}: interrupted after epoch {epoch}; run the sweep again to resume it")
                return
            trial.set_user_attr(REASON, INTERRUPTED)
            if self.beater is not None:
                self.beater.discard(trial)
            self.study.tell(trial, state=TrialState.FAIL)  # tells the sampler too (a live trial of this run)
        except Exception:  # the storage itself is gone: the next run marks it (see _recover)
            pass

    def _base_command(self) -> list[str]:
        """The same Hydra app in a worker process, on the same config folder: ``--config-dir``
        when the sweep was given one, else the app's own config folder (``python -m
        clara_hydra.app`` for ``clara-hydra train``, which has no script file)."""
        hc = self.config.hydra
        script = sys.argv[0]  # python train.py (or any Hydra script): the same script; else clara-hydra's app
        cmd = [sys.executable, os.path.abspath(script)] if script.endswith(".py") and os.path.isfile(script) \
            else [sys.executable, "-m", "clara_hydra.app"]
        cmd += [arg for d in config_dirs(hc.runtime.config_sources)[:1] for arg in ("--config-dir", os.path.abspath(d))]
        cmd += ["--config-name", hc.job.config_name]
        return cmd

    def _tell_from_file(self, trial, job_dir: Path, returncode: int, start: float) -> bool:
        """Tell the outcome the worker wrote. A worker that died without one (killed, out of
        memory) after an epoch that saved the trial's resume point has its trial resumed from there
        (True; at most RESUME_LIMIT times in a sweep), as a trial of a killed sweep is; otherwise
        the trial fails with the cause."""
        outcome = read_outcome(job_dir / RESULT_FILE)
        if outcome is not None:
            self._tell(trial, outcome["state"], value=outcome.get("value"), reason=outcome.get("reason"),
                       started=start)
            return False
        cause = _exit_cause(returncode)
        epoch = resume_epoch(str(job_dir)) if os.path.isfile(resume_file(str(job_dir))) else None
        tries = self.resumed_after_death.get(trial.number, 0)
        if epoch is not None and tries < RESUME_LIMIT:
            self.resumed_after_death[trial.number] = tries + 1
            notice(f"trial #{trial.number}: its worker {cause} after epoch {epoch}: resuming it from there")
            self.to_resume.insert(0, trial)
            return True
        lines = (job_dir / "worker.log").read_text(errors="replace").strip().splitlines() \
            if (job_dir / "worker.log").exists() else []
        telling = [ln for ln in lines if re.match(r"^(error:|[\w.]*(Error|Exception)\b|Cannot |Could not )", ln)]
        again = f" (resumed {tries} time(s) already)" if tries else ""
        self._tell(trial, "fail", reason=f"the worker {cause}{again}" + (f": {telling[-1].strip()}" if telling else ""),
                   started=start)
        return False

    # -- outcomes --------------------------------------------------------------------------
    def _tell(self, trial, state: str, value: Any = None, reason: str | None = None, started: float = 0.0) -> None:
        faults.point("before_tell", trial.number)
        if self.beater is not None:
            self.beater.discard(trial)
        if state == "complete":
            value, problem = _values(value, len(self.study.directions), self.objectives)
            if problem:
                state, reason = "fail", problem
        if reason:
            trial.set_user_attr(REASON, reason[:500])
        if ATTR_DURATION not in trial.user_attrs:
            trial.set_user_attr(ATTR_DURATION, round(time.time() - started, 3))  # else the job timed itself
        if state == "complete":
            _tell(self.study, trial, values=value)
            self.completed += 1
        elif state == "pruned":
            _tell(self.study, trial, state=TrialState.PRUNED)
        else:
            _tell(self.study, trial, state=TrialState.FAIL)
            self.failed += 1
            self.first_error = self.first_error or reason
        self.finished += 1
        self._after_tell(trial, {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED}
                         .get(state, TrialState.FAIL))
        best = results.best(self.study)
        shown = (results.format_values(value, self.objectives) if isinstance(value, list) else f"{value:.4f}") \
            if state == "complete" else state.upper()
        shown += f" ({reason})" if reason else ""
        if len(self.study.directions) > 1:
            best_text = f"Pareto front: {len(results.front(self.study))} trial(s)"
        else:
            best_text = f"best so far {best.value:.4f} (trial #{best.number})" if best is not None else "no best yet"
        notice(f"trial #{trial.number}: {shown} | {results.format_params(trial.params)} | {best_text}")
        self._write()

    def _failure_rate_exceeded(self) -> bool:
        return self.finished >= 4 and self.failed / self.finished > self.impl.max_failure_rate

    def _check_failure_rate(self) -> None:
        if self._failure_rate_exceeded():
            self._raise_failure_rate()

    def _raise_failure_rate(self) -> None:
        self._write()
        raise SweepError(f"{self.failed} of {self.finished} trials failed, more than max_failure_rate="
                         f"{self.impl.max_failure_rate}: the sweep stops"
                         + (f" (the first: {self.first_error})" if self.first_error else ""),
                         location="hydra.sweeper.max_failure_rate",
                         hint=f"see the reasons in {self.sweep_dir / 'trials.csv'}")


#: how often a sweep resumes a trial whose worker died without an outcome (a worker killed each
#: time, by the out-of-memory killer say, fails its trial after that)
RESUME_LIMIT = 2


def _exit_cause(returncode: int) -> str:
    """What a worker's exit code says: ``was killed by SIGKILL (...)`` or ``exited with code 3``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        why = " (kill -9, or the system's out-of-memory killer)" if -returncode == signal.SIGKILL else ""
        return f"was killed by {name}{why}"
    return f"exited with code {returncode} without an outcome"


def _validate(n_trials, n_jobs, max_failure_rate, study_trials, workers, pruner_spec, direction):
    """Every sweeper option a user can mistype is one line before anything runs; gives the pruner."""

    def bad(key: str, got: Any, want: str) -> ClaraHydraError:
        return ClaraHydraError(f"{key} must be {want}, got {got!r}", location=f"hydra.sweeper.{key}",
                               hint=f"set hydra.sweeper.{key}=<{want}>")

    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)
    if not whole(n_trials) or n_trials < 0:
        raise bad("n_trials", n_trials, "a whole number >= 0")
    if not whole(n_jobs) or n_jobs < 1:
        raise bad("n_jobs", n_jobs, "a whole number >= 1")
    rate = max_failure_rate
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= float(rate) <= 1.0:
        raise bad("max_failure_rate", rate, "a number from 0 to 1")
    if study_trials is not None and (not whole(study_trials) or study_trials < 0):
        raise bad("study_trials", study_trials, "a whole number >= 0, or null")
    parse_workers(workers)
    directions = list(direction) if isinstance(direction, (list, tuple, ListConfig)) else [direction]
    for value in directions:
        try:
            better.parse(value)
        except ValueError:
            raise ClaraHydraError(f"direction must be minimize or maximize, got {value!r}",
                                  location="hydra.sweeper.direction", hint="set hydra.sweeper.direction=maximize "
                                                                           "(or minimize, or a list of them)") from None
    try:
        return make_pruner(pruner_spec)
    except ClaraHydraError:
        raise
    except Exception as exc:
        raise ClaraHydraError(f"cannot make the pruner: {first_line(exc)}", location="hydra.sweeper.pruner",
                              hint="use median, hyperband, successive_halving, percentile, none, or "
                                   "{_target_: optuna.pruners.X, ...} with that class's arguments") from None


def _handler_specs(handlers: Any) -> list[dict]:
    """hydra.sweeper.handlers: [{path: module.Class, args: {...}}, ...]."""
    specs = OmegaConf.to_container(handlers) if isinstance(handlers, (DictConfig, ListConfig)) else handlers
    if specs is None:
        return []
    hint = "write hydra.sweeper.handlers=[{path: module.MyHandler, args: {}}]"
    if not isinstance(specs, list):
        raise ClaraHydraError(f"handlers must be a list, got {specs!r}", location="hydra.sweeper.handlers", hint=hint)
    for i, spec in enumerate(specs):
        path = spec.get("path") if isinstance(spec, dict) else None
        if not isinstance(path, str) or "." not in path or not isinstance(spec.get("args") or {}, dict):
            raise ClaraHydraError(f"a handler is {{path: module.Class, args: {{...}}}}, got {spec!r}",
                                  location=f"hydra.sweeper.handlers[{i}]", hint=hint)
    return specs


def _objectives(objectives: Any, direction: Any) -> list[str] | None:
    """hydra.sweeper.objectives: one name per direction (key_metric, train_time, a metric's name)."""
    if objectives is None:
        return None
    names = list(objectives) if isinstance(objectives, (list, tuple, ListConfig)) else [objectives]
    n = len(direction) if isinstance(direction, (list, tuple, ListConfig)) else 1
    hint = "one per direction, e.g. hydra.sweeper.direction=[maximize,minimize] " \
           "hydra.sweeper.objectives=[key_metric,train_time]"
    if not names or any(not isinstance(x, str) or not x.strip() for x in names):
        raise ClaraHydraError(f"objectives must be a list of names (key_metric, train_time or a validation "
                              f"metric's name), got {names!r}", location="hydra.sweeper.objectives", hint=hint)
    if len(names) != n:
        raise ClaraHydraError(f"{len(names)} objective(s) for {n} direction(s)", location="hydra.sweeper.objectives",
                              hint=hint)
    return [str(x) for x in names]


def _values(value: Any, n: int, objectives: list[str] | None) -> tuple[Any, str | None]:
    """A job's return as Optuna takes it (a float, or a list of n floats), or the reason it is not."""
    many = isinstance(value, (list, tuple, ListConfig))
    if n == 1 and many and len(value) == 1:
        value, many = value[0], False
    if (n > 1) != many or (many and len(value) != n):
        got = f"{len(value)} value(s)" if many else "1 value"
        return value, (f"the task returned {got} for {n} direction(s)"
                       + ("" if objectives else "; name them with hydra.sweeper.objectives=[...]"))
    try:
        floats = [float(v) for v in value] if many else [float(value)]
    except (TypeError, ValueError):
        return value, f"the task returned {value!r}, not {'numbers' if many else 'a number'}"
    names = objectives or ([] if many else ["the key metric"])
    for i, v in enumerate(floats):
        if not math.isfinite(v):
            what = names[i] if i < len(names) else f"value {i}"
            return value, f"{'the key metric' if what == 'key_metric' else what} is {v}"
    return (floats if many else floats[0]), None


def _reseed(sampler, offset: int, seed: Any) -> None:
    """A seeded sampler restarted on a study with trials would replay its first samples: move its
    random state on, deterministically (from the seed and the number of trials) where the sampler
    allows it; an unseeded sampler gets fresh randomness."""
    if seed is None:
        if hasattr(sampler, "reseed_rng"):
            sampler.reseed_rng()
        return
    for holder, state in upstream.sampler_rngs(sampler):
        if state is not None:
            state.seed((int(seed) * 1_000_003 + offset + (holder is not sampler)) % 2**32)
        elif hasattr(holder, "reseed_rng"):
            holder.reseed_rng()



def _log_range(dists: dict) -> bool:
    """An int range on a log scale (``tag(log, int(interval(...)))``) asks to be sampled, not enumerated."""
    return any(getattr(d, "log", False) for d in dists.values())


def _tell(study: optuna.Study, trial: Any, **kwargs: Any) -> None:
    """study.tell; the grid sampler, told its last combination, asks the study to stop, which Optuna
    allows only inside study.optimize: the trial is recorded all the same (as the stock sweeper)."""
    try:
        study.tell(trial, **kwargs)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


class _NoExit:
    """The task function as the launcher runs it: a ``sys.exit()`` in it (the config's code, a
    task of your own) ends its trial, failed with that reason, never the sweep."""

    def __init__(self, task: TaskFunction) -> None:
        self.task = task
        self.__name__ = getattr(task, "__name__", "task")

    def __call__(self, cfg: DictConfig) -> Any:
        try:
            return self.task(cfg)
        except SystemExit as exc:
            raise SweepError(f"the task called sys.exit({exc.code!r}): the trial failed",
                             hint="end a run with an exception, not sys.exit()") from None


def _quote(value: str) -> str:
    return value if all(c.isalnum() or c in "/._-:" for c in value) else "'" + value.replace("'", "\\'") + "'"


def _cuda_count() -> int:
    try:
        import torch
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover
        return 0


#: command-line keys that name the sweep's sampler (its config group, or the sampler node or its class)
SAMPLER_KEYS = frozenset({"hydra/sweeper/sampler", "hydra.sweeper.sampler", "hydra.sweeper.sampler._target_"})


def _enumerates(config: DictConfig) -> bool:
    """Whether finite_space=enumerate enumerates this sweep's finite space: a converted Clara
    config's (its ``clara_hydra`` node), as Clara's enum-only search did, unless the command line
    names the sampler (``hydra/sweeper/sampler=tpe``, ``hydra.sweeper.sampler._target_=...``);
    any config's whose command line sets ``hydra.sweeper.finite_space=enumerate``. Any other
    config gets the sampler it names (in its defaults: ``override hydra/sweeper/sampler: tpe``),
    as on the stock sweeper."""
    keys = {_override_key(str(o)) for o in OmegaConf.select(config, "hydra.overrides.hydra", default=None) or ()}
    if "hydra.sweeper.finite_space" in keys:
        return True
    return "clara_hydra" in config and not keys & SAMPLER_KEYS


def _override_key(override: str) -> str:
    """``+hydra/sweeper/sampler@x=random`` -> ``hydra/sweeper/sampler``."""
    return override.split("=", 1)[0].strip().lstrip("~+").split("@", 1)[0]


def _brute_force(seed: Any) -> optuna.samplers.BruteForceSampler:
    """Optuna's BruteForceSampler, without the ExperimentalWarning it gives when made (the user did
    not ask for it, and under ``python -W error`` the warning would stop the sweep); other warnings
    are untouched."""
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning,
                                message=r"BruteForceSampler is experimental")
        return optuna.samplers.BruteForceSampler(seed=seed)
