"""Optuna storages by URL: RDB URLs (sqlite:///x.db, postgresql://...) as Optuna takes them, and
``journal:PATH`` for Optuna's journal file storage (several processes, no server).

A storage that cannot be used is one line (:class:`~clara_hydra.errors.StorageError`): a corrupt
SQLite file or journal at once, a locked SQLite file after saying what it waits for."""

from __future__ import annotations

import json
import os
import re
from typing import Any

from ..errors import ClaraHydraError, StorageError, first_line

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


def password_of(spec: Any) -> str | None:
    """The password a server URL holds (``postgresql://user:PASSWORD@host/db``), if any."""
    m = re.match(r"^[\w+.-]+://[^:/@]*:(.*)@", str(spec))
    return m.group(1) or None if m else None


def masked(spec: Any) -> str:
    """The storage as messages and logs show it: its password as ``***``."""
    return hide(str(spec), spec)


def no_study(name: str | None, spec: Any, storage: Any) -> ClaraHydraError:
    """The one line for a study that ``storage`` (opened from ``spec``) does not hold, naming the
    studies it holds (``clara-hydra report``, ``clara-hydra dashboard``)."""
    names = [s.study_name for s in storage.get_all_studies()]
    return ClaraHydraError(f"no study '{name}' in {masked(spec)}", location="STUDY",
                           hint=("its studies: " + ", ".join(names)) if names else "the storage has no study")


def hide(text: str, spec: Any) -> str:
    """``text`` (a message, a driver's error) without the password of ``spec``."""
    secret = password_of(spec)
    return text.replace(secret, "***") if secret else text


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

    def make():
        if path is None or os.path.isfile(path):
            _refuse_foreign(text, engine_kwargs)
        return optuna.storages.RDBStorage(text, engine_kwargs=engine_kwargs)
    return retrying(make, what=text)


#: Tables of Optuna's schema: a database with tables and none of these is another program's
OPTUNA_TABLES = frozenset({"version_info", "studies", "alembic_version"})


def _refuse_foreign(url: str, engine_kwargs: dict | None) -> None:
    """Refuse a database that holds another program's tables and no Optuna schema (Optuna would
    add its tables to it): it is left as it was."""
    from sqlalchemy import create_engine, inspect
    engine = create_engine(url, **(engine_kwargs or {}))
    try:
        names = sorted(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    if names and not OPTUNA_TABLES & set(names):
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise StorageError(f"the database is not an Optuna storage: it holds another program's tables ({shown})",
                           file=masked(url), hint="nothing was written to it; give the sweep a database of its own, "
                                                  "e.g. hydra.sweeper.storage=sqlite:///clara_hydra_sweeps.db")


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
    shown = masked(what)
    locked = 0
    for attempt in range(attempts + LOCK_ATTEMPTS):
        try:
            return make()
        except (ArgumentError, NoSuchModuleError) as exc:
            raise StorageError(f"not a storage URL: {hide(first_line(exc), what)}", file=shown,
                               hint="write sqlite:///FILE.db, postgresql://USER@HOST/DB, journal:FILE, "
                                    "or null") from None
        except ImportError as exc:  # the URL names a driver that is not installed (mysql://, +asyncpg)
            raise StorageError(f"the storage's database driver is not installed ({exc})", file=shown,
                               hint="install it into this environment, or use sqlite:///FILE.db, "
                                    "postgresql://USER@HOST/DB or journal:FILE") from None
        except OperationalError as exc:
            text = str(exc.orig) if getattr(exc, "orig", None) is not None else first_line(exc)
            if "locked" in text:
                locked += 1
                if locked >= LOCK_ATTEMPTS:
                    raise StorageError(f"the storage is locked by another process (waited "
                                       f"{locked * SQLITE_TIMEOUT_S} s)", file=shown,
                                       hint="wait for the other sweep or tool to finish, or use another "
                                            "storage (hydra.sweeper.storage=...)") from None
                notice(f"waiting for {shown}: it is locked by another process "
                       f"({locked * SQLITE_TIMEOUT_S} s so far)")
                continue
            if "unable to open" in text or "could not connect" in text or "Connection refused" in text:
                said = hide(text.strip().splitlines()[0], what)
                raise StorageError(f"cannot open the storage: {said}", file=shown,
                                   hint="check the URL, the server and the folder") from None
            if attempt >= attempts - 1:
                said = hide(text.strip().splitlines()[0], what)
                raise StorageError(f"the storage keeps failing: {said}", file=shown) from None
        except DatabaseError as exc:
            if isinstance(exc, (IntegrityError, ProgrammingError)) and attempt < attempts - 1:
                pass  # the table-creation race
            else:
                text = str(exc.orig) if getattr(exc, "orig", None) is not None else first_line(exc)
                said = hide(text.strip().splitlines()[0], what)
                raise StorageError(f"the storage cannot be used: {said}", file=shown,
                                   hint="it is not an Optuna database (or it is damaged): use another "
                                        "storage, or move the file away") from None
        except json.JSONDecodeError as exc:  # a journal that is not one (Optuna reads it lazily)
            raise _unreadable_journal(exc, shown) from None
        except DBAPIError as exc:
            if attempt >= attempts - 1:
                raise StorageError(f"the storage keeps failing: {hide(first_line(exc), what)}", file=shown) from None
        time.sleep(0.3 + random.random() * (attempt + 1))
    raise StorageError("the storage keeps failing", file=shown)  # pragma: no cover
