"""config_automl.json: every corpus file converts (the BYO ones only where their module is), each
Clara setting lands in hydra.sweeper as the README's table says and composes under clara_optuna,
mistakes are one located line, and a controller of your own drives an Optuna study through
Clara's interface."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import CORPUS, run_cli

from clara_hydra.automl.config import analyse
from clara_hydra.errors import ClaraHydraError

AUTOML = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("config_automl*.json"))
TRAINING = {"cte-pt41-automl": "trn_autoML_Enum.json", "cte-tf31-automl": "trn_autoML_Enum.json"}


def _mmar(tmp_path: Path, rel: str) -> Path:
    """An MMAR of the corpus folder's training config with ``rel`` as its config_automl.json."""
    folder = rel.split("/")[0]
    mmar = tmp_path / "mmar"
    (mmar / "config").mkdir(parents=True)
    shutil.copy(CORPUS / folder / TRAINING[folder], mmar / "config" / "config_train.json")
    shutil.copy(CORPUS / rel, mmar / "config" / "config_automl.json")
    return mmar


def _sweeper(yaml_path: Path) -> dict:
    return yaml.safe_load(yaml_path.read_text())["hydra"]


def test_every_corpus_automl_file_is_checked():
    assert len(AUTOML) == 6, AUTOML


@pytest.mark.parametrize("rel", AUTOML)
def test_corpus_automl_files_convert_and_byo_ones_name_their_module(tmp_path, rel):
    mmar = _mmar(tmp_path, rel)
    proc = run_cli("convert", mmar / "config" / "config_train.json", "-o", mmar / "conf")
    if "BYO" in rel:  # the corpus has no myAutoMLController.py: named, in one line
        (line,) = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and "cannot find module 'myAutoMLController'" in line, proc.stderr
        assert "custom/" in line
        (mmar / "custom").mkdir()
        (mmar / "custom" / "myAutoMLController.py").write_text("raise SystemExit('never run by convert')\n")
        proc = run_cli("convert", mmar / "config" / "config_train.json", "-o", mmar / "conf")
    assert proc.returncode == 0, proc.stderr
    hydra = _sweeper(mmar / "conf" / "config_train.yaml")
    sweeper = hydra["sweeper"]
    assert sweeper["n_trials"] == sweeper["study_trials"] == 8  # max_rounds
    assert sweeper["stop_threshold"] == 1.0 and sweeper["keep_best"] == 30
    assert sweeper["remove_search_augs"] is True
    assert sweeper.get("tensorboard", False) == ("MMARTensorboardHandler" in (CORPUS / rel).read_text())
    if "BYO" in rel:
        assert hydra["sweep"]["dir"] == "/claraDevDay/AutoML/models"  # MMARHandler work_dir
        assert sweeper["handlers"] == [{"path": "myAutoMLController.MyHandler", "args": {}}]
    if "RandomController" in rel:
        assert sweeper["sampler"] == {"path": "myAutoMLController.RandomController", "args": {"max_rounds": 8},
                                      "seed": 0}
    assert "msg_destination not needed" in proc.stderr  # what is not needed here is said


def test_mapped_settings_compose_under_clara_optuna(tmp_path):
    """The keys a config_automl.json writes are the sweeper's typed options: Hydra composes them."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    mmar = _mmar(tmp_path, "cte-pt41-automl/config_automl.json")
    automl = json.loads((mmar / "config" / "config_automl.json").read_text())
    automl["controller"] = {"name": "RandomController", "args": {"max_rounds": 3}}
    automl["handlers"].append({"name": "MMARTensorboardHandler"})
    (mmar / "config" / "config_automl.json").write_text(json.dumps(automl))
    assert run_cli("convert", mmar / "config" / "config_train.json", "-o", mmar / "conf").returncode == 0
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(mmar / "conf"), version_base=None):
        cfg = compose("config_train", return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("ClaraOptunaSweeper")
    assert sweeper.sampler._target_ == "optuna.samplers.RandomSampler" and sweeper.sampler.seed == 0
    assert (sweeper.n_trials, sweeper.study_trials, sweeper.keep_best, sweeper.tensorboard) == (3, 3, 30, True)


def test_automl_none_and_the_training_config_mistaken_for_it(tmp_path):
    mmar = _mmar(tmp_path, "cte-pt41-automl/config_automl.json")
    proc = run_cli("convert", mmar / "config" / "config_train.json", "-o", mmar / "conf", "--automl", "none")
    assert proc.returncode == 0 and "keep_best" not in (mmar / "conf" / "config_train.yaml").read_text()
    proc = run_cli("convert", mmar / "config" / "config_automl.json", "-o", mmar / "conf")
    (line,) = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "this is a Clara AutoML config (config_automl.json), not a training config" in line


BAD = [
    ("unknown-controller", {"controller": {"name": "ReinforceController"}}, "controller.name",
     "unknown controller 'ReinforceController'", "did you mean ReinforcementController"),
    ("bad-max-rounds", {"controller": {"name": "RandomController", "args": {"max_rounds": 0}}},
     "controller.args.max_rounds", "max_rounds must be a whole number >= 1", ""),
    ("unknown-handler", {"handlers": [{"name": "MMARStatHandler"}]}, "handlers[0].name",
     "unknown handler 'MMARStatHandler'", "did you mean MMARStatsHandler"),
    ("unknown-mmar-arg", {"handlers": [{"name": "MMARHandler", "args": {"stop_treshold": 0.9}}]},
     "handlers[0].args.stop_treshold", "unknown MMARHandler arg", "did you mean stop_threshold"),
    ("threshold-not-a-number", {"handlers": [{"name": "MMARHandler", "args": {"stop_threshold": "high"}}]},
     "handlers[0].args.stop_threshold", "stop_threshold must be a number", ""),
    ("handlers-not-a-list", {"handlers": {"name": "StatsHandler"}}, "handlers", "handlers must be a list", ""),
    ("no-name-no-path", {"executor": {"args": {}}}, "executor", "neither name nor path", ""),
    ("unknown-top-key", {"controler": {}}, "controler", "unknown key 'controler'", "did you mean controller"),
    ("path-without-module", {"controller": {"path": "RandomController"}}, "controller.path",
     "not a dotted class path", ""),
]


@pytest.mark.parametrize("data, location, message, hint", [pytest.param(*row[1:], id=row[0]) for row in BAD])
def test_automl_mistakes_are_one_located_line(tmp_path, data, location, message, hint):
    with pytest.raises(ClaraHydraError) as err:
        analyse(data, file="config_automl.json", config_file=str(tmp_path / "config_train.json"))
    line = err.value.format()
    assert f"config_automl.json: {location}: " in line and message in line and hint in line
    assert "\n" not in line


def test_remove_search_augs_drops_the_disabled_transforms():
    from clara_hydra.sweep.results import without_disabled_transforms
    tree = {"train": {"pre_transforms": [{"name": "A"}, {"name": "B", "disabled": True},
                                         {"name": "C", "disabled": "false"}],
                      "optimizer": [{"name": "Adam", "disabled": True}, {"name": "SGD"}]},
            "validate": {"pre_transforms": [{"name": "A", "disabled": 1}]}}
    out = without_disabled_transforms(tree)
    assert out["train"]["pre_transforms"] == [{"name": "A"}, {"name": "C", "disabled": "false"}]
    assert out["validate"]["pre_transforms"] == []
    # alternatives are not transforms: the disabled optimizer stays
    assert out["train"]["optimizer"] == [{"name": "Adam", "disabled": True}, {"name": "SGD"}]
    # the config given is left as it was
    assert [c["name"] for c in tree["train"]["pre_transforms"]] == ["A", "B", "C"]
    assert tree["validate"]["pre_transforms"] == [{"name": "A", "disabled": 1}]


CONTROLLER = """
from automl.components.controllers.controller import Controller
from automl.defs import Recommendation, SearchResult


class Stepper(Controller):
    def __init__(self, max_rounds=3):
        Controller.__init__(self)
        self.max_rounds, self.n, self.scores = max_rounds, 0, []

    def set_search_space(self, space, ctx):
        self.space = space

    def _rec(self):
        self.n += 1
        values = {k: (0.1 * self.n if ".float:" in k else self.n % 2) for k in self.space.targets}
        return [Recommendation(self.n, SearchResult(self.space, values))]

    def initial_recommendation(self, ctx):
        return self._rec()

    def refine_recommendation(self, outcome, ctx):
        self.scores.append((outcome.recommendation_id, outcome.score))
        if len(self.scores) >= self.max_rounds:
            ctx.stop_work(self, "enough")
            return []
        return self._rec()
"""


def test_a_controller_of_your_own_drives_an_optuna_study(tmp_path):
    """Clara's interface on a real study: the controller's values (a float, an enum index) are the
    trials' params, it hears each outcome as Clara's score (negated when minimizing, the sentinel
    for a failure), and its stop_work request ends the search."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from clara_hydra.automl.controller import ControllerSampler
    from clara_hydra.better import of_study
    (tmp_path / "steps.py").write_text(CONTROLLER)
    dists = {"lr": FloatDistribution(0.0, 1.0), "opt": CategoricalDistribution(["adam", "sgd"])}
    sampler = ControllerSampler("steps.Stepper", {"max_rounds": 3}, seed=0)
    study = optuna.create_study(sampler=sampler, direction="minimize")
    sampler.start(dists, {"lr": "lr", "opt": "net"}, [str(tmp_path)], goal=of_study(study), study=study)
    assert sorted(sampler.space.targets) == ["lr.float:lr", "net.enum:opt"]
    seen = []
    for value in (0.5, None, 0.25):
        assert sampler.ready()
        trial = study.ask(dists)
        seen.append((round(trial.params["lr"], 3), trial.params["opt"]))
        study.tell(trial, value) if value is not None else study.tell(trial, state=optuna.trial.TrialState.FAIL)
    assert seen == [(0.1, "sgd"), (0.2, "adam"), (0.3, "sgd")]
    assert sampler.controller.scores == [(1, -0.5), (2, -1_000_000.0), (3, -0.25)]
    assert not sampler.ready() and "Stepper asked to stop: enough" in sampler.exhausted


@pytest.mark.parametrize("directions, values, keep, kept", [
    # one objective: the `keep` best values keep their checkpoints as trials finish
    pytest.param(["maximize"], [[0.3], [0.9], [0.5], [0.7]], 2, [{0}, {0, 1}, {1, 2}, {1, 3}], id="single"),
    # a minimize study (a loss key metric): the lowest values keep theirs
    pytest.param(["minimize"], [[0.3], [0.9], [0.5], [0.7]], 2, [{0}, {0, 1}, {0, 2}, {0, 2}], id="minimize"),
    # two objectives: the whole Pareto front keeps them (trials 1 and 2 are on it until trial 3
    # dominates them); the front ranked into `keep` places would drop trial 1 and 2 while on it
    pytest.param(["maximize", "maximize"], [[0.9, 0.1], [0.1, 0.9], [0.5, 0.5], [0.6, 0.95]], 1,
                 [{0}, {0, 1}, {0, 1, 2}, {0, 3}], id="pareto-front"),
])
def test_keep_best_removes_checkpoints_never_wanted_back(tmp_path, directions, values, keep, kept):
    """MMARHandler's num_mmars_to_keep (keep_best) on a real Optuna study and real trial folders."""
    import optuna

    from clara_hydra.sweep import keep as keeping
    from clara_hydra.sweep.protocol import ATTR_JOB_DIR
    study = optuna.create_study(directions=directions)
    for number, (value, want) in enumerate(zip(values, kept)):
        models = tmp_path / str(number) / "models"
        models.mkdir(parents=True)
        (models / "model.pt").write_text("weights")
        study.add_trial(optuna.trial.create_trial(values=value, user_attrs={ATTR_JOB_DIR: str(models.parent)}))
        keeping.trim(study, keep)
        have = {n for n in range(number + 1) if (tmp_path / str(n) / "models" / "model.pt").exists()}
        assert have == want, f"after trial #{number}"
