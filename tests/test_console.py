"""What a user sees of a sweep on a terminal: one progress bar below whole lines, with Hydra's
launcher and with workers (the real demo sweep in a pseudo-terminal), and where the bar shows."""

from __future__ import annotations

import re
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("runner", ["launcher", "workers"])
def test_a_sweep_on_a_terminal_shows_its_progress_bar(tmp_path, runner):
    """On a terminal, one bar for the sweep (trials done, time left, the best so far, where the
    running trial is) stays below the lines, which come through whole, with Hydra's launcher and
    with workers; a trial shows no bar of its own."""
    from conftest import in_terminal, screen
    n, how = (1, ["hydra.sweeper.storage=null"]) if runner == "launcher" else \
        (1, [f"hydra.sweeper.storage=sqlite:///{tmp_path / 's.db'}", "hydra.sweeper.workers=1"])
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", f"hydra.sweeper.n_trials={n}", "epochs=1", *how,
           "hydra.sweeper.pruner=none", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    code, out = in_terminal(cmd, tmp_path)
    assert code == 0, out[-3000:]
    assert re.search(rf"sweep {n}/{n} trials \|█+\| \d\d:\d\d<00:00, best \d\.\d{{4}} \(#[01]\)", out), out[-3000:]
    assert re.search(rf"sweep [01]/{n} trials \|.*#[01] epoch 1/1", out), out[-3000:]
    shown = screen(out)  # as the terminal shows it: each line whole, on a line of its own, the bar last
    lines = [ln for ln in shown if "clara-hydra: trial #" in ln and "best so far" in ln]
    assert len(lines) == n and all(re.fullmatch(r"\[\d\d:\d\d:\d\d\] clara-hydra: trial #\d: .+ \| best so far .+", ln)
                                   for ln in lines), shown
    bars = [ln for ln in shown if ln.startswith("sweep ")]
    assert len(bars) == 1 and f"sweep {n}/{n}" in bars[0], shown
    assert "Epoch [" not in out and "Warning" not in out  # (ignite's bar of a plain run)


@pytest.mark.parametrize("env, terminal, shows", [
    pytest.param({}, True, True, id="a-terminal"),
    pytest.param({"CLARA_HYDRA_PROGRESS": "0"}, True, False, id="turned-off"),
    pytest.param({"TERM": "dumb"}, True, False, id="a-dumb-terminal"),
    pytest.param({}, False, False, id="a-file-or-a-pipe"),
])
def test_where_the_sweep_bar_shows(monkeypatch, tmp_path, env, terminal, shows):
    import io

    from clara_hydra import progress

    class Stream(io.StringIO):
        def isatty(self):
            return terminal
    monkeypatch.delenv("CLARA_HYDRA_PROGRESS", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")  # (whatever the suite runs under)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "stderr", Stream())
    monkeypatch.setattr(sys, "stdout", Stream())
    try:
        assert progress.start(3) is shows and progress.shown() is shows
        print("a line")  # (above the bar where it shows)
    finally:
        progress.stop()
    assert not progress.shown() and "a line\n" in sys.stdout.getvalue()
