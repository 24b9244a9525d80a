"""What ``train.py`` does inside Hydra: fill the paths a run needs, resolve, save, train."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from omegaconf import DictConfig, open_dict

from ..errors import ClaraHydraError
from ..mlflow_client import ENV_MLFLOW
from ..paths import ENV_MMAR, mmar_root
from ..resolve import effective_from_cfg, first_level_values, override_keys

SYNTHETIC = "synthetic"


def _undefined(cfg: DictConfig, key: str) -> bool:
    value = cfg.get(key) if key in cfg else None
    return key in cfg and isinstance(value, str) and value in ("{" + key + "}", SYNTHETIC)


def _synthetic(cfg: DictConfig, key: str) -> bool:
    return key in cfg and cfg.get(key) == SYNTHETIC


def prepare(cfg: DictConfig, run_dir: str, mmar: str | None = None, overridden: frozenset = frozenset()) -> None:
    """Built-in synthetic data only where the config asks for it (``DATASET_JSON``/``DATA_ROOT``
    is ``synthetic``: the demo); a datalist that nothing defines is an error when the dataset is
    built. Relative paths of the MMAR's environment (``MMAR_CKPT``, ``DATASET_JSON`` ...) are the
    MMAR's, as in Clara (those given on the command line are the caller's: ``overridden``).
    Checkpoints go into the run folder where MMAR_CKPT_DIR is ``models`` or not set."""
    with open_dict(cfg):
        if mmar is not None:
            _in_mmar(cfg, mmar, overridden)
        if any(_synthetic(cfg, k) for k in ("DATASET_JSON", "DATA_ROOT")):
            from ..logs import notice_once
            notice_once("DATASET_JSON is 'synthetic': training on the built-in synthetic data set")
            from ..synth import builtin
            env = builtin()
            for key in ("DATASET_JSON", "DATA_ROOT"):
                if key in cfg:
                    cfg[key] = env[key]
        models = os.path.join(run_dir, "models")
        if _undefined(cfg, "MMAR_CKPT_DIR") or cfg.get("MMAR_CKPT_DIR") == "models":
            cfg["MMAR_CKPT_DIR"] = models
        if _undefined(cfg, "MMAR_CKPT"):
            cfg["MMAR_CKPT"] = os.path.join(models, "model.pt")


def _in_mmar(cfg: DictConfig, mmar: str, overridden: frozenset) -> None:
    """The relative environment paths of ``cfg`` (not set on the command line) made the MMAR's."""
    from ..paths import MMAR_PATH_KEYS, in_mmar
    for key in MMAR_PATH_KEYS:
        try:
            value = cfg.get(key) if key in cfg else None
        except Exception:  # noqa: BLE001 - an interpolation that fails says so where it is used
            continue
        if isinstance(value, str) and value and not os.path.isabs(value) and key not in overridden \
                and value != SYNTHETIC and not value.startswith("{"):
            cfg[key] = in_mmar(value, mmar)


def run(cfg: DictConfig) -> float | list[float] | None:
    from hydra.core.hydra_config import HydraConfig

    from ..effective import enabled_only
    from ..errors import TrainingError
    from ..sweep import protocol as P
    from ..sweep.trial import current
    from . import ddp
    from .run import train

    run_dir = HydraConfig.get().runtime.output_dir
    # started by torchrun (srun torchrun ...): this process is one rank of the run; rank 0 alone
    # holds the trial, writes the outcome and the run's files, and speaks on the console
    rank = int(os.environ["RANK"]) if ddp.under_torchrun() else 0
    if rank > 0:
        ddp.to_rank_log(run_dir, rank)
    source = _source(cfg)
    mode = HydraConfig.get().mode
    multirun = mode is not None and mode.name == "MULTIRUN"
    worker = P.in_worker()  # a worker process of the clara_optuna sweeper: it answers with a file
    # a sweep's job writes its outcome into its folder: the sweep tells it, and a sweep that recovers
    # the trial after a crash between the job's end and that tell finds it there
    outcome = P.outcome_file(run_dir) if os.environ.get(P.ENV_TRIAL) and rank == 0 else None
    beater = None
    tracked = None  # clara-hydra train --mlflow: the plain run's MLflow run (train/tracking.py)
    failure = "interrupted"  # (what a run that ends before its outcome is, in MLflow)
    try:
        config_file = _start(cfg, run_dir, source)
        full = effective_from_cfg(cfg, enabled_only=False)
        if rank == 0:
            with open(os.path.join(run_dir, "config_train.json"), "w") as fh:
                json.dump(full, fh, indent=2)  # a normal Clara config: searched values in, no search blocks
        trial = current() if rank == 0 else None
        beater = _beat_for(trial)
        if trial is None and rank == 0 and os.environ.get(ENV_MLFLOW) == "1":  # (a sweep's trials: its child runs)
            tracked = _tracking(cfg, run_dir, source)
        objectives = json.loads(os.environ[P.ENV_OBJECTIVES]) if os.environ.get(P.ENV_OBJECTIVES) else None
        started = time.time()
        tree = enabled_only(full)
        nproc = 1 if ddp.under_torchrun() else ddp.processes(tree)
        try:
            if ddp.under_torchrun():  # one rank of the run torchrun started
                value = ddp.as_rank(tree, config_file=config_file, run_dir=run_dir, trial=trial, objectives=objectives,
                                    progress=True, sweep=os.environ.get(P.ENV_TRIAL) is not None,
                                    directions=len(objectives) if objectives else 1)
                if rank > 0:
                    return value
            elif nproc > 1:  # DDP: the job starts its ranks and gives rank 0's result
                value = ddp.launch(tree, config_file=config_file, run_dir=run_dir, trial=trial, objectives=objectives,
                                   nproc=nproc)
            else:
                value = train(tree, config_file=config_file, run_dir=run_dir, trial=trial, objectives=objectives)
        except SystemExit as exc:  # the config's code (a lambda, custom/) ended the process: the run fails
            raise TrainingError(f"the config's code called sys.exit({exc.code!r}) while training", location="train",
                                hint="code of your own (custom/, a lambda, an expression) must raise an exception "
                                     "to stop training, not end the process") from None
        finally:
            if trial is not None:
                trial.set_user_attr(P.ATTR_DURATION, round(time.time() - started, 3))
        from ..logs import notice
        if objectives:
            for name, v in zip(objectives, value):
                if not math.isfinite(v):
                    raise TrainingError(f"the objective {name} is {v}", location="hydra.sweeper.objectives",
                                        hint="check the metric's inputs (post transforms, labels)")
            notice("objectives: " + ", ".join(f"{n} = {v:.4f}" for n, v in zip(objectives, value))
                   + " (what this run returns)")
        else:
            if not math.isfinite(value):
                raise TrainingError(f"the key metric is {value}", location="validate",
                                    hint="check the metric's inputs (post transforms, labels)")
            notice(f"key metric = {value:.4f} (the best validation value; what this run returns)")
        best = None
        if trial is None:  # a plain run: where its results are (a sweep's trial line and results say it)
            best = _checkpoint(run_dir)
            notice(_results_line(run_dir, best))
            if os.environ.get(ENV_MMAR):  # clara-hydra train --mmar: the model in the MMAR, as train.sh left it
                _publish(os.environ[ENV_MMAR], best, tree, config_file)
        if tracked is not None:
            tracked.end(None, [os.path.join(run_dir, "config_train.json")] + ([best] if best else []))
            tracked = None
        from .. import faults
        faults.point("before_outcome")
        P.write_outcome(P.COMPLETE, value=value, path=outcome)
        if outcome is not None:
            P.remove_resume_point(run_dir)  # (kept until now: a kill before the outcome resumes after the last epoch)
        faults.point("after_outcome")
        return value
    except ClaraHydraError as exc:
        if exc.file is None and source:
            exc.file = _config_file(source) or source
        failure = exc.format()
        if os.environ.get("CLARA_HYDRA_FULL_ERROR") == "1":
            raise
        P.write_outcome(P.FAIL, reason=exc.format(), path=outcome)
        _to_log_file(exc.format())
        if multirun and not worker:
            raise  # the sweeper's line for this trial gives the reason
        print(exc.format(), file=sys.stderr)
        if multirun:
            raise
        raise SystemExit(2) from None
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
        if type(exc).__name__ != "TrialPruned":
            P.write_outcome(P.FAIL, reason=f"{type(exc).__name__}: {exc}", path=outcome)
            raise
        P.write_outcome(P.PRUNED, reason=str(exc), path=outcome)  # the sweeper's trial line says it
        if worker or ddp.under_torchrun():  # (its outcome says it; torchrun's processes end cleanly)
            return None
        raise
    finally:
        if beater is not None:
            beater.stop()
        if tracked is not None:
            tracked.end(failure, [])


def _tracking(cfg: DictConfig, run_dir: str, source: str | None):
    """The plain run's MLflow run: its experiment the config's study name (where its sweeps go),
    its params the config's first-level values."""
    from hydra.core.hydra_config import HydraConfig

    from .tracking import RunTracking
    hydra = HydraConfig.get()
    study = getattr(getattr(hydra, "sweeper", None), "study_name", None)
    experiment = study or hydra.job.config_name or "clara-hydra"
    tags = {"clara_hydra.source": source} if source else {}
    if os.environ.get(ENV_MMAR):
        tags["clara_hydra.mmar"] = os.environ[ENV_MMAR]
    return RunTracking(str(experiment), run_dir, first_level_values(cfg), tags)


def _beat_for(trial):
    """A trial run in another process than its sweep's (a worker, a SLURM job) beats for itself
    while it runs (:mod:`..sweep.liveness`); an in-process job's sweep beats for it."""
    from ..sweep import liveness
    from ..sweep import protocol as P
    from ..sweep.trial import in_this_process
    interval = os.environ.get(P.ENV_HEARTBEAT)
    if trial is None or not interval or in_this_process(trial):
        return None
    beater = liveness.Beater(trial.study, float(interval)).start()
    beater.add(trial)
    return beater


#: ``clara-hydra validate --eval-config FILE`` (``none``: the training config's validate section)
ENV_EVAL_CONFIG = "CLARA_HYDRA_EVAL_CONFIG"


#: ``clara-hydra infer --datalist-key KEY``
ENV_INFER_KEY = "CLARA_HYDRA_INFER_KEY"


def validate_run(cfg: DictConfig) -> dict:
    """What ``clara-hydra validate`` does inside Hydra: Clara's validate.sh. It runs the MMAR's
    config_validation.json (or ``--eval-config``) where there is one, else the training config's
    validate section, with the checkpoint MMAR_CKPT names (the MMAR's ``models/model.pt``) or the
    TorchScript model the evaluation config loads."""
    return _evaluate(cfg, infer=False)


def infer_run(cfg: DictConfig) -> dict:
    """What ``clara-hydra infer`` does inside Hydra: Clara's infer.sh. The evaluation of
    :func:`validate_run` on a datalist list without labels (``--datalist-key``, else
    INFER_DATALIST_KEY, else ``test``), its predictions saved as NIfTI."""
    return _evaluate(cfg, infer=True)


def _evaluate(cfg: DictConfig, infer: bool) -> dict:
    from .. import evalconf
    from ..effective import enabled_only
    from ..logs import notice
    from .evaluate import validate

    with _mmar_command(cfg, log=True) as (run_dir, config_file, scalars):
        out = scalars.get("MMAR_EVAL_OUTPUT_PATH")
        out_dir = out if isinstance(out, str) and out and not out.startswith("{") else \
            os.path.join(run_dir, "infer" if infer else "eval")
        key = None
        if infer:
            given = scalars.get("INFER_DATALIST_KEY")
            key = os.environ.get(ENV_INFER_KEY) or (given if isinstance(given, str) and given else "test")
        tree = enabled_only(effective_from_cfg(cfg, enabled_only=False))
        eval_file = evalconf.find(config_file, os.environ.get(ENV_EVAL_CONFIG), infer=infer)
        if eval_file is None:
            weights = ("ckpt", evalconf.checkpoint(scalars, None))
            return validate(tree, weights=weights, out_dir=out_dir, config_file=config_file, run_dir=run_dir,
                            infer=key)
        ev = evalconf.read(eval_file, scalars, _overridden(), tree)
        notice(f"evaluating with {eval_file}")
        for line in ev.notes:
            notice(f"{eval_file}: {line}")
        try:
            return validate(ev.tree, weights=ev.weights, out_dir=out_dir, config_file=config_file,
                            run_dir=run_dir, writers=ev.writers, infer=key)
        except ClaraHydraError as exc:
            where = str(exc.location or "")
            if exc.file is None and not where.startswith("train"):
                exc.file = eval_file  # its slots are the validate section's (v4: at its top level)
                if where.startswith("validate.") and ev.era == "v4":
                    exc.location = where[len("validate."):]
                elif where.startswith("validate.metrics"):  # (v3: the val_metrics it mapped)
                    exc.location = "val_metrics" + where[len("validate.metrics"):]
            raise


@contextmanager
def _mmar_command(cfg: DictConfig, *, log: bool) -> Iterator[tuple[str, str | None, dict]]:
    """(run folder, config file, first-level values) of a command on an MMAR (validate, infer,
    export --mmar), its relative paths the MMAR's (:func:`_start`); its error is one line."""
    from hydra.core.hydra_config import HydraConfig
    run_dir = HydraConfig.get().runtime.output_dir
    source = _source(cfg)
    config_file = None
    try:
        config_file = _start(cfg, run_dir, source)
        yield run_dir, config_file, first_level_values(cfg)
    except ClaraHydraError as exc:
        _one_line(exc, source, config_file, log=log)


def _one_line(exc: ClaraHydraError, source: str | None, config_file: str | None, *, log: bool) -> NoReturn:
    """A command's error as its one line on stderr (and in train.log: ``log``), exit code 2; the
    traceback with CLARA_HYDRA_FULL_ERROR=1."""
    if os.environ.get("CLARA_HYDRA_FULL_ERROR") == "1":
        raise exc
    if exc.file is None and source:
        exc.file = config_file or source
    if log:
        _to_log_file(exc.format())
    print(exc.format(), file=sys.stderr)
    raise SystemExit(2) from None


def torchscript_run(cfg: DictConfig) -> str:
    """What ``clara-hydra export --mmar DIR`` does inside Hydra: Clara's export.sh. The network of
    the MMAR's checkpoint (MMAR_CKPT, ``models/model.pt``) as TorchScript (MMAR_TORCHSCRIPT, else
    ``model.ts`` beside it); a TorchScript file that was there is kept as ``.prev``."""
    from .. import evalconf
    from ..effective import enabled_only
    from ..errors import BuildError
    from ..export import keep_earlier
    from ..logs import notice
    from .export_ts import script

    with _mmar_command(cfg, log=False) as (_run_dir, config_file, scalars):
        ckpt = evalconf.checkpoint(scalars, config_file)
        if not os.path.isfile(ckpt):
            raise ClaraHydraError(f"the checkpoint to export is not there: {os.path.abspath(ckpt)}",
                                  location="MMAR_CKPT", hint="train first (clara-hydra train --mmar DIR), or set "
                                                             "MMAR_CKPT=PATH")
        given = scalars.get("MMAR_TORCHSCRIPT")
        out = given if isinstance(given, str) and given and not given.startswith("{") else \
            os.path.join(os.path.dirname(ckpt), "model.ts")
        tree = enabled_only(effective_from_cfg(cfg, enabled_only=False))
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        refused = script(tree, ckpt, out + ".tmp", config_file)
        if refused:
            raise BuildError(f"no TorchScript written: {refused}", location="train.model")
        kept = keep_earlier(out)
        os.replace(out + ".tmp", out)
        notice(f"{os.path.abspath(out)}: the network of {os.path.abspath(ckpt)} as TorchScript"
               + (f" (the earlier one kept as {kept})" if kept else ""))
        return os.path.abspath(out)


def _to_log_file(line: str) -> None:
    """The error line in train.log too (the console gets it on stderr)."""
    import logging
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.emit(logging.LogRecord("clara_hydra", logging.ERROR, __file__, 0, line, None, None))


def _source(cfg: DictConfig) -> str | None:
    """The Clara JSON a converted config came from, as the YAML records it (relative to its folder)."""
    return ((cfg.get("clara_hydra") or {}).get("source")) if "clara_hydra" in cfg else None


def _start(cfg: DictConfig, run_dir: str, source: str | None) -> str | None:
    """:func:`prepare` with the MMAR of the config's source file and the command line's keys; gives
    that file (None where it is not found)."""
    config_file = _config_file(source)
    prepare(cfg, run_dir, mmar_root(config_file) if config_file else None, _overridden())
    return config_file


def _overridden() -> frozenset:
    """The keys the command line set (their relative paths are the caller's, not the MMAR's)."""
    from hydra.core.hydra_config import HydraConfig
    return override_keys(HydraConfig.get().overrides.task)


def _results_line(run_dir: str, best: str | None) -> str:
    """``run folder: DIR; checkpoint: DIR/models/model.pt; curves: tensorboard --logdir ...``."""
    return (f"run folder: {run_dir}" + (f"; checkpoint: {best}" if best else "")
            + f"; curves: tensorboard --logdir {os.path.join(run_dir, 'tensorboard')}")


def _checkpoint(run_dir: str) -> str | None:
    """The run's best checkpoint (as ``clara-hydra export`` picks it), or None."""
    from ..export import pick_checkpoint
    try:
        return pick_checkpoint(os.path.join(run_dir, "models"))
    except ClaraHydraError:
        return None


def _publish(mmar: str, best: str | None, tree: dict, config_file: str | None) -> None:
    """The run's best checkpoint in the MMAR (:func:`clara_hydra.export.publish`); a failure is a
    warning: the run's results stand."""
    from ..export import publish
    from ..logs import notice, warn
    if best is None:
        warn(f"the run wrote no checkpoint: nothing left in the MMAR {mmar}")
        return
    try:
        notice(publish(mmar, best, tree=tree, config_file=config_file))
    except (OSError, ClaraHydraError) as exc:
        warn(f"the model was not left in the MMAR {mmar}: {exc} (it is in {best})")


def _config_file(source: str | None) -> str | None:
    if not source:
        return None
    from hydra.core.hydra_config import HydraConfig

    from ..paths import config_dirs, source_file
    return source_file(source, config_dirs(HydraConfig.get().runtime.config_sources))


__all__ = ["run", "prepare", "validate_run", "infer_run"]
