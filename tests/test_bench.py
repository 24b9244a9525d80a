"""The GPU readiness script (``bench/gpu_check.py``) and the loop benchmark it runs, run here on
the CPU as their device, small (``--quick``): so that a GPU's few lent minutes are never lost to a
script that rotted. Their rows are not measurements here; that they run, and say what ran, is."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_gpu_check_runs_on_the_cpu(tmp_path):
    """Its loop check (bench/bench_loop.py: clara-hydra's trainer as train() builds and places it,
    against the hand-written loop, in interleaved pairs) and its cache check (a demo run). Its
    workers and DDP checks are command lines over what test_sweeper and test_ddp run; the whole
    script's CPU run is in BENCHMARKS.md (the suite's 15 minutes do not hold all four)."""
    out = tmp_path / "rows.md"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--quick", "--only", "loop", "cache",
                           "--out", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [ln for ln in out.read_text().splitlines() if ln.startswith("| ") and not ln.startswith("| check")]
    assert len(rows) == 2, rows
    loop, cache = rows
    assert re.match(r"\| loop: ours / hand-written \(AMP on CUDA\), 2 interleaved pairs \| median [\d.]+ "
                    r"\(min [\d.]+, max [\d.]+\) \|", loop), loop
    assert cache.endswith("| no | no (CPU) | ok |"), cache
    assert out.read_text().startswith("Machine: cpu (")
