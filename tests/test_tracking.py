"""MLflow tracking against a real ``mlflow server`` on loopback (started here, stopped after),
read back with MLflow's own client:

- ``hydra.sweeper.mlflow=true`` (``clara-hydra train --mlflow -m``): the sweep a parent run, each
  trial a child run with its params, its value per epoch, its state and reason; the best trial's
  MONAI bundle an artifact of its run;
- ``clara-hydra train --mlflow``: a plain run is one run, its curves per epoch, its state, its
  config and checkpoint;
- the ``mlflow`` package's client for a local store (the tests' Python has no mlflow: MONAI would
  import it in every process), run in the server's own Python.

The server's Python is a venv outside the clone (``CLARA_HYDRA_MLFLOW_VENV``, else beside the
tests' venv), made on first use (about 25 s: the server without MLflow's modelling stack) and kept."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, one_error, run_cli
from mlflow_venv import server_python
from test_sweeper import conf, rows, sweep  # noqa: F401  (conf: a fixture)

pytestmark = pytest.mark.slow
READ_BACK = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient(tracking_uri=sys.argv[1])
found = client.get_experiment_by_name(sys.argv[2])
runs = []
for r in client.search_runs([found.experiment_id]) if found else []:
    files, folders = [], [None]
    while folders:
        for f in client.list_artifacts(r.info.run_id, folders.pop()):
            (folders if f.is_dir else files).append(f.path)
    runs.append({"id": r.info.run_id, "name": r.info.run_name, "status": r.info.status, "params": r.data.params,
                 "tags": r.data.tags, "metrics": r.data.metrics, "files": sorted(files),
                 "history": {k: [[m.step, m.value] for m in client.get_metric_history(r.info.run_id, k)]
                             for k in r.data.metrics}})
json.dump(runs, sys.stdout)
"""


@pytest.fixture(scope="module")
def mlflow_python() -> Path:
    """The Python of a venv with MLflow (its server and client), made once (scripts/test.sh starts
    making it while the linters run)."""
    return server_python()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory, mlflow_python):
    """``mlflow server`` on a free loopback port, its runs in SQLite, its artifacts served by it."""
    where = tmp_path_factory.mktemp("mlflow")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(where / "server.log", "w")
    proc = subprocess.Popen([str(mlflow_python.parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1", "--backend-store-uri", f"sqlite:///{where / 'mlflow.db'}",
                             "--artifacts-destination", str(where / "artifacts")],
                            cwd=where, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"))
    url = f"http://127.0.0.1:{port}"
    try:
        while True:  # (until it answers, or ends: no clock)
            try:
                with urllib.request.urlopen(url + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None:
                pytest.fail("the MLflow server did not start: " + (where / "server.log").read_text()[-2000:])
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def read_back(python: Path, uri: str, experiment: str) -> list[dict]:
    """The experiment's runs, as MLflow's own client reads them."""
    got = subprocess.run([str(python), "-c", READ_BACK, uri, experiment], capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stderr[-3000:]
    return json.loads(got.stdout)


def family(runs: list[dict]) -> tuple[dict, dict[str, dict]]:
    """(the sweep's run, its child runs by trial number)."""
    parents = [r for r in runs if "mlflow.parentRunId" not in r["tags"]]
    assert len(parents) == 1, [r["name"] for r in runs]
    children = {r["tags"]["clara_hydra.trial"]: r for r in runs
                if r["tags"].get("mlflow.parentRunId") == parents[0]["id"]}
    return parents[0], children


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_a_sweep_and_its_trials_are_mlflow_runs(tmp_path, conf, mlflow_server, mlflow_python,  # noqa: F811
                                                direction):
    study = f"tracked-{direction}"
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=4", "hydra.sweeper.pruner=none", "hydra.sweeper.mlflow=true",
                 f"hydra.sweeper.direction={direction}", f"hydra.sweeper.study_name={study}",
                 "hydra.sweeper.storage=null", env={"MLFLOW_TRACKING_URI": mlflow_server, "FAIL_TRIALS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = proc.stdout + proc.stderr
    assert "MLflow: the sweep is run" in said and "warning" not in said, said[-3000:]
    parent, children = family(read_back(mlflow_python, mlflow_server, study))
    assert parent["status"] == "FINISHED" and parent["params"]["n_trials"] == "4"
    assert f"MLflow: {mlflow_server}/#/experiments/" in said and parent["id"] in said  # where to look
    assert sorted(children) == ["0", "1", "2", "3"]
    boom, nan = children["1"], children["2"]
    done = {n: children[n] for n in ("0", "3")}
    trials = {r["number"]: r for r in rows(tmp_path / "sweep" / "trials.csv")}
    for number, run in done.items():
        assert run["status"] == "FINISHED" and run["tags"]["state"] == "complete"
        assert set(run["params"]) == {"x", "mode"}  # the params by the names a user reads
        assert float(run["params"]["x"]) == pytest.approx(float(trials[number]["x"]))
        steps = run["history"]["key_metric"]
        assert [s for s, _ in steps] == [1, 2, 3]  # the stand-in reports 3 steps, like a validation curve
        assert run["metrics"]["best_key_metric"] == pytest.approx(float(trials[number]["value"]))
    pick = max if direction == "maximize" else min
    best = pick(done, key=lambda n: done[n]["metrics"]["best_key_metric"])
    assert parent["tags"]["best_trial"] == best, (direction, {n: r["metrics"] for n, r in done.items()})
    assert parent["metrics"]["best_key_metric"] == pytest.approx(done[best]["metrics"]["best_key_metric"])
    assert boom["status"] == "FAILED" and boom["tags"]["state"] == "fail" and "boom" in boom["tags"]["reason"]
    assert nan["status"] == "FAILED" and "nan" in nan["tags"]["reason"]
    assert "best_key_metric" not in boom["metrics"]


def test_the_best_trial_carries_its_bundle_and_a_plain_run_is_one_run(tmp_path, mlflow_server, mlflow_python):
    env = {"MLFLOW_TRACKING_URI": mlflow_server}
    demo = ("--config-dir", ROOT / "examples" / "conf", "--config-name", "demo")
    proc = run_cli("train", *demo, "--mlflow", "-m", "hydra.sweeper.n_trials=1", "epochs=1",
                   "hydra.sweeper.study_name=demo-tracked", "hydra.sweeper.storage=null",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent, children = family(read_back(mlflow_python, mlflow_server, "demo-tracked"))
    best = children[parent["tags"]["best_trial"]]
    assert "SegResnet_init_filters" in best["params"] and best["metrics"]["best_mean_dice"] >= 0
    made = tmp_path / "sweep" / "best_bundle"
    assert best["files"] == sorted("bundle/" + str(p.relative_to(made)) for p in made.rglob("*") if p.is_file())
    got = tmp_path / "got"
    fetched = subprocess.run([str(mlflow_python), "-c", "import sys; from mlflow import MlflowClient; "
                              "MlflowClient(sys.argv[1]).download_artifacts(sys.argv[2], 'bundle', sys.argv[3])",
                              mlflow_server, best["id"], str(got)], capture_output=True, text=True, timeout=300)
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    for name in ("configs/train.json", "configs/metadata.json", "models/model.pt"):
        assert (got / "bundle" / name).read_bytes() == (made / name).read_bytes(), name

    # a plain run: one run, its curves per epoch, its state, its config and checkpoint
    run_dir = tmp_path / "run"
    proc = run_cli("train", *demo, "--mlflow", "epochs=2", f"hydra.run.dir={run_dir}", cwd=tmp_path,
                   env=dict(env, MLFLOW_EXPERIMENT_NAME="plain"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = read_back(mlflow_python, mlflow_server, "plain")
    assert run["status"] == "FINISHED" and run["tags"]["clara_hydra.run_dir"] == str(run_dir)
    assert run["params"]["epochs"] == "2" and "SegResnet_init_filters" in run["params"]
    assert [s for s, _ in run["history"]["train_loss"]] == [1, 2] and [s for s, _ in run["history"]["lr"]] == [1, 2]
    assert run["history"]["lr"][0][1] == pytest.approx(0.001)  # the first epoch's (the config's learning_rate)
    curve = run["history"]["mean_dice"]
    assert [s for s, _ in curve] == [1, 2]
    assert run["metrics"]["best_mean_dice"] == pytest.approx(max(v for _, v in curve))
    assert run["files"] == ["config_train.json", "models/model.pt"]
    assert run["id"] in proc.stdout + proc.stderr  # the run's page is named

    proc = run_cli("train", *demo, "--mlflow", "epochs=1", "learning_rate=1e9", f"hydra.run.dir={tmp_path / 'nan'}",
                   cwd=tmp_path, env=dict(env, MLFLOW_EXPERIMENT_NAME="failed"), timeout=600)
    line = one_error(proc, 2)
    (run,) = read_back(mlflow_python, mlflow_server, "failed")
    assert run["status"] == "FAILED" and run["tags"]["reason"] == line, (run["tags"], line)


def test_a_tracking_server_that_is_not_there_is_one_warning_and_the_sweep_goes_on(tmp_path, conf):  # noqa: F811
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=2", "hydra.sweeper.pruner=none", "hydra.sweeper.mlflow=true",
                 "hydra.sweeper.storage=null", env={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = proc.stdout + proc.stderr
    assert said.count("MLflow tracking stops") == 1 and "Traceback" not in said, said[-3000:]
    assert f"no answer from http://127.0.0.1:{port}" in said
    assert [r["state"] for r in rows(tmp_path / "sweep" / "trials.csv")] == ["complete", "complete"]


def test_a_local_store_without_the_mlflow_package_is_one_line_before_any_trial(tmp_path, conf):  # noqa: F811
    with pytest.raises(ImportError):  # (the tests' Python has no mlflow: see the module's note)
        import mlflow  # noqa: F401
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=2", "hydra.sweeper.mlflow=true", "hydra.sweeper.storage=null",
                 env=env)
    line = one_error(proc, 2)
    assert line.startswith("error: MLFLOW_TRACKING_URI: MLflow tracking into the local store sqlite:///"), line
    assert "pip install 'clara-hydra[mlflow]'" in line and not (tmp_path / "sweep" / "0").exists()


def test_the_mlflow_package_client_writes_a_local_store(tmp_path, mlflow_python):
    """The client a local store gets (``mlflow_client.Library``), in a Python with mlflow."""
    script = """
import sys
from pathlib import Path
from clara_hydra.mlflow_client import PARENT_TAG, Library, connect
client = connect(sys.argv[1])
assert isinstance(client, Library), client
exp = client.experiment("local")
assert client.experiment("local") == exp
parent = client.create_run(exp, "sweep", {"clara_hydra.kind": "sweep"})
child = client.create_run(exp, "trial #0", {PARENT_TAG: parent}, start_ms=1000)
client.log(child, params={"lr": 0.1}, metrics=[("dice", 0.5, 1), ("dice", 0.6, 2)], tags={"state": "complete"})
client.upload(child, Path(sys.argv[2]), "bundle")
client.upload(child, Path(sys.argv[2]) / "a.txt", "")
client.end(child, "FINISHED")
client.end(parent, "KILLED")
"""
    (tmp_path / "files" / "sub").mkdir(parents=True)
    (tmp_path / "files" / "a.txt").write_text("a")
    (tmp_path / "files" / "sub" / "b.txt").write_text("b")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = subprocess.run([str(mlflow_python), "-c", script, uri, str(tmp_path / "files")], cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    parent, children = family([dict(r, tags=dict(r["tags"], **{"clara_hydra.trial": "0"}))
                               for r in read_back(mlflow_python, uri, "local")])
    child = children["0"]
    assert parent["status"] == "KILLED" and child["status"] == "FINISHED" and child["params"] == {"lr": "0.1"}
    assert child["history"]["dice"] == [[1, 0.5], [2, 0.6]] and child["tags"]["state"] == "complete"
    assert child["files"] == ["a.txt", "bundle/a.txt", "bundle/sub/b.txt"]
