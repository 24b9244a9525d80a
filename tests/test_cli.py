"""The command-line contracts of SPEC that are not errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, clara_cli, run_cli


@pytest.mark.parametrize("args", [pytest.param(["--help"], id="help"), pytest.param([], id="no-command")])
def test_help_lists_the_commands(args):
    proc = run_cli(*args)
    assert proc.returncode == 0 and proc.stderr == ""
    for cmd in ("convert", "space", "resolve", "train", "validate", "export", "report"):
        assert cmd in proc.stdout


def test_version_is_the_packages():
    from importlib.metadata import version
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"clara-hydra {version('clara-hydra')}"


def test_core_commands_import_neither_torch_nor_monai(tmp_path):
    src = ROOT / "examples" / "demo.json"
    code = (
        "import sys\n"
        "from clara_hydra.cli import main\n"
        f"main(['convert', {str(src)!r}, '-o', {str(tmp_path)!r}])\n"
        f"main(['space', {str(src)!r}, '--json'])\n"
        f"main(['resolve', {str(src)!r}, '--json', '--enabled-only'])\n"
        "bad = [m for m in ('torch', 'monai', 'ignite') if m in sys.modules]\n"
        "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_convert_prints_path_and_is_deterministic(tmp_path):
    src = ROOT / "examples" / "demo.json"
    first = run_cli("convert", src, "-o", tmp_path / "a")
    second = run_cli("convert", src, "-o", tmp_path / "b")
    assert first.returncode == 0 and second.returncode == 0
    out_a, out_b = first.stdout.strip(), second.stdout.strip()
    assert out_a == str(tmp_path / "a" / "demo.yaml")
    text = open(out_a).read()
    assert text == open(out_b).read()
    assert text.startswith("# Converted by clara-hydra") and "examples/demo.json" in text.splitlines()[0]
    doc = yaml.safe_load(text)
    assert doc["defaults"] == [
        {"clara_schema@_global_": ["epochs", "num_training_epoch_per_valid", "learning_rate", "multi_gpu", "use_amp",
                                   "dynamic_input_shape"]},
        {"override hydra/sweeper": "clara_optuna"}, {"override hydra/job_logging": "clara"},
        {"override hydra/hydra_logging": "clara"}, "_self_"]
    sweeper = doc["hydra"]["sweeper"]
    assert sweeper["sampler"] == {"seed": 0} and sweeper["direction"] == "maximize"
    assert sweeper["study_name"] == "demo" and sweeper["storage"].startswith("sqlite:///")
    assert doc["hydra"]["sweeper"]["params"]["learning_rate"] == "tag(log, interval(0.0001, 0.01))"
    assert doc["clara_hydra"]["params"]["d1_d2"]["domain"] == "transform"


def test_space_table_and_json(tmp_path):
    src = ROOT / "examples" / "demo.json"
    table = run_cli("space", src)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == ["NAME", "TYPE", "DOMAIN", "SWEEP", "WHEN", "SETS"]
    params = json.loads(run_cli("space", src, "--json").stdout)
    assert [p["name"] for p in params][:3] == ["learning_rate", "d1_d2", "useNovoGrad_useAdam"]
    assert {p["name"]: (p["type"], p["domain"], p["sweep"], p.get("choices")) for p in params} == {
        "learning_rate": ("float", "lr", "tag(log, interval(0.0001, 0.01))", None),  # two decades: log scale
        "d1_d2": ("enum", "transform", "choice(true-false, false-true)",
                  {"true-false": [True, False], "false-true": [False, True]}),
        "useNovoGrad_useAdam": ("enum", "net", "choice(NovoGrad, Adam)",  # labelled by what each enables
                                {"NovoGrad": [False, True], "Adam": [True, False]}),
        "ReducePoly_poly_power": ("enum", "lr", "choice(0.9, 0.99)", {"0.9": [0.9], "0.99": [0.99]}),
        "SegResnet_init_filters": ("enum", "net", "choice(4, 8)", {"4": [4], "8": [8]}),
        "prob": ("float", "transform", "interval(0.0, 1.0)", None),
        "flipOff": ("enum", "transform", "choice(true, false)", {"true": [True], "false": [False]}),
        "AddGaussianNoise_disabled": ("enum", "transform", "choice(true, false)",  # named by what it sets
                                      {"true": [True], "false": [False]}),
    }
    prob = params[[p["name"] for p in params].index("prob")]
    assert prob["targets"] == [0.0, 1.0] and prob["when"] == {"param": "flipOff", "in": ["false"]}
    assert prob["sources"] == ["train.pre_transforms[4].args.probability", "train.pre_transforms[5].args.probability"]


def test_resolve_yaml_json_and_converted_yaml_agree(tmp_path):
    src = ROOT / "examples" / "demo.json"
    as_json = json.loads(run_cli("resolve", src, "useNovoGrad_useAdam=Adam", "prob=0.5", "--json").stdout)
    as_yaml = yaml.safe_load(run_cli("resolve", src, "useNovoGrad_useAdam=Adam", "prob=0.5").stdout)
    via_conf = json.loads(run_cli("resolve", ROOT / "examples" / "conf" / "demo.yaml", "useNovoGrad_useAdam=Adam",
                                  "prob=0.5", "--json").stdout)
    assert as_json == as_yaml == via_conf
    assert as_json["train"]["optimizer"][1]["disabled"] is False
    assert as_json["train"]["pre_transforms"][5]["args"]["probability"] == 0.5


def test_conf_is_up_to_date_with_examples(tmp_path):
    """examples/conf/ holds the conversions of examples/*.json; regenerate with scripts/regen_conf.sh."""
    for src in sorted((ROOT / "examples").glob("*.json")):
        if src.name == "environment.json":
            continue
        proc = run_cli("convert", src, "-o", tmp_path)
        assert proc.returncode == 0, proc.stderr
        fresh = (tmp_path / (src.stem + ".yaml")).read_text().replace("../../../", "")
        shipped = (ROOT / "examples" / "conf" / (src.stem + ".yaml"))
        assert shipped.exists(), f"examples/conf/{src.stem}.yaml is missing: run scripts/regen_conf.sh"
        assert _body(shipped.read_text()) == _body(fresh), \
            f"examples/conf/{src.stem}.yaml is stale: run scripts/regen_conf.sh"


def _body(text: str) -> str:
    """The YAML without the comment lines that name the source path (relative to where it was written)."""
    doc = yaml.safe_load(text)
    doc["clara_hydra"].pop("source", None)
    return json.dumps(doc, sort_keys=True)


@pytest.mark.parametrize("umask, folder, file", [
    pytest.param(0o022, 0o755, 0o644, id="022"),
    pytest.param(0o002, 0o775, 0o664, id="002-a-teams-shared-folder"),
    pytest.param(0o077, 0o700, 0o600, id="077"),
])
def test_what_convert_writes_follows_the_users_umask(tmp_path, umask, folder, file):
    import os
    import stat
    out = tmp_path / "shared" / "conf"
    proc = subprocess.run([*clara_cli(), "convert", str(ROOT / "examples" / "demo.json"),
                           "-o", str(out)], capture_output=True, text=True, umask=umask)
    assert proc.returncode == 0, proc.stderr
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in (out, out / "demo.yaml")}
    assert modes == {"conf": folder, "demo.yaml": file}
