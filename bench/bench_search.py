"""Search efficiency (issues 4 and 9): a sampler with a pruner against random search (what Clara's
random controller did) at the same budget of training epochs, on one fixed synthetic training
task (examples/conf/demo_v41.yaml on synthetic data, validation every epoch), several seeds.
Reports the best metric each reaches and the epochs the search needs to reach random search's
best of the whole budget (target: at most half the budget).

    python bench/bench_search.py [--seeds 10] [--budget 16 24 32 48] [--epochs 4] [--variants ...]

Each run is recorded epoch by epoch, so one run at the largest budget answers every smaller one
(the demo's learning-rate schedule does not depend on the number of epochs); a variant whose
settings depend on the budget runs once per budget. ``--cache FILE`` keeps the runs between calls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

#: the pruners by their settings (make_pruner's "median" is checked against MEDIAN at start)
MEDIAN = {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 1, "n_warmup_steps": 0}
MEDIAN_2 = {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 2, "n_warmup_steps": 0}  # until issue 9
SHA = {"_target_": "optuna.pruners.SuccessiveHalvingPruner"}  # min_resource auto (1 here), reduction factor 4
SHA_3 = {"_target_": "optuna.pruners.SuccessiveHalvingPruner", "min_resource": 1, "reduction_factor": 3}


def _tpe(**kw: Any) -> dict:
    return {"name": "tpe", **kw}


# name -> (the converted config's n_trials) -> settings. "defaults" is what a converted config gets:
# TPE seeded, with startup_trials=auto (n_trials / 5, 2 to 10), the "median" pruner, and
# conditional params sampled only where they matter.
VARIANTS: dict[str, Callable[[int], dict]] = {
    "defaults": lambda n: {"sampler": _tpe(n_startup_trials=_startup(n)), "pruner": MEDIAN, "conditions": True},
    "previous defaults (TPE 10 start-up, median from trial 2)": lambda n: {
        "sampler": _tpe(), "pruner": MEDIAN_2, "conditions": True},
    "TPE 3 start-up, median from trial 2": lambda n: {"sampler": _tpe(n_startup_trials=3), "pruner": MEDIAN_2,
                                                      "conditions": True},
    "TPE 10 start-up, median from trial 1": lambda n: {"sampler": _tpe(n_startup_trials=10), "pruner": MEDIAN,
                                                       "conditions": True},
    "TPE 4 start-up, SHA rf 3": lambda n: {"sampler": _tpe(n_startup_trials=4), "pruner": SHA_3, "conditions": True},
    "TPE 10 start-up, SHA": lambda n: {"sampler": _tpe(n_startup_trials=10), "pruner": SHA, "conditions": True},
    "TPE 5 start-up, SHA": lambda n: {"sampler": _tpe(n_startup_trials=5), "pruner": SHA, "conditions": True},
    "TPE 10 start-up, hyperband": lambda n: {"sampler": _tpe(n_startup_trials=10),
                                             "pruner": {"_target_": "optuna.pruners.HyperbandPruner"},
                                             "conditions": True},
    "TPE multivariate 10 start-up, SHA": lambda n: {
        "sampler": _tpe(n_startup_trials=10, multivariate=True, group=True), "pruner": SHA, "conditions": True},
    "GP 10 start-up, median from trial 2": lambda n: {"sampler": {"name": "gp", "n_startup_trials": 10},
                                                      "pruner": MEDIAN_2, "conditions": True},
    # the config as written is the first trial (then as the previous defaults)
    "written first, TPE 10 start-up, median from trial 2": lambda n: {
        "sampler": _tpe(n_startup_trials=10), "pruner": MEDIAN_2, "conditions": True, "written_first": True},
}
RANDOM = {"sampler": {"name": "random"}, "pruner": "none", "conditions": False}


def _startup(n_trials: int) -> int:
    from clara_hydra.sweep.options import startup_trials
    return startup_trials(n_trials)


def _sampler(spec: dict, seed: int):
    import optuna
    kw = {k: v for k, v in spec.items() if k != "name"}
    if spec["name"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec["name"] == "gp":
        return optuna.samplers.GPSampler(seed=seed, **kw)
    if spec["name"] == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **kw)
    raise ValueError(spec)


def run(settings: dict, seed: int, budget: int, epochs: int, env: dict, dists: dict, conds: dict,
        tmp: str, written: dict) -> list[float]:
    """The best value so far after each epoch spent, for ``budget`` epochs."""
    import optuna

    from clara_hydra.effective import enabled_only
    from clara_hydra.resolve import compose, effective_from_cfg
    from clara_hydra.space import active
    from clara_hydra.sweep import upstream
    from clara_hydra.sweep.options import make_pruner
    from clara_hydra.sweep.protocol import remove_resume_point
    from clara_hydra.train.run import train

    study = optuna.create_study(direction="maximize", sampler=_sampler(settings["sampler"], seed),
                                pruner=make_pruner(settings["pruner"]))
    conds = conds if settings["conditions"] else {}
    if settings.get("written_first"):
        study.enqueue_trial(written)
    curve: list[float] = []
    best = float("-inf")
    while len(curve) < budget:
        trial = study.ask()
        names = active(list(dists), conds, {}, lambda n: upstream.suggest(trial, n, dists[n]))  # noqa: B023
        for name in names:
            upstream.suggest(trial, name, dists[name])
        overrides = [f"{k}={v}" for k, v in trial.params.items()] + [
            f"epochs={min(epochs, budget - len(curve))}", "num_interval_per_valid=1",
            f"DATASET_JSON={env['DATASET_JSON']}", f"DATA_ROOT={env['DATA_ROOT']}", f"MMAR_CKPT_DIR={tmp}/m"]
        tree = enabled_only(effective_from_cfg(compose(os.path.join(ROOT, "examples", "conf"), "demo_v41", overrides)))
        try:
            study.tell(trial, train(tree, run_dir=tmp, progress=False, trial=trial))
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        finally:
            remove_resume_point(tmp)  # as a sweep's job does once its outcome is told: the next trial starts afresh
        frozen = study.trials[-1]
        for step in sorted(frozen.intermediate_values):
            best = max(best, frozen.intermediate_values[step])
            curve.append(best)
        if not frozen.intermediate_values:  # (a run that reports nothing still spends its epochs)
            curve.extend([best] * min(epochs, budget - len(curve)))
    return curve[:budget]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--budget", type=int, nargs="+", default=[16, 24, 32, 48])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--variants", nargs="+", default=["defaults"], choices=list(VARIANTS))
    ap.add_argument("--tpe-seed-offset", type=int, default=100,
                    help="the search's seed is random search's plus this (0: both start with the same random trials, "
                         "which flatters the search: it replays random search's first trials, pruned cheaper)")
    ap.add_argument("--cache", help="a JSON file that keeps the runs between calls")
    a = ap.parse_args()
    import logging

    import optuna
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from clara_hydra.space import Condition
    from clara_hydra.sweep.upstream import distribution
    from clara_hydra.synth import write
    logging.disable(logging.CRITICAL)  # (ignite logs each pruned run as an error)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    os.environ["CLARA_HYDRA_SHARED_CACHE"] = "1"
    tmp = tempfile.mkdtemp(prefix="clara-bench-search-")
    env = write(os.path.join(tmp, "data"), n_train=6, n_val=2, shape=(64, 64, 48))
    doc = yaml.safe_load(open(os.path.join(ROOT, "examples", "conf", "demo_v41.yaml")))
    parser = OverridesParser.create()
    dists = {k: distribution(parser.parse_override(f"{k}={v}")) for k, v in doc["hydra"]["sweeper"]["params"].items()}
    conds = {k: Condition(m["when"]["param"], tuple(m["when"]["in"]))
             for k, m in doc["clara_hydra"]["params"].items() if m.get("when")}
    from omegaconf import OmegaConf

    from clara_hydra.resolve import compose
    from clara_hydra.sweep.options import make_pruner
    median = make_pruner("median")  # the converted configs' pruner, as MEDIAN spells it
    assert (type(median).__name__, median._n_startup_trials, median._n_warmup_steps) == (
        "MedianPruner", MEDIAN["n_startup_trials"], MEDIAN["n_warmup_steps"]), "update MEDIAN"
    n_trials = int(doc["hydra"]["sweeper"]["n_trials"])
    cfg = compose(os.path.join(ROOT, "examples", "conf"), "demo_v41", [])
    written = {k: OmegaConf.select(cfg, k) for k in dists if OmegaConf.select(cfg, k) is not None}
    print(f"search space: {len(dists)} params, conditional: "
          + ", ".join(f"{k} {c.text()}" for k, c in conds.items())
          + f"; the converted config's n_trials: {n_trials} (defaults: {_startup(n_trials)} TPE start-up trials)")
    cache: dict[str, list[float]] = {}
    if a.cache and os.path.exists(a.cache):
        cache = json.load(open(a.cache))
    top = max(a.budget)

    def curve(settings: dict, seed: int) -> list[float]:
        """One run at the largest budget, read epoch by epoch for the smaller ones."""
        key = json.dumps([settings, seed, a.epochs], sort_keys=True)
        have = cache.get(key)
        if have is None or len(have) < top:
            have = run(settings, seed, top, a.epochs, env, dists, conds, tmp, written)
            cache[key] = have
            if a.cache:
                json.dump(cache, open(a.cache, "w"))
        return have

    seeds = range(a.first_seed, a.first_seed + a.seeds)
    randoms = {seed: curve(RANDOM, seed) for seed in seeds}
    searches = {v: {seed: curve(VARIANTS[v](n_trials), seed + a.tpe_seed_offset) for seed in seeds}
                for v in a.variants}

    def reach(search: list[float], target: float, budget: int) -> int | None:
        return next((i + 1 for i, best in enumerate(search[:budget]) if best >= target), None)

    def median_reach(reached: list, budget: int) -> str:
        m = statistics.median(r if r is not None else 2 * budget for r in reached)
        return f"{m:g}" + (" **ok**" if m <= budget / 2 else "")

    print(f"\n{a.seeds} seeds ({a.first_seed}..{a.first_seed + a.seeds - 1}), trials of up to {a.epochs} epochs, "
          f"search seed = random search's + {a.tpe_seed_offset}. Epochs to reach random search's best of the whole "
          "budget (not reached counts as 2x the budget); target: at most half the budget. 'paired': search seed s "
          "against random search seed s; 'all pairs': every search run against every random search run.")
    print("| budget | variant | median best (random's) | paired, per seed | paired median | all pairs: median | "
          "all pairs: within half | seeds where it misses half | paired: best >= random's best |")
    print("|---|---|---|---|---|---|---|---|---|")
    for budget in a.budget:
        rnd = statistics.median(randoms[s][budget - 1] for s in seeds)
        for variant, runs in searches.items():
            paired = [reach(runs[s], randoms[s][budget - 1], budget) for s in seeds]
            pairs = [reach(runs[s], randoms[r][budget - 1], budget) for s in seeds for r in seeds]
            half = sum(1 for r in pairs if r is not None and r <= budget / 2)
            misses = [str(s) for s, r in zip(seeds, paired) if r is None or r > budget / 2]
            worse = [str(s) for s in seeds if runs[s][budget - 1] < randoms[s][budget - 1]]
            print(f"| {budget} | {variant} | {statistics.median(runs[s][budget - 1] for s in seeds):.4f} "
                  f"({rnd:.4f}) | " + ", ".join(str(r) if r is not None else "-" for r in paired)
                  + f" | {median_reach(paired, budget)} | {median_reach(pairs, budget)} | "
                  f"{half}/{len(pairs)} | {', '.join(misses) or 'none'} | {len(seeds) - len(worse)}/{len(seeds)}"
                  + (f" (not on {', '.join(worse)})" if worse else "") + " |", flush=True)


if __name__ == "__main__":
    main()
