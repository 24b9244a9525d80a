"""Optuna storages by URL: RDB URLs (sqlite:///x.db, postgresql://...) as Optuna takes them, and
``journal:PATH`` for Optuna's journal file storage (several processes, no server).

A storage that cannot be used is one line (:class:`~clara_hydra.errors.StorageError`): a corrupt
SQLite file or journal at once, a locked SQLite file after saying what it waits for."""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import StorageError, first_line

#: SQLite waits this long for a lock per attempt; ``retrying`` says so and tries LOCK_ATTEMPTS times.
SQLITE_TIMEOUT_S = 10
LOCK_ATTEMPTS = 6


def absolute(spec: Any) -> Any:
    """sqlite:///rel.db and journal:rel.log with absolute paths, so jobs that change directory
    (hydra.job.chdir, SLURM) find the same storage."""
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


def file_of(spec: Any) -> str | None:
    """The file behind a SQLite or journal storage (None for a server or memory)."""
    text = str(spec)
    if text.startswith("journal:"):
        return _journal_path(text)
    if text.startswith("sqlite:///") and text != "sqlite:///:memory:":
        return text[len("sqlite:///"):]
    return None


def open_storage(spec: Any, *, must_exist: bool = False):
    """The Optuna storage of ``spec``; ``must_exist``: refuse a SQLite/journal file that is not
    there (``clara-hydra report`` reads a study, it never creates an empty database)."""
    if spec is None:
        return None
    text = str(spec)
    path = file_of(text)
    if must_exist and path is not None and not os.path.isfile(path):
        raise StorageError(f"no such storage file: {path}", location="--storage",
                           hint="give the storage the sweep used (hydra.sweeper.storage), e.g. "
                                "sqlite:///clara_hydra_sweeps.db in the folder the sweep ran from")
    import optuna
    if text.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend
        try:
            storage = optuna.storages.JournalStorage(JournalFileBackend(_journal_path(text)))
            storage.get_all_studies()  # reads the whole journal now: a damaged one fails here
            return storage
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise _unreadable_journal(exc, path) from None
        except OSError as exc:
            raise StorageError(f"cannot open the journal file: {exc.strerror}", file=path,
                               hint="put it in a folder that exists and that you can write to") from None
    engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if path else None
    return retrying(lambda: optuna.storages.RDBStorage(text, engine_kwargs=engine_kwargs), what=text)


def _unreadable_journal(exc: BaseException, where: str | None) -> StorageError:
    return StorageError(f"the journal file cannot be read: {first_line(exc)}", file=where,
                        hint="it is not an Optuna journal (or it is damaged): use another file")


def retrying(make, attempts: int = 8, what: str = "the storage"):
    """Several sweep processes starting at once on a new database race to create Optuna's tables;
    the losers retry after a short random wait. A locked SQLite file is waited for, saying so; a
    file that is not a database, or a server that refuses us, is one line at once."""
    import random
    import time

    from sqlalchemy.exc import (
        ArgumentError,
        DatabaseError,
        DBAPIError,
        IntegrityError,
        NoSuchModuleError,
        OperationalError,
        ProgrammingError,
    )

    from ..logs import notice
    locked = 0
    for attempt in range(attempts + LOCK_ATTEMPTS):
        try:
            return make()
        except (ArgumentError, NoSuchModuleError) as exc:
            raise StorageError(f"not a storage URL: {first_line(exc)}", file=what,
                               hint="write sqlite:///FILE.db, postgresql://USER@HOST/DB, journal:FILE, "
                                    "or null") from None
        except OperationalError as exc:
            text = str(exc.orig) if getattr(exc, "orig", None) is not None else first_line(exc)
            if "locked" in text:
                locked += 1
                if locked >= LOCK_ATTEMPTS:
                    raise StorageError(f"the storage is locked by another process (waited "
                                       f"{locked * SQLITE_TIMEOUT_S} s)", file=what,
                                       hint="wait for the other sweep or tool to finish, or use another "
                                            "storage (hydra.sweeper.storage=...)") from None
                notice(f"waiting for {what}: it is locked by another process "
                       f"({locked * SQLITE_TIMEOUT_S} s so far)")
                continue
            if "unable to open" in text or "could not connect" in text or "Connection refused" in text:
                raise StorageError(f"cannot open the storage: {text.strip().splitlines()[0]}", file=what,
                                   hint="check the URL, the server and the folder") from None
            if attempt >= attempts - 1:
                raise StorageError(f"the storage keeps failing: {text.strip().splitlines()[0]}", file=what) from None
        except DatabaseError as exc:
            if isinstance(exc, (IntegrityError, ProgrammingError)) and attempt < attempts - 1:
                pass  # the table-creation race
            else:
                text = str(exc.orig) if getattr(exc, "orig", None) is not None else first_line(exc)
                raise StorageError(f"the storage cannot be used: {text.strip().splitlines()[0]}", file=what,
                                   hint="it is not an Optuna database (or it is damaged): use another "
                                        "storage, or move the file away") from None
        except json.JSONDecodeError as exc:  # a journal that is not one (Optuna reads it lazily)
            raise _unreadable_journal(exc, what) from None
        except DBAPIError as exc:
            if attempt >= attempts - 1:
                raise StorageError(f"the storage keeps failing: {first_line(exc)}", file=what) from None
        time.sleep(0.3 + random.random() * (attempt + 1))
    raise StorageError("the storage keeps failing", file=what)  # pragma: no cover
