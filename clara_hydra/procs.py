"""Child processes that end with their parent: the sweep's workers and a trial's DDP ranks."""

from __future__ import annotations

import signal
import subprocess


def die_with_parent() -> None:
    """Linux: the child gets SIGTERM when its parent dies, even by kill -9 (a ``preexec_fn``)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def stop(proc: subprocess.Popen) -> None:
    """Terminate a child and wait for it (:func:`reap`)."""
    if proc.poll() is None:
        proc.terminate()
    reap(proc)


def stop_all(procs: list[subprocess.Popen]) -> None:
    """Terminate children all at once, then wait for each (:func:`reap`)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        reap(proc)


def reap(proc: subprocess.Popen) -> None:
    """Wait for a process told to terminate; kill it when it has not ended within 10 s."""
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
