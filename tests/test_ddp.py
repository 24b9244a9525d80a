"""Multi-process trials (DDP): ``multi_gpu: true`` / ``CLARA_HYDRA_NPROC`` / a worker of several
GPUs trains in that many processes. Without CUDA the same path runs gloo CPU processes, and
these tests use it, from an MMAR outside the clone with the real commands."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import clara_cli, convert_here, one_error, run_cli
from test_mmar import clara_train, logged_best, make_mmar, mmar, synth_data, trials  # noqa: F401 (mmar: a fixture)

pytestmark = pytest.mark.slow

NPROC = "CLARA_HYDRA_NPROC"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """3 validation cases: 2 processes validate 2 and 1 of them (uneven shares)."""
    return synth_data(tmp_path_factory.mktemp("data"), train=4, val=3)


def test_a_sweep_of_two_process_trials_completes_and_prunes(tmp_path, mmar):  # noqa: F811 (the MMAR, on data)
    """Each trial trains in 2 CPU processes (CLARA_HYDRA_NPROC=2, as a worker '0,1' sets it:
    test_sweeper checks that). Rank 0 reports to the trial, which the sweep holds, the pruner's
    decision stops both ranks, the sweep records each outcome. (epochs=1:
    its only validation is final, never pruned; epochs=2: pruned at epoch 1. The config's own
    search is left out, so that the two trials are these two.) The completed trial's value is
    over the whole validation list (every rank's cases gathered). Rank 0 alone writes the
    checkpoint and the epoch lines."""
    sweep_dir = tmp_path / "sweep"
    proc = clara_train("--mmar", mmar, "-m", "hydra.sweeper.params=null", "epochs=choice(1,2)",
                       "hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 2.0}",
                       "hydra.sweeper.export_best=false", f"hydra.sweeper.storage=sqlite:///{tmp_path / 'study.db'}",
                       f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path / "work", env={NPROC: "2"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = {r["epochs"]: r for r in trials(sweep_dir)}
    assert {e: r["state"] for e, r in rows.items()} == {"1": "complete", "2": "pruned"}, rows
    done, pruned = Path(rows["1"]["job_dir"]), Path(rows["2"]["job_dir"])
    assert "pruned at epoch 1" in rows["2"]["reason"]
    said = "training in 2 processes (DistributedDataParallel, gloo on the CPU; torch.distributed.run)"
    assert proc.stdout.count(said) == 2
    for job in (done, pruned):
        assert "Traceback" not in (job / "rank1.log").read_text()
    rank1 = json.loads((pruned / ".ddp" / "rank1.json").read_text())  # rank 1 got rank 0's decision
    assert (rank1["state"], rank1["reason"]) == ("pruned", rows["2"]["reason"]), rank1

    value = float(rows["1"]["value"])
    assert value == pytest.approx(logged_best(done / "train.log"), abs=1e-4)
    assert len(re.findall(r"epoch 1/1", (done / "train.log").read_text())) == 1
    assert rank1["time"] and json.loads((done / ".ddp" / "rank0.json").read_text())["value"] == pytest.approx(value)
    # (that the value is over the whole validation list, as one process computes it: the torchrun
    # and two-node tests below validate their checkpoints in one process)


def _one_process_value(folder: Path, run: Path, out: Path) -> float:
    """The key metric of a run's checkpoint (its only one: rank 0 alone writes), validated in one
    process over the whole validation list (3 cases)."""
    (ckpt,) = (run / "models").glob("*.pt")
    check = run_cli("validate", "--mmar", folder, f"MMAR_CKPT='{ckpt}'", f"hydra.run.dir={out}", cwd=out.parent,
                    timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    assert "validated 3 case(s)" in check.stdout
    metrics = (out / "eval" / "metrics.csv").read_text()
    return float(metrics.split("val_mean_dice,")[1].split()[0])


TORCHRUN = [str(Path(sys.executable).parent / "torchrun")]


def _run_under_torchrun(tmp_path: Path, folder: Path, agents: list[list[str]],
                        run_dirs: list[Path] | None = None) -> list[subprocess.CompletedProcess]:
    """``clara-hydra train --mmar`` under each torchrun agent (its torchrun arguments, then any
    ``+override`` of its own), all at once, into one run folder (or each into its own of
    ``run_dirs``); each agent and its ranks end by the bound (then the test fails)."""
    cli = clara_cli()
    if not cli[0].endswith("clara-hydra"):
        pytest.skip("no clara-hydra script to give torchrun")
    env = {k: v for k, v in os.environ.items() if k not in ("CLARA_HYDRA_FULL_ERROR", NPROC)}
    procs = []
    for i, args in enumerate(agents):
        run = (run_dirs or [tmp_path / "run"] * len(agents))[i]
        ours = [a for a in args if a.startswith("+")]
        cmd = [*cli, "train", "--mmar", str(folder), "epochs=1", f"hydra.run.dir={run}", *ours]
        procs.append(subprocess.Popen([*TORCHRUN, *[a for a in args if a not in ours], *cmd], cwd=tmp_path, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      start_new_session=True))
    done = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return done


def test_a_run_started_by_torchrun_trains_as_one_group(tmp_path, mmar):  # noqa: F811
    """``torchrun --standalone --nproc_per_node 2 clara-hydra train --mmar ...``: torchrun starts
    the ranks; each is the app (Hydra, the config), one rank of the run. Rank 0 alone speaks on
    the console, logs the epochs and writes the checkpoint; the other logs into rank1.log; the
    run's key metric is over the whole validation list: validating its checkpoint in one process
    gives it. (Agents on two nodes: test_a_trial_on_two_nodes_trains_as_one_run, a trial's job.)"""
    agents = [["--standalone", "--nproc_per_node", "2"]]
    done = _run_under_torchrun(tmp_path, mmar, agents)
    for proc in done:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    said = [float(m) for proc in done for m in re.findall(r"key metric = ([0-9.]+)", proc.stdout)]
    assert len(said) == 1, [p.stdout[-1000:] for p in done]  # rank 0's line, once
    run = tmp_path / "run"
    assert len(re.findall(r"epoch 1/1, loss", (run / "train.log").read_text())) == 1
    rank1 = (run / "rank1.log").read_text()
    assert "Traceback" not in rank1 and "epoch 1/1" in rank1
    outcomes = [json.loads((run / ".ddp" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [o["state"] for o in outcomes] == ["complete", "complete"]
    assert said[0] == pytest.approx(outcomes[0]["value"], abs=1e-4)
    assert _one_process_value(mmar, run, tmp_path / "val") == pytest.approx(outcomes[0]["value"], abs=1e-6)


def test_two_torchrun_agents_on_loopback_are_one_run_in_rank_0s_folder(tmp_path, mmar):  # noqa: F811
    """``torchrun --nnodes 2`` twice (a c10d rendezvous on loopback) stands for two nodes: one run
    of 2 ranks. Each node's Hydra makes its own run folder (here told apart, as two nodes' clocks
    or shared folders would make them): rank 0's is the run's, where the other rank logs and
    leaves its outcome too."""
    from torch.distributed import TCPStore
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # the rendezvous store outlives both agents (as a site's own store would): the agent that
    # hosted it would otherwise leave first, and the other's last word to it fail the agent
    store = TCPStore("127.0.0.1", port, is_master=True, multi_tenant=True, wait_for_workers=False)
    rdzv = ["--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d", "--rdzv_endpoint",
            f"127.0.0.1:{port}", "--rdzv_conf", "is_host=false", "--rdzv_id", "clara-two-nodes", "--max_restarts", "0"]
    try:
        done = _run_under_torchrun(tmp_path, mmar, [[*rdzv, "+run_as=a"], [*rdzv, "+run_as=b"]],
                                   run_dirs=[tmp_path / "node-a", tmp_path / "node-b"])
    finally:
        del store
    for proc in done:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (said,) = [m for proc in done for m in re.findall(r"key metric = ([0-9.]+)", proc.stdout)]
    (run,) = [d for d in (tmp_path / "node-a", tmp_path / "node-b") if (d / ".ddp" / "rank0.json").exists()]
    outcomes = [json.loads((run / ".ddp" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [o["state"] for o in outcomes] == ["complete", "complete"]  # (both in rank 0's folder)
    assert "epoch 1/1" in (run / "rank1.log").read_text()
    assert float(said) == pytest.approx(outcomes[0]["value"], abs=1e-4)


def test_a_failure_in_one_process_ends_the_run_with_its_reason(tmp_path, data):
    """One training case is NaN: the process that gets it fails; the other, waiting for it in
    the gradients' all-reduce, is stopped; the run ends with that process's one line."""
    import nibabel as nib
    import numpy as np
    dataset = json.loads(Path(data["DATASET_JSON"]).read_text())
    bad = tmp_path / "nan.nii.gz"
    vol = nib.load(Path(data["DATA_ROOT"]) / dataset["training"][0]["image"])
    nib.save(nib.Nifti1Image(np.full(vol.shape, np.nan, dtype=np.float32), vol.affine), bad)
    dataset["training"][0]["image"] = str(bad)
    (tmp_path / "dataset.json").write_text(json.dumps(dataset))
    probe = tmp_path / "probe"  # an environment.json value that looks like code is data in every process too
    env = dict(data, DATASET_JSON=str(tmp_path / "dataset.json"), TAG=f"#open({str(probe)!r}, 'w')",
               MMAR_CKPT_DIR="models", MMAR_CKPT="models/model.pt")
    folder = make_mmar(tmp_path / "mmar", data, env_keys=env)
    config = json.loads((folder / "config" / "config_train.json").read_text())
    config["train"]["handlers"][3]["args"]["tag_name"] = "{TAG}"  # (the StatsHandler)
    (folder / "config" / "config_train.json").write_text(json.dumps(config))
    convert_here(folder / "config" / "config_train.json", folder / "conf")
    proc = run_cli("train", "--mmar", folder, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env={NPROC: "2"},
                   timeout=300)
    assert "train.loss: the loss is nan at epoch 1" in one_error(proc)
    assert not probe.exists()


def test_a_trial_on_two_nodes_trains_as_one_run(tmp_path, mmar):  # noqa: F811
    """hydra.sweeper.nodes_per_trial=2: the trial is one job of two nodes, an elastic agent on
    each (srun torchrun's); here submitit's local executor, whose two tasks stand for the two
    nodes on loopback (gloo). Rank 0 reports to the trial through the study's storage and
    writes its outcome; the trial's value is over the whole validation list: validating its
    checkpoint in one process gives it."""
    sweep_dir = tmp_path / "sweep"
    proc = clara_train("--mmar", mmar, "-m", "hydra/launcher=submitit_local", "hydra.sweeper.nodes_per_trial=2",
                       "hydra.sweeper.params=null", "epochs=1", "hydra.sweeper.n_trials=1",
                       "hydra.sweeper.export_best=false", f"hydra.sweeper.storage=journal:{tmp_path / 'study.journal'}",
                       f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path / "work")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (trial,) = trials(sweep_dir)
    assert trial["state"] == "complete", trial
    job = Path(trial["job_dir"])
    assert "trial #0: local job" in proc.stdout
    outcomes = [json.loads((job / ".ddp" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [o["state"] for o in outcomes] == ["complete", "complete"]  # one rank on each "node"
    assert "Traceback" not in (job / "rank1.log").read_text()
    assert _one_process_value(mmar, job, tmp_path / "val") == pytest.approx(float(trial["value"]), abs=1e-6)


@pytest.mark.parametrize("outcomes, want", [
    pytest.param({0: {"state": "error", "message": "Connection closed by peer", "time": 2.0},
                  1: {"state": "error", "message": "CUDA out of memory", "time": 1.0}}, "CUDA out of memory",
                 id="the-first-failure-not-its-effects"),
    pytest.param({0: {"state": "complete", "value": 0.5, "time": 1.0}, 1: {"state": "pruned", "time": 1.0}}, None,
                 id="no-error"),
    pytest.param({}, None, id="no-outcome"),
])
def test_a_trial_on_several_nodes_fails_with_the_first_ranks_error(tmp_path, outcomes, want):
    """A multi-node trial's reason (its rank 0 only sees the knock-on error of a rank that failed
    on another node): the error of the rank that failed first, from the ranks' outcomes."""
    from clara_hydra.train.ddp import first_error
    folder = tmp_path / ".ddp"
    folder.mkdir()
    for r, got in outcomes.items():
        (folder / f"rank{r}.json").write_text(json.dumps(got))
    assert first_error(str(tmp_path)) == want
