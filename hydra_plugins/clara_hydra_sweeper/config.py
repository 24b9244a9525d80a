"""The ``clara_optuna`` sweeper's config: hydra-optuna-sweeper's keys, plus clara-hydra's."""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union  # noqa: UP035 (OmegaConf reads them)

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from omegaconf import MISSING


@dataclass
class ClaraOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.clara_hydra_sweeper.sweeper.ClaraOptunaSweeper"
    # median | hyperband | successive_halving | percentile | none, or {_target_: optuna.pruners.X, ...}.
    # Typed Any because OmegaConf has no "string or mapping" type; checked when the sweeper is set up.
    pruner: Any = "median"
    # Clara's workers: "0:0:1:1" = two trials at a time on each of GPUs 0 and 1; "0,1:2,3" = two
    # trials with two GPUs each; an integer N = N workers. null: trials go through Hydra's launcher.
    # (In YAML, quote a single-pair string: YAML 1.1 reads 1:1 as the number 61.)
    workers: Optional[Union[int, str]] = None
    # n_trials: the trials THIS sweep process runs (as in the stock sweeper and Optuna), so several
    # processes on one study add up. study_trials: a cap on the study's finished trials, so that a
    # resumed command continues to the same total (null: no cap).
    study_trials: Optional[int] = None
    # TPE's random start-up trials before it models the results: auto = n_trials / 5, 2 to 10
    # (where the sampler keeps hydra-optuna-sweeper's n_startup_trials of 10); a number; null: the
    # sampler's own setting
    startup_trials: Optional[Union[int, str]] = "auto"
    # a search space with finitely many combinations (choices, int ranges): "enumerate" runs each
    # once with Optuna's BruteForceSampler and stops (as Clara's enum-only search did) for a
    # converted Clara config (its clara_hydra node) whose sampler the command line does not name
    # (hydra/sweeper/sampler=...), and for any config given hydra.sweeper.finite_space=enumerate on
    # the command line; any other config keeps its sampler, as on the stock sweeper. "sample" keeps
    # the configured sampler. Either way a finished combination is never trained again.
    finite_space: str = "enumerate"
    # time limits in seconds (Clara's max_job_run_time and max_sys_run_time; null: none). A trial
    # past trial_timeout is stopped and recorded as failed with the reason; after timeout the sweep
    # starts no new trial (the running ones finish, within trial_timeout).
    trial_timeout: Optional[float] = None
    timeout: Optional[float] = None
    # a multi-objective sweep (direction: [maximize, minimize]) of a Clara config: what each trial
    # returns, one name per direction: key_metric (Clara's score), train_time (seconds), or the name
    # of a validation metric (a key or additional metric, as the run logs it). null: the key metric.
    objectives: Optional[List[str]] = None  # noqa: UP006
    # Clara's AutoML engine (config_automl.json; see the README): stop the sweep once the best value
    # reaches stop_threshold (>= when maximizing, <= when minimizing; the first objective); keep the
    # keep_best best trials' checkpoints and remove the others' as the sweep goes; write TensorBoard
    # HParams of every trial beside its curves (null: for a converted Clara config, not for another
    # app); give Clara's events to handlers of your own ([{path: module.Class, args: {}}]);
    # remove_search_augs: the best config_train.json without the transforms the search disabled.
    stop_threshold: Optional[float] = None
    keep_best: Optional[int] = None
    tensorboard: Optional[bool] = None
    handlers: List[Any] = field(default_factory=list)  # noqa: UP006
    remove_search_augs: bool = False
    # at the end of a sweep of a Clara config, the best trial as a complete MMAR in
    # <sweep dir>/best_mmar (clara-hydra export)
    export_best: bool = True
    # MLflow: the sweep a parent run, each trial a child run (params, value per epoch, state), the
    # best bundle an artifact; in MLFLOW_TRACKING_URI (a server: no mlflow package needed), else
    # mlflow.db and mlruns/ in the folder the sweep runs from (the mlflow extra)
    mlflow: bool = False
    # liveness of a study's trials, on any host (a study shared by several machines): each running
    # trial beats every heartbeat_interval seconds (in the storage); one without a beat for
    # grace_period seconds is dead, and any sweep process of the study resumes it (from its resume
    # point) or fails it. A trial of a process that is gone on this host is known dead at once.
    heartbeat_interval: float = 10.0
    grace_period: float = 120.0
    # one trial at a time through the launcher (the stock default of 2 runs batches)
    n_jobs: int = 1
    # with Hydra's submitit launcher (hydra/launcher=submitit_slurm): each trial a job of its own,
    # submitted as soon as one of the n_jobs slots is free, so trials never wait for each other; a
    # sweep run again re-attaches to the jobs of a sweep process that died. false: batches of
    # n_jobs, each waiting for its slowest job (the stock sweeper's way)
    asynchronous: bool = True
    # each trial one job of this many nodes (submitit launcher, asynchronous): PyTorch's elastic
    # agent on each node (srun torchrun's), one process per GPU, a c10d rendezvous on the first
    nodes_per_trial: int = 1
    # a sweep stops when more than this share of its trials fail
    max_failure_rate: float = 0.5
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])


@dataclass
class ClaraControllerSamplerConf:
    """A Clara AutoML controller of your own (config_automl.json's ``"controller": {"path": ...}``)
    as the sweep's sampler: ``hydra/sweeper/sampler=clara_controller``."""

    _target_: str = "clara_hydra.automl.controller.ControllerSampler"
    path: str = MISSING  # module.Class, found in the MMAR's custom/ folder or beside the config
    args: Dict[str, Any] = field(default_factory=dict)  # noqa: UP006
    seed: Optional[int] = None  # for the values the controller does not give


ConfigStore.instance().store(group="hydra/sweeper", name="clara_optuna", node=ClaraOptunaSweeperConf,
                             provider="clara_hydra")
ConfigStore.instance().store(group="hydra/sweeper/sampler", name="clara_controller", node=ClaraControllerSamplerConf,
                             provider="clara_hydra")
