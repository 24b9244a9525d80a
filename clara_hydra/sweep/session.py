"""One run of a sweep, from its arguments to its results: it opens the study, recovers what a
previous run left, runs the trials through :func:`.loop.run` with the runner the options name,
tells their outcomes and writes the results (and the best trial as an MMAR)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from .. import better, faults, progress
from ..errors import ClaraHydraError, SweepError, first_line
from ..logs import notice, warn
from ..mlflow_client import ENV_MLFLOW
from ..paths import config_dirs
from ..space import active
from . import checks, cluster, identity, liveness, loop, results, sampling, upstream
from .loop import Ended, Job
from .options import Options
from .outcomes import tell
from .protocol import (
    ATTR_HOST,
    ATTR_JOB_DIR,
    ATTR_OBJECTIVES,
    ATTR_PID,
    ATTR_RECOMMENDATION,
    ENV_CACHE_DIR,
    ENV_HEARTBEAT,
    ENV_OBJECTIVES,
    ENV_PRUNER,
    ENV_STORAGE,
    ENV_STUDY,
    ENV_TRIAL,
    ENV_TRIAL_TIMEOUT,
    INTERRUPTED,
    resume_epoch,
)
from .protocol import ATTR_REASON as REASON
from .recovery import Recovery
from .runners import LauncherRunner, WorkerRunner, base_command, launch_overrides
from .stopping import Stops
from .storage import absolute, masked, open_storage, retrying
from .telling import Teller

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


class Sweep:
    """``impl``: hydra-optuna-sweeper's own sweeper (params grammar, sampler, storage, study name,
    n_trials, n_jobs, max_failure_rate, and Hydra's launcher once set up); ``options``: ours;
    ``config``: the sweep's composed config."""

    def __init__(self, impl: Any, options: Options, config: DictConfig) -> None:
        self.impl, self.o, self.config = impl, options, config
        self.objectives = options.objectives
        self.stops = Stops(timeout=options.timeout, stop_threshold=options.stop_threshold,
                           max_failure_rate=impl.max_failure_rate)

    # ------------------------------------------------------------------------------ the run
    def run(self, arguments: list[str]) -> None:
        from ..train.ddp import under_torchrun
        if under_torchrun():  # (each of torchrun's processes would run a sweep of its own)
            raise ClaraHydraError(f"a sweep runs in one process, but this is one of torchrun's "
                                  f"{os.environ['WORLD_SIZE']} (RANK={os.environ['RANK']})", location="-m",
                                  hint="run the sweep without torchrun; its trials train in several processes with "
                                       "multi_gpu=true or CLARA_HYDRA_NPROC=N, across nodes with "
                                       "hydra.sweeper.nodes_per_trial=N")
        to_go, grid_size = self._open(arguments)
        study, o = self.study, self.o
        done = [t for t in study.get_trials(deepcopy=False)
                if t.state in FINISHED and not str(t.user_attrs.get(REASON, "")).startswith(INTERRUPTED)]
        adopted = len(self.runner.running) if isinstance(self.runner, cluster.ClusterRunner) else 0
        if o.study_trials is not None:  # (a re-attached job's trial finishes in this run)
            to_go = max(0, min(to_go, int(o.study_trials) - len(done) - adopted))
        if grid_size is not None:  # as the stock sweeper: a grid runs each combination once, then stops
            to_go = max(0, min(to_go, grid_size - len(done) - adopted))
        if study.get_trials(deepcopy=False):
            sampling.reseed(study.sampler, len(study.get_trials(deepcopy=False)), o.seed)  # no replay of samples
        where = masked(self.impl.storage) if self.impl.storage else "memory"
        to_resume = self.recovery.to_resume
        notice(f"study '{study.study_name}' in {where}: {len(done)} finished trial(s)"
               + (f", {self.marked} interrupted one(s) marked failed" if self.marked else "")
               + (f", {len(to_resume)} interrupted one(s) to resume" if to_resume else "")
               + (f", {adopted} running one(s) re-attached to their cluster jobs" if adopted else "")
               + f"; this run: {to_go} trial(s)"
               + (f" (study_trials={o.study_trials})" if o.study_trials is not None else "")
               + (f" ({grid_size} combination(s) in all)" if grid_size is not None else "")
               + (f"; TPE models the results after {o.startup} random start-up trial(s) (startup_trials)"
                  if o.startup is not None and isinstance(study.sampler, optuna.samplers.TPESampler) else ""))
        if to_go or adopted:  # (re-attached jobs of a gone sweep process: their outcomes are told)
            previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
            progress.start(to_go)  # on a terminal
            try:
                loop.run(self, self.runner, to_go)
            except BaseException:
                if self.tracker is not None:
                    self.tracker.finish(None, None, interrupted=True)
                raise
            finally:
                progress.stop()
                signal.signal(signal.SIGTERM, previous)
                self._shutdown()
        else:
            self._shutdown()
        self.teller.write()
        self._finish(ran=bool(to_go or adopted))

    def _open(self, arguments: list[str]) -> tuple[int, int | None]:
        """Check the search space, choose the sampler, open (or create) the study, recover what an
        earlier run left and start Clara's AutoML engine. Gives (trials to run, combinations)."""
        impl, o = self.impl, self.o
        meta: Any = OmegaConf.to_container(self.config.clara_hydra.params) \
            if "clara_hydra" in self.config and "params" in self.config.clara_hydra else {}
        self.param_meta: dict = meta  # what the converter recorded of each param (domain, when, at)
        arguments = checks.by_param_name(arguments, meta)
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
        self.conditions = checks.conditions(meta, dists, fixed_params)
        checks.check_values(self.config, impl.hydra_context, dists, fixed_params, fixed_overrides)
        grid_size = sampling.choose(impl, dists, fixed_params, self.conditions, finite_space=o.finite_space,
                                    seed=o.seed, config=self.config)
        directions = upstream.directions(impl)
        if len(directions) > 1 and self.objectives is None and "clara_hydra" in self.config:
            raise ClaraHydraError(f"{len(directions)} directions, but a Clara config's run returns one value "
                                  f"(its key metric) unless told which ones", location="hydra.sweeper.objectives",
                                  hint="name one value per direction, e.g. hydra.sweeper.direction=[maximize,"
                                       "minimize] hydra.sweeper.objectives=[key_metric,train_time]")
        checks.check_objective_names(self.config, self.objectives)
        self.key_goal = better.key_direction(directions, self.objectives, checks.key_names(self.config))
        self.storage_spec = absolute(impl.storage)
        if o.nodes_per_trial > 1 and not (cluster.submitit_launcher(impl.launcher) and o.asynchronous
                                          and self.storage_spec):
            raise ClaraHydraError(f"nodes_per_trial={o.nodes_per_trial} runs each trial as a job of several nodes: it "
                                  f"needs the submitit launcher, asynchronous trials and a persistent storage",
                                  location="hydra.sweeper.nodes_per_trial",
                                  hint="add hydra/launcher=submitit_slurm (or your site's launcher config) and "
                                       "hydra.sweeper.storage=postgresql://... (or journal:PATH on a shared folder)")
        storage = open_storage(self.storage_spec)
        study = retrying(lambda: optuna.create_study(
            study_name=impl.study_name, storage=storage, sampler=impl.sampler, pruner=o.pruner,
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
        self.metric_names = checks.metric_names(self.config, self.objectives)
        if self.metric_names is not None and study.metric_names != self.metric_names:
            with warnings.catch_warnings():  # (experimental in Optuna 4: a warning the user did not ask for)
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(self.metric_names)
        self.sweep_dir = Path(str(self.config.hydra.sweep.dir))
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        # liveness (a persistent storage: other processes may share the study): this process beats for
        # itself and the trials it holds; the in-memory study is this process's alone
        self.beater = liveness.Beater(study, o.heartbeat_interval, sweep=True).start() if self.storage_spec \
            else None
        self.recovery = Recovery(study, self.beater, grace=o.grace, interval=o.heartbeat_interval,
                                 objectives=self.objectives)
        try:
            self.runner = self._runner()
        except BaseException:
            if self.beater is not None:
                self.beater.stop()
            raise
        self.recovery.adopt = getattr(self.runner, "adopt", None) if self.beater is not None else None
        self.marked = self.recovery.recover()
        self._start_engine(study, dists, directions)
        hparams = o.tensorboard if o.tensorboard is not None else "clara_hydra" in self.config
        self.tracker = None
        if o.mlflow or os.environ.get(ENV_MLFLOW) == "1":
            from .tracking import Tracker
            self.tracker = Tracker(study, self.sweep_dir, self.metric_names, {
                "study": study.study_name, "directions": [d.name.lower() for d in study.directions],
                "n_trials": impl.n_trials, "sampler": type(study.sampler).__name__, "pruner": json.dumps(o.pruner_spec),
                "storage": masked(str(self.storage_spec)) if self.storage_spec else "memory", "workers": o.workers})
        self.teller = Teller(study, beater=self.beater, stops=self.stops, events=self.events, sweep_dir=self.sweep_dir,
                             params=list(dists), options=o, metric_names=self.metric_names, hparams=hparams,
                             tracker=self.tracker)
        return impl.n_trials, grid_size

    def _runner(self) -> loop.Runner:
        """How the trials run: Clara's workers; each a cluster job submitted as soon as a slot is
        free (Hydra's submitit launcher, ``asynchronous``); else Hydra's launcher, in batches."""
        o, impl = self.o, self.impl
        if o.workers is not None:
            return WorkerRunner(o.workers, self.storage_spec, self.config, o.trial_timeout)
        if o.asynchronous and cluster.submitit_launcher(impl.launcher):
            return cluster.ClusterRunner(impl.launcher, impl.n_jobs, self.study, self.beater, o.grace,
                                         launch_overrides, nodes_per_trial=o.nodes_per_trial,
                                         command=base_command(self.config))
        return LauncherRunner(impl.launcher, impl.n_jobs, self.study.study_name)

    def _shutdown(self) -> None:
        self.events.fire("shutdown")
        if self.beater is not None:
            self.beater.stop()

    def _finish(self, *, ran: bool) -> None:
        """The best trial (exported as an MMAR), the Pareto front; a run whose trials all failed or
        were pruned is an error."""
        study, stops = self.study, self.stops
        best = results.best(study)
        if best is not None:
            params = results.format_params(best.params)
            notice(f"best trial: #{best.number}, value {best.value:.4f}" + (f", {params}" if params else "")
                   + f"; results in {self.sweep_dir}")
            if self.o.export_best and "clara_hydra" in self.config:
                export_best(best, self.sweep_dir, remove_search_augs=self.o.remove_search_augs)
        if self.tracker is not None:
            bundle = self.sweep_dir / "best_bundle"
            self.tracker.finish(best, bundle if self.o.export_best else None)
        if best is not None or results.front(study):
            self._where_to_look()
        for t in results.front(study):
            notice(f"Pareto front: trial #{t.number}, {results.format_values(t.values, self.objectives)}, "
                   f"{results.format_params(t.params)}")
        if ran and stops.completed == 0 and not (stops.reason and stops.finished == 0):
            raise SweepError(f"no trial completed: {stops.finished} ran, {stops.failed} failed, "
                             f"{stops.finished - stops.failed - stops.completed} pruned", location="hydra.sweeper",
                             hint=f"see the reasons in {self.sweep_dir / 'trials.csv'}")

    def _where_to_look(self) -> None:
        """The commands that show the study: its report, the dashboard, its curves, its MLflow runs."""
        curves = f"tensorboard --logdir {shlex.quote(str(self.sweep_dir))}"
        if self.tracker is not None and self.tracker.client is not None:
            curves += f"; MLflow: {self.tracker.where()}"
        if not self.storage_spec:
            notice(f"the curves: {curves} (the study was in memory: no report or dashboard of it)")
            return
        study = f"{shlex.quote(self.study.study_name)} --storage {shlex.quote(masked(str(self.storage_spec)))}"
        notice(f"look at it: clara-hydra report {study} (plots, report.html); clara-hydra dashboard {study}; {curves}")

    # -- what the loop asks (loop.Sweep) ------------------------------------------------------
    def out_of_time(self) -> bool:
        return self.stops.out_of_time()

    def recheck(self) -> None:
        if self.recovery.recheck():
            self.teller.write()

    def stopping(self, *, running: bool) -> bool:
        return self.stops.stopping(self.events.ctx, self._controller(), running=running)

    def stopped(self) -> bool:
        return bool(self.stops.reason)

    def next(self) -> Job:
        """The next job: an interrupted trial to resume, else a new trial."""
        if not self.recovery.to_resume:
            return self._ask()
        trial = self.recovery.to_resume.pop(0)
        job_dir = Path(trial.user_attrs[ATTR_JOB_DIR])
        epoch = resume_epoch(str(job_dir))
        notice(f"trial #{trial.number}: resuming it in {job_dir} (interrupted after epoch "
               f"{epoch if epoch is not None else '?'})")
        return Job(trial, self._overrides(trial), job_dir, self._env(trial), resumed=True)

    def _ask(self) -> Job:
        trial = self.study.ask()
        faults.point("after_ask", trial.number)
        try:
            if self.beater is not None:
                self.beater.add(trial)  # it beats from now on: alive to every sweep process of the study
            trial.set_user_attr(ATTR_PID, os.getpid())
            trial.set_user_attr(ATTR_HOST, os.uname().nodename)
            overrides = self._overrides(trial)
            job_dir = self.sweep_dir / str(trial.number)
            trial.set_user_attr(ATTR_JOB_DIR, str(job_dir))
            controller = self._controller()
            rec = controller.recommendation_of(trial.number) if controller is not None else None
            if rec is not None:
                trial.set_user_attr(ATTR_RECOMMENDATION, str(rec.rec_id))
        except BaseException as exc:  # e.g. a controller's value that fits no distribution
            trial.set_user_attr(REASON, first_line(exc)[:500])
            tell(self.study, trial, state=TrialState.FAIL)
            raise
        return Job(trial, overrides, job_dir, self._env(trial))

    def _overrides(self, trial) -> list[str]:
        """The trial's overrides. The params it samples: a conditional one (``clara_hydra.params.X.when``:
        it sets a component that another param switches off) only where its controlling param
        enables it, sampled first (Optuna's define-by-run); an absent one keeps the config's value,
        unused."""
        names = active(list(self.dists), self.conditions, self.fixed_params,
                       lambda name: upstream.suggest(trial, name, self.dists[name]))
        return upstream.trial_overrides(self.impl, trial, {name: self.dists[name] for name in names},
                                        self.fixed_params, self.fixed_overrides)

    def _env(self, trial) -> dict[str, str]:
        """The ``sweep.protocol`` environment of a trial's job."""
        o = self.o
        env = {ENV_TRIAL: str(trial.number), ENV_STUDY: self.study.study_name,
               ENV_CACHE_DIR: str(self.sweep_dir / ".data_cache")}
        if self.storage_spec:
            env[ENV_STORAGE] = str(self.storage_spec)
        if o.trial_timeout is not None:
            env[ENV_TRIAL_TIMEOUT] = repr(float(o.trial_timeout))
        env[ENV_PRUNER] = json.dumps(o.pruner_spec)
        if self.objectives is not None:
            env[ENV_OBJECTIVES] = json.dumps(self.objectives)
        if self.beater is not None:  # a job in another process beats for its trial
            env[ENV_HEARTBEAT] = repr(o.heartbeat_interval)
        if self.key_goal is not None:  # what "better" is for the job's key metric (its best value, checkpoint)
            env[better.ENV_DIRECTION] = self.key_goal.direction
        return env

    def reuse(self, trial) -> bool:
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
        self.teller.tell(trial, "complete", value=twin.values if len(twin.values) > 1 else twin.value,
                   reason=f"reused: the same values as trial #{twin.number}", started=time.time())
        return True

    def started(self, job: Job) -> None:
        self.events.job_started(job.trial.number, job.trial.params, self._space())

    def conclude(self, ended: Ended) -> bool:
        """Tell a job's outcome; a job that died without one after an epoch resumes its trial (True)."""
        trial = ended.job.trial
        if ended.state is not None:
            self.stops.first_error = self.stops.first_error or ended.error
            self.teller.tell(trial, ended.state, value=ended.value, reason=ended.reason, started=ended.started)
            return False
        resumed, tries = self.recovery.after_death(trial, str(ended.job.job_dir), ended.cause)
        if resumed:
            return True
        again = f" (resumed {tries} time(s) already)" if tries else ""
        self.teller.tell(trial, "fail", reason=f"the worker {ended.cause}{again}"
                   + (f": {ended.log_line}" if ended.log_line else ""), started=ended.started)
        return False

    def failure_rate_exceeded(self) -> bool:
        return self.stops.failure_rate_exceeded()

    def fail_for_rate(self) -> BaseException:
        self.teller.write()
        return self.stops.failure_rate_error(self.sweep_dir)

    def cut_short(self, trials: list) -> None:
        """Trials a stop cut short, and the resumable ones the sweep stopped before it resumed them:
        recorded at once (resumable, or failed), and the results written."""
        for trial in [*trials, *self.recovery.to_resume]:
            self.recovery.interrupted(trial)
        self.recovery.to_resume.clear()
        self.teller.write()

    # -- Clara's AutoML engine: a controller of your own, handlers ------------------------------
    def _controller(self):
        """The sampler, when it runs a Clara controller of your own."""
        return self.impl.sampler if getattr(self.impl.sampler, "clara_controller", False) else None

    def _space(self):
        controller = self._controller()
        return controller.space if controller is not None else None

    def _start_engine(self, study, dists: dict, directions: list) -> None:
        from ..automl.handlers import Events
        domains = {str(name): str((m or {}).get("domain") or "param") for name, m in self.param_meta.items()}
        dirs = self._byo_dirs()
        controller = self._controller()
        if controller is not None:
            controller.start(dists, domains, dirs, goal=better.of_study(study), study=study)
        self.events = Events(self.o.handler_specs, dirs, dists, domains,
                             ctx=controller.ctx if controller is not None else None)
        self.events.fire("startup")
        # a resumed study may have reached the stop threshold already
        self.stops.check_threshold(better.of_study(study), study.get_trials(deepcopy=False,
                                                                             states=(TrialState.COMPLETE,)))

    def _byo_dirs(self) -> list[str]:
        """Where a controller or handler of your own is looked for: the converted config's Clara
        JSON's folder, its MMAR root and their custom/ folders, and the current folder."""
        from ..paths import search_dirs, source_file
        source = str(self.config.clara_hydra.get("source") or "") if "clara_hydra" in self.config else ""
        found = source_file(source, config_dirs(self.config.hydra.runtime.config_sources)) if source else None
        return search_dirs(found) + [os.getcwd()]


def export_best(best, sweep_dir: Path, *, remove_search_augs: bool) -> None:
    """The best trial as a complete MMAR in ``<sweep dir>/best_mmar`` (clara-hydra export) and as a
    MONAI bundle in ``<sweep dir>/best_bundle`` (clara-hydra export --bundle); a failure is a
    warning: the sweep's results stand."""
    from ..export import export
    job_dir = best.user_attrs.get(ATTR_JOB_DIR)
    out = sweep_dir / "best_mmar"
    if not job_dir or not os.path.isdir(job_dir):
        warn(f"the best trial's folder is not here ({job_dir or 'not recorded'}): no best_mmar; export it where "
             f"it is: clara-hydra export DIR -o best_mmar")
        return
    try:
        notes = export(job_dir, str(out), force=True, remove_disabled=remove_search_augs)
    except Exception as exc:  # noqa: BLE001 - the sweep's results stand; the line says why
        warn(f"the best trial was not exported as an MMAR: {first_line(exc)} (clara-hydra export {job_dir} "
             f"-o DIR tries again)")
        return
    ts = next((n for n in notes if n.startswith("models/model.ts")), "")
    notice(f"the best trial as an MMAR: {out} (validate, infer or finetune it: clara-hydra validate --mmar "
           f"{out}); {ts}")
    from ..bundle_export import export_bundle
    bundle = sweep_dir / "best_bundle"
    try:
        export_bundle(job_dir, str(bundle), force=True)
    except Exception as exc:  # noqa: BLE001 - the MMAR stands; the line says why
        warn(f"the best trial was not exported as a MONAI bundle: {first_line(exc)}")
        return
    notice(f"the best trial as a MONAI bundle: {bundle} (MONAI alone runs it, from its folder: python -m "
           f"monai.bundle run --config_file configs/inference.json)")


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
