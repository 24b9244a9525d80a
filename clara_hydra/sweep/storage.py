"""Optuna storages by URL: RDB URLs (sqlite:///x.db, postgresql://...) as Optuna takes them, and
``journal:PATH`` for Optuna's journal file storage (several processes, no server)."""

from __future__ import annotations

from typing import Any


def absolute(spec: Any) -> Any:
    """sqlite:///rel.db and journal:rel.log with absolute paths, so jobs that change directory
    (hydra.job.chdir, SLURM) find the same storage."""
    import os
    if spec is None:
        return None
    text = str(spec)
    if text.startswith("sqlite:///") and not text.startswith("sqlite:////") and text != "sqlite:///:memory:":
        return "sqlite:///" + os.path.abspath(text[len("sqlite:///"):])
    if text.startswith("journal:"):
        return "journal:" + os.path.abspath(_journal_path(text))
    return text


def _journal_path(text: str) -> str:
    """The file of ``journal:PATH`` (``journal://PATH`` too)."""
    path = text[len("journal:"):]
    return path[2:] if path.startswith("//") else path


def open_storage(spec: Any):
    if spec is None:
        return None
    text = str(spec)
    if text.startswith("journal:"):
        import optuna
        from optuna.storages.journal import JournalFileBackend
        return optuna.storages.JournalStorage(JournalFileBackend(_journal_path(text)))
    import optuna
    kwargs = {"engine_kwargs": {"connect_args": {"timeout": 60}}} if text.startswith("sqlite:///") else {}
    return retrying(lambda: optuna.storages.RDBStorage(text, **kwargs))


def retrying(make, attempts: int = 8):
    """Several sweep processes starting at once on a new database race to create Optuna's tables;
    the losers retry after a short random wait."""
    import random
    import time

    from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
    for attempt in range(attempts):
        try:
            return make()
        except (IntegrityError, ProgrammingError, OperationalError, DBAPIError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.3 + random.random() * (attempt + 1))
