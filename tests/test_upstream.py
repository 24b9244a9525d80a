"""The private API of the libraries clara-hydra uses, all of it reached through one module per
library: Optuna's and hydra-optuna-sweeper's through clara_hydra.sweep.upstream, OmegaConf's,
hydra-core's and MONAI's through clara_hydra/private/. Each adapter is called on the installed
versions, so an upgrade that renames or reshapes one fails here, by name, instead of in the
middle of a user's sweep; and no other module touches a private name."""

from __future__ import annotations

import importlib

import omegaconf
import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from clara_hydra.private import hydra as private_hydra
from clara_hydra.private import monai as private_monai
from clara_hydra.private import omegaconf as private_omegaconf
from clara_hydra.private import python as private_python
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


def test_the_plugins_are_entry_points_hydra_loads():
    """Hydra 1.4 loads plugins from the ``hydra.plugins`` entry points as well as from its namespace
    scan: an install the scan cannot see (an editable install in strict mode) still has them."""
    from importlib.metadata import entry_points

    from hydra.core.plugins import Plugins
    from hydra.plugins.config_source import ConfigSource
    from hydra.plugins.search_path_plugin import SearchPathPlugin
    from hydra.plugins.sweeper import Sweeper
    ours = {ep.name: ep.load() for ep in entry_points(group="hydra.plugins") if ep.dist.name == "clara-hydra"}
    assert {name: c.__name__ for name, c in ours.items()} == {
        "clara_optuna": "ClaraOptunaSweeper", "clara_typed_search_path": "TypedSearchPath",
        "clara_typed_config_source": "TypedConfigSource"}
    for kind, name in ((Sweeper, "clara_optuna"), (SearchPathPlugin, "clara_typed_search_path"),
                       (ConfigSource, "clara_typed_config_source")):
        assert issubclass(ours[name], kind) and ours[name] in Plugins.instance().discover(kind)


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


# ------------------------------------------------------------------ the other libraries' private API
#: Every module that reaches into a library's private API, by library (its PRIVATE_NAMES).
PRIVATE_MODULES = {"optuna, hydra-optuna-sweeper": upstream, "omegaconf": private_omegaconf,
                   "hydra-core": private_hydra, "monai": private_monai, "python": private_python}


def _made(owner):
    """A real instance of ``owner``, for names an instance sets (a node's parent, a saver's checkpoint)."""
    if owner is omegaconf.base.Node or owner is omegaconf.basecontainer.BaseContainer:
        return OmegaConf.create({"a": {"b": 1}}).a
    if owner is omegaconf.nodes.ValueNode:
        return omegaconf.nodes.IntegerNode(1)
    if owner is omegaconf.base.Metadata:
        return OmegaConf.create({"a": 1})._metadata  # (the one name this test reads itself)
    if owner.__name__ == "Thread":
        import threading
        return threading.Thread(target=print)
    if owner.__name__ == "CheckpointSaver":
        import tempfile

        import torch
        return owner(save_dir=tempfile.gettempdir(), save_dict={"net": torch.nn.Linear(1, 1)}, save_key_metric=True)
    return _instance_of(owner)


@pytest.mark.parametrize("module,owner,name", [
    pytest.param(m, o, n, id=f"{lib}:{o}.{n}") for lib, m in PRIVATE_MODULES.items() if m is not upstream
    for o, names in m.PRIVATE_NAMES.items() for n in names])
def test_each_private_name_of_omegaconf_hydra_and_monai_is_still_there(module, owner, name):
    obj = _owner(owner)
    target = obj if hasattr(obj, name) else _made(obj)
    assert target is not None and hasattr(target, name), (
        f"{owner} has no {name} any more: an upgrade changed the private API that {module.__name__} relies on; "
        f"adapt that module (and only it)")


def test_omegaconf_nodes_as_typing_a_config_uses_them():
    from typing import Any

    from omegaconf import FloatNode, IntegerNode, ListConfig
    from omegaconf.errors import ValidationError
    o = private_omegaconf
    cfg = OmegaConf.create({"comp": {"args": {"x": 1, "y": "${comp.args.x}"}}, "items": [1, 2]})
    args = o.child(o.child(cfg, "comp"), "args")
    assert o.value(o.child(args, "y")) == "${comp.args.x}"  # as written, not resolved
    assert o.key(args) == "args" and o.parent(args) is o.child(cfg, "comp") and o.root(args) is cfg
    items = o.child(cfg, "items")
    assert isinstance(items, ListConfig) and o.ref_type(items) is Any and o.is_optional(items)  # untyped
    o.declare(items, list[Any], False)
    assert o.ref_type(items) == list[Any] and not o.is_optional(items)
    with pytest.raises(ValidationError):
        cfg.items = None  # a list, not null, from now on
    o.set_flag(args, "clara_kinds:x=int", True)
    assert o.flags(args) == {"clara_kinds:x=int": True} and o.flags(None) == {}
    node = IntegerNode(1)
    o.set_value(node, "5")
    assert o.value(node) == 5
    with pytest.raises(ValidationError):
        o.set_value(node, "five")
    o.replace_child(args, "x", FloatNode(2.5, key="x", parent=args))
    assert cfg.comp.args.x == 2.5 and isinstance(o.child(args, "x"), FloatNode) and cfg.comp.args.y == 2.5
    import yaml
    assert yaml.load("a: 1e5", Loader=o.yaml_loader()) == {"a": 100000.0}  # (PyYAML's own reads a string)


def test_hydra_sources_headers_and_a_jobs_exception(capsys):
    from hydra.core.plugins import Plugins
    Plugins.instance()  # (Hydra registers its source types when it starts, as in any app)
    h = private_hydra
    assert h.source("hydra", "pkg://hydra.conf").is_config("hydra/help/default")
    assert not h.source("hydra", "pkg://hydra.conf").is_config("no/such/config")
    assert h.header("# @package _global_\nx: 1\n") == {"package": "_global_"}
    assert h.file_name("db/mysql") == "db/mysql.yaml" and h.file_name("a.yaml") == "a.yaml"
    error = ValueError("boom")
    assert h.job_exception(JobReturn(_return_value=error, status=JobStatus.FAILED)) is error
    assert capsys.readouterr().err == ""


def test_the_function_a_thread_runs():
    import threading
    from multiprocessing.pool import ThreadPool
    assert private_python.thread_target(threading.Thread(target=print)) is print
    with ThreadPool(1) as pool:  # what settle_pool_threads looks for
        assert any(getattr(private_python.thread_target(t), "__module__", "") == "multiprocessing.pool"
                   for t in threading.enumerate())
        pool.terminate()


def test_a_checkpoint_savers_key_metric_checkpoint(tmp_path):
    import torch
    from ignite.handlers import Checkpoint
    from monai.handlers import CheckpointSaver
    net = {"net": torch.nn.Linear(1, 1)}
    kept = private_monai.key_metric_checkpoint(CheckpointSaver(save_dir=str(tmp_path), save_dict=net,
                                                               save_key_metric=True))
    assert isinstance(kept, Checkpoint) and kept.save_handler.dirname == tmp_path
    assert private_monai.key_metric_checkpoint(CheckpointSaver(save_dir=str(tmp_path), save_dict=net,
                                                               save_final=True)) is None


#: The modules where a library's private API may be touched, and nowhere else.
PRIVATE_HOMES = {"clara_hydra/sweep/upstream.py", *(f"clara_hydra/private/{lib}.py" for lib in
                                                     ("omegaconf", "hydra", "monai", "python"))}
#: Underscored names that are public API all the same (os._exit is documented).
PUBLIC_ALL_THE_SAME = {"_exit"}


def private_touches(source: str) -> list[str]:
    """Each place ``source`` reaches a private name of another object or module: ``x._name`` (not
    ``self._name``), ``getattr(x, "_name")``, ``x.__dict__["_name"]``, ``from a._b import c``,
    ``from a import _b``."""
    import ast
    found = []
    for node in ast.walk(ast.parse(source)):
        name = None
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            name = node.attr
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") \
                and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
                and str(node.args[1].value).startswith("_") and not str(node.args[1].value).startswith("__"):
            name = node.args[1].value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.value, ast.Attribute) and node.value.attr == "__dict__":
            name = f"__dict__[{node.slice.value!r}]"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if any(p.startswith("_") and not p.startswith("__") for p in node.module.split(".")):
                name = f"from {node.module}"
            else:
                name = next((a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")),
                            None)
        if name is not None and name not in PUBLIC_ALL_THE_SAME:
            found.append(f"{node.lineno}: {name}")
    return found


@pytest.mark.parametrize("source,touches", [
    pytest.param("x._value()", ["1: _value"], id="attribute"),
    pytest.param("self._own = 1\ncls._too", [], id="own"),
    pytest.param("getattr(node, '_metadata', None)", ["1: _metadata"], id="getattr"),
    pytest.param("p.__dict__['_content'][k] = n", ["1: __dict__['_content']"], id="dict"),
    pytest.param("from omegaconf._yaml import get_yaml_loader", ["1: from omegaconf._yaml"], id="private-module"),
    pytest.param("from hydra.plugins import _x", ["1: _x"], id="private-name"),
    pytest.param("from ._local import helper\nos._exit(3)", [], id="relative-and-documented"),
])
def test_the_private_api_scan_finds_each_kind_of_touch(source, touches):
    assert private_touches(source) == touches


def test_no_private_api_outside_its_modules():
    from conftest import ROOT
    files = sorted([*ROOT.glob("clara_hydra/**/*.py"), *ROOT.glob("hydra_plugins/clara_hydra_sweeper/*.py")])
    assert len(files) > 50
    outside = [f"{f.relative_to(ROOT)}:{touch}" for f in files if str(f.relative_to(ROOT)) not in PRIVATE_HOMES
               for touch in private_touches(f.read_text())]
    assert not outside, "private API outside clara_hydra/private/ and sweep/upstream.py: " + "; ".join(outside)
