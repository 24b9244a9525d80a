"""The venv of the tests' MLflow server (tests/test_tracking.py), outside the clone:
``CLARA_HYDRA_MLFLOW_VENV``, else beside the tests' venv. Made once, under a lock: scripts/test.sh
starts it while the linters run (``python tests/mlflow_venv.py``), and the tests wait for it or
make it. It holds the mlflow package without its modelling stack (pandas, pyarrow, scikit-learn,
scipy, matplotlib, docker: ~900 MB), which ``mlflow server`` (the tracking API, the artifact
proxy, the UI) and MLflow's client do not need; the server runs with its scheduled jobs off."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

MLFLOW = "mlflow==3.18.0"
SERVER_NEEDS = ["mlflow-skinny==3.18.0", "mlflow-tracing==3.18.0", "alembic==1.20.1", "SQLAlchemy==2.1.9",
                "Flask==3.1.3", "flask-cors==6.0.5", "graphene==3.4.3", "huey==3.5.4", "aiohttp==3.14.5",
                "numpy==2.4.6", "cryptography==50.0.2"]


def server_python() -> Path:
    """The venv's Python, made first where it is not there (or not whole)."""
    beside = Path(sys.prefix).parent / ("server-" + MLFLOW.replace("==", "-"))
    venv = Path(os.environ.get("CLARA_HYDRA_MLFLOW_VENV") or beside)
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    wanted = " ".join([MLFLOW] + SERVER_NEEDS)
    with open(str(venv) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ready = venv / "ready"
        if not ready.exists() or ready.read_text() != wanted:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile"]
            subprocess.run(pip + SERVER_NEEDS, check=True, capture_output=True)
            subprocess.run(pip + ["--no-deps", MLFLOW], check=True, capture_output=True)
            ready.write_text(wanted)
    return python


if __name__ == "__main__":
    server_python()
