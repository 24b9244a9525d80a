"""A sweep's progress bar, on a terminal: the trials finished out of the trials this run starts,
the time left, the best value so far and the running trial's epoch, kept below the sweep's
lines (``sweep  3/20 trials |███      | 01:12<04:48, best 0.9123 (#2), #3 epoch 2/10``).

The bar shows where the sweep's stderr is a terminal (``TERM`` not ``dumb``); while it shows,
``sys.stdout`` and ``sys.stderr`` write each line above it (the console's log lines, a trial's
prints and warnings). Elsewhere (a log file, CI, a pipe) nothing changes: the lines are the whole
story. ``CLARA_HYDRA_PROGRESS=0`` turns it off.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time
from typing import Any

#: ``0`` turns the bar off on a terminal too.
ENV_PROGRESS = "CLARA_HYDRA_PROGRESS"

_bar: Any = None  # this process's bar (a tqdm), while a sweep runs on a terminal
_best = ""
_running = ""
_drawn = 0.0  # when the bar was last drawn (a running trial's news redraws it at most 4 times a second)
_streams: tuple[Any, Any] | None = None  # (stdout, stderr) as they were before the bar
_moved: list[tuple[logging.StreamHandler, Any]] = []  # console handlers that write above the bar, and where before


class _AboveBar(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr`` while the bar shows: each whole line is written above the
    bar, which is then drawn again below it (logging's console handlers, ``print``, warnings)."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream, self.pending = stream, ""

    def write(self, text: str) -> int:
        if _bar is None:
            return self.stream.write(text)
        self.pending += text
        if "\n" in self.pending:
            lines, self.pending = self.pending.rsplit("\n", 1)
            with _bar.get_lock():
                _bar.clear(nolock=True)
                self.stream.write(lines + "\n")
                self.stream.flush()
                _bar.refresh(nolock=True)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.stream.encoding


def _wanted() -> bool:
    if os.environ.get(ENV_PROGRESS) == "0" or os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def start(total: int) -> bool:
    """Show the bar of a sweep that starts ``total`` trials (where it can show); True if it shows."""
    global _bar, _best, _running, _streams
    stop()
    if total <= 0 or not _wanted():
        return False
    from tqdm import tqdm
    _best, _running = "", ""
    _streams = (sys.stdout, sys.stderr)
    _bar = tqdm(total=total, file=sys.stderr, desc="sweep", unit="trial", dynamic_ncols=True, leave=True,
                bar_format="{desc} {n_fmt}/{total_fmt} trials |{bar}| {elapsed}<{remaining}{postfix}")
    proxies = {id(sys.stdout): _AboveBar(sys.stdout), id(sys.stderr): _AboveBar(sys.stderr)}
    for handler in _console_handlers():  # a handler made before (the sweep's own lines) writes there too
        if id(handler.stream) in proxies:
            _moved.append((handler, handler.stream))
            handler.setStream(proxies[id(handler.stream)])
    sys.stdout, sys.stderr = proxies[id(sys.stdout)], proxies[id(sys.stderr)]
    return True


def _console_handlers() -> list[logging.StreamHandler]:
    loggers = [logging.getLogger()] + [lg for lg in logging.root.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    return [h for lg in loggers for h in lg.handlers
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]


def shown() -> bool:
    """Does this process show a sweep's bar (a trial in its process then reports to it, and shows
    no bar of its own)?"""
    return _bar is not None


def _show(*, now: bool = True) -> None:
    global _drawn
    if _bar is None or not (now or time.monotonic() - _drawn >= 0.25):
        return
    _bar.set_postfix_str(", ".join(text for text in (_best, _running) if text), refresh=True)
    _drawn = time.monotonic()


def trial_ended(best: str) -> None:
    """A trial of the sweep ended; ``best``: what the best so far is (``best 0.91 (#2)``)."""
    global _best, _running
    if _bar is None:
        return
    _best, _running = best, ""
    _bar.update(1)
    _show()


def running(text: str, *, now: bool = True) -> None:
    """Where a running trial is (``#3 epoch 2/10``; ``#3 epoch 3/10, iteration 40/120``, drawn
    at most 4 times a second with ``now=False``)."""
    global _running
    if _bar is None:
        return
    _running = text
    _show(now=now)


def stop() -> None:
    """Leave the bar as it ended (a terminal keeps its last line)."""
    global _bar, _streams
    bar, _bar = _bar, None
    if _streams is not None:
        for proxy in (sys.stdout, sys.stderr):
            if isinstance(proxy, _AboveBar) and proxy.pending:
                proxy.stream.write(proxy.pending)
                proxy.pending = ""
        sys.stdout, sys.stderr = _streams
        _streams = None
    for handler, stream in _moved:
        if isinstance(handler.stream, _AboveBar):
            handler.setStream(stream)
    _moved.clear()
    if bar is not None:
        bar.close()
