"""Shared helpers: write configs, run the real command line, read the corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = (ROOT.parent / "shared" / "corpus" / "clara").resolve()
BIN = Path(sys.executable).parent


def corpus_or_skip() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent")
    return CORPUS


def training_configs() -> list[Path]:
    """Every training config of the corpus (not environment/automl/validation configs)."""
    if not CORPUS.is_dir():
        return []
    out = []
    for p in sorted(CORPUS.rglob("*.json")):
        if p.name == "environment.json" or p.name.startswith("config_automl") or p.name == "config_validation.json":
            continue
        out.append(p)
    return out


def clara_cli() -> list[str]:
    exe = BIN / "clara-hydra"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "clara_hydra"]


def run_cli(*args: str, cwd: str | os.PathLike | None = None, env: dict | None = None,
            timeout: int = 120) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.pop("CLARA_HYDRA_FULL_ERROR", None)
    full_env.update(env or {})
    return subprocess.run(clara_cli() + [str(a) for a in args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def write_config(tmp_path):
    """write_config(data, name='config_train.json', env=None) -> path of a Clara config on disk."""
    def _write(data, name: str = "config_train.json", env: dict | None = None, raw: str | None = None) -> Path:
        path = tmp_path / name
        path.write_text(raw if raw is not None else json.dumps(data, indent=2))
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
