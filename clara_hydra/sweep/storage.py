"""Optuna storages by URL: RDB URLs (sqlite:///x.db, postgresql://...) as Optuna takes them, and
``journal:PATH`` for Optuna's journal file storage (several processes, no server)."""

from __future__ import annotations

from typing import Any


def open_storage(spec: Any):
    if spec is None:
        return None
    text = str(spec)
    if text.startswith("journal:"):
        import optuna
        from optuna.storages.journal import JournalFileBackend
        path = text[len("journal:"):]
        if path.startswith("//"):
            path = path[2:]
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    if text.startswith("sqlite:///"):
        import optuna
        # several processes on one SQLite file: wait for locks instead of failing at once
        return optuna.storages.RDBStorage(text, engine_kwargs={"connect_args": {"timeout": 60}})
    return text
