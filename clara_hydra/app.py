"""The Hydra app that trains a converted config, and how its failures reach the user.

``python train.py`` (the clone's demo configs), ``clara-hydra train`` (any folder, an MMAR
with ``--mmar``) and the sweeper's worker processes (``python -m clara_hydra.app``) all run
:func:`task` under :func:`run_app`, which turns every failure a user can cause into one line
``error: ...`` and an exit code (2: the input; 1: the work ran and failed; 130: interrupted).
``CLARA_HYDRA_FULL_ERROR=1`` (or ``HYDRA_FULL_ERROR=1``) shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from .errors import ClaraHydraError, allow_large_configs, first_line, os_error_line
from .resolve import quote_equals

#: Set by run_app so that Hydra lets exceptions through (and workers know it was not the user).
_WRAPPED = "CLARA_HYDRA_WRAPPED"
#: Where a user changes the folder a run writes to (the hint of an OSError line).
RUN_DIRS = "hydra.run.dir=... or hydra.sweep.dir=..."


def full_error_wanted() -> bool:
    if os.environ.get("CLARA_HYDRA_FULL_ERROR") == "1":
        return True
    return os.environ.get("HYDRA_FULL_ERROR") == "1" and os.environ.get(_WRAPPED) != "1"


def describe(exc: BaseException, *, os_hint: str = RUN_DIRS, file: str | None = None) -> tuple[int, str]:
    """(exit code, one line) for an exception that ended a run or a command; ``file`` is the
    config the command read, ``os_hint`` how to pick another output folder."""
    from omegaconf.errors import OmegaConfBaseException

    inner: BaseException | None = exc
    while inner is not None:  # Hydra wraps what a plugin raised (InstantiationException, ...)
        if isinstance(inner, ClaraHydraError):
            if inner.file is None and file:
                inner.file = file
            return inner.exit_code, inner.format()
        inner = inner.__cause__ or inner.__context__
    from hydra.errors import HydraException
    if isinstance(exc, (HydraException, OmegaConfBaseException)):
        from .typed import explain
        explained = explain(exc, file)  # an override of a component arg: its class, and what the arg takes
        if explained is not None:
            return explained.exit_code, explained.format()
        text = first_line(exc)
        cause = exc.__cause__ or exc.__context__
        if cause is not None and isinstance(cause, (HydraException, OmegaConfBaseException)):
            detail = first_line(cause)
            if detail and detail not in text:
                text = f"{text.rstrip('.')}: {detail}"
        return 2, f"error: {text}"
    if isinstance(exc, (ValueError, TypeError)) and _raised_in(exc, ("hydra", "omegaconf")):
        return 2, f"error: {first_line(exc)} (check the overrides: KEY=VALUE)"  # Hydra parsing the user's input
    if isinstance(exc, RecursionError):
        return 2, "error: " + (f"{file}: " if file else "") + "the config nests too deeply to handle (flatten it)"
    if isinstance(exc, OSError):
        line = os_error_line(exc, os_hint)
        if line:
            return 2, line
    storage = _storage_failure(exc)
    if storage:
        return 2, storage
    return 1, (f"error: internal error ({type(exc).__name__}: {first_line(exc)}); "
               f"set CLARA_HYDRA_FULL_ERROR=1 for the traceback and please report it")


def _storage_failure(exc: BaseException) -> str | None:
    """The line for a storage that failed while it was used (its SQLite file deleted, damaged or
    written by another program while the sweep ran), or None."""
    chain: list[BaseException] = []
    inner: BaseException | None = exc
    while inner is not None and len(chain) < 10:
        chain.append(inner)
        inner = inner.__cause__ or inner.__context__
    if not any(type(e).__name__ == "StorageInternalError" or type(e).__module__.startswith("sqlalchemy")
               for e in chain):
        return None
    cause = next((e for e in reversed(chain) if type(e).__module__ in ("sqlite3", "psycopg", "psycopg2")
                  or type(e).__module__.startswith("psycopg")), chain[-1])
    return (f"error: the sweep's storage failed while in use: {first_line(cause) or type(cause).__name__} (was its "
            f"database deleted, moved or damaged while the sweep ran? Finished trials are in the study as far as the "
            f"storage kept them; run the sweep again with a storage that works (hydra.sweeper.storage=...))")


def _raised_in(exc: BaseException, packages: tuple[str, ...]) -> bool:
    """Was ``exc`` raised inside one of ``packages`` (its innermost frame)?"""
    import traceback
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return False
    path = frames[-1].filename.replace(os.sep, "/")
    return any(f"/{p}/" in path for p in packages) and "/clara_hydra/" not in path


def fail(exc: BaseException, *, full: bool, os_hint: str = RUN_DIRS, file: str | None = None) -> int:
    """Print the one line for ``exc`` and give the exit code (re-raise it when the traceback is
    wanted)."""
    if full:
        raise exc
    if isinstance(exc, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    code, line = describe(exc, os_hint=os_hint, file=file)
    print(line, file=sys.stderr)
    settle_pool_threads()
    return code


def _thread_failed(args: Any) -> None:
    """A background thread's failure (a TensorBoard writer on a full disk) as one line, not a
    traceback in the middle of the run's output (CLARA_HYDRA_FULL_ERROR=1 shows the traceback)."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    sys.stderr.write(f"clara-hydra: background thread {name} failed: {args.exc_type.__name__}: "
                     f"{first_line(args.exc_value)}\n")  # (one write: never mixed into another thread's line)


def settle_pool_threads(limit_s: float = 60.0) -> None:
    """Let the threads of a thread pool that a failure left behind finish the item they are on
    (MONAI's CacheDataset fills its cache in a ThreadPool; one item failed, the others still
    load): a process that exits while one of them runs native code aborts ("terminate called
    without an active exception"). The pool was told to stop: each thread ends after its item."""
    import threading
    import time

    from .private.python import thread_target
    deadline = time.monotonic() + limit_s
    for thread in threading.enumerate():
        target = thread_target(thread)
        if thread is not threading.current_thread() and getattr(target, "__module__", "") == "multiprocessing.pool":
            thread.join(max(0.0, deadline - time.monotonic()))


def run_app(main: Callable[[], Any]) -> None:
    """Run a ``@hydra.main`` function; every failure ends as one line on stderr and an exit code."""
    sys.argv = sys.argv[:1] + quote_equals(sys.argv[1:])
    full = full_error_wanted()
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra lets the exception through to us
    os.environ[_WRAPPED] = "1"
    allow_large_configs()
    from .indexed import with_indices
    from .logs import quiet
    from .private.hydra import print_config_with
    quiet()
    print_config_with(with_indices)  # --cfg job / --help: each list component's place beside it
    if not full:
        import threading
        threading.excepthook = _thread_failed
    try:
        main()
    except SystemExit:
        settle_pool_threads()
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure becomes one line
        sys.exit(fail(exc, full=full))


def task(cfg) -> Any:
    from .train.entry import run
    return run(cfg)


def validate_task(cfg) -> Any:
    from .train.entry import validate_run
    return validate_run(cfg)


def torchscript_task(cfg) -> Any:
    from .train.entry import torchscript_run
    return torchscript_run(cfg)


def infer_task(cfg) -> Any:
    from .train.entry import infer_run
    return infer_run(cfg)


#: An empty folder: with config_path=None Hydra would search this package (train/, sweep/) for groups.
EMPTY_CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app_conf")


def hydra_app(config_path: str | None = None, config_name: str | None = None,
              function: Callable[[Any], Any] = task) -> Callable[[], Any]:
    import hydra
    return hydra.main(config_path=config_path or EMPTY_CONF, config_name=config_name)(function)


def main(argv: list[str] | None = None, function: Callable[[Any], Any] = task) -> None:
    """``python -m clara_hydra.app --config-dir DIR --config-name NAME [overrides]``: the same app
    without a config folder of its own (the sweeper's workers run this)."""
    if argv is not None:
        sys.argv = [sys.argv[0]] + list(argv)
    run_app(hydra_app(function=function))


if __name__ == "__main__":  # pragma: no cover
    main()
