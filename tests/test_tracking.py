"""``hydra.sweeper.mlflow=true`` against a real MLflow server on loopback (started here, stopped
after): the sweep a parent run, each trial a child run with its params, its value per epoch, its
state and reason; the best trial's MONAI bundle an artifact of its run. Read back with MLflow's
own client."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT
from test_sweeper import conf, sweep  # noqa: F401  (conf: a fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """``mlflow server`` on a free loopback port, its runs in SQLite, its artifacts in a folder."""
    where = tmp_path_factory.mktemp("mlflow")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    assert exe, "mlflow is not installed (scripts/setup.sh installs the mlflow extra)"
    log = open(where / "server.log", "w")
    proc = subprocess.Popen([exe, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                             "--backend-store-uri", f"sqlite:///{where / 'mlflow.db'}",
                             "--artifacts-destination", str(where / "artifacts")],
                            cwd=where, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the MLflow server did not start: " + (where / "server.log").read_text()[-2000:])
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def _runs(url: str, experiment: str):
    from mlflow import MlflowClient
    client = MlflowClient(tracking_uri=url)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    runs = client.search_runs([found.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [r.info.run_name for r in runs]
    children = {r.data.tags["clara_hydra.trial"]: r for r in runs if r.data.tags.get("mlflow.parentRunId")
                == parents[0].info.run_id}
    return client, parents[0], children


def test_a_sweep_and_its_trials_are_mlflow_runs(tmp_path, conf, mlflow_server):  # noqa: F811
    env = {"MLFLOW_TRACKING_URI": mlflow_server, "FAIL_TRIALS": "1"}
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=3", "hydra.sweeper.pruner=none", "hydra.sweeper.mlflow=true",
                 "hydra.sweeper.study_name=tracked", "hydra.sweeper.storage=null", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MLflow: the sweep is run" in proc.stdout and "warning" not in proc.stdout + proc.stderr
    client, parent, children = _runs(mlflow_server, "tracked")
    assert parent.info.status == "FINISHED" and parent.data.params["n_trials"] == "3"
    assert sorted(children) == ["0", "1", "2"]
    ok, boom, nan = children["0"], children["1"], children["2"]
    assert ok.info.status == "FINISHED" and ok.data.tags["state"] == "complete"
    assert set(ok.data.params) == {"x", "mode"}  # the params by the names a user reads
    steps = [(m.step, m.value) for m in client.get_metric_history(ok.info.run_id, "key_metric")]
    assert [s for s, _ in steps] == [1, 2, 3]  # the stand-in reports 3 steps, like a validation curve
    assert ok.data.metrics["best_key_metric"] == pytest.approx(steps[-1][1])  # (the study's metric name)
    assert parent.data.tags["best_trial"] == "0" and parent.data.metrics["best_key_metric"] == \
        pytest.approx(ok.data.metrics["best_key_metric"])
    assert boom.info.status == "FAILED" and boom.data.tags["state"] == "fail" and "boom" in boom.data.tags["reason"]
    assert nan.info.status == "FAILED" and "nan" in nan.data.tags["reason"]
    assert "best_key_metric" not in boom.data.metrics


def test_the_best_trial_carries_its_bundle(tmp_path, mlflow_server):
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server)
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", "hydra.sweeper.n_trials=1", "epochs=1",
                           "hydra.sweeper.mlflow=true", "hydra.sweeper.study_name=demo-tracked",
                           "hydra.sweeper.storage=null", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, parent, children = _runs(mlflow_server, "demo-tracked")
    best = children[parent.data.tags["best_trial"]]
    got = Path(client.download_artifacts(best.info.run_id, "bundle", str(tmp_path / "got")))
    made = tmp_path / "sweep" / "best_bundle"
    assert (got / "configs" / "train.json").read_text() == (made / "configs" / "train.json").read_text()
    assert (got / "models" / "model.pt").read_bytes() == (made / "models" / "model.pt").read_bytes()
    assert "SegResnet_init_filters" in best.data.params and best.data.metrics["best_mean_dice"] >= 0


def test_a_tracking_server_that_is_not_there_is_one_warning_and_the_sweep_goes_on(tmp_path, conf):  # noqa: F811
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
           "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=2", "hydra.sweeper.pruner=none", "hydra.sweeper.mlflow=true",
                 "hydra.sweeper.storage=null", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = proc.stdout + proc.stderr
    assert said.count("MLflow tracking stops") == 1 and "Traceback" not in said, said[-3000:]
    from test_sweeper import rows
    assert [r["state"] for r in rows(tmp_path / "sweep" / "trials.csv")] == ["complete", "complete"]
