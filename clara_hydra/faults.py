"""Fault-injection points: the tests make a process stop, wait or die at a named instant,
deterministically, instead of guessing it by timing.

``CLARA_HYDRA_FAULT`` holds ``;``-separated rules ``POINT[@N]:ACTION[,ACTION...]``: at the point
``POINT`` (its ``N``-th occurrence, e.g. an epoch number; any where ``@N`` is left out) the
actions run in order:

- ``touch=PATH``: create PATH (the test learns that the point was reached);
- ``wait=PATH``: block until PATH exists (the test decides when the process goes on);
- ``remove=PATH``: delete the file PATH (a storage lost while in use);
- ``kill``: SIGKILL this process (as ``kill -9`` would), ``exit``: ``os._exit(3)``.

In a PATH, ``{trial}`` is the sweep's trial number of this job (``CLARA_HYDRA_TRIAL``), so that
one rule makes each trial of a sweep wait on its own file.

Unset (every real run), a point costs one dictionary look-up. Pure: no torch, no Optuna.
"""

from __future__ import annotations

import os
import signal
import time

ENV_FAULT = "CLARA_HYDRA_FAULT"

#: the points the code offers (a rule naming another one is a test's mistake: refused)
POINTS = ("after_ask", "epoch_end", "before_outcome", "after_outcome", "before_tell", "results_write")


def point(name: str, at: int | None = None) -> None:
    """Run the actions the environment sets for ``name`` (its occurrence ``at``)."""
    spec = os.environ.get(ENV_FAULT)
    if not spec:
        return
    for rule in spec.split(";"):
        where, _, actions = rule.strip().partition(":")
        pname, _, n = where.partition("@")
        if pname not in POINTS:
            raise ValueError(f"{ENV_FAULT}: no fault point {pname!r} (known: {', '.join(POINTS)})")
        if pname != name or (n and (at is None or int(n) != at)):
            continue
        for action in actions.split(","):
            _act(action.strip())


def _act(action: str) -> None:
    verb, _, arg = action.partition("=")
    arg = arg.replace("{trial}", os.environ.get("CLARA_HYDRA_TRIAL", "none"))
    if verb == "touch":
        with open(arg, "a"):
            pass
    elif verb == "wait":
        while not os.path.exists(arg):
            time.sleep(0.05)
    elif verb == "remove":
        os.remove(arg)
    elif verb == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif verb == "exit":
        os._exit(3)
    else:
        raise ValueError(f"{ENV_FAULT}: no fault action {action!r} (touch=PATH, wait=PATH, remove=PATH, kill, exit)")
