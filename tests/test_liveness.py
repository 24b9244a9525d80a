"""Dead trials found on every host and at every instant: liveness by heartbeat.

A sweep is killed (kill -9, at a fault point: clara_hydra/faults.py, never a timing guess) at
each instant of a trial's life, and run again: no trial is left RUNNING, none is lost, none is
trained twice. Two host names (``unshare --uts``) share one PostgreSQL study and one folder: the
second host resumes the trial of the first, killed mid-training; a trial that beats on another
host is never touched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, cases, clara_cli
from test_sweeper import postgres  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow

UNSHARE = shutil.which("unshare")


def _study(storage: str, name: str = "cfg"):
    import optuna
    return optuna.load_study(study_name=name, storage=storage)


def _states(storage: str, name: str = "cfg") -> dict[int, str]:
    return {t.number: t.state.name for t in _study(storage, name).trials}


# ------------------------------------------------------------------------ the rule, on a real storage

@pytest.fixture
def study(tmp_path):
    import optuna
    return optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}")


def _zombie() -> int:
    """A process id of this host that is a zombie (exited, never reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(f"/proc/{child.pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.05)
    _ZOMBIES.append(child)
    return child.pid


_ZOMBIES: list = []


def _gone() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


RULES = cases([
    # (id, beat: (host, pid, age) or None, owner: (host, pid) or None, other sweeps alive, started age, dead?)
    ("beating-on-another-host", ("node-b", 1, 5), None, False, 5, False),
    ("silent-on-another-host-past-the-grace", ("node-b", 1, 200), None, False, 300, True),
    ("its-process-here-is-gone", ("HERE", "GONE", 1), None, False, 5, True),
    ("its-process-here-is-a-zombie", ("HERE", "ZOMBIE", 1), None, False, 5, True),
    ("its-process-here-runs", ("HERE", "ME", 1), None, False, 5, False),
    ("no-beat-yet-its-owner-here-runs", None, ("HERE", "ME"), False, 5, False),
    ("no-beat-its-owner-here-is-gone", None, ("HERE", "GONE"), False, 5, True),
    ("nothing-recorded-no-sweep-alive", None, None, False, 5, True),
    ("nothing-recorded-another-sweep-alive", None, None, True, 5, False),
    ("nothing-recorded-past-the-grace", None, None, True, 300, True),
])


@pytest.mark.parametrize("name,beat,owner,others,age,is_dead", RULES)
def test_a_running_trial_is_dead_by_its_heartbeat(study, monkeypatch, name, beat, owner, others, age, is_dead):
    import datetime

    from clara_hydra.sweep import liveness
    from clara_hydra.sweep import protocol as P
    pids = {"ME": os.getpid(), "GONE": _gone(), "ZOMBIE": _zombie() if "zombie" in name else 0}
    here = liveness.host()
    trial = study.ask()
    storage, tid = study._storage, trial._trial_id
    now = time.time()
    if beat is not None:
        h, pid, beat_age = beat
        storage.set_trial_system_attr(tid, liveness.ATTR_BEAT, {"t": now - beat_age, "host": here if h == "HERE" else h,
                                                                "pid": pids.get(pid, pid)})
    if owner is not None:
        storage.set_trial_user_attr(tid, P.ATTR_HOST, here if owner[0] == "HERE" else owner[0])
        storage.set_trial_user_attr(tid, P.ATTR_PID, pids[owner[1]])
    frozen = storage.get_trial(tid)
    start = datetime.datetime.now() - datetime.timedelta(seconds=age)
    frozen.datetime_start = start
    why = liveness.dead(frozen, 120.0, others_alive=others, now=now)
    assert (why is not None) == is_dead, why


def test_sweeps_alive_reads_every_sweep_process_of_the_study(study):
    from clara_hydra.sweep import liveness
    assert not liveness.sweeps_alive(study, 120.0)
    study._storage.set_study_system_attr(study._study_id, f"{liveness.SWEEP_BEAT}node-b:7", {"t": time.time()})
    assert liveness.sweeps_alive(study, 120.0)
    study._storage.set_study_system_attr(study._study_id, f"{liveness.SWEEP_BEAT}node-b:7",
                                         {"t": time.time(), "ended": True})
    assert not liveness.sweeps_alive(study, 120.0)
    study._storage.set_study_system_attr(study._study_id, f"{liveness.SWEEP_BEAT}{liveness.host()}:{_gone()}",
                                         {"t": time.time()})
    assert not liveness.sweeps_alive(study, 120.0)  # (of this host, its process gone)


def test_one_sweep_process_wins_a_dead_trial(study, tmp_path):
    """Two sweep processes that find the same dead trial: one claims it (resumes it), the other
    leaves it; a later death of the same trial (a newer last beat) can be claimed again."""
    from clara_hydra.sweep import liveness, upstream
    trial = study.ask()
    upstream.set_trial_system_attr(study, trial, liveness.ATTR_BEAT, {"t": 1.0, "host": "node-b", "pid": 1})
    frozen = upstream.stored_trial(study, trial)
    assert liveness.claim(str(tmp_path), frozen) and not liveness.claim(str(tmp_path), frozen)
    upstream.set_trial_system_attr(study, trial, liveness.ATTR_BEAT, {"t": 2.0, "host": "node-c", "pid": 1})
    again = upstream.stored_trial(study, trial)
    assert liveness.claim(str(tmp_path), again)
    # a claimer that died before it beat for the trial (gone on this host): its claim is broken, once
    (claim,) = (tmp_path / "models").glob(".claim-2.*")
    claim.write_text(f"{liveness.host()} {_gone()}\n")
    assert liveness.claim(str(tmp_path), again) and not liveness.claim(str(tmp_path), again)


def test_a_job_in_another_process_beats_for_its_trial(study, monkeypatch):
    """A worker's or a SLURM job's trial (reopened from the storage) beats while the job runs; an
    in-process job's trial is beaten for by its sweep process, not twice."""
    from clara_hydra.sweep import liveness, upstream
    from clara_hydra.sweep import protocol as P
    from clara_hydra.sweep import trial as trial_ctx
    from clara_hydra.train.entry import _beat_for
    monkeypatch.setenv(P.ENV_HEARTBEAT, "0.05")
    asked = study.ask()
    reopened = upstream.live_trial(study, upstream.stored_trial(study, asked))
    beater = _beat_for(reopened)
    try:
        assert beater is not None
        first = upstream.stored_trial(study, asked).system_attrs[liveness.ATTR_BEAT]
        assert first["pid"] == os.getpid() and first["host"] == liveness.host()
        deadline = time.monotonic() + 60
        while upstream.stored_trial(study, asked).system_attrs[liveness.ATTR_BEAT]["t"] == first["t"]:
            assert time.monotonic() < deadline, "no second beat"
            time.sleep(0.05)
    finally:
        beater.stop()
    trial_ctx.register(study.study_name, asked)
    try:
        assert _beat_for(asked) is None
    finally:
        trial_ctx.unregister(study.study_name, asked.number)


# ------------------------------------------------------------------------ a kill at each instant

def _conf(tmp_path: Path) -> Path:
    from test_sweeper import CONFIG

    from clara_hydra.convert import convert
    from clara_hydra.reader import analyse
    from clara_hydra.render import write
    src = tmp_path / "cfg.json"
    src.write_text(json.dumps(CONFIG))
    return Path(write(convert(analyse(CONFIG, file=str(src))), str(tmp_path / "conf")))


INSTANTS = cases([
    # (id, fault rule, the trial it hits, its state after the kill, then after the rerun, whether its job ran)
    ("between-ask-and-its-first-record", "after_ask@1:kill", 1, "RUNNING", "FAIL", False),
    ("during-its-job", "before_outcome:kill", 0, "RUNNING", "FAIL", True),
    ("after-the-job-wrote-its-outcome-before-the-tell", "before_tell@1:kill", 1, "RUNNING", "COMPLETE", True),
    ("while-the-results-are-written", "results_write:kill", 0, "COMPLETE", "COMPLETE", True),
])


@pytest.mark.parametrize("name,fault,hit,left,state,ran", INSTANTS)
def test_a_sweep_killed_at_any_instant_leaves_no_trial_behind(tmp_path, name, fault, hit, left, state, ran):
    """kill -9 of the sweep (its trials run in-process) at the fault point, then the same command
    again: every trial finished, the one the kill hit recovered at once on this host (its process
    is gone), none trained twice."""
    from test_sweeper import rows, sweep
    conf = _conf(tmp_path)
    storage = f"sqlite:///{tmp_path / 'clara_hydra_sweeps.db'}"
    args = ("hydra.sweeper.n_trials=3", "hydra.sweeper.study_trials=3", "hydra.sweeper.pruner=none")
    killed = sweep(conf, tmp_path, *args, env={"CLARA_HYDRA_FAULT": fault})
    assert killed.returncode == -9, killed.stdout[-2000:] + killed.stderr[-2000:]
    assert _states(storage)[hit] == left  # what the kill left
    again = sweep(conf, tmp_path, *args)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    states = _states(storage)
    assert "RUNNING" not in states.values() and states[hit] == state, states
    assert sum(s == "COMPLETE" for s in states.values()) == 3  # study_trials: the same total
    runs = [int(line.split(":")[0]) for line in (tmp_path / "seen_gpus.txt").read_text().splitlines()]
    assert sorted(runs) == sorted(set(runs)), runs  # no trial's job ran twice
    assert (hit in runs) == ran
    table = {int(r["number"]): r for r in rows(tmp_path / "sweep" / "trials.csv")}
    assert sorted(table) == list(range(len(table)))  # numbers go on, none reused
    assert table[hit]["state"] == state.lower()
    if state == "FAIL":
        assert table[hit]["reason"].startswith("interrupted"), table[hit]


# ------------------------------------------------------------------------ real training

@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    from test_mmar import synth_data
    return synth_data(tmp_path_factory.mktemp("data"), train=2, val=1)


def test_a_kill_between_the_last_epoch_and_the_outcome_resumes_without_training_again(tmp_path, data):
    from test_mmar import clara_train, logged_best, make_mmar, trials
    mmar = make_mmar(tmp_path / "mmar", data)
    sweep_dir = tmp_path / "sweep"
    args = ("--mmar", mmar, "-m", "hydra.sweeper.params=null", "hydra.sweeper.n_trials=1",
            "hydra.sweeper.pruner=none", "hydra.sweeper.export_best=false", f"hydra.sweep.dir={sweep_dir}")
    killed = clara_train(*args, cwd=tmp_path, env={"CLARA_HYDRA_FAULT": "before_outcome:kill"})
    assert killed.returncode == -9, killed.stdout[-2000:] + killed.stderr[-2000:]
    again = clara_train(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    (row,) = trials(sweep_dir)
    log = (sweep_dir / "0" / "train.log").read_text()
    assert row["state"] == "complete" and "resuming after epoch 2/2" in log, log[-2000:]
    assert log.count("epoch 2/2, loss") == 1 and "finished 0 epoch(s)" in log  # nothing trained again
    assert float(row["value"]) == pytest.approx(logged_best(sweep_dir / "0" / "train.log"), abs=1e-4)
    assert not (sweep_dir / "0" / "models" / "resume.ckpt").exists()


# ------------------------------------------------------------------------ two hosts, one study

def _on_host(host: str, command: list[str]) -> list[str]:
    """``command`` in a UTS namespace of its own, under the host name ``host``."""
    return [UNSHARE, "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *command]


needs_unshare = pytest.mark.skipif(UNSHARE is None or os.geteuid() != 0,
                                   reason="a host name of its own needs unshare --uts as root")


@needs_unshare
def test_a_second_host_resumes_the_trial_of_a_dead_first_host(tmp_path, data, postgres):  # noqa: F811
    """Two sweep processes with different host names on one PostgreSQL study and one shared
    folder: the first (node-a) is killed after its trial's first epoch; the second (node-b),
    started once the trial's heartbeat is older than the grace period, resumes it from that epoch
    (same number, same folder) and completes it."""
    from test_mmar import make_mmar, trials
    mmar = make_mmar(tmp_path / "mmar", data)
    sweep_dir = tmp_path / "sweep"
    grace = 3.0
    base = ["train", "--mmar", str(mmar), "-m", "hydra.sweeper.params=null", "hydra.sweeper.n_trials=1", "epochs=2",
            "hydra.sweeper.pruner=none", "hydra.sweeper.export_best=false", f"hydra.sweeper.storage={postgres}",
            "hydra.sweeper.heartbeat_interval=0.5", f"hydra.sweeper.grace_period={grace}",
            f"hydra.sweep.dir={sweep_dir}"]
    env = dict(os.environ, CLARA_HYDRA_FAULT="epoch_end@1:kill")
    first = subprocess.run(_on_host("node-a", clara_cli() + base), cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == -9, first.stdout[-2000:] + first.stderr[-2000:]
    from clara_hydra.sweep import liveness
    (t,) = _study(postgres, "mmar-config_train").trials
    assert t.state.name == "RUNNING" and t.system_attrs[liveness.ATTR_BEAT]["host"] == "node-a"
    wait = t.system_attrs[liveness.ATTR_BEAT]["t"] + grace - time.time()
    time.sleep(max(0.0, wait) + 0.5)  # node-a is dead: its trial's last beat only gets older
    second = subprocess.run(_on_host("node-b", clara_cli() + base), cwd=tmp_path, capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    assert "1 interrupted one(s) to resume" in second.stdout, second.stdout[-2000:]
    (row,) = trials(sweep_dir)
    assert row["number"] == "0" and row["state"] == "complete", row
    log = (sweep_dir / "0" / "train.log").read_text()
    assert "resuming after epoch 1/2" in log and log.count("epoch 1/2, loss") == 1 and "epoch 2/2, loss" in log, \
        log[-3000:]
    (done,) = _study(postgres, "mmar-config_train").trials
    assert done.user_attrs["clara_host"] == "node-b"


BEAT = """
import sys, time, optuna
from clara_hydra.sweep import liveness
study = optuna.load_study(study_name="cfg", storage=sys.argv[1])
number = int(sys.argv[2])
trial = optuna.trial.Trial(study, study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number))
beater = liveness.Beater(study, 0.2).start()
beater.add(trial)
open(sys.argv[3], "w").close()
time.sleep(600)
"""


@needs_unshare
def test_a_trial_that_beats_on_another_host_is_never_recovered(tmp_path, postgres):  # noqa: F811
    """A RUNNING trial whose process on node-b beats: a sweep here (short grace) leaves it alone;
    once node-b's process is gone, the next sweep fails it (it left no resume point)."""
    from test_sweeper import sweep
    conf = _conf(tmp_path)
    args = ("hydra.sweeper.n_trials=1", "hydra.sweeper.pruner=none", f"hydra.sweeper.storage={postgres}",
            "hydra.sweeper.heartbeat_interval=0.2", "hydra.sweeper.grace_period=1")
    assert sweep(conf, tmp_path, *args).returncode == 0
    study = _study(postgres)
    trial = study.ask(study.trials[0].distributions)  # a trial node-b runs
    started = tmp_path / "beating"
    script = tmp_path / "beat.py"
    script.write_text(BEAT)
    beater = subprocess.Popen(_on_host("node-b", [sys.executable, str(script), postgres, str(trial.number),
                                                  str(started)]), cwd=ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and beater.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the beating process never started"
        time.sleep(1.5)  # longer than the grace period: only its beats keep it alive
        proc = sweep(conf, tmp_path, *args)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert _states(postgres)[trial.number] == "RUNNING"
    finally:
        os.killpg(beater.pid, 9)
        beater.wait()
    time.sleep(1.5)  # its last beat is older than the grace period now
    proc = sweep(conf, tmp_path, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _states(postgres)[trial.number] == "FAIL"
