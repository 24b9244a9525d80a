"""Every training config of ../shared/corpus/clara converts, composes and resolves as it is,
and every sweep expression we emit is one that hydra-optuna-sweeper turns into the intended
Optuna distribution."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from conftest import ROOT, corpus_or_skip, training_configs

REFUSED = {"test_json_extracted.json"}  # the NVFlare scanner fixture: see test_errors
CONFIGS = [p for p in training_configs() if p.name not in REFUSED]
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.json") if p.name != "environment.json")


def _id(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


def test_corpus_is_there_or_skipped():
    corpus_or_skip()
    assert len(CONFIGS) >= 25


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
    from clara_hydra.convert import write
    from clara_hydra.paths import get
    from clara_hydra.resolve import compose, effective_from_cfg

    conv = _convert(path)
    written = write(conv, str(tmp_path))
    assert Path(written).read_text().startswith("# Converted by clara-hydra")
    rng = random.Random(path.name)
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
            if p.mode == "label":
                want = p.choices[given]
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


def _all_params():
    out = []
    for path in CONFIGS + EXAMPLES:
        try:
            conv = _convert(path)
        except Exception:
            continue
        out += [pytest.param(p, id=f"{_id(path)}:{p.name}") for p in conv.params]
    return out


@pytest.mark.parametrize("param", _all_params())
def test_sweep_expression_becomes_intended_optuna_distribution(param):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    override = OverridesParser.create().parse_override(f"{param.name}={param.sweep}")
    assert override.key_or_group == param.name
    dist = create_optuna_distribution_from_override(override)
    e = param.entry
    if param.type == "float":
        assert isinstance(dist, FloatDistribution)
        assert (dist.low, dist.high) == (e.low, e.high)
        assert dist.log == param.sweep.startswith("tag(log")
    elif param.type == "int":
        assert isinstance(dist, IntDistribution) and (dist.low, dist.high) == (e.low, e.high)
    else:
        assert isinstance(dist, CategoricalDistribution)
        # the sweeper emits f"{name}={choice}": each must parse back to a label we know
        parser = OverridesParser.create()
        for choice in dist.choices:
            value = parser.parse_override(f"{param.name}={choice}").value()
            key = value if param.mode == "label" else next(k for k, v in param.choices.items() if v == [value])
            assert key in param.choices


def test_corpus_examples_use_readable_labels():
    path = corpus_or_skip() / "cte-pt41-automl" / "trn_autoML_Loss_Optimizer.json"
    conv = _convert(path)
    sweeps = sorted(p.sweep for p in conv.params)
    assert sweeps == ["choice(FocalLoss, DiceLoss)", "choice(Novograd, Adam)"]  # in the order written
