"""One exception hierarchy for everything a user can get wrong.

Every error carries the file, a location inside it (a JSON path such as
``train.pre_transforms[3].search[0].targets``), what is wrong, and how to fix it.
The command line prints it as ``error: FILE: LOCATION: message`` and exits 2.
"""

from __future__ import annotations

import errno


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def did_you_mean(word: str, candidates, *, quote: bool = False, cutoff: float = 0.6) -> str:
    """``"did you mean a, b? "`` for the close candidates, or ``""``."""
    import difflib
    close = difflib.get_close_matches(word, sorted(candidates), n=3, cutoff=cutoff)
    if not close:
        return ""
    return "did you mean " + ", ".join(f"'{c}'" if quote else c for c in close) + "? "


#: A full disk (or quota), or a file grown past its size limit.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: Errors of the machine that the user fixes: a folder they cannot write, a full disk, a bad path.
USER_OS_ERRNOS = DISK_FULL_ERRNOS | frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT,
                                               errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOTEMPTY})


def os_error_line(exc: OSError, where_to_change: str) -> str | None:
    """One line for an OSError the user can fix (None for others): which path, what is wrong."""
    if exc.errno not in USER_OS_ERRNOS:
        return None
    path = exc.filename or "?"
    return (f"error: {path}: cannot write there: {exc.strerror} (choose a folder you can write to, with free "
            f"space: {where_to_change})")


#: How deep a Clara config may nest (a JSON object in a list in an object ... counts each level).
MAX_DEPTH = 500


def allow_large_configs() -> None:
    """Converted configs are big and deep where Clara configs are: OmegaConf's YAML loader stops
    at 10,000 nodes (its guard against alias bombs; converted YAML has no aliases), and Python
    at about 1,000 frames (OmegaConf recurses several frames per level)."""
    import os
    import sys
    os.environ.setdefault("OMEGACONF_MAX_YAML_EXPANDED_NODES", str(10_000_000))
    if sys.getrecursionlimit() < 20_000:
        sys.setrecursionlimit(20_000)


class ClaraHydraError(Exception):
    """Base of every error that is the user's input, not a bug."""

    #: The command's exit code: 2 for input the user must fix, 1 for work that ran and failed.
    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, location: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.location = location
        self.hint = hint

    def with_file(self, file: str) -> ClaraHydraError:
        if self.file is None:
            self.file = file
        return self

    def format(self) -> str:
        parts = ["error"]
        if self.file:
            parts.append(self.file)
        if self.location:
            parts.append(self.location)
        text = ": ".join(parts) + ": " + self.message
        if self.hint:
            text += f" ({self.hint})"
        return text

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.format()


class ConfigSyntaxError(ClaraHydraError):
    """The file is not JSON, or not a Clara config at all."""


class SearchSpaceError(ClaraHydraError):
    """A search entry, an alias or an apply block is malformed or inconsistent."""


class ReferenceError_(ClaraHydraError):
    """A ref, a {name} or an apply names something that does not exist."""


class AlternativesError(ClaraHydraError):
    """A slot that takes one component does not end with exactly one enabled member."""


class OverrideError(ClaraHydraError):
    """A command-line override does not fit the config."""


class SweepError(ClaraHydraError):
    """A sweep ran and did not give a result (no trial completed, too many failures)."""

    exit_code = 1


class StorageError(ClaraHydraError):
    """An Optuna storage cannot be used (locked, corrupt, another study's search space)."""


class TrackingError(ClaraHydraError):
    """An MLflow tracking server refused a call, or could not be reached."""


class BuildError(ClaraHydraError):
    """A component cannot be built as written (an unknown class or argument, a bad value)."""


class TrainingError(ClaraHydraError):
    """Training started but cannot go on (a NaN loss, ...)."""
