"""Shared helpers: write configs, run the real command line, read the corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

#: The Clara config corpus the corpus tests read. They always run; the corpus is, first found:
#: 1. $CLARA_HYDRA_CORPUS when set (a folder laid out like the corpus; a relative path is taken from
#:    the repository root), e.g. ``CLARA_HYDRA_CORPUS=tests/data/corpus/clara pytest ...`` runs the
#:    corpus tests on the trimmed copy even where the full corpus is there; a missing folder is an error;
#: 2. ../shared/corpus/clara next to the repository: the full corpus (48 files);
#: 3. tests/data/corpus/clara: the trimmed copy kept in the repository (its SOURCES.md says what it
#:    holds, where each file comes from, and what was left out), so a fresh clone tests too.
FULL_CORPUS = (ROOT.parent / "shared" / "corpus" / "clara").resolve()
TRIMMED_CORPUS = ROOT / "tests" / "data" / "corpus" / "clara"


def _find_corpus() -> Path:
    given = os.environ.get("CLARA_HYDRA_CORPUS")
    if given:
        path = Path(given).expanduser()
        path = (path if path.is_absolute() else ROOT / path).resolve()
        if not path.is_dir():
            raise RuntimeError(f"CLARA_HYDRA_CORPUS={given}: no such folder ({path})")
        return path
    return FULL_CORPUS if FULL_CORPUS.is_dir() else TRIMMED_CORPUS


CORPUS = _find_corpus()
#: True when the tests read the trimmed copy (fewer configs; tests that count them know it).
CORPUS_IS_TRIMMED = CORPUS == TRIMMED_CORPUS.resolve()


def corpus_or_skip() -> Path:
    """The corpus folder. Despite the (kept) name it never skips: there is always a corpus."""
    assert CORPUS.is_dir(), f"the Clara corpus {CORPUS} is missing"
    return CORPUS


def training_configs() -> list[Path]:
    """Every training config of the corpus (not environment/automl/validation configs)."""
    out = []
    for p in sorted(CORPUS.rglob("*.json")):
        if p.name == "environment.json" or p.name.startswith("config_automl") or p.name == "config_validation.json":
            continue
        out.append(p)
    return out


#: The files whose tests take longest (end-to-end sweeps and training), longest first: they start
#: first, so that the suite's two worker processes (scripts/test.sh) end together.
LONGEST_FIRST = ("test_mmar.py", "test_sweeper.py", "test_train.py", "test_tracking.py", "test_failures.py",
                 "test_liveness.py", "test_better.py", "test_stock.py", "test_ddp.py", "test_hostile.py",
                 "test_slurm.py")


def pytest_collection_modifyitems(items: list) -> None:
    """The longest files first, each file's tests in their order, the other files as collected."""
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # (a stable sort)


def apt_install(*packages: str) -> None:
    """Debian's packages (the test's PostgreSQL or SLURM), installed as root, one install at a time
    on the machine: the suite's worker processes (pytest-xdist) may both need one, and apt holds a
    lock that a second apt-get fails on."""
    import fcntl
    with open("/tmp/clara-hydra-apt.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, capture_output=True, env=env)


def clara_cli() -> list[str]:
    exe = BIN / "clara-hydra"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "clara_hydra"]


def run_cli(*args: str, cwd: str | os.PathLike | None = None, env: dict | None = None,
            timeout: int = 120, file_limit: int | None = None) -> subprocess.CompletedProcess:
    """``clara-hydra ARGS``; ``file_limit``: no file it writes may grow past so many bytes (the
    write that would fails as on a full disk)."""
    full_env = dict(os.environ)
    full_env.pop("CLARA_HYDRA_FULL_ERROR", None)
    full_env.update(env or {})

    def limit() -> None:
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
    return subprocess.run(clara_cli() + [str(a) for a in args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limit if file_limit is not None else None)


def in_terminal(cmd: list, cwd: str | os.PathLike, env: dict | None = None, timeout: float = 600,
                columns: int = 160) -> tuple[int, str]:
    """Run ``cmd`` with a pseudo-terminal of ``columns`` as its stdout and stderr (``TERM`` an
    xterm's, whatever the suite runs under), as a user's shell runs it: (exit code, everything it
    wrote). The process group is ended on any failure."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = dict(os.environ if env is None else env, TERM="xterm-256color")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    out = b""
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other end closed (the process ended)
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=max(1.0, end - time.monotonic()))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
        os.close(master)
    return proc.returncode, out.decode("utf-8", "replace")


def screen(out: str) -> list[str]:
    """What a terminal shows after ``out`` (carriage returns, new lines, ``ESC[A`` cursor up; other
    escape sequences dropped): the lines as a user reads them, trailing blanks removed."""
    import re
    rows: list[list[str]] = [[]]
    row = col = 0
    for token in re.findall(r"\x1b\[(\d*)([A-Za-z])|(\r)|(\n)|([^\x1b\r\n])", out):
        count, code, cr, nl, char = token
        if code == "A":
            row = max(0, row - int(count or 1))
        elif cr:
            col = 0
        elif nl:
            row += 1
            rows.extend([] for _ in range(row + 1 - len(rows)))
        elif char:
            line = rows[row]
            line.extend(" " for _ in range(col + 1 - len(line)))
            line[col] = char
            col += 1
    return ["".join(r).rstrip() for r in rows]


def convert_here(src: str | os.PathLike, out: str | os.PathLike) -> None:
    """``clara-hydra convert SRC -o OUT``, run in this process (the command's own code, without
    starting Python again: a fixture's MMAR, not the command under test)."""
    from clara_hydra.cli import main
    assert main(["convert", str(src), "-o", str(out)]) == 0


def one_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    """The one ``error:`` line a refused command printed, having checked its exit code and that no
    traceback or internal error came with it."""
    assert proc.returncode == code, (proc.returncode, proc.stdout[-1500:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def write_config(tmp_path):
    """write_config(data, name='config_train.json', env=None) -> path of a Clara config on disk
    (``data`` a JSON value, or the file's text as a string)."""
    def _write(data, name: str = "config_train.json", env: dict | None = None, raw: str | None = None) -> Path:
        path = tmp_path / name
        text = raw if raw is not None else data if isinstance(data, str) else json.dumps(data, indent=2)
        path.write_text(text)
        if env is not None:
            (tmp_path / "environment.json").write_text(json.dumps(env))
        return path
    return _write


def resolve(path, overrides=(), enabled_only=False) -> dict:
    from clara_hydra.resolve import resolve_file
    return resolve_file(str(path), list(overrides), enabled_only=enabled_only)


def space(path) -> list[dict]:
    from clara_hydra.reader import read
    from clara_hydra.space import build
    return [p.as_json() for p in build(read(str(path)))]


def cases(rows) -> list:
    """A test table whose rows start with their name: one ``pytest.param(*row, id=row[0])`` each
    (the name stays the first value, for tests that look things up by it)."""
    return [pytest.param(*row, id=row[0]) for row in rows]
