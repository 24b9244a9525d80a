"""Every training config of the Clara corpus (../shared/corpus/clara, or the trimmed copy in
tests/data/corpus/clara: see conftest) converts, composes and resolves as it is, and every sweep
expression we emit is one that hydra-optuna-sweeper turns into the intended Optuna distribution."""

from __future__ import annotations

import json
import random
import re
from functools import cache
from pathlib import Path

import pytest
from conftest import (
    CORPUS,
    CORPUS_IS_TRIMMED,
    FULL_CORPUS,
    ROOT,
    TRIMMED_CORPUS,
    cases,
    corpus_or_skip,
    run_cli,
    space,
    training_configs,
)

REFUSED = {"test_json_extracted.json"}  # the NVFlare scanner fixture: see test_errors
CONFIGS = [p for p in training_configs() if p.name not in REFUSED]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.json") if p.name != "environment.json")


def _id(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


#: Corpus configs that tests name but the trimmed copy leaves out, and why. Where only the trimmed
#: copy is there, the tests that name them skip them (test_train) or only list them to exclude them.
NOT_IN_TRIMMED = {
    "taiwancvai-heaortanet/config_train.json": "no licence: not redistributed (BYOC refusal in test_train)",
    "warrentseng-colonoscopy/config_train.json": "no licence: not redistributed (named to be excluded)",
    "cte-pt-digitalpathology/config_train_smartcache.json": "named to be excluded from training",
    "fzbuzz-spleen/config_train.json": "no licence: not redistributed (its v3 config_validation.json runs where "
                                       "the full corpus is)",
}


def test_corpus_is_there():
    assert corpus_or_skip().is_dir()
    assert len(CONFIGS) >= (18 if CORPUS_IS_TRIMMED else 25), CORPUS


def _sources_rows() -> set[str]:
    text = (TRIMMED_CORPUS / "SOURCES.md").read_text()
    return set(re.findall(r"^\| ([a-z0-9-]+/[A-Za-z0-9_.-]+\.json) \|", text, flags=re.M))


def test_trimmed_corpus_matches_its_sources():
    """Each file of the trimmed copy has its row in its SOURCES.md, and is the full corpus's file."""
    files = {p.relative_to(TRIMMED_CORPUS).as_posix() for p in TRIMMED_CORPUS.rglob("*") if p.is_file()}
    assert "SOURCES.md" in files
    configs = files - {"SOURCES.md"}
    assert configs == _sources_rows()
    assert sum((TRIMMED_CORPUS / f).stat().st_size for f in files) < 300_000, "keep the trimmed copy small"
    for rel in sorted(configs):
        json.loads((TRIMMED_CORPUS / rel).read_text())
        if FULL_CORPUS.is_dir():
            assert (TRIMMED_CORPUS / rel).read_bytes() == (FULL_CORPUS / rel).read_bytes(), rel


def _named_corpus_configs() -> set[str]:
    """Corpus configs the test files name by their path ("folder/file.json" or "folder" / "file.json")."""
    out = set()
    for test in (ROOT / "tests").glob("*.py"):
        text = test.read_text()
        pairs = re.findall(r"[\"']([a-z0-9][a-z0-9-]*)/([A-Za-z0-9_.-]+\.json)[\"']", text)
        pairs += re.findall(r"[\"']([a-z0-9][a-z0-9-]*)[\"']\s*/\s*[\"']([A-Za-z0-9_.-]+\.json)[\"']", text)
        out |= {f"{folder}/{name}" for folder, name in pairs
                if "-" in folder or (TRIMMED_CORPUS / folder).is_dir() or (FULL_CORPUS / folder).is_dir()}
    return out


def test_every_corpus_config_a_test_names_is_in_the_trimmed_copy():
    named = _named_corpus_configs()
    assert "nvflare-jsonscanner-test/test_json_extracted.json" in named  # the scan finds both forms
    assert "cte-pt41-automl/trn_autoML_Enum.json" in named
    missing = sorted(rel for rel in named - set(NOT_IN_TRIMMED) if not (TRIMMED_CORPUS / rel).is_file())
    assert not missing, f"copy these from {FULL_CORPUS} into {TRIMMED_CORPUS} (and SOURCES.md): {missing}"
    if FULL_CORPUS.is_dir():
        assert all((FULL_CORPUS / rel).is_file() for rel in named), sorted(named)


def _convert(path: Path):
    from clara_hydra.convert import convert
    from clara_hydra.reader import read
    return convert(read(str(path)))


def _random_overrides(conv, rng: random.Random) -> list[str]:
    out = []
    for p in conv.params:
        e = p.entry
        if p.type == "float":
            out.append(f"{p.name}={rng.uniform(e.low, e.high)!r}")
        elif p.type == "int":
            out.append(f"{p.name}={rng.randint(e.low, e.high)}")
        else:
            out.append(f"{p.name}={rng.choice(list(p.choices))}")
    return out


@pytest.mark.parametrize("path", CONFIGS, ids=[_id(p) for p in CONFIGS])
def test_corpus_config_converts_composes_resolves(tmp_path, path):
    from clara_hydra.paths import get
    from clara_hydra.render import write
    from clara_hydra.resolve import compose, effective_from_cfg

    conv = _convert(path)
    written = write(conv, str(tmp_path))
    assert Path(written).read_text().startswith("# Converted by clara-hydra")
    rng = random.Random(path.name)
    raw = json.loads(path.read_text())
    for overrides in ([], _random_overrides(conv, rng), _random_overrides(conv, rng)):
        cfg = compose(str(tmp_path), Path(written).stem, overrides)
        try:
            tree = effective_from_cfg(cfg, enabled_only=False)
        except Exception as exc:  # a random combination may break an alternatives slot: it must say so
            from clara_hydra.errors import AlternativesError
            assert isinstance(exc, AlternativesError), exc
            continue
        assert "search" not in tree and "lr_search" not in tree
        for p in conv.params:  # every source of a param holds the value that was asked for
            given = dict(o.split("=", 1) for o in overrides).get(p.name)
            if given is None:
                continue
            if p.mode == "label":  # the label stands for its option as the Clara JSON writes it
                want = get(raw, p.entry.loc)["targets"][list(p.choices).index(given)]
                # for aliases the source list interleaves applies; compare per arg target
                for arg, value in zip(p.entry.args, want):
                    got = get(tree, arg.target)
                    assert got == value or (arg.kind == "attr" and got == bool(value))
            else:
                for src in p.sources:
                    got = get(tree, src)
                    if isinstance(got, bool):
                        continue  # @disabled coerced to bool
                    assert str(got) == given or float(got) == pytest.approx(float(given))
        effective_from_cfg(cfg, enabled_only=True) if not conv.cfg.alternatives else None


#: The configs with a search space (the others export as they are written, apart from overrides),
#: one per era and construct: apply, @disabled and alternatives, aliases, refs, lr_search, {NAME}s.
SEARCHED = [p for p in CONFIGS + EXAMPLES if re.search(r'"(search|lr_search)"\s*:', p.read_text())
            and (p.parent.name in ("examples", "nvflare-jsonscanner-test") or p.stem in (
                "trn_autoML_Loss_Optimizer", "trn_autoML_LR_LP", "trn_autoML_Enum", "trn_autoML_Transform"))]


@pytest.mark.parametrize("path", SEARCHED, ids=[_id(p) for p in SEARCHED])
def test_a_run_exported_as_a_config_resolves_as_the_run_did(tmp_path, path):
    """`clara-hydra export` writes the user's JSON with a run's values in: no search or apply
    blocks, "{NAME}" references and refs as written; converted and resolved again (no overrides)
    it gives the run's effective config exactly."""
    import shutil

    from clara_hydra.export import written
    from clara_hydra.paths import get, nodes
    from clara_hydra.render import write
    from clara_hydra.resolve import compose, effective_from_cfg

    conv = _convert(path)
    yaml = Path(write(conv, str(tmp_path / "conf")))
    rng = random.Random(path.name + "export")
    tree = None
    for _ in range(5):  # a random combination may leave an alternatives slot without its one member
        overrides = _random_overrides(conv, rng)
        try:
            tree = effective_from_cfg(compose(str(tmp_path / "conf"), yaml.stem, overrides), enabled_only=False)
            break
        except Exception:  # noqa: BLE001 - the AlternativesError of test_corpus_config_converts_composes_resolves
            continue
    assert tree is not None
    raw = json.loads(path.read_text())
    env_file = path.parent / "environment.json"
    env = json.loads(env_file.read_text()) if env_file.is_file() else {}
    out = written(raw, tree, {k for k, v in raw.items() if not isinstance(v, (dict, list))} | set(env))
    assert not [loc for loc, _ in nodes(out) if set(loc) & {"search", "apply", "lr_search"}]
    text = json.dumps(out)
    assert text.count('"ref":') == json.dumps(raw).count('"ref":')
    names = [(loc, v) for loc, v in nodes(raw) if isinstance(v, str) and re.search(r"\{(\w+)\}", v)
             and not set(loc) & {"search", "apply", "lr_search"}]
    assert all(get(out, loc) == v for loc, v in names), [(loc, v, get(out, loc)) for loc, v in names]
    (tmp_path / "mmar").mkdir()
    (tmp_path / "mmar" / "config_train.json").write_text(text)
    if env:
        shutil.copy(env_file, tmp_path / "mmar" / "environment.json")
    again = write(_convert(tmp_path / "mmar" / "config_train.json"), str(tmp_path / "conf2"))
    # (the names a top-level enum search defines, e.g. mySearchLoss1, go with its search block)
    assert effective_from_cfg(compose(str(tmp_path / "conf2"), Path(again).stem, []), enabled_only=False) \
        == {k: v for k, v in tree.items() if k in raw}


def _all_params():
    out = []
    for path in CONFIGS + EXAMPLES:
        try:
            conv = _convert(path)
        except Exception:
            continue
        out += [pytest.param(path, p, id=f"{_id(path)}:{p.name}") for p in conv.params]
    return out


@pytest.mark.parametrize("path,param", _all_params())
def test_sweep_expression_becomes_intended_optuna_distribution(path, param):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from clara_hydra.paths import get
    from clara_hydra.sweep.upstream import distribution as create_optuna_distribution_from_override

    override = OverridesParser.create().parse_override(f"{param.name}={param.sweep}")
    assert override.key_or_group == param.name
    dist = create_optuna_distribution_from_override(override)
    e = param.entry
    if param.type == "float":
        assert isinstance(dist, FloatDistribution)
        assert (dist.low, dist.high) == (e.low, e.high)
        assert dist.log == param.sweep.startswith("tag(log, ")  # which ones: FLOAT_CASES below
    elif param.type == "int":
        assert isinstance(dist, IntDistribution) and (dist.low, dist.high) == (e.low, e.high)
    else:
        assert isinstance(dist, CategoricalDistribution)
        # the sweeper emits f"{name}={choice}": each parses back to one option, in the order written
        parser = OverridesParser.create()
        values = [parser.parse_override(f"{param.name}={choice}").value() for choice in dist.choices]
        targets = get(json.loads(path.read_text()), e.loc)["targets"]
        if param.mode == "label":
            assert values == list(param.choices) and len(values) == len(targets)
        else:  # the option's value itself (of its JSON type: 1 is not 1.0 nor true), and the
            # key a user writes for it (`space` lists them) is that value on the command line
            typed = [(type(v), v) for v in values]
            assert typed == list({(type(t[0]), t[0]): None for t in targets})
            keys = [parser.parse_override(f"{param.name}={key}").value() for key in param.choices]
            assert [(type(v), v) for v in keys] == typed
            assert list(param.choices.values()) == [[v] for v in values]


def test_corpus_examples_use_readable_labels():
    path = corpus_or_skip() / "cte-pt41-automl" / "trn_autoML_Loss_Optimizer.json"
    conv = _convert(path)
    sweeps = sorted(p.sweep for p in conv.params)
    assert sweeps == ["choice(FocalLoss, DiceLoss)", "choice(Novograd, Adam)"]  # in the order written


# ----------------------------------------------------------------- log scale, from the Clara entry

def _float_entries(data: dict) -> list[tuple[str, str | None, float, float]]:
    """(the place it sets, domain, low, high) for each float search entry of a raw Clara config,
    read from its JSON: lr_search, top-level search (first-level params) and component search."""
    out = []
    if isinstance(data.get("lr_search"), list):
        out.append(("learning_rate", "lr", *data["lr_search"]))

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            for e in node.get("search") if isinstance(node.get("search"), list) else []:
                if e.get("type") == "float":
                    for arg in e["args"]:
                        name = arg.split("#", 1)[0]
                        out.append((f"{where}.args.{name}" if where else name, e.get("domain"), *e["targets"]))
            for k, v in node.items():  # keys starting with "_" are commented out in Clara
                if k != "search" and not k.startswith("_"):
                    walk(v, f"{where}.{k}" if where else k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")
    walk(data, "")
    return out


def _lr_entry(targets, domain="lr") -> dict:
    """A small Clara config whose one search entry is a float ``learning_rate``."""
    return {"epochs": 3, "learning_rate": 0.001, "train": {"pre_transforms": []},
            "search": [{"domain": domain, "type": "float", "args": ["learning_rate"], "targets": targets}]}


#: Every float search entry of the corpus and the examples (bar the full corpus's files that the
#: trimmed copy leaves out), and configs written here for the edges: (id, config (a corpus or
#: examples/ file, or a Clara config), the place it sets, low, high, the sweep expression written
#: by hand). Domain "lr" with 0 < low and high/low >= 10 is a log scale; anything else is linear.
FLOAT_CASES = cases([
    ("pt41-LR_LP-learning_rate-one-decade-is-log", "cte-pt41-automl/trn_autoML_LR_LP.json", "learning_rate",
     0.0001, 0.001, "tag(log, interval(0.0001, 0.001))"),
    ("pt41-LR_LP-gamma-lr-under-a-decade", "cte-pt41-automl/trn_autoML_LR_LP.json",
     "train.lr_scheduler.args.gamma", 0.1, 0.2, "interval(0.1, 0.2)"),
    ("pt41-LR_LP-prob-transform", "cte-pt41-automl/trn_autoML_LR_LP.json", "train.pre_transforms[6].args.prob",
     0, 1, "interval(0.0, 1.0)"),
    ("pt41-TransformProb-prob", "cte-pt41-automl/trn_autoML_TransformProb.json",
     "train.pre_transforms[7].args.prob", 0.0, 0.8, "interval(0.0, 0.8)"),
    ("tf31-LR_LP-learning_rate", "cte-tf31-automl/trn_autoML_LR_LP.json", "learning_rate",
     0.0001, 0.001, "tag(log, interval(0.0001, 0.001))"),
    ("tf31-LR_LP-poly_power-lr-under-a-decade", "cte-tf31-automl/trn_autoML_LR_LP.json",
     "train.lr_policy.args.poly_power", 0.9, 0.99, "interval(0.9, 0.99)"),
    ("tf31-LR_LP-probability", "cte-tf31-automl/trn_autoML_LR_LP.json", "train.pre_transforms[8].args.probability",
     0.0, 0.2, "interval(0.0, 0.2)"),
    ("demo-learning_rate-two-decades", "examples/demo.json", "learning_rate",
     0.0001, 0.01, "tag(log, interval(0.0001, 0.01))"),
    ("demo-probability", "examples/demo.json", "train.pre_transforms[4].args.probability",
     0.0, 1.0, "interval(0.0, 1.0)"),
    ("demo_v41-learning_rate", "examples/demo_v41.json", "learning_rate",
     0.0001, 0.01, "tag(log, interval(0.0001, 0.01))"),
    ("demo_v41-prob", "examples/demo_v41.json", "train.pre_transforms[4].args.prob", 0.0, 1.0, "interval(0.0, 1.0)"),
    ("lr-from-zero-is-linear", _lr_entry([0.0, 0.01]), "learning_rate", 0.0, 0.01, "interval(0.0, 0.01)"),
    ("lr-just-under-a-decade", _lr_entry([0.001, 0.0099]), "learning_rate", 0.001, 0.0099, "interval(0.001, 0.0099)"),
    ("lr-five-decades", _lr_entry([1e-05, 1.0]), "learning_rate", 1e-05, 1.0, "tag(log, interval(1e-05, 1.0))"),
    ("not-lr-two-decades-is-linear", _lr_entry([0.0001, 0.01], domain="transform"), "learning_rate",
     0.0001, 0.01, "interval(0.0001, 0.01)"),
])


@cache
def _space_cli(path: Path) -> list[dict]:
    proc = run_cli("space", path, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _config_path(config, tmp_path) -> Path:
    if isinstance(config, dict):
        path = tmp_path / "config_train.json"
        path.write_text(json.dumps(config))
        return path
    return ROOT / config if config.startswith("examples/") else corpus_or_skip() / config


def test_float_cases_cover_every_float_entry():
    """Each float search entry (read from the Clara JSON) of the corpus and examples has its row."""
    rows = {(case.values[1], case.values[2], case.values[3], case.values[4]) for case in FLOAT_CASES
            if isinstance(case.values[1], str)}
    for path in CONFIGS + EXAMPLES:
        example = path.parent == ROOT / "examples"
        rel = (path.relative_to(ROOT) if example else path.relative_to(CORPUS)).as_posix()
        if not example and not (TRIMMED_CORPUS / rel).is_file():
            continue  # only in the full corpus: a row naming it would make the trimmed copy incomplete
        for where, _domain, low, high in _float_entries(json.loads(path.read_text())):
            assert (rel, where, low, high) in rows, (rel, where, low, high)


@pytest.mark.parametrize("name,config,where,low,high,sweep", FLOAT_CASES)
def test_lr_range_of_a_decade_or_more_is_log_scale(tmp_path, name, config, where, low, high, sweep):
    """A search entry of domain "lr" with 0 < low and high/low >= 10 sweeps on a log scale,
    `tag(log, interval(low, high))`; every other float entry is a plain `interval(low, high)`.
    `space --json` and space.build must both say so."""
    path = _config_path(config, tmp_path)
    for how, params in (("space --json", _space_cli(path)), ("space.build", space(path))):
        [param] = [p for p in params if where in p["sources"]]
        assert param["type"] == "float" and param["targets"] == [low, high], (how, param)
        assert param["sweep"] == sweep, (how, where, param["domain"])


VALIDATION = sorted(CORPUS.rglob("config_validation*.json"))


@pytest.mark.parametrize("path", VALIDATION, ids=[_id(p) for p in VALIDATION])
def test_a_validation_config_is_refused_as_a_training_config_and_says_what_to_run(tmp_path, path):
    """convert took config_validation.json (top-level handlers) for a config_automl.json."""
    proc = run_cli("convert", path, "-o", tmp_path / "conf")
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "this is a Clara validation or inference config" in lines[0] and "clara-hydra validate" in lines[0]
    assert not (tmp_path / "conf").exists()
