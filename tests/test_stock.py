"""clara_optuna in place of hydra-optuna-sweeper's ``optuna``, on the stock sweeper's own examples
(example/sphere.py, example/multi-objective.py, example/custom-search-space-objective.py, as
hydra-optuna-sweeper 1.4.0rc3's tests run them: ``python -W error``): a config that names its
sampler (in its defaults or on the command line) gets that sampler, the same trials as on the
stock sweeper, and no warning it did not ask for; a converted Clara config's finite space is
still enumerated (each combination once) unless its sampler is named."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cases

pytestmark = pytest.mark.slow

#: the warning options of the stock sweeper's tests (run_optuna_script): every warning is an error,
#: except SQLAlchemy's utcfromtimestamp deprecation and NSGA-III's experimental warning (its users ask for it)
WARNINGS = ["-W", "error",
            "-W", "ignore:datetime.datetime.utcfromtimestamp() is deprecated:DeprecationWarning:"
                  "sqlalchemy.sql.sqltypes",
            "-W", "default:NSGAIIISampler is experimental"]

#: hydra-optuna-sweeper's example files as its 1.4.0rc3 tests run them (its sdist ships no example/
#: folder: these are the repository's, without version_base, which Hydra 1.4.0rc3 deprecates, with
#: the error key test_failure_rate sets, and the custom search space through the execution whitelist),
#: the sweeper's name left to fill in
EXAMPLES = {
    "example/sphere.py": '''\
import hydra
from omegaconf import DictConfig


@hydra.main(config_path="conf", config_name="config")
def sphere(cfg: DictConfig) -> float:
    x: float = cfg.x
    y: float = cfg.y

    if cfg.get("error", False):
        raise RuntimeError("cfg.error is True")

    return x**2 + y**2


if __name__ == "__main__":
    sphere()
''',
    "example/conf/config.yaml": '''\
defaults:
  - override hydra/sweeper: {sweeper}
  - override hydra/sweeper/sampler: tpe

hydra:
  sweeper:
    sampler:
      seed: 123
    direction: minimize
    study_name: sphere
    storage: null
    n_trials: 20
    n_jobs: 1
    params:
      x: range(-5.5, 5.5, step=0.5)
      y: choice(-5 ,0 ,5)

x: 1
y: 1
z: 1
error: false
''',
    "example/multi-objective.py": '''\
import hydra
from omegaconf import DictConfig


@hydra.main(config_path="multi-objective-conf", config_name="config")
def binh_and_korn(cfg: DictConfig) -> tuple[float, float]:
    x: float = cfg.x
    y: float = cfg.y

    v0 = 4 * x**2 + 4 * y**2
    v1 = (x - 5) ** 2 + (y - 5) ** 2
    return v0, v1


if __name__ == "__main__":
    binh_and_korn()
''',
    "example/multi-objective-conf/config.yaml": '''\
defaults:
  - override hydra/sweeper: {sweeper}
  - override hydra/sweeper/sampler: nsgaii

hydra:
  sweeper:
    sampler:
      seed: 123
    direction: [minimize, minimize]
    study_name: multi-objective
    storage: null
    n_trials: 20
    n_jobs: 1
    params:
      x: range(0, 5, step=0.5)
      y: range(0, 3, step=0.5)

x: 1
y: 1
''',
    "example/custom-search-space-objective.py": '''\
import hydra
from omegaconf import DictConfig
from optuna.trial import Trial


@hydra.main(
    config_path="custom-search-space",
    config_name="config",
    execution_whitelist="__main__.configure",
)
def multi_dimensional_sphere(cfg: DictConfig) -> float:
    w: float = cfg.w
    x: float = cfg.x
    y: float = cfg.y
    z: float = cfg.z
    return w**2 + x**2 + y**2 + z**2


def configure(cfg: DictConfig, trial: Trial) -> None:
    x_value = trial.params["x"]
    trial.suggest_float(
        "z",
        x_value - cfg.max_z_difference_from_x,
        x_value + cfg.max_z_difference_from_x,
    )
    trial.suggest_float("+w", 0.0, 1.0)  # note +w here, not w as w is a new parameter


if __name__ == "__main__":
    multi_dimensional_sphere()
''',
    "example/custom-search-space/config.yaml": '''\
defaults:
  - override hydra/sweeper: {sweeper}

hydra:
  sweeper:
    sampler:
      seed: 123
    direction: minimize
    study_name: custom-search-space
    storage: null
    n_trials: 20
    n_jobs: 1

    params:
      x: range(-5.5, 5.5, 0.5)
      y: choice(-5, 0, 5)
    custom_search_space: __main__.configure

x: 1
y: 1
z: 100
max_z_difference_from_x: 0.5
''',
}


def examples(root: Path, sweeper: str) -> Path:
    """The stock examples in ``root``, their configs naming ``sweeper`` (optuna or clara_optuna)."""
    for rel, text in EXAMPLES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{sweeper}", sweeper) if rel.endswith(".yaml") else text)
    return root


def run_example(root: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    """``python -W error <script> --multirun ...`` in the examples' folder, the trials in a
    SQLite study ``s`` under ``root/sweep``."""
    sweep_dir = root / "sweep"
    sweep_dir.mkdir(exist_ok=True)
    cmd = [sys.executable, *WARNINGS, script, "--multirun", f"hydra.sweep.dir={sweep_dir}", "hydra.job.chdir=True",
           "hydra.sweeper.n_jobs=1", f"hydra.sweeper.storage=sqlite:///{sweep_dir / 's.db'}",
           "hydra.sweeper.study_name=s", *args]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)


def trials(root: Path) -> list[dict]:
    """Each trial's params, in trial order."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{root / 'sweep' / 's.db'}")
    return [t.params for t in sorted(study.trials, key=lambda t: t.number)]


def results(root: Path) -> dict:
    import yaml
    return yaml.safe_load((root / "sweep" / "optimization_results.yaml").read_text())


SAME_AS_STOCK = cases([
    # (id, script, args): the stock tests' and README's commands; the sampler named, or the stock default
    ("sphere-tpe-named-on-the-command-line", "example/sphere.py",
     ["hydra/sweeper/sampler=tpe", "hydra.sweeper.sampler.seed=123", "~z", "x=choice(0, 1, 2)", "y=0"]),
    ("sphere-tpe-named-in-the-config", "example/sphere.py", []),  # a finite space: ranges with steps, choices
    ("sphere-random-on-a-finite-space", "example/sphere.py",
     ["hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=123", "x=range(-3, 3)", "y=choice(-5, 0, 5)"]),
    ("multi-objective-nsgaii-named-in-the-config", "example/multi-objective.py", []),
    ("multi-objective-random-on-ranges", "example/multi-objective.py",
     ["hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=123", "x=range(0, 5)", "y=range(0, 3)"]),
    ("multi-objective-nsgaiii", "example/multi-objective.py",
     ["hydra/sweeper/sampler=nsgaiii", "hydra.sweeper.sampler.seed=123"]),
    ("custom-search-space-default-sampler", "example/custom-search-space-objective.py",
     ["max_z_difference_from_x=0.3"]),  # names no sampler: TPE, the stock default (not enumerated)
])


@pytest.mark.parametrize("name,script,args", SAME_AS_STOCK)
def test_a_named_sampler_gives_the_stock_sweepers_trials(tmp_path, name, script, args):
    """Under ``python -W error``, clara_optuna runs the trials the stock sweeper runs: its sampler,
    seeded, not an enumeration (startup_trials=null: TPE keeps its own start-up trials, as on stock)."""
    stock = examples(tmp_path / "optuna", "optuna")
    ours = examples(tmp_path / "clara_optuna", "clara_optuna")
    want = run_example(stock, script, "hydra.sweeper.n_trials=6", *args)
    assert want.returncode == 0, want.stderr[-3000:]
    got = run_example(ours, script, "hydra.sweeper.n_trials=6", "hydra.sweeper.startup_trials=null", *args)
    assert got.returncode == 0, got.stderr[-3000:]
    assert "search space is finite" not in got.stdout + got.stderr
    assert "BruteForceSampler" not in got.stderr
    assert trials(ours) == trials(stock) and len(trials(ours)) == 6
    assert not list(ours.rglob("tensorboard"))  # HParams are a Clara config's default, not another app's
    expected, actual = results(stock), results(ours)
    assert actual["name"] == "optuna" and actual["sweeper"] == "clara_optuna"
    if "solutions" in expected:  # a multi-objective sweep: the same Pareto front
        front = sorted(json.dumps(s["params"], sort_keys=True) for s in expected["solutions"])
        assert sorted(json.dumps(s["params"], sort_keys=True) for s in actual["solutions"]) == front
    else:
        assert (actual["best_params"], actual["best_value"]) == (expected["best_params"], expected["best_value"])


@pytest.mark.parametrize("sweeper", ["optuna", "clara_optuna"])
def test_too_many_failures_name_the_jobs_error(tmp_path, sweeper):
    """The stock suite's test_failure_rate: every job raises, the sweep stops at max_failure_rate
    and its error names the job's exception (ours says it in its one line)."""
    root = examples(tmp_path / sweeper, sweeper)
    proc = run_example(root, "example/sphere.py", "hydra.sweeper.n_trials=4", "hydra.sweeper.max_failure_rate=0.5",
                       "error=true")
    assert proc.returncode != 0
    assert "RuntimeError: cfg.error is True" in proc.stderr, proc.stderr[-2000:]


# --------------------------------------------------------------------- a converted Clara config
#: a Hydra app of your own (not clara-hydra's, which silences Optuna's experimental warnings for its
#: runs) on a converted Clara config: the sweeper alone decides what warns
TASK = """\
import hydra
from omegaconf import DictConfig


@hydra.main(config_path=None)
def task(cfg: DictConfig) -> float:
    return float(cfg.x) + (0.5 if cfg.mode == "b" else 0.0)


if __name__ == "__main__":
    task()
"""
CONFIG = {"x": 0.5, "mode": "a",
          "search": [{"domain": "net", "type": "float", "args": ["x"], "targets": [0.0, 1.0]},
                     {"domain": "net", "type": "enum", "args": ["mode"], "targets": ["a", "b"]}],
          "train": {"model": {"name": "UNet", "args": {}}}}
COMBINATIONS = [("0.2", "a"), ("0.2", "b"), ("0.8", "a"), ("0.8", "b")]


@pytest.fixture
def conf(tmp_path):
    from clara_hydra.convert import convert
    from clara_hydra.reader import analyse
    from clara_hydra.render import write
    src = tmp_path / "cfg.json"
    src.write_text(json.dumps(CONFIG))
    return Path(write(convert(analyse(CONFIG, file=str(src))), str(tmp_path / "conf")))


def sweep_clara(conf: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    (cwd / "task.py").write_text(TASK)
    cmd = [sys.executable, *WARNINGS, str(cwd / "task.py"), "-m", "--config-dir", str(conf.parent),
           "--config-name", conf.stem, f"hydra.sweep.dir={cwd / 'sweep'}", "hydra.sweeper.export_best=false",
           "hydra.sweeper.pruner=none", "hydra.sweeper.storage=null", "x=choice(0.2,0.8)", "hydra.sweeper.n_trials=6",
           *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


CLARA = cases([
    # (id, args, enumerated, tpe): the finite space is x=choice(0.2,0.8) x mode in (a, b), n_trials=6
    ("enumerated-by-default", [], True, False),
    ("tpe-named-on-the-command-line", ["hydra/sweeper/sampler=tpe"], False, True),
    ("random-named-on-the-command-line", ["hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0"],
     False, False),
    ("finite_space-sample", ["hydra.sweeper.finite_space=sample"], False, True),
    ("finite_space-enumerate-beats-a-named-sampler", ["hydra/sweeper/sampler=random",
                                                      "hydra.sweeper.finite_space=enumerate"], True, False),
])


@pytest.mark.parametrize("name,args,enumerated,tpe", CLARA)
def test_a_clara_configs_finite_space_is_enumerated_unless_its_sampler_is_named(tmp_path, conf, name, args,
                                                                                enumerated, tpe):
    """Clara's enum-only search: each combination once (Optuna's BruteForceSampler, whose
    experimental warning the user did not ask for: ``python -W error`` runs); a sampler named on
    the command line samples n_trials trials."""
    proc = sweep_clara(conf, tmp_path, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Warning" not in proc.stderr, proc.stderr[-3000:]
    with open(tmp_path / "sweep" / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["state"] for r in rows} == {"complete"}
    assert ("the search space is finite (4 combination(s))" in proc.stdout) == enumerated
    assert ("TPE models the results after" in proc.stdout) == tpe
    if enumerated:
        assert sorted((r["x"], r["mode"]) for r in rows) == COMBINATIONS  # each once, then it stops
    else:
        assert len(rows) == 6 and {(r["x"], r["mode"]) for r in rows} <= set(COMBINATIONS)


@pytest.mark.parametrize("args,enumerated", [
    pytest.param(["hydra.sweeper.finite_space=enumerate"], True, id="told-to-enumerate"),
    pytest.param([], False, id="not-told"),
])
def test_a_plain_config_enumerates_only_when_told(tmp_path, args, enumerated):
    """A config of your own (no ``clara_hydra`` node) keeps its sampler, as on the stock sweeper,
    unless the command line asks for the enumeration; either way no warning."""
    root = examples(tmp_path, "clara_optuna")
    proc = run_example(root, "example/sphere.py", "hydra.sweeper.n_trials=9", "x=choice(0, 1)", "y=choice(-5, 5)",
                       *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Warning" not in proc.stderr, proc.stderr[-3000:]
    assert ("the search space is finite (4 combination(s))" in proc.stdout + proc.stderr) == enumerated
    params = trials(root)
    if enumerated:
        assert sorted((p["x"], p["y"]) for p in params) == [(0, -5), (0, 5), (1, -5), (1, 5)]
    else:
        assert len(params) == 9  # TPE, n_trials of them (finished combinations are reused, not run again)
