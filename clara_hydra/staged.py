"""A command's output folder, written whole or not at all: the files are written into a hidden
folder beside it and moved into place only once all of them are there. A command that fails
on the way (a full disk, a folder it cannot write, an error of its own) leaves nothing: neither
a partial folder nor a temporary file, and a folder that was there keeps what it had. What it
writes follows the user's umask, as any file they write (a team's shared folder stays readable)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import DISK_FULL_ERRNOS


@contextmanager
def staged(final: str) -> Iterator[str]:
    """Yield the folder to write ``final``'s files into; when the block ends without an error
    they are moved into ``final`` (made if need be, a file of the same name replaced)."""
    final = os.path.abspath(final)
    made = _missing(os.path.dirname(final))
    tmp = None
    try:
        os.makedirs(os.path.dirname(final), exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.", suffix=".partial", dir=os.path.dirname(final))
        os.chmod(tmp, 0o777 & ~_umask())  # (mkdtemp's 0700 would become the output folder's: the team reads it)
        yield tmp
        _move_into(tmp, final)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for folder in reversed(made):
            try:
                os.rmdir(folder)
            except OSError:
                break
        if isinstance(exc, OSError):
            exc.filename = _shown(exc, tmp, final)
        raise
    if os.path.isdir(tmp):
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    """The process's umask (read by setting it, and setting it back)."""
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _shown(exc: OSError, tmp: str | None, final: str) -> str:
    """The path an error of writing the output names: the output's own (not the hidden folder's);
    the output folder where the disk is full (a copy names its source, a file closed on a full
    disk nothing)."""
    name = str(exc.filename or "")
    if not name or exc.errno in DISK_FULL_ERRNOS or final.startswith(name + os.sep):
        return final  # (a folder on the way to it that is a file, say: the output's path is what to change)
    if tmp is not None and (name == tmp or name.startswith(tmp + os.sep)):
        return final + name[len(tmp):]
    return name


def _missing(folder: str) -> list[str]:
    """The folders of ``folder``'s path that are not there yet, outermost first."""
    out: list[str] = []
    while folder and not os.path.exists(folder):
        out.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return out[::-1]


def _move_into(tmp: str, final: str) -> None:
    if not os.path.exists(final):
        os.rename(tmp, final)
        return
    for here, _folders, files in os.walk(tmp):
        there = os.path.join(final, os.path.relpath(here, tmp))
        os.makedirs(there, exist_ok=True)
        for name in files:
            os.replace(os.path.join(here, name), os.path.join(there, name))


__all__ = ["staged"]
