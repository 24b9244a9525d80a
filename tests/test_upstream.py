"""The private Optuna / hydra-optuna-sweeper API clara-hydra uses, all of it reached through
clara_hydra.sweep.upstream: each adapter is called on the installed versions, so an upgrade that
renames or reshapes one fails here, by name, instead of in the middle of a user's sweep."""

from __future__ import annotations

import importlib

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from clara_hydra.sweep import upstream


def _owner(dotted: str):
    for cut in range(dotted.count(".") + 1, 0, -1):
        module = ".".join(dotted.split(".")[:cut])
        try:
            obj = importlib.import_module(module)
        except ImportError:
            continue
        for attr in dotted.split(".")[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _instance_of(owner):
    """A real instance for names set in __init__ (Study._storage, Trial._trial_id, ...)."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    trial = study.ask()
    made = {optuna.study.Study: study, optuna.trial.Trial: trial,
            optuna.trial.FrozenTrial: study.get_trials(deepcopy=False)[0],
            optuna.samplers.TPESampler: study.sampler, optuna.samplers.RandomSampler: optuna.samplers.RandomSampler(),
            JobReturn: JobReturn(_return_value=ValueError("x"), status=JobStatus.FAILED)}
    return made.get(owner)


@pytest.mark.parametrize("owner,name", [pytest.param(o, n, id=f"{o}.{n}") for o, names in
                                        upstream.PRIVATE_NAMES.items() for n in names])
def test_each_private_name_is_still_there(owner, name):
    obj = _owner(owner)
    target = obj if hasattr(obj, name) else _instance_of(obj)
    assert target is not None and hasattr(target, name), (
        f"{owner} has no {name} any more: an upgrade changed the private API that "
        f"clara_hydra/sweep/upstream.py relies on; adapt that module (and only it)")


def _stock(params: dict, direction="maximize"):
    return upstream.stock_sweeper(optuna.samplers.TPESampler(seed=0), direction, None, "s", 3, 1, 0.5, None,
                                  OmegaConf.create(params))


def test_search_space_from_params_and_command_line():
    impl = _stock({"lr": "tag(log, interval(0.0001, 0.1))", "mode": "choice(a, b)", "fixed": "3"})
    dists, fixed_params, fixed_overrides = upstream.search_space(impl, ["n=range(1, 4)", "~drop"])
    assert set(dists) == {"lr", "mode", "n"}
    assert isinstance(dists["lr"], FloatDistribution) and dists["lr"].log and dists["lr"].low == 0.0001
    assert isinstance(dists["mode"], CategoricalDistribution) and dists["mode"].choices == ("a", "b")
    assert isinstance(dists["n"], IntDistribution) and (dists["n"].low, dists["n"].high) == (1, 3)
    assert fixed_params == {"fixed": "3"}
    assert fixed_overrides == ["~drop"]  # a deletion from the command line goes to every trial as written


def test_a_bad_sweep_expression_raises():
    with pytest.raises(ValueError):
        upstream.search_space(_stock({"x": "interval(1, 0)"}), [])


@pytest.mark.parametrize("direction,want", [
    pytest.param("maximize", ["maximize"], id="one"),
    pytest.param(["minimize", "maximize"], ["minimize", "maximize"], id="two"),
])
def test_directions(direction, want):
    assert upstream.directions(_stock({}, direction)) == want


def test_trial_overrides_suggest_on_the_trial():
    impl = _stock({"lr": "interval(0.1, 0.2)", "mode": "choice(a, b)", "k": "7"})
    dists, fixed_params, fixed_overrides = upstream.search_space(impl, [])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    overrides = upstream.trial_overrides(impl, trial, dists, fixed_params, fixed_overrides)
    assert sorted(o.split("=")[0] for o in overrides) == ["k", "lr", "mode"]
    assert f"lr={trial.params['lr']}" in overrides and f"mode={trial.params['mode']}" in overrides
    assert "k=7" in overrides


def test_suggest_one_param_first_then_the_overrides_agree():
    impl = _stock({"lr": "interval(0.1, 0.2)", "mode": "choice(a, b)"})
    dists, fixed_params, fixed_overrides = upstream.search_space(impl, [])
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    mode = upstream.suggest(trial, "mode", dists["mode"])
    assert mode in ("a", "b") and trial.params == {"mode": mode}
    overrides = upstream.trial_overrides(impl, trial, {"mode": dists["mode"]}, fixed_params, fixed_overrides)
    assert overrides == [f"mode={mode}"]  # only the params given: "lr" is absent from this trial


def test_distribution_of_one_override():
    override = OverridesParser.create().parse_override("x=int(interval(1, 5))")
    dist = upstream.distribution(override)
    assert isinstance(dist, IntDistribution) and (dist.low, dist.high) == (1, 5)


def test_stored_trial_fail_orphan_and_live_trial():
    study = optuna.create_study()
    asked = study.ask()
    frozen = upstream.stored_trial(study, asked)
    assert frozen.state == TrialState.RUNNING and frozen.number == asked.number
    live = upstream.live_trial(study, frozen)
    live.report(0.5, step=1)
    assert upstream.stored_trial(study, asked).intermediate_values == {1: 0.5}
    upstream.fail_orphan(study, frozen, "reason", "interrupted")
    after = upstream.stored_trial(study, asked)
    assert after.state == TrialState.FAIL and after.user_attrs == {"reason": "interrupted"}


def test_system_attributes_of_a_trial_and_the_study():
    """A heartbeat's bookkeeping (clara_hydra.sweep.liveness): kept where the user's tools do not
    show it, readable by every process of the study."""
    study = optuna.create_study()
    trial = study.ask()
    upstream.set_trial_system_attr(study, trial, "clara_heartbeat", {"t": 1.0})
    upstream.set_study_system_attr(study, "clara_sweep:h:1", {"t": 2.0})
    assert upstream.stored_trial(study, trial).system_attrs["clara_heartbeat"] == {"t": 1.0}
    assert upstream.study_system_attrs(study)["clara_sweep:h:1"] == {"t": 2.0}
    assert "clara_heartbeat" not in upstream.stored_trial(study, trial).user_attrs


def test_job_exception_without_writing_to_stderr(capsys):
    error = ValueError("boom")
    assert upstream.job_exception(JobReturn(_return_value=error, status=JobStatus.FAILED)) is error
    assert capsys.readouterr().err == ""


#: The first x in [0, 1] a fresh study asks of a sampler seeded 1, and seeded 5 (NumPy's
#: RandomState(seed).uniform(): the first trial of TPE is its random sampler's).
FIRST_OF_SEED_1 = 0.417022004702574
FIRST_OF_SEED_5 = 0.22199317108973948


@pytest.mark.parametrize("make,holders", [
    pytest.param(optuna.samplers.TPESampler, ["TPESampler", "RandomSampler"], id="tpe"),
    pytest.param(optuna.samplers.RandomSampler, ["RandomSampler"], id="random"),
])
def test_sampler_random_states_can_be_moved_on(make, holders):
    def first(sampler):
        return optuna.create_study(sampler=sampler).ask().suggest_float("x", 0, 1)

    # every random state a seeded sampler draws from: TPE's own and its fallback random sampler's
    assert [type(h).__name__ for h, state in upstream.sampler_rngs(make(seed=1)) if state is not None] == holders
    assert first(make(seed=1)) == FIRST_OF_SEED_1  # a restarted sampler seeded 1 would replay this
    assert first(make(seed=5)) == FIRST_OF_SEED_5
    sampler = make(seed=1)
    for _, state in upstream.sampler_rngs(sampler):
        state.seed(5)
    assert first(sampler) == FIRST_OF_SEED_5  # moved on: as if seeded 5, not the seed-1 replay


def test_the_plugin_scan_imports_neither_optuna_nor_the_sweeper_work():
    """Hydra imports every plugin module when any Hydra app starts: the registered sweeper is thin,
    its work (and Optuna) is imported when a sweep starts."""
    import json
    import subprocess
    import sys
    probe = ("import json, sys\n"
             "from hydra.core.plugins import Plugins\n"
             "from hydra.plugins.sweeper import Sweeper\n"
             "names = [p.__name__ for p in Plugins.instance().discover(Sweeper)]\n"
             "print(json.dumps({'sweepers': names, 'loaded': sorted(m for m in sys.modules if m.startswith("
             "('optuna', 'hydra_plugins.clara_hydra_sweeper._impl', 'hydra_plugins.hydra_optuna_sweeper._impl')))}))")
    out = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                                    text=True).stdout)
    assert "ClaraOptunaSweeper" in out["sweepers"] and "OptunaSweeperImpl" not in out["sweepers"]
    assert out["loaded"] == []


def test_grid_sampler_from_a_deferred_grid():
    from hydra.utils import instantiate
    impl = _stock({"mode": "choice(a, b)", "n": "int(interval(1, 3))"})
    impl.sampler = instantiate({"_target_": "optuna.samplers.GridSampler", "_partial_": True, "seed": 0},
                               _execution_whitelist_=("optuna.samplers.*",))  # as the sweeper instantiates it
    dists, _, _ = upstream.search_space(impl, [])
    assert upstream.is_deferred_grid(impl.sampler)
    grid = upstream.grid(dists)
    assert grid == {"mode": ["a", "b"], "n": [1, 2, 3]}  # 6 combinations
    assert isinstance(impl.sampler(grid), optuna.samplers.GridSampler)
    assert not upstream.is_deferred_grid(_stock({"x": "choice(1, 2)"}).sampler)  # not a grid sampler
    with pytest.raises(ValueError):
        upstream.grid(upstream.search_space(_stock({"x": "interval(0, 1)"}), [])[0])  # a continuous range
