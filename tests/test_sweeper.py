"""The clara_optuna sweeper for real: pruning, failures with reasons, asynchronous workers,
PostgreSQL and journal storages shared by concurrent sweep processes (resume after kill -9, at each
instant of a trial's life: test_liveness)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, one_error

pytestmark = pytest.mark.slow
TASK = ROOT / "tests" / "standin" / "sweep_task.py"
CONFIG = {"x": 0.5, "mode": "a",
          "search": [{"domain": "net", "type": "float", "args": ["x"], "targets": [0.0, 1.0]},
                     {"domain": "net", "type": "enum", "args": ["mode"], "targets": ["a", "b"]}],
          "train": {"model": {"name": "UNet", "args": {}}}}


@pytest.fixture
def conf(tmp_path):
    from clara_hydra.convert import convert
    from clara_hydra.reader import analyse
    from clara_hydra.render import write
    src = tmp_path / "cfg.json"
    src.write_text(json.dumps(CONFIG))
    conv = convert(analyse(CONFIG, file=str(src)))
    return Path(write(conv, str(tmp_path / "conf")))


def sweep(conf: Path, cwd: Path, *args: str, env: dict | None = None, wait: bool = True):
    """The stand-in task's sweep (its checkpoints are not networks: no best MMAR is exported; the
    export of a real one is tested in test_mmar)."""
    cmd = [sys.executable, str(TASK), "-m", "--config-dir", str(conf.parent), "--config-name", conf.stem,
           f"hydra.sweep.dir={cwd / 'sweep'}", "hydra.sweeper.export_best=false", *args]
    full_env = dict(os.environ, **(env or {}))
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600)


def rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_failures_and_nan_are_recorded_and_the_sweep_goes_on(tmp_path, conf):
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=5", "hydra.sweeper.max_failure_rate=0.5",
                 "hydra.sweeper.pruner=none", env={"FAIL_TRIALS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = {r["number"]: r for r in rows(tmp_path / "sweep" / "trials.csv")}
    assert len(trials) == 5
    assert trials["1"]["state"] == "fail" and "boom" in trials["1"]["reason"]
    assert trials["2"]["state"] == "fail" and "the key metric is nan" in trials["2"]["reason"]
    assert sum(r["state"] == "complete" for r in trials.values()) == 3
    assert "clara-hydra: trial #1: FAIL" in proc.stdout
    assert "TPE models the results after 2 random start-up trial(s)" in proc.stdout  # startup_trials: auto, 5 / 5


def test_too_many_failures_stop_the_sweep(tmp_path, conf):
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=6", "hydra.sweeper.max_failure_rate=0.0",
                 "hydra.sweeper.pruner=none", env={"FAIL_TRIALS": "1"})
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert line.startswith("error: hydra.sweeper.max_failure_rate: ") and "more than max_failure_rate=0.0" in line


def test_pruning_is_visible_in_trials_csv(tmp_path, conf):
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=10", "hydra.sweeper.pruner=median")
    assert proc.returncode == 0, proc.stderr[-3000:]
    states = [r["state"] for r in rows(tmp_path / "sweep" / "trials.csv")]
    assert "pruned" in states and "complete" in states and "fail" not in states
    results = (tmp_path / "sweep" / "optimization_results.yaml").read_text()
    assert "best_trial" in results and (tmp_path / "sweep" / "best_config.yaml").exists()


def test_workers_run_asynchronously_on_cpu(tmp_path, conf):
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=4", "hydra.sweeper.workers=0:0",
                 "hydra.sweeper.pruner=none", env={"SLOW_TRIAL": "0", "SLOW_SECONDS": "6"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    import optuna
    study = optuna.load_study(study_name="cfg", storage=f"sqlite:///{tmp_path / 'clara_hydra_sweeps.db'}")
    t = {tr.number: tr for tr in study.trials}
    assert all(tr.state.name == "COMPLETE" for tr in t.values()) and len(t) == 4
    # worker 1 went on with trials 2 and 3 while the slow trial 0 still ran on worker 0
    assert t[3].datetime_start < t[0].datetime_complete
    seen = (tmp_path / "sweep" / "1" / "seen_gpus.txt").read_text()
    assert seen.strip() == "1:"  # CPU workers: no GPU visible


@pytest.mark.parametrize("workers,nproc", [
    pytest.param("'0,1:2,3'", ["2", "2"], id="two-workers-of-two-gpus"),
    pytest.param("0:0", ["", ""], id="one-gpu-each-whatever-the-environment-says"),
])
def test_a_worker_of_several_gpus_gives_its_trials_as_many_processes(tmp_path, conf, workers, nproc):
    """Clara's 0,1:2,3: each trial trains in 2 processes (DDP; here CPU processes), a worker of
    one GPU in one, whatever CLARA_HYDRA_NPROC the sweep was started with."""
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=2", f"hydra.sweeper.workers={workers}",
                 "hydra.sweeper.pruner=none", env={"CLARA_HYDRA_NPROC": "5"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [(tmp_path / "sweep" / str(n) / "seen_nproc.txt").read_text() for n in (0, 1)] == nproc


def test_journal_storage(tmp_path, conf):
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=3", f"hydra.sweeper.storage=journal:{tmp_path / 'j.log'}",
                 "hydra.sweeper.pruner=none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(rows(tmp_path / "sweep" / "trials.csv")) == 3 and (tmp_path / "j.log").exists()


# ------------------------------------------------------------------------------------ PostgreSQL

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """A real PostgreSQL server on loopback (Debian's package, installed when missing)."""
    pg = Path("/usr/lib/postgresql")
    bindir = next(iter(sorted(pg.glob("*/bin"))), None) if pg.exists() else None
    if bindir is None:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.skip("PostgreSQL is not installed and cannot be installed here")
        from conftest import apt_install
        apt_install("postgresql")
        bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[0]
    import tempfile
    data = Path(tempfile.mkdtemp(prefix="clara-hydra-pg-"))  # the postgres user must reach it
    run_as = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        shutil.chown(data, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(run_as + [str(bindir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"],
                   check=True, capture_output=True)
    port = _free_port()
    log = data / "server.log"
    subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o",
                             f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "clara"],
                   check=True, capture_output=True)
    yield f"postgresql://postgres@127.0.0.1:{port}/clara"
    subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True)
    shutil.rmtree(data, ignore_errors=True)


def test_two_sweep_processes_share_one_postgres_study(tmp_path, conf, postgres):
    procs = []
    for i in range(2):
        d = tmp_path / f"machine{i}"
        d.mkdir()
        procs.append(sweep(conf, d, "hydra.sweeper.n_trials=4", f"hydra.sweeper.storage={postgres}",
                           "hydra.sweeper.study_name=shared", "hydra.sweeper.pruner=none",
                           env={"EVERY_TRIAL_SLEEPS": "0.3"}, wait=False))
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out[-3000:]
    import optuna
    study = optuna.load_study(study_name="shared", storage=postgres)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == 8 and sorted(numbers) == list(range(8))  # the sum: none lost, none duplicated
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    mine = [len(rows(tmp_path / f"machine{i}" / "sweep" / "trials.csv")) for i in range(2)]
    # each trials.csv lists the study as its process last saw it: its own 4 at least, all 8 for the last one
    assert min(mine) >= 4 and max(mine) == 8


def test_submitit_launcher_jobs_report_and_prune_from_other_processes(tmp_path, conf):
    """The SLURM example's launcher (hydra-submitit-launcher), with its local executor: each trial
    a job in another process, up to n_jobs at a time; each reports to its trial through the
    storage, and the sweep's pruner (here: below 0.2 at a step) prunes there."""
    proc = sweep(conf, tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
                 "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2",
                 "hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 0.2}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = rows(tmp_path / "sweep" / "trials.csv")
    assert [r["state"] for r in trials] == ["pruned" if float(r["x"]) / 3 < 0.2 else "complete" for r in trials]
    assert {r["state"] for r in trials} == {"pruned", "complete"}, trials  # (the seeded sampler gives both)
    assert proc.stdout.count(": local job ") == 4
    import optuna
    study = optuna.load_study(study_name="cfg", storage=f"sqlite:///{tmp_path / 'clara_hydra_sweeps.db'}")
    done = optuna.trial.TrialState.COMPLETE
    assert all(t.intermediate_values == {1: pytest.approx(t.value / 3), 2: pytest.approx(2 * t.value / 3),
                                         3: pytest.approx(t.value)} for t in study.trials if t.state == done)
    assert all(list(t.intermediate_values) == [1] for t in study.trials if t.state != done)  # pruned at step 1
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.name.isdigit()) == ["0", "1", "2", "3"]


def test_report_writes_plots_and_prints_top_trials(tmp_path):
    import optuna
    from conftest import run_cli
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="demo", storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-2, log=True) * 10 + t.suggest_int("k", 1, 3) / 10,
                   n_trials=8)
    proc = run_cli("report", "demo", "--storage", storage, "-o", tmp_path / "rep")
    assert proc.returncode == 0, proc.stderr
    for png in ("optimization_history.png", "parallel_coordinate.png", "param_importances.png"):
        data = (tmp_path / "rep" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert "top 5 trials:" in proc.stdout and f"#{study.best_trial.number}" in proc.stdout
    missing = run_cli("report", "nope", "--storage", storage)
    assert missing.returncode == 2 and "no study 'nope'" in missing.stderr and "its studies: demo" in missing.stderr


def test_the_report_names_the_studys_metric_on_its_plots(tmp_path, monkeypatch, capsys):
    """A study that names its value (a sweep of a Clara config: set_metric_names) has it on the
    report's plots, not "Objective Value"; the trials' learning curves mark the pruned ones; the
    importances of a few trials say they mean little; report.html holds it all on one page."""
    import warnings

    import optuna
    from matplotlib.figure import Figure

    from clara_hydra.sweep.report import report
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="named", storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_mean_dice"])
    def objective(t):
        value = t.suggest_float("lr", 1e-4, 1e-2, log=True) * 10 + t.suggest_int("k", 1, 3) / 10
        for epoch in (1, 2):
            t.report(value * epoch / 2, epoch)
        if t.number == 3:
            raise optuna.TrialPruned()
        return value
    study.optimize(objective, n_trials=8)
    labels: dict[str, str] = {}
    save = Figure.savefig

    def seen(fig, path, *args, **kwargs):  # what each plot shows, read as it is saved
        labels[os.path.basename(str(path))] = " ".join(
            text for ax in fig.axes for text in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title(),
                                                 *(t.get_text() for t in ax.get_xticklabels()),
                                                 *(t.get_text() for t in (ax.get_legend().get_texts()
                                                                          if ax.get_legend() else []))))
        return save(fig, path, *args, **kwargs)
    monkeypatch.setattr(Figure, "savefig", seen)
    written = report("named", storage, str(tmp_path / "rep"))
    pngs = {"optimization_history.png", "parallel_coordinate.png", "param_importances.png", "learning_curves.png"}
    assert set(labels) == pngs
    for name, text in labels.items():
        assert "Objective Value" not in text, (name, text)
    assert all("val_mean_dice" in labels[png] for png in ("optimization_history.png", "parallel_coordinate.png",
                                                          "learning_curves.png"))
    assert "epoch" in labels["learning_curves.png"] and "#3 (pruned)" in labels["learning_curves.png"]
    assert "param_importances.png rests on 7 complete trial(s): too few to mean much" in capsys.readouterr().out
    page = (tmp_path / "rep" / "report.html").read_text()
    assert str(tmp_path / "rep" / "report.html") in written and page.count("src='data:image/png;base64,") == 4
    assert f"<td>#{study.best_trial.number}</td>" in page and "val_mean_dice" in page


@pytest.mark.parametrize("storage,wanted", [
    pytest.param("FOREIGN", ["the database is not an Optuna storage", "(patients)", "nothing was written"],
                 id="another-programs-sqlite-file"),
    pytest.param("postgresql://bob:s3cr3t@127.0.0.1:1/db", ["postgresql://bob:***@127.0.0.1:1/db: cannot open"],
                 id="password-masked"),
    pytest.param("mysql://bob:s3cr3t@127.0.0.1:1/db", ["mysql://bob:***@", "driver is not installed", "MySQLdb"],
                 id="driver-not-installed"),
])
def test_a_storage_that_cannot_be_used_is_one_line_and_left_as_it_was(tmp_path, conf, storage, wanted):
    """Another program's database is never written into (a sweep and a report refuse it, its bytes
    the same); a password never shows; a driver that is not there is one line."""
    import hashlib
    import sqlite3

    from conftest import one_error, run_cli
    foreign = tmp_path / "clinic.db"
    with sqlite3.connect(foreign) as db:
        db.execute("create table patients (id integer, name text)")
        db.execute("insert into patients values (1, 'x')")
    before = hashlib.sha256(foreign.read_bytes()).hexdigest()
    url = f"sqlite:///{foreign}" if storage == "FOREIGN" else storage
    procs = [sweep(conf, tmp_path, f"hydra.sweeper.storage={url}", "hydra.sweeper.n_trials=2")]
    if storage == "FOREIGN":
        procs.append(run_cli("report", "cfg", "--storage", url, "-o", tmp_path / "rep", cwd=tmp_path))
        assert not (tmp_path / "rep").exists()
    for proc in procs:
        line = one_error(proc)
        for want in wanted:
            assert want in line, line
        assert "s3cr3t" not in proc.stdout + proc.stderr
    assert hashlib.sha256(foreign.read_bytes()).hexdigest() == before
    assert not (tmp_path / "sweep").exists()


REFUSED_SWEEPS = [("nosuchkey=choice(1,2)", "error: nosuchkey: Could not override 'nosuchkey'"),
                  ("x=interval(0,inf)", "error: x: the range of 'x' must have finite ends"),
                  ("x=interval(-1e308,1e308)", "error: x: the range of 'x' must have finite")]


def test_a_refused_sweep_command_leaves_the_study_as_it_was(tmp_path, conf):
    """A mistake on the command line (a key the config lacks, an infinite or overflowing range) is
    one line before the study is opened: no failed trial with that search space is recorded, and
    the next, correct command goes on with the study."""
    import optuna
    from conftest import one_error
    storage = f"sqlite:///{tmp_path / 's.db'}"
    args = (f"hydra.sweeper.storage={storage}", "hydra.sweeper.pruner=none")
    assert sweep(conf, tmp_path, *args, "hydra.sweeper.n_trials=1").returncode == 0

    def state() -> list:
        study = optuna.load_study(study_name="cfg", storage=storage)
        return [study.user_attrs] + [(t.number, t.state, t.params, t.user_attrs) for t in study.get_trials()]
    before = state()
    for bad, wanted in REFUSED_SWEEPS:
        line = one_error(sweep(conf, tmp_path, *args, "hydra.sweeper.n_trials=1", bad))
        assert line.startswith(wanted), (bad, line)
        assert state() == before, bad
    proc = sweep(conf, tmp_path, *args, "hydra.sweeper.n_trials=2", "hydra.sweeper.direction=MAXIMIZE")  # (capitals)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [t.state.name for t in optuna.load_study(study_name="cfg", storage=storage).get_trials()] == \
        ["COMPLETE"] * 3


def test_a_storage_deleted_while_the_sweep_runs_is_one_line(tmp_path, conf):
    from conftest import one_error
    db = tmp_path / "s.db"
    proc = sweep(conf, tmp_path, f"hydra.sweeper.storage=sqlite:///{db}", "hydra.sweeper.n_trials=3",
                 env={"CLARA_HYDRA_FAULT": f"before_tell@1:remove={db}"})
    assert one_error(proc).startswith("error: the sweep's storage failed while in use: "), proc.stderr[-2000:]


@pytest.mark.parametrize("option,wanted", [
    pytest.param("hydra.sweeper.workers=abc", "hydra.sweeper.workers: malformed workers 'abc'", id="workers-abc"),
    pytest.param("hydra.sweeper.pruner=bogus", "unknown pruner 'bogus'", id="pruner-bogus"),
    pytest.param("hydra.sweeper.max_failure_rate=-1", "max_failure_rate must be a number from 0 to 1",
                 id="max-failure-rate-negative"),
    pytest.param("hydra.sweeper.n_trials=-1", "n_trials must be a whole number >= 0", id="n-trials-negative"),
    pytest.param("hydra.sweeper.study_trials=abc", "hydra.sweeper.study_trials=abc: Value 'abc' of type 'str' could "
                 "not be converted to Integer", id="study-trials-abc"),  # typed: refused while Hydra composes
    pytest.param("hydra.sweeper.study_trials=-2", "study_trials must be a whole number >= 0", id="study-trials-neg"),
    pytest.param("hydra.sweeper.workers=[0,1]", "hydra.sweeper.workers=[0,1]: Value '[0, 1]' of type 'list' is "
                 "incompatible", id="workers-list"),
    pytest.param("hydra.sweeper.n_jobs=0", "n_jobs must be a whole number >= 1", id="n-jobs-zero"),
    pytest.param("hydra.sweeper.storage=null hydra.sweeper.workers=2", "workers need a persistent storage",
                 id="workers-without-storage"),
    pytest.param("hydra.sweeper.direction=bogus", "direction must be minimize or maximize", id="direction-bogus"),
    pytest.param("hydra.sweeper.finite_space=all", "finite_space must be enumerate or sample", id="finite-space-all"),
    pytest.param("hydra.sweeper.trial_timeout=0", "trial_timeout must be a number of seconds > 0",
                 id="trial-timeout-0"),
    pytest.param("hydra.sweeper.storage=bogus", "not a storage URL", id="storage-not-a-url"),
    pytest.param("hydra.sweeper.stop_threshold=nan", "stop_threshold must be a finite number", id="stop-threshold-nan"),
    pytest.param("hydra.sweeper.sampler.seed=99999999999999999999", "the sampler's seed must be a whole number from 0",
                 id="seed-huge"),
    pytest.param("=1", "Config group override", id="empty-key"),
    pytest.param("x=interval(1,0)", "hydra.sweeper.params: a sweep parameter cannot be made",
                 id="empty-interval"),
])
def test_sweeper_options_are_checked_in_one_line(tmp_path, conf, option, wanted):
    from conftest import one_error
    proc = sweep(conf, tmp_path, *option.split())
    assert wanted in one_error(proc)
    assert not (tmp_path / "sweep" / "0").exists()  # nothing ran


def test_a_trial_that_calls_sys_exit_fails_and_the_sweep_goes_on(tmp_path, conf):
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=3", "hydra.sweeper.storage=null", "hydra.sweeper.pruner=none",
                 env={"EXIT_TRIAL": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = {r["number"]: r for r in rows(tmp_path / "sweep" / "trials.csv")}
    assert [trials[n]["state"] for n in "012"] == ["complete", "fail", "complete"]
    assert "the task called sys.exit(0)" in trials["1"]["reason"]


def test_best_config_trains_again_to_the_same_metric(tmp_path):
    """The exported best_config_train.json is a normal Clara config: converted and trained again,
    it reaches the best trial's metric."""
    from conftest import run_cli
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", "--config-name", "demo_v41",
                           "hydra.sweeper.n_trials=2", "hydra.sweeper.pruner=none", f"hydra.sweep.dir={tmp_path / 's'}",
                           "hydra.sweeper.storage=null"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import yaml
    best = yaml.safe_load((tmp_path / "s" / "optimization_results.yaml").read_text())["best_value"]
    exported = tmp_path / "s" / "best_config_train.json"
    doc = json.loads(exported.read_text())
    assert "search" not in doc and "clara_hydra" not in doc
    assert run_cli("convert", exported, "-o", tmp_path / "again").returncode == 0
    again = subprocess.run([sys.executable, str(ROOT / "train.py"), "--config-dir", str(tmp_path / "again"),
                            "--config-name", "best_config_train", f"hydra.run.dir={tmp_path / 'r'}"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    import re
    value = float(re.search(r"key metric = ([\d.]+)", (tmp_path / "r" / "train.log").read_text()).group(1))
    assert value == pytest.approx(best, abs=1e-3)


# ---------------------------------------------------------------- regressions from a code review

def test_workers_with_journal_storage_and_the_configured_pruner(tmp_path, conf):
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=10", "hydra.sweeper.workers=0:0",
                 f"hydra.sweeper.storage=journal:{tmp_path / 'j.log'}", "hydra.sweeper.pruner=none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    states = [r["state"] for r in rows(tmp_path / "sweep" / "trials.csv")]
    assert states == ["complete"] * 10  # workers reopen journal storages, and pruner=none holds there too


def test_a_stale_outcome_file_is_never_read(tmp_path, conf):
    job = tmp_path / "sweep" / "0"
    job.mkdir(parents=True)
    (job / "clara_trial_result.json").write_text('{"state": "complete", "value": 123.0}')
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=1", "hydra.sweeper.workers=1", "hydra.sweeper.pruner=none",
                 env={"FAIL_TRIALS": "1", "CLARA_HYDRA_TRIAL_CRASH": "1"})
    assert proc.returncode == 1, proc.stderr[-3000:]  # no trial completed
    assert "no trial completed: 1 ran, 1 failed" in proc.stderr
    [row] = rows(tmp_path / "sweep" / "trials.csv")
    assert row["state"] == "fail" and row["value"] == "" and "exited with code 9" in row["reason"]


def test_a_killed_worker_without_a_resume_point_fails_its_trial_with_the_cause(tmp_path, conf):
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=1", "hydra.sweeper.workers=1", "hydra.sweeper.pruner=none",
                 env={"CLARA_HYDRA_TRIAL_CRASH": "kill"})
    assert proc.returncode == 1, proc.stderr[-3000:]  # no trial completed
    [row] = rows(tmp_path / "sweep" / "trials.csv")
    assert row["state"] == "fail"
    assert row["reason"] == "the worker was killed by SIGKILL (kill -9, or the system's out-of-memory killer)"


def test_few_failures_do_not_stop_a_short_sweep(tmp_path, conf):
    """One rule in both modes: the failure rate is judged from the 4th finished trial on."""
    for extra in ([], ["hydra.sweeper.workers=0:0"]):
        d = tmp_path / ("w" if extra else "l")
        d.mkdir()
        proc = sweep(conf, d, "hydra.sweeper.n_trials=3", "hydra.sweeper.pruner=none", *extra,
                     env={"FAIL_TRIALS": "1"})
        assert proc.returncode == 0, proc.stderr[-2000:]


def test_relative_sqlite_storage_works_when_jobs_change_directory(tmp_path, conf):
    proc = sweep(conf, tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
                 "hydra.sweeper.n_trials=2", "hydra.job.chdir=True", "hydra.sweeper.pruner=none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["state"] for r in rows(tmp_path / "sweep" / "trials.csv")] == ["complete", "complete"]


def test_grid_sampler_runs_each_combination_once(tmp_path, conf):
    """hydra/sweeper/sampler=grid as in the stock sweeper: the grid is the search space, n_trials
    is capped at its size, every combination runs once, and a second command has nothing left."""
    args = ("hydra/sweeper/sampler=grid", "x=choice(0.2,0.8)", "hydra.sweeper.n_trials=10", "hydra.sweeper.pruner=none",
            f"hydra.sweeper.storage=sqlite:///{tmp_path / 'grid.db'}")
    proc = sweep(conf, tmp_path, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "4 combination(s) in all" in proc.stdout
    trials = rows(tmp_path / "sweep" / "trials.csv")
    assert sorted((r["x"], r["mode"]) for r in trials) == [("0.2", "a"), ("0.2", "b"), ("0.8", "a"), ("0.8", "b")]
    assert {r["state"] for r in trials} == {"complete"}
    again = sweep(conf, tmp_path, *args)
    assert again.returncode == 0 and "this run: 0 trial(s)" in again.stdout, again.stderr[-2000:]


def test_grid_sampler_on_a_continuous_range_is_one_line(tmp_path, conf):
    proc = sweep(conf, tmp_path, "hydra/sweeper/sampler=grid", "hydra.sweeper.storage=null")
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and "the grid sampler needs a finite search space" in line


def test_a_finite_space_is_enumerated_once_by_default(tmp_path, conf):
    """Clara's enum-only search made one folder per combination: a finite space runs each
    combination once (Optuna's BruteForceSampler) and stops, whatever n_trials says."""
    proc = sweep(conf, tmp_path, "x=choice(0.2,0.8)", "hydra.sweeper.n_trials=10", "hydra.sweeper.pruner=none",
                 "hydra.sweeper.storage=null")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the search space is finite (4 combination(s))" in proc.stdout
    trials = rows(tmp_path / "sweep" / "trials.csv")
    assert sorted((r["x"], r["mode"]) for r in trials) == [("0.2", "a"), ("0.2", "b"), ("0.8", "a"), ("0.8", "b")]
    assert {r["state"] for r in trials} == {"complete"}


def test_a_finished_combination_is_reused_not_trained_again(tmp_path, conf):
    """With finite_space=sample, TPE proposes finished combinations again: they are not trained,
    they complete with the earlier value, recorded as reused."""
    proc = sweep(conf, tmp_path, "x=choice(0.2,0.8)", "mode=choice(a)", "hydra.sweeper.n_trials=6",
                 "hydra.sweeper.pruner=none", "hydra.sweeper.finite_space=sample", "hydra.sweeper.storage=null")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = rows(tmp_path / "sweep" / "trials.csv")
    trained = [r for r in trials if not r["reason"].startswith("reused")]
    reused = [r for r in trials if r["reason"].startswith("reused")]
    assert len(trials) == 6 and len(reused) >= 4 and {r["state"] for r in trials} == {"complete"}
    assert len({r["x"] for r in trained}) == len(trained)  # each combination trained once
    by_x = {r["x"]: r["value"] for r in trained}
    assert all(r["value"] == by_x[r["x"]] for r in reused)
    ran = (tmp_path / "seen_gpus.txt").read_text().splitlines()  # one line per run of the task
    assert sorted(int(line.split(":")[0]) for line in ran) == sorted(int(r["number"]) for r in trained)


def test_a_worker_past_the_trial_time_limit_is_stopped_and_recorded(tmp_path, conf):
    """Clara's max_job_run_time: a trial past trial_timeout is stopped, failed with the reason,
    and the sweep goes on."""
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=3", "hydra.sweeper.workers=0:0", "hydra.sweeper.pruner=none",
                 "hydra.sweeper.trial_timeout=3", env={"SLOW_TRIAL": "1", "SLOW_SECONDS": "120"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = {r["number"]: r for r in rows(tmp_path / "sweep" / "trials.csv")}
    assert trials["1"]["state"] == "fail" and "trial time limit (trial_timeout=3s)" in trials["1"]["reason"]
    assert float(trials["1"]["duration_s"]) < 60
    assert trials["0"]["state"] == trials["2"]["state"] == "complete"


def test_the_sweep_time_limit_starts_no_new_trials(tmp_path, conf):
    """Clara's max_sys_run_time: past timeout no new trial starts."""
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=30", "hydra.sweeper.timeout=2", "hydra.sweeper.pruner=none",
                 "hydra.sweeper.storage=null", env={"EVERY_TRIAL_SLEEPS": "0.5"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the sweep's time limit is reached (timeout=2s): no new trials" in proc.stdout
    assert 1 <= len(rows(tmp_path / "sweep" / "trials.csv")) < 30


def test_a_multi_objective_sweep_writes_the_pareto_front(tmp_path, conf):
    """direction: [maximize, maximize] with named objectives: every trial completes with two values,
    and optimization_results.yaml holds the stock sweeper's ``solutions`` (the Pareto front)."""
    import yaml
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=4", "hydra.sweeper.storage=null",
                 "hydra.sweeper.direction=[maximize,maximize]", "hydra.sweeper.objectives=[x,y]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = rows(tmp_path / "sweep" / "trials.csv")
    assert {r["state"] for r in trials} == {"complete"} and len(trials) == 4
    assert all(abs(float(r["values_x"]) + float(r["values_y"]) - 1.0) < 1e-9 for r in trials)
    summary = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert summary["name"] == "optuna" and summary["direction"] == ["maximize", "maximize"]
    # x + y = 1: no trial dominates another, so the whole sweep is the front
    assert sorted(s["values"][0] for s in summary["solutions"]) == sorted(float(r["x"]) for r in trials)
    assert "best_value" not in summary


@pytest.mark.parametrize("args, message", [
    pytest.param(("hydra.sweeper.direction=[maximize,minimize]",),
                 "2 directions, but a Clara config's run returns one value", id="directions-without-objectives"),
    pytest.param(("hydra.sweeper.direction=[maximize,minimize]", "hydra.sweeper.objectives=[x]"),
                 "1 objective(s) for 2 direction(s)", id="fewer-objectives"),
])
def test_a_multi_objective_mistake_is_one_line_before_any_trial(tmp_path, conf, args, message):
    proc = sweep(conf, tmp_path, "hydra.sweeper.storage=null", *args)
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and message in line and "hydra.sweeper.objectives" in line
    assert not (tmp_path / "seen_gpus.txt").exists()  # no trial ran


def test_an_objective_the_validation_does_not_have_is_one_line_before_any_trial(tmp_path):
    from clara_hydra.convert import convert
    from clara_hydra.reader import analyse
    from clara_hydra.render import write
    config = dict(CONFIG, validate={"metrics": [
        {"name": "MeanDice", "log_label": "val_mean_dice", "is_key_metric": True, "args": {}},
        {"name": "HausdorffDistance", "log_label": "val_hd", "args": {}}]})
    conf = Path(write(convert(analyse(config, file=str(tmp_path / "cfg.json"))), str(tmp_path / "conf")))
    proc = sweep(conf, tmp_path, "hydra.sweeper.storage=null", "hydra.sweeper.direction=[maximize,minimize]",
                 "hydra.sweeper.objectives=[val_mean_dice,val_hdd]")
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and "no objective 'val_hdd'" in line and "did you mean val_hd?" in line, line
    assert "MeanDice" not in line  # a metric with a log_label goes by it
    assert not (tmp_path / "seen_gpus.txt").exists()  # no trial ran


CONTROLLER = '''
from automl.components.controllers.controller import Controller
from automl.components.handlers.handler import Handler
from automl.defs import ContextKey, Recommendation, SearchResult

XS = [0.2, 0.5, 0.9, 0.3]


class ListController(Controller):
    """Recommends XS one at a time (mode: choice index 1), each after the last outcome."""

    def __init__(self, log, max_rounds=1000):
        Controller.__init__(self)
        self.log, self.n = log, 0

    def set_search_space(self, space, ctx):
        self.space = space
        self.x = next(k for k in space.targets if ".float:" in k)
        self.mode = next(k for k in space.targets if ".enum:" in k)
        with open(self.log, "a") as fh:
            fh.write(f"space {sorted(space.targets)} {space.targets[self.x][0].min} {space.targets[self.x][0].max}\\n")

    def _next(self):
        if self.n >= len(XS):
            return []
        self.n += 1
        return [Recommendation(self.n, SearchResult(self.space, {self.x: XS[self.n - 1], self.mode: 1}))]

    def initial_recommendation(self, ctx):
        return self._next()

    def refine_recommendation(self, outcome, ctx):
        with open(self.log, "a") as fh:
            fh.write(f"outcome {outcome.recommendation_id} {outcome.score:.2f}\\n")
        return self._next()


class Recorder(Handler):
    def __init__(self, log):
        Handler.__init__(self)
        self.log = log

    def _write(self, text):
        with open(self.log, "a") as fh:
            fh.write(text + "\\n")

    def startup(self, ctx):
        self._write("startup")

    def start_job(self, ctx):
        values = ctx.get_prop(ContextKey.CONCRETE_SEARCH_VALUE)
        x = next(v[0] for k, v in values.items() if k.split(":")[1] == "x")
        self._write(f"start_job {ctx.get_prop(ContextKey.JOB_NAME)} x={x}")

    def end_job(self, ctx):
        self._write(f"end_job {ctx.get_prop(ContextKey.JOB_NAME)} {ctx.get_prop(ContextKey.SCORE):.2f}")

    def shutdown(self, ctx):
        self._write("shutdown")
'''


def test_config_automl_with_a_byo_controller_and_handler_runs_as_clara_did(tmp_path):
    """An MMAR with config_automl.json beside its training config: the controller of your own
    (Clara's interface) picks every trial's values and hears each outcome, the handler of your
    own gets Clara's events, MMARHandler's stop_threshold ends the sweep, num_mmars_to_keep keeps
    the best trial's checkpoint only, and the trials are written as TensorBoard HParams."""
    from conftest import run_cli
    mmar = tmp_path / "mmar"
    (mmar / "config").mkdir(parents=True)
    (mmar / "custom").mkdir()
    (mmar / "custom" / "mine.py").write_text(CONTROLLER)
    (mmar / "config" / "config_train.json").write_text(json.dumps(CONFIG))
    log = tmp_path / "log.txt"
    (mmar / "config" / "config_automl.json").write_text(json.dumps({
        "handlers": [{"name": "MMARHandler", "args": {"num_mmars_to_keep": 1, "stop_threshold": 0.85}},
                     {"name": "StatsHandler"}, {"name": "MMARTensorboardHandler"},
                     {"path": "mine.Recorder", "args": {"log": str(log)}}],
        "executor": {"name": "MMARExecutor", "args": {"remove_search_augs": True}},
        "controller": {"path": "mine.ListController", "args": {"log": str(log), "max_rounds": 10}}}))
    proc = run_cli("convert", mmar / "config" / "config_train.json", "-o", mmar / "conf")
    assert proc.returncode == 0, proc.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    conf = mmar / "conf" / "config_train.yaml"
    done = sweep(conf, elsewhere, "hydra.sweeper.storage=null", "hydra.sweeper.pruner=none")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the sweep stops: trial #2 reached stop_threshold=0.85" in done.stdout
    trials = rows(elsewhere / "sweep" / "trials.csv")
    assert [(r["x"], r["mode"]) for r in trials] == [("0.2", "b"), ("0.5", "b"), ("0.9", "b")]
    events = log.read_text().splitlines()
    assert events[0] == "space ['net.enum:mode', 'net.float:x'] 0.0 1.0"
    assert events[1:] == ["startup",
                          "start_job 0 x=0.2", "outcome 1 0.20", "end_job 0 0.20",
                          "start_job 1 x=0.5", "outcome 2 0.50", "end_job 1 0.50",
                          "start_job 2 x=0.9", "outcome 3 0.90", "end_job 2 0.90", "shutdown"]
    sweep_dir = elsewhere / "sweep"
    assert [(sweep_dir / n / "models" / "model.pt").exists() for n in "012"] == [False, False, True]
    assert all(list((sweep_dir / n / "tensorboard").glob("events.out.tfevents.*")) for n in "012")


def test_a_conditional_space_samples_an_arg_only_where_its_component_is_enabled(tmp_path):
    """prob is searched on a transform that a second search switches off: trials where it is off
    leave prob out (an empty cell), and the finite space is enumerated as its 6 distinct trials,
    not the 8 combinations that would train some twice."""
    from clara_hydra.convert import convert
    from clara_hydra.reader import analyse
    from clara_hydra.render import write
    data = {"x": 0.2, "search": [{"domain": "net", "type": "enum", "args": ["x"], "targets": [0.2, 0.8]}],
            "train": {"pre_transforms": [{"name": "RandFlipd", "args": {"keys": ["image"], "prob": 0.5}, "search": [
                {"domain": "transform", "type": "enum", "args": ["@disabled"], "targets": [[True], [False]]},
                {"domain": "transform", "type": "enum", "args": ["prob"], "targets": [0.1, 0.9]}]}]}}
    conf = Path(write(convert(analyse(data, file=str(tmp_path / "cond.json"))), str(tmp_path / "conf")))
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=20", "hydra.sweeper.storage=null", "hydra.sweeper.pruner=none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "6 combination(s) in all" in proc.stdout
    trials = rows(tmp_path / "sweep" / "trials.csv")
    seen = sorted((r["x"], r["RandFlipd_disabled"], r["RandFlipd_prob"])
                  for r in trials)
    assert seen == [("0.2", "False", "0.1"), ("0.2", "False", "0.9"), ("0.2", "True", ""),
                    ("0.8", "False", "0.1"), ("0.8", "False", "0.9"), ("0.8", "True", "")]
    assert {r["state"] for r in trials} == {"complete"}


def test_stop_threshold_holds_on_resume_and_a_handler_can_stop_the_sweep(tmp_path, conf):
    """MMARHandler's stop_threshold: a resumed study that reached it starts no trial; a handler
    of your own that calls ctx.stop_work stops the sweep after the trial it saw end."""
    storage = f"hydra.sweeper.storage=sqlite:///{tmp_path / 's.db'}"
    args = ("hydra.sweeper.n_trials=5", "hydra.sweeper.pruner=none", "hydra.sweeper.stop_threshold=0.0", storage)
    first = sweep(conf, tmp_path, *args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(rows(tmp_path / "sweep" / "trials.csv")) == 1
    again = sweep(conf, tmp_path, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "the sweep stops: trial #0 reached stop_threshold=0" in again.stdout
    assert len(rows(tmp_path / "sweep" / "trials.csv")) == 1
    (tmp_path / "stopper.py").write_text(
        "from automl.components.handlers.handler import Handler\n"
        "class Stop(Handler):\n"
        "    def end_job(self, ctx):\n"
        "        ctx.stop_work(self, 'seen one')\n")
    (tmp_path / "sweep").rename(tmp_path / "first")
    stopped = sweep(conf, tmp_path, "hydra.sweeper.n_trials=5", "hydra.sweeper.pruner=none",
                    "hydra.sweeper.storage=null", "hydra.sweeper.handlers=[{path: stopper.Stop}]")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "the sweep stops: Stop asked to stop: seen one" in stopped.stdout
    assert len(rows(tmp_path / "sweep" / "trials.csv")) == 1


def test_the_grid_over_a_conditional_space_trains_every_distinct_trial(tmp_path):
    from clara_hydra.convert import convert
    from clara_hydra.reader import analyse
    from clara_hydra.render import write
    data = {"x": 0.2, "search": [{"domain": "net", "type": "enum", "args": ["x"], "targets": [0.2, 0.8]}],
            "train": {"pre_transforms": [{"name": "RandFlipd", "args": {"keys": ["image"], "prob": 0.5}, "search": [
                {"domain": "transform", "type": "enum", "args": ["@disabled"], "targets": [[True], [False]]},
                {"domain": "transform", "type": "enum", "args": ["prob"], "targets": [0.1, 0.9]}]}]}}
    conf = Path(write(convert(analyse(data, file=str(tmp_path / "cond.json"))), str(tmp_path / "conf")))
    (tmp_path / "rec.py").write_text(  # Clara's handler events: every job that ends has started
        "from automl.components.handlers.handler import Handler\n"
        "from automl.defs import ContextKey\n"
        "class Rec(Handler):\n"
        "    def start_job(self, ctx):\n"
        "        open('events.txt', 'a').write(f'start {ctx.get_prop(ContextKey.JOB_NAME)}\\n')\n"
        "    def end_job(self, ctx):\n"
        "        open('events.txt', 'a').write(f'end {ctx.get_prop(ContextKey.JOB_NAME)}\\n')\n")
    proc = sweep(conf, tmp_path, "hydra/sweeper/sampler=grid", "hydra.sweeper.storage=null",
                 "hydra.sweeper.pruner=none", "hydra.sweeper.sampler.seed=1",  # its grid order skipped trials before
                 "hydra.sweeper.handlers=[{path: rec.Rec}]")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = rows(tmp_path / "sweep" / "trials.csv")
    trained = {(r["x"], r["RandFlipd_disabled"], r["RandFlipd_prob"])
               for r in trials if not r["reason"].startswith("reused")}
    assert len(trained) == 6  # every distinct trial; grid points differing only in an absent prob are reused
    assert any(r["reason"].startswith("reused") for r in trials)
    events = (tmp_path / "events.txt").read_text().split()
    assert events == [word for t in trials for word in ("start", t["number"], "end", t["number"])], events


def test_a_study_an_earlier_version_recorded_keeps_its_search_space():
    """The search space a sweep records is a system attribute (out of the user attributes that
    Optuna's dashboard shows); a study an earlier version recorded as a user attribute still
    refuses another space, and takes its own."""
    import optuna
    from optuna.distributions import FloatDistribution

    from clara_hydra.errors import StorageError
    from clara_hydra.sweep import identity, upstream
    space, directions = {"x": FloatDistribution(0.0, 1.0)}, [optuna.study.StudyDirection.MAXIMIZE]
    old = optuna.create_study(direction="maximize")
    old.set_user_attr(identity.ATTR, identity.fingerprint(space, directions))
    old.tell(old.ask(), 0.5)
    identity.check(old, space, directions, None)
    with pytest.raises(StorageError, match="another search space"):
        identity.check(old, {"y": FloatDistribution(0.0, 1.0)}, directions, None)
    new = optuna.create_study(direction="maximize")
    identity.check(new, space, directions, None)
    assert new.user_attrs == {} and identity.ATTR in upstream.study_system_attrs(new)
    new.tell(new.ask(), 0.5)
    with pytest.raises(StorageError, match="another search space"):
        identity.check(new, {"y": FloatDistribution(0.0, 1.0)}, directions, None)


def test_a_sweep_of_a_config_without_a_search_space_says_so_and_runs_it_once(tmp_path):
    from clara_hydra.convert import convert
    from clara_hydra.reader import analyse
    from clara_hydra.render import write
    fixed = {k: v for k, v in CONFIG.items() if k != "search"}
    (tmp_path / "cfg.json").write_text(json.dumps(fixed))
    conf = Path(write(convert(analyse(fixed, file=str(tmp_path / "cfg.json"))), str(tmp_path / "conf")))
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=3", "hydra.sweeper.pruner=none")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no search space (hydra.sweeper.params and the command line sweep nothing): the sweep runs the config " \
           "once" in proc.stdout + proc.stderr
    assert [r["state"] for r in rows(tmp_path / "sweep" / "trials.csv")] == ["complete"]


@pytest.mark.parametrize("override, values", [
    pytest.param("train.model.args.k=3", {"3"}, id="a-fixed-value-fixes-the-param"),
    pytest.param("train.model.args.k=choice(2,4)", {"2", "4"}, id="a-sweep-expression-re-ranges-it"),
    pytest.param("UNet_k=3", {"3"}, id="by-its-name"),
])
def test_a_param_is_named_by_what_it_sets_and_its_place_overrides_it(tmp_path, override, values):
    """An unaliased searched arg goes by its class and arg (``UNet_k``) in the search space,
    trials.csv and the trial lines; its place (``train.model.args.k``) on the command line stands
    for it, so it never stays sampled beside a fixed place, and each trial trains what it records."""
    from omegaconf import OmegaConf

    from clara_hydra.convert import convert
    from clara_hydra.reader import analyse
    from clara_hydra.render import write
    data = {"x": 0.5, "search": [{"domain": "net", "type": "float", "args": ["x"], "targets": [0.0, 1.0]}],
            "train": {"model": {"name": "UNet", "args": {"k": 1}, "search": [
                {"domain": "net", "type": "int", "args": ["k"], "targets": [1, 4]}]}}}
    conf = Path(write(convert(analyse(data, file=str(tmp_path / "named.json"))), str(tmp_path / "conf")))
    proc = sweep(conf, tmp_path, "hydra.sweeper.n_trials=4", "hydra.sweeper.storage=null", "hydra.sweeper.pruner=none",
                 override)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = rows(tmp_path / "sweep" / "trials.csv")
    assert "train.model.args.k" not in trials[0] and "train.model.args.k" not in proc.stdout
    trained = set()
    for r in trials:  # what each trial trained is what it records (a fixed value: no column, one value)
        job = OmegaConf.load(tmp_path / "sweep" / r["number"] / ".hydra" / "config.yaml")
        trained.add(str(OmegaConf.select(job, "train.model.args.k")))
        assert r.get("UNet_k", trained.copy().pop()) == str(OmegaConf.select(job, "train.model.args.k"))
    assert trained == values
    if len(values) > 1:
        assert {r["UNet_k"] for r in trials} == values and "UNet_k=" in proc.stdout


@pytest.mark.parametrize("args, words", [
    pytest.param(["hydra.sweeper.nodes_per_trial=2"], "nodes_per_trial=2 runs each trial as a job of several nodes: "
                 "it needs the submitit launcher", id="not-on-a-cluster-launcher"),
    pytest.param(["hydra.sweeper.nodes_per_trial=0"], "nodes_per_trial must be a whole number >= 1, got 0", id="zero"),
])
def test_nodes_per_trial_is_refused_where_it_cannot_run(tmp_path, conf, args, words):
    proc = sweep(conf, tmp_path, f"hydra.sweeper.storage=sqlite:///{tmp_path / 'db.sqlite'}", *args)
    line = one_error(proc)
    assert line.startswith("error: hydra.sweeper.nodes_per_trial: ") and words in line, line
    assert not (tmp_path / "db.sqlite").exists()  # refused before anything is made


def test_a_sweep_under_torchrun_is_refused(tmp_path, conf):
    """torchrun would start as many sweeps as processes: one line says how to train a trial in
    several processes instead, before any study is made."""
    proc = sweep(conf, tmp_path, f"hydra.sweeper.storage=sqlite:///{tmp_path / 'db.sqlite'}",
                 env={"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
    line = one_error(proc)
    assert line.startswith("error: -m: a sweep runs in one process, but this is one of torchrun's 2 (RANK=1)"), line
    assert "nodes_per_trial" in line and not (tmp_path / "db.sqlite").exists()
