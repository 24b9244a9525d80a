"""Build the objects of an effective (enabled-only) Clara config and train them."""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import better
from .. import progress as sweep_progress
from ..argtypes import detect_era
from ..better import Goal
from ..errors import BuildError, ClaraHydraError, TrainingError
from ..logs import notice, notice_once
from ..sweep.protocol import ENV_TRIAL
from ..values import as_bool
from .ids import item_id, split_id


def pick_device() -> tuple[str, bool]:
    import torch
    if torch.cuda.is_available():
        return "cuda", True
    return "cpu", False


def build(tree: dict, *, config_file: str | None, device: str, amp: bool, share_cache: bool = False,
          validate_only: bool = False, adapt: Callable[[dict], dict] | None = None, goal: Goal | None = None):
    """The monai.bundle ConfigParser over the translated config (``validate_only``: of the
    train section only the model, whose weights validation loads; ``adapt``: a change of the
    v4-form tree, v3 mapped already, before it is built)."""
    import monai
    import numpy
    import torch
    from monai.bundle import ConfigParser

    import clara_hydra
    import clara_hydra.train.compat  # noqa: F401  (used by translated lambdas)

    from .bundle import Builder

    era = detect_era(tree)
    if era == "v3":
        from .v3 import to_v4
        tree = to_v4(tree)
    if validate_only:
        tree = {**tree, "train": {k: v for k, v in (tree.get("train") or {}).items() if k == "model"}}
    if adapt is not None:
        tree = adapt(tree)
    from .dist import rank, world
    gpu_free = torch.cuda.mem_get_info()[0] if device == "cuda" else None
    bundle = Builder(tree, device=device, amp=amp, config_file=config_file, share_cache=share_cache,
                     gpu_free_bytes=gpu_free, rank=rank(), world=world(), goal=goal).build()
    parser = ConfigParser(bundle, globals={"monai": monai, "torch": torch, "np": numpy, "numpy": numpy,
                                           "clara_hydra": clara_hydra, "clara_hydra_conf": tree})
    return parser, bundle, era


def _parsed(parser, ident: str):
    """Build ``ident``; a failure is located at the innermost item MONAI was building (its own
    item ids, e.g. ``train::optimizer``), in Clara's terms (``train.optimizer``)."""
    try:
        return parser.get_parsed_content(ident)
    except ClaraHydraError:
        raise
    except Exception as exc:
        root: BaseException = exc
        while root.__cause__ is not None:
            root = root.__cause__
        text = str(root).strip().splitlines()
        item = _failing_item(parser.ref_resolver, ident) or ident
        cls = _class_of(parser, item)
        full = _disk_full(root, text[0] if text else "")
        raise BuildError(f"cannot build {cls or 'it'}: {type(root).__name__}: {text[0] if text else ''}",
                         location=clara_location(item),
                         hint="free space, or choose a folder with free space: hydra.run.dir=..." if full
                         else "check the component's args against its class") from None


def _failing_item(resolver, ident: str) -> str | None:
    """The item whose building failed while ``ident`` was built. MONAI resolves an item's
    references first, depth first in the order they are written, and stops at the first failure:
    so it is the first item on that walk that is not resolved while every item it refers to is
    (or that refers to an item the config does not have). Public API only: the resolver's
    ``items`` and ``resolved_content``, ``find_refs_in_config``."""
    seen: set[str] = set()

    def walk(id: str) -> str | None:  # noqa: A002 - MONAI's word
        if id in resolver.resolved_content or id in seen or id not in resolver.items:
            return None
        seen.add(id)
        item = resolver.items[id]
        config = item.get_config() if hasattr(item, "get_config") else None
        for ref in resolver.find_refs_in_config(config, id=id) if config is not None else ():
            if ref not in resolver.items:
                return id  # it refers to an item the config does not have
            found = walk(ref)
            if found is not None:
                return found
        return id

    return walk(resolver.normalize_id(ident))


def _class_of(parser, item: str) -> str | None:
    """The class name of the component ``item`` is (or sits in)."""
    parts = split_id(item)
    while parts:
        try:
            node = parser[item_id(*parts)]
        except Exception:
            node = None
        if isinstance(node, dict) and isinstance(node.get("_target_"), str):
            return node["_target_"].rsplit(".", 1)[-1]
        parts.pop()
    return None


def clara_location(item: str) -> str:
    """A MONAI bundle id of a translated config -> its place in the effective Clara config:
    ``train::pre_transforms::transforms::3`` -> ``train.pre_transforms[3]``,
    ``train::optimizer::lr`` -> ``train.optimizer.args.lr``, ``train::handlers::2`` -> ``train.handlers[2]``."""
    parts = split_id(item)
    if len(parts) < 2:
        return parts[0]
    loc, rest = f"{parts[0]}.{parts[1]}", parts[2:]
    if parts[1] in ("pre_transforms", "post_transforms") and rest[:1] == ["transforms"]:
        rest = rest[1:]
    if parts[1] in ("key_metric", "additional_metrics") and rest:
        loc += "" if parts[1] == "key_metric" else f"[{rest[0]}]"  # keyed by log_label
        rest = rest[1:]
    elif rest and rest[0].isdigit():
        loc += f"[{rest[0]}]"
        rest = rest[1:]
    if rest:
        loc += ".args" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in rest)
    return loc


def train(tree: dict, *, config_file: str | None = None, run_dir: str = ".", progress: bool = True,
          trial=None, objectives: list[str] | None = None, sweep: bool | None = None,
          directions: int | None = None) -> Any:
    """Train ``tree`` (an effective, enabled-only Clara config); return the key validation metric.
    With an Optuna ``trial``, report the key metric after every validation and stop early
    (``optuna.TrialPruned``) when the pruner says so. With ``objectives`` (a multi-objective
    sweep), return those values instead, in that order (:func:`objective_values`).

    In a DDP process group (:mod:`.ddp`) this is one rank: ``sweep`` says whether the job is a
    sweep's trial (only rank 0 holds the ``trial``) and ``directions`` its study's direction count."""
    import torch
    from ignite.engine import Events

    from . import dist, tracking
    sweep = trial is not None if sweep is None else sweep
    directions = (len(trial.study.directions) if trial is not None else 1) if directions is None else directions
    main = dist.rank() == 0
    device, amp = pick_device()
    if device == "cpu" and main:
        notice_once("CUDA is not available: training on the CPU")
    if device == "cuda":
        torch.backends.cudnn.benchmark = not tree.get("determinism") and tree.get("cudnn_benchmark", True) is not False
    seed = (tree.get("determinism") or {}).get("random_seed") if isinstance(tree.get("determinism"), dict) else None
    if seed is not None:
        from monai.utils import set_determinism
        set_determinism(seed=int(seed))

    t_build = time.perf_counter()
    from ..sweep.protocol import ENV_SHARED_CACHE
    share = sweep and os.environ.get(ENV_SHARED_CACHE, "1") != "0"
    goal = better.of_run(tree)  # which key metric value is better: the sweep's direction, else the config's
    parser, bundle, era = build(tree, config_file=config_file, device=device, amp=amp, share_cache=share, goal=goal)
    if main:
        with open(os.path.join(run_dir, "bundle_config.json"), "w") as fh:
            json.dump(bundle, fh, indent=1, default=str)
    if "trainer" not in bundle["train"]:
        raise BuildError("the config has no trainer", location="train",
                         hint="add train.trainer (SupervisedTrainer)")
    trainer = _parsed(parser, item_id("train", "trainer"))
    evaluator = _parsed(parser, item_id("validate", "evaluator")) if "evaluator" in bundle["validate"] else None
    place(device, trainer, evaluator)
    if _flag(tree, "channels_last_3d"):
        _channels_last_3d(trainer, evaluator, device=device, amp=bool(getattr(trainer, "amp", False)))
    for engine in (trainer, evaluator):  # MONAI's best_metric (the run's value, the resume point's best)
        if engine is not None:
            engine.metric_cmp_fn = goal.better
    if dist.world() > 1:  # (the evaluator keeps the plain network: every rank has the same weights)
        trainer.network = dist.wrap(trainer.network, device)
        if evaluator is not None:
            evaluator.add_event_handler(Events.STARTED, lambda _engine: dist.same_buffers(trainer.network))

    from .loss import LossWatch
    watch = LossWatch().attach(trainer)  # the NaN check, without a host-device sync per iteration

    _time_limit(trainer, evaluator, started=t_build)
    savers = _defaults(bundle, parser, trainer, evaluator, run_dir, goal, watch) if main else []
    if sweep and evaluator is not None and directions == 1:
        _report_to(trial, trainer, evaluator)  # (Optuna prunes single-objective studies only)
    at_best = _metrics_at_best(evaluator) if objectives else {}
    resume = None
    first_epoch = 0  # the epoch this run continues after (a resumed trial's point)
    if sweep:  # a sweep's trial: interrupted, it continues from its last whole epoch
        from .resume import ResumePoint
        scheduler = _parsed(parser, item_id("train", "lr_scheduler")) if "lr_scheduler" in bundle["train"] else None
        resume = ResumePoint(run_dir, trainer, evaluator, scheduler, savers, at_best)
        first_epoch = resume.load()
        if main:  # (every rank continues from it; rank 0 writes it)
            resume.attach()
    from ..logs import tidy_library_loggers
    tidy_library_loggers()
    _epoch_lines(trainer, evaluator)
    track = None
    if main and not sweep and os.environ.get(tracking.ENV_RUN):  # clara-hydra train --mlflow
        track = tracking.attach(trainer, evaluator, watch)
    from .. import faults  # (a test's kill or wait after an epoch: its resume point and line are written)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda engine: faults.point("epoch_end", engine.state.epoch))
    if sweep_progress.shown():  # a trial under the sweep's bar on a terminal: its iterations go there
        _iterations_on_sweep_bar(trainer)
    elif progress and main and sys.stderr.isatty():  # a bar on a terminal; a file gets the epoch lines only
        _progress(trainer)
    notice(f"built in {time.perf_counter() - t_build:.2f}s (data included)")
    start = time.perf_counter()
    thread_errors: list[BaseException] = []
    previous_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            thread_errors.append(args.exc_value)  # the error line names it when training fails
        if os.environ.get("CLARA_HYDRA_FULL_ERROR") == "1":
            previous_hook(args)  # the thread's traceback only where tracebacks are wanted
    threading.excepthook = hook
    try:
        if first_epoch < int(trainer.state.max_epochs or 0):  # (ignite would start a finished run over)
            trainer.run()
        elif evaluator is not None:
            evaluator.state.epoch = first_epoch  # every epoch trained before the interruption: its best stands
        if evaluator is not None and evaluator.state.epoch == 0:
            notice("no validation ran during training (num_interval_per_valid > epochs): validating once now")
            evaluator.run(trainer.state.epoch)  # (as after that epoch: its checkpoint and curves are of it)
            name = getattr(evaluator.state, "key_metric_name", None)
            if name and name in evaluator.state.metrics:
                notice(f"validation after epoch {trainer.state.epoch}: {name} "
                       f"{float(evaluator.state.metrics[name]):.4f}")
    except Exception as exc:  # (an interruption is no Exception: the trial keeps its resume point)
        if resume is not None and main:
            resume.remove()  # failed or pruned for good: nothing to resume
        if isinstance(exc, ClaraHydraError) or type(exc).__name__ == "TrialPruned":
            raise
        raise _training_error(thread_errors[0] if thread_errors else exc) from None
    finally:
        threading.excepthook = previous_hook
    # done: the job removes the resume point once its outcome is written (a kill before that resumes
    # after the last epoch, and gives the same value without training again)
    elapsed = time.perf_counter() - start
    metric = _key_metric(evaluator if evaluator is not None else trainer)
    ran = trainer.state.epoch - first_epoch
    if first_epoch and not ran:
        notice(f"finished 0 epoch(s): all {first_epoch} had run before the interruption (its resume point)")
    else:
        notice(f"finished {ran} epoch(s) in {elapsed:.1f}s"
               + (f" (epochs {first_epoch + 1}-{trainer.state.epoch} of {trainer.state.max_epochs}: resumed after "
                  f"epoch {first_epoch})" if first_epoch else ""))
    name = getattr((evaluator if evaluator is not None else trainer).state, "key_metric_name", None)
    if track is not None and name and math.isfinite(metric):
        track(metrics=[(f"best_{name}", metric, 0)])
    if objectives:
        return objective_values(objectives, metric, at_best, elapsed, name)
    return metric


def place(device, *engines) -> None:
    """The engines' networks on ``device``: MONAI's engines move each batch there, never the
    network. An optimizer built on the parameters before (the config builds it so) gets the
    moved ones wherever the move made new Parameter objects."""
    for engine in engines:
        network = getattr(engine, "network", None)
        if network is None:
            continue
        before = list(network.parameters())
        network.to(device)
        moved = {id(b): a for b, a in zip(before, network.parameters()) if b is not a}
        optimizer = getattr(engine, "optimizer", None)
        if moved and optimizer is not None:
            for group in optimizer.param_groups:
                group["params"] = [moved.get(id(p), p) for p in group["params"]]


def channels_last_3d(*engines) -> int:
    """The 3D convolution weights (5-D) of the engines' networks in channels-last memory order
    (``torch.channels_last_3d``), the layout of cuDNN's fastest 3D convolutions under AMP; each
    convolution then gives its output in it too, so the batches need no change. The Parameter
    objects stay (the optimizer keeps them; a checkpoint loads into them). Gives how many moved."""
    import torch
    moved, seen = 0, set()
    for engine in engines:
        network = getattr(engine, "network", None)
        if network is None or id(network) in seen:
            continue
        seen.add(id(network))
        for param in network.parameters():
            if param.dim() == 5 and not param.is_contiguous(memory_format=torch.channels_last_3d):
                param.data = param.data.contiguous(memory_format=torch.channels_last_3d)
                moved += 1
    return moved


def _flag(tree: dict, key: str) -> bool:
    """A first-level boolean option of the config (absent: False)."""
    value = tree.get(key, False)
    if as_bool(value) is None:
        raise BuildError(f"{key} must be true or false, got {value!r}", location=key,
                         hint=f"set {key}=true (or false)")
    return bool(as_bool(value))


def _channels_last_3d(trainer, evaluator, *, device: str, amp: bool) -> None:
    """``channels_last_3d: true`` in the config: said once, with what it does here."""
    moved = channels_last_3d(trainer, evaluator)
    if not moved:
        notice("channels_last_3d: the network has no 3D convolution weights: nothing to change")
        return
    notice(f"channels_last_3d: {moved} 3D convolution weight(s) in channels-last memory order"
           + ("" if device == "cuda" and amp else " (it pays on CUDA under AMP; here "
              + ("without AMP" if device == "cuda" else "on the CPU") + " it may be slower)"))


def _metrics_at_best(evaluator) -> dict:
    """The validation metrics of the epoch with the best key metric (the checkpoint kept), updated
    as validation runs."""
    from ignite.engine import Events
    snapshot: dict = {}
    if evaluator is None:
        return snapshot

    @evaluator.on(Events.EPOCH_COMPLETED)
    def _keep(engine):  # after MONAI's own best-metric update, which the Workflow registered first
        if not snapshot or getattr(engine.state, "best_metric_epoch", None) == engine.state.epoch:
            snapshot.clear()
            snapshot.update({k: v for k, v in engine.state.metrics.items() if isinstance(v, (int, float))})
    return snapshot


def objective_values(objectives: list[str], key_metric: float, metrics: dict, seconds: float,
                     key_name: str | None) -> list[float]:
    """The values a multi-objective trial returns: ``key_metric`` (its best value), ``train_time``
    (seconds) or a validation metric by name, at the epoch of the best key metric."""
    from ..sweep.protocol import KEY_METRIC, TRAIN_TIME
    out = []
    for name in objectives:
        if name == KEY_METRIC or (name == key_name and name not in metrics):
            out.append(float(key_metric))
        elif name == TRAIN_TIME:
            out.append(float(seconds))
        elif name in metrics:
            out.append(float(metrics[name]))
        else:
            from ..errors import did_you_mean
            known = [KEY_METRIC, TRAIN_TIME] + sorted(metrics)
            raise TrainingError(f"no objective '{name}': the run has no such metric",
                                location="hydra.sweeper.objectives",
                                hint=did_you_mean(name, known) + "known: " + ", ".join(known))
    return out


def _time_limit(trainer, evaluator, *, started: float) -> None:
    """A sweep's trial_timeout (Clara's max_job_run_time): stop at the first iteration past it."""
    from ignite.engine import Events

    from ..sweep.protocol import ENV_TRIAL_TIMEOUT
    if not os.environ.get(ENV_TRIAL_TIMEOUT):
        return
    limit = float(os.environ[ENV_TRIAL_TIMEOUT])

    def check(engine) -> None:
        if time.perf_counter() - started > limit:
            raise TrainingError(f"stopped at the trial time limit (trial_timeout={limit:g}s) at epoch "
                                f"{trainer.state.epoch}", location="hydra.sweeper.trial_timeout",
                                hint="raise hydra.sweeper.trial_timeout, or make the trial shorter")
    for engine in (trainer, evaluator):
        if engine is not None:
            engine.add_event_handler(Events.ITERATION_COMPLETED, check)


def _disk_full(root: BaseException, message: str) -> bool:
    """Did the failure come of a full disk? (an OSError saying so; torch.save's writer says it
    in its own words: "file write failed", "unexpected pos" of its zip container)"""
    from ..errors import DISK_FULL_ERRNOS
    if isinstance(root, OSError) and root.errno in DISK_FULL_ERRNOS:
        return True
    return "PytorchStreamWriter failed writing" in message or "file write failed" in message \
        or ("inline_container" in message and "unexpected pos" in message)


def _training_error(exc: BaseException, section: str = "train") -> TrainingError:
    """The root cause of a failure inside training (or validation: ``section``), as one located
    message: the exception that started it, and the transform it happened in. An error in a
    DataLoader worker process reaches us as PyTorch's re-raise, its traceback text in the
    message: the cause is read from that text. The whole traceback goes into the error's notes
    (what ``CLARA_HYDRA_FULL_ERROR=1`` prints under it)."""
    import re
    import traceback

    from ..errors import first_line
    applying = "applying transform"

    def transform_of(text: str) -> str | None:
        """The transform MONAI names in ``applying transform <pkg.Class object at 0x...>``."""
        found = re.search(applying + r" (.*)", text)
        if found is None:
            return None
        what = found.group(1).strip()
        named = re.match(r"<([\w.]+) object at 0x[0-9a-fA-F]+>", what) or re.match(r"<function ([\w.<>]+) at 0x", what)
        return named.group(1).rsplit(".", 1)[-1] if named else what[:80]

    def from_worker(text: str) -> tuple[str, str, str | None] | None:
        """(type name, message, innermost transform) of the exception a worker's traceback text
        shows first in its chain, as the in-process walk below finds it; None where ``text`` is not
        PyTorch's ``Caught X in DataLoader worker process N.\\nOriginal Traceback ...``."""
        head, sep, body = text.partition("Original Traceback (most recent call last):")
        if not sep or "DataLoader worker" not in head:
            return None
        parts = re.split(r"\n\s*\n(The above exception was the direct cause of the following exception:|"
                         r"During handling of the above exception, another exception occurred:)\s*\n", body)
        blocks, links = parts[0::2], parts[1::2]  # links[i] joins blocks[i] (the earlier) to blocks[i + 1]
        found: list[tuple[str, str]] = []
        for block in blocks:
            lines = [ln for ln in block.splitlines() if ln.strip()]
            if lines and lines[0].startswith("Traceback (most recent call last)"):
                lines = lines[1:]
            start = next((i for i, ln in enumerate(lines) if not ln[:1].isspace()), None)
            if start is None:
                return None
            name, _, message = lines[start].partition(":")
            found.append((name.strip().rsplit(".", 1)[-1], message.strip()))
        i, transform = len(found) - 1, None
        while True:  # from the exception the worker raised to the first of its chain
            transform = transform_of(found[i][1]) or transform
            if i == 0 or not (links[i - 1].startswith("The above") or applying in found[i][1]):
                break
            i -= 1
        return found[i][0], found[i][1], transform

    root, transform = exc, None
    while True:
        transform = transform_of(first_line(root)) or transform
        nxt = root.__cause__ or (root.__context__ if applying in str(root) else None)
        if nxt is None:
            break
        root = nxt
    kind, text = type(root).__name__, str(root).strip()
    worker = from_worker(text)
    if worker is not None:
        kind, text, transform = worker[0], worker[1], worker[2] or transform
    where = section
    if (transform or applying in str(exc)) and section == "train":  # (validation also runs post transforms)
        where = "train.pre_transforms"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    message = lines[0] if lines else ""
    if message.startswith("Error(s) in loading state_dict") and len(lines) > 1:
        error = TrainingError(f"the checkpoint does not fit the network: {lines[1]}", location=where,
                              hint="use the config it was trained with (a sweep's trial: its searched values, or "
                                   "clara-hydra export of the trial)")
    elif _disk_full(root, message):
        error = TrainingError(f"cannot write the run's files: the disk is full (or a file grew past its limit): "
                              f"{kind}: {message}", location=where,
                              hint="free space, or choose a folder with free space: hydra.run.dir=... "
                                   "(hydra.sweep.dir=... for a sweep)")
    elif "CUDA out of memory" in message or kind == "OutOfMemoryError":
        error = TrainingError(f"CUDA out of memory: {message}", location=where,
                              hint="lower the batch size or the crop size")
    else:
        work = "validation" if section == "validate" else "training"
        if transform:
            work += f" failed in {transform}"
        elif worker is not None:
            work += " failed in a DataLoader worker process"
        else:
            work += " failed"
        cause = f"{kind}: {message}" if message else kind
        error = TrainingError(f"{work}: {cause}", location=where,
                              hint=(f"check {transform}'s args against the data; " if transform else "")
                              + "set CLARA_HYDRA_FULL_ERROR=1 for the traceback")
    if sys.version_info >= (3, 11):  # the cause's traceback, printed under the error's own where tracebacks are
        # shown (CLARA_HYDRA_FULL_ERROR=1: the error is raised "from None"); a worker's as PyTorch wrote it
        full = ("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) if worker is None
                else "Traceback in the DataLoader worker process (most recent call last):"
                + str(root).partition("Original Traceback (most recent call last):")[2])
        error.add_note("\nThe cause of this error:\n" + full.rstrip())
    return error


def _report_to(trial, trainer, evaluator) -> None:
    """After each validation, report the key metric to the trial and prune where its pruner says
    so. In a DDP group only rank 0 has the ``trial``: its decision reaches every rank."""
    import optuna
    from ignite.engine import Events

    from .dist import from_main

    def decide(engine) -> str | None:
        name = getattr(engine.state, "key_metric_name", None)
        value = engine.state.metrics.get(name) if name else None
        if trial is None or value is None or not math.isfinite(float(value)):
            return None
        step = max(int(trainer.state.epoch), 1)
        trial.report(float(value), step)
        if step >= int(trainer.state.max_epochs or 0):
            return None  # the last validation: the value is final, so the trial completes, never pruned
        return f"pruned at epoch {step}: {name} = {float(value):.4f}" if trial.should_prune() else None

    @evaluator.on(Events.EPOCH_COMPLETED)
    def _report(engine):
        reason = from_main(decide(engine))
        if reason:
            raise optuna.TrialPruned(reason)


def _epoch_lines(trainer, evaluator) -> None:
    """One line per epoch: the loss, and the key metric where validation ran."""
    from ignite.engine import Events

    t0 = [time.perf_counter()]
    fresh: dict = {}

    if evaluator is not None:
        @evaluator.on(Events.EPOCH_COMPLETED)
        def _validated(engine):
            name = getattr(engine.state, "key_metric_name", None)
            if name and name in engine.state.metrics:
                fresh["text"] = f"{name} {float(engine.state.metrics[name]):.4f}"
                if getattr(engine.state, "best_metric_epoch", -1) != -1:
                    fresh["text"] += (f" (best {float(engine.state.best_metric):.4f} at epoch "
                                      f"{engine.state.best_metric_epoch})")

    @trainer.on(Events.EPOCH_COMPLETED)
    def _line(engine):
        parts = [f"epoch {engine.state.epoch}/{engine.state.max_epochs}"]
        loss = getattr(engine.state, "clara_loss", None)
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        if "text" in fresh:
            parts.append(fresh.pop("text"))
        parts.append(f"{time.perf_counter() - t0[0]:.1f}s")
        t0[0] = time.perf_counter()
        notice(", ".join(parts))
        sweep_progress.running(_trial_tag() + parts[0])  # a trial in the sweep's process: on the sweep's bar


def _targets(handlers) -> set[str]:
    return {str(h.get("_target_", "")).rsplit(".", 1)[-1] for h in handlers or [] if isinstance(h, dict)}


def _defaults(bundle: dict, parser, trainer, evaluator, run_dir: str, goal: Goal, watch) -> list:
    """The run's curves (``train/loss``, ``train/lr``, ``val/...``: :mod:`.curves`) and, where the
    config has none, the best checkpoint in the run folder; give the run's CheckpointSavers (the
    config's and this one)."""
    from monai.handlers import CheckpointSaver

    from .curves import Curves
    Curves(os.path.join(run_dir, "tensorboard")).attach(trainer, evaluator, watch)
    savers = [h for sec in ("train", "validate") if isinstance(bundle[sec].get("handlers"), list)
              for h in _parsed(parser, item_id(sec, "handlers")) if isinstance(h, CheckpointSaver)]
    if evaluator is None:
        return savers
    if "CheckpointSaver" not in _targets(bundle["validate"].get("handlers")):
        saver = CheckpointSaver(save_dir=os.path.join(run_dir, "models"), save_dict={"model": evaluator.network},
                                save_key_metric=True, key_metric_filename="model.pt",
                                key_metric_negative_sign=not goal.maximize)
        saver.attach(evaluator)
        savers.append(saver)
    return savers


def _key_metric(engine) -> float:
    state = engine.state
    best = getattr(state, "best_metric", None)
    if getattr(state, "best_metric_epoch", -1) != -1 and best is not None and math.isfinite(float(best)):
        return float(best)
    name = getattr(state, "key_metric_name", None)
    if name and name in state.metrics:
        return float(state.metrics[name])
    return float("nan")


def _trial_tag() -> str:
    trial = os.environ.get(ENV_TRIAL)
    return f"#{trial} " if trial else ""


def _iterations_on_sweep_bar(trainer) -> None:
    from ignite.engine import Events

    @trainer.on(Events.ITERATION_COMPLETED)
    def _iteration(engine):
        length = engine.state.epoch_length or 0
        done = (engine.state.iteration - 1) % length + 1 if length else engine.state.iteration
        sweep_progress.running(f"{_trial_tag()}epoch {engine.state.epoch}/{engine.state.max_epochs}, iteration "
                               f"{done}/{length or '?'}", now=False)


def _progress(trainer) -> None:
    try:
        from ignite.contrib.handlers import ProgressBar
    except Exception:  # pragma: no cover - tqdm missing
        return
    def loss_of(_output: Any) -> dict:  # the latest the NaN check took off the device
        value = getattr(trainer.state, "clara_loss", None)
        return {"loss": value} if value is not None else {}
    ProgressBar(persist=False).attach(trainer, output_transform=loss_of)
