"""What a run prints: clara-hydra's own lines, one log format, and no noise a user cannot act on.

Inside a Hydra app, :func:`notice` goes through logging (so ``train.log`` holds it too, in the
format of the ``clara`` logging configs that converted configs select); outside one it goes to
stderr as ``clara-hydra: ...``. :func:`quiet` hides library warnings that repeat on every run
and that no config change can silence.
"""

from __future__ import annotations

import logging
import sys
import warnings

LOGGER = "clara_hydra"
#: Console and file formats of the ``clara`` job and Hydra logging configs (one format for both).
CONSOLE_FORMAT = "[%(asctime)s] %(message)s"
FILE_FORMAT = "[%(asctime)s][%(levelname)s] %(message)s"
DATE_FORMAT = "%H:%M:%S"
FILE_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


_CONFIGURED = False  # a process that set up logging itself (a DDP rank): notices go through it


def _in_hydra_app() -> bool:
    if _CONFIGURED:
        return True
    try:
        from hydra.core.hydra_config import HydraConfig
    except ImportError:  # pragma: no cover
        return False
    return HydraConfig.initialized() and bool(logging.getLogger().handlers)


def _emit(level: int, line: str) -> None:
    if _in_hydra_app():  # Hydra configured logging: the console and train.log
        logging.getLogger(LOGGER).log(level, line)
    else:
        print(line, file=sys.stderr, flush=True)


def notice(message: str) -> None:
    """A ``clara-hydra: ...`` line."""
    _emit(logging.INFO, f"clara-hydra: {message}")


_SAID: set[str] = set()


def notice_once(message: str) -> None:
    """A notice that is the same for every trial of a sweep (no CUDA, AMP off, a v3 default):
    said once in a process. Trials through Hydra's launcher share the sweep's process, so its
    console says it once; a worker's trial says it in its own log."""
    if message not in _SAID:
        _SAID.add(message)
        notice(message)


def warn(message: str) -> None:
    """A ``warning: ...`` line."""
    _emit(logging.WARNING, f"warning: {message}")


def quiet() -> None:
    """Library warnings that are about the libraries, not the user's config."""
    for module in ("monai", "torch", "ignite", "optuna", "hydra", "tensorboard", "google.protobuf"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
        warnings.filterwarnings("ignore", category=UserWarning, module=module)
    # Optuna marks hydra-optuna-sweeper's use of its API as experimental on every trial
    warnings.filterwarnings("ignore", message=".*is experimental.*")


class _NoEngineTracebacks(logging.Filter):
    """ignite and MONAI log a failure inside an engine with its traceback (twice); the run ends
    with clara-hydra's one line for it, so their copies are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(LOGGER):
            return True
        text = str(record.msg)
        return not (record.exc_info or "terminating due to exception" in text or text.startswith("Exception: "))


def tidy_library_loggers() -> None:
    """One format: loggers that MONAI or ignite gave handlers of their own (and their own format)
    go through the root logger's handlers instead; ignite's per-engine chatter ("Engine run
    resuming", "Epoch[1] Complete") is left out, clara-hydra logs each epoch once."""
    root = logging.getLogger()
    if not root.handlers:
        return
    for handler in root.handlers:
        if not any(isinstance(f, _NoEngineTracebacks) for f in handler.filters):
            handler.addFilter(_NoEngineTracebacks())
    for name, lg in list(logging.root.manager.loggerDict.items()):
        if not isinstance(lg, logging.Logger) or name.startswith(LOGGER):
            continue
        if (lg.handlers or not lg.propagate) and not name.startswith(("hydra", "optuna")):
            lg.handlers = []  # MONAI's get_logger gives StatsHandler's logger its own handler, no propagation
            lg.propagate = True
        if name.startswith("ignite.engine") or name in ("StatsHandler", "monai.handlers.StatsHandler"):
            lg.setLevel(logging.WARNING)


def _handler(fmt: str, cls: str, **extra) -> dict:
    return {"class": cls, "formatter": fmt, **extra}


def logging_config(job: bool) -> dict:
    """A ``hydra/job_logging`` (job=True) or ``hydra/hydra_logging`` config: one format, and
    ``train.log`` beside the job's outputs."""
    formatters = {"console": {"format": CONSOLE_FORMAT, "datefmt": DATE_FORMAT},
                  "file": {"format": FILE_FORMAT, "datefmt": FILE_DATE_FORMAT}}
    handlers = {"console": _handler("console", "logging.StreamHandler", stream="ext://sys.stdout")}
    root = {"level": "INFO", "handlers": ["console"]}
    if job:
        handlers["file"] = _handler("file", "logging.FileHandler",
                                    filename="${hydra.runtime.output_dir}/train.log")
        root["handlers"] = ["console", "file"]
    return {"version": 1, "formatters": formatters, "handlers": handlers, "root": root,
            "disable_existing_loggers": False}


def log_as_job(train_log: str | None) -> None:
    """A process outside Hydra that logs as a job does (a DDP rank): with ``train_log``, the
    console format on stdout and the file format appended to it; without (stdout is a log file
    of the process's own), the file format on stdout."""
    global _CONFIGURED
    root = logging.getLogger()
    root.handlers = []
    root.setLevel(logging.INFO)
    outputs: list[tuple[logging.Handler, str, str]]
    if train_log:
        outputs = [(logging.StreamHandler(sys.stdout), CONSOLE_FORMAT, DATE_FORMAT),
                   (logging.FileHandler(train_log, mode="a"), FILE_FORMAT, FILE_DATE_FORMAT)]
    else:
        outputs = [(logging.StreamHandler(sys.stdout), FILE_FORMAT, FILE_DATE_FORMAT)]
    for handler, fmt, datefmt in outputs:
        handler.setFormatter(logging.Formatter(fmt, datefmt))
        root.addHandler(handler)
    _CONFIGURED = True


def register() -> None:
    """``hydra/job_logging=clara`` and ``hydra/hydra_logging=clara`` in Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore
    cs = ConfigStore.instance()
    cs.store(group="hydra/job_logging", name="clara", node=logging_config(True), provider="clara_hydra",
             replace=True)
    cs.store(group="hydra/hydra_logging", name="clara", node=logging_config(False), provider="clara_hydra",
             replace=True)
