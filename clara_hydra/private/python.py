"""The standard library's internals: which function a thread runs (a thread of a
``multiprocessing.pool`` ThreadPool, that :func:`clara_hydra.app.settle_pool_threads` waits for)."""

from __future__ import annotations

from typing import Any

#: What this module reaches into, by owner: the upgrade test checks each is still there.
PRIVATE_NAMES: dict[str, tuple[str, ...]] = {
    "threading.Thread": ("_target",),
}


def thread_target(thread: Any) -> Any:
    """The function a ``threading.Thread`` runs (``_target``; None once it has ended)."""
    return getattr(thread, "_target", None)
