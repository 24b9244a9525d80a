"""Search efficiency (issue 4): TPE with median pruning against random search (what Clara's
random controller did) at the same budget of training epochs, on one fixed synthetic training
task (examples/conf/demo_v41.yaml on synthetic data, validation every epoch), several seeds.
Reports the best metric each reaches and the epochs TPE+pruning needs to reach random search's best.

    python bench/bench_search.py [--seeds 5] [--budget 24 32] [--epochs 4] [--variants ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


VARIANTS = {
    # what a converted config gets: its sampler block (TPE as hydra-optuna-sweeper configures it,
    # seeded), the "median" pruner, and conditional params sampled only where they matter
    "defaults": {"conditions": True},
    # the same without conditions (what the sweeper did before)
    "stock TPE, no conditions": {"conditions": False, "tpe": {"n_startup_trials": 10}},
    # 3 start-up trials (the setting of this benchmark's first runs)
    "TPE, 3 start-up trials": {"conditions": False, "tpe": {"n_startup_trials": 3}},
    "TPE, 3 start-up trials, conditions": {"conditions": True, "tpe": {"n_startup_trials": 3}},
}


def run(method: str, seed: int, budget: int, epochs: int, env: dict, dists: dict, conds: dict, tpe: dict,
        tmp: str) -> list[tuple[int, float]]:
    """[(epochs spent so far, best so far)] after each trial."""
    import optuna

    from clara_hydra.effective import enabled_only
    from clara_hydra.resolve import compose, effective_from_cfg
    from clara_hydra.space import active
    from clara_hydra.sweep import upstream
    from clara_hydra.sweep.options import make_pruner
    from clara_hydra.train.run import train

    if method == "random":
        sampler, pruner = optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner()
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, **tpe)
        pruner = make_pruner("median")
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    spent, best, curve = 0, float("-inf"), []
    while spent < budget:
        trial = study.ask()
        names = active(list(dists), conds, {}, lambda n: upstream.suggest(trial, n, dists[n]))  # noqa: B023
        for name in names:
            upstream.suggest(trial, name, dists[name])
        overrides = [f"{k}={v}" for k, v in trial.params.items()] + [
            f"epochs={min(epochs, budget - spent)}", "num_interval_per_valid=1",
            f"DATASET_JSON={env['DATASET_JSON']}", f"DATA_ROOT={env['DATA_ROOT']}", f"MMAR_CKPT_DIR={tmp}/m"]
        tree = enabled_only(effective_from_cfg(compose(os.path.join(ROOT, "examples", "conf"), "demo_v41", overrides)))
        try:
            value = train(tree, run_dir=tmp, progress=False, trial=trial)
            study.tell(trial, value)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        frozen = study.trials[-1]
        spent += len(frozen.intermediate_values)
        finished = [v for v in frozen.intermediate_values.values()]
        if frozen.value is not None and frozen.state.name == "COMPLETE":
            best = max(best, frozen.value)
        elif finished:
            best = max(best, max(finished))
        curve.append((spent, best))
    return curve


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, nargs="+", default=[24, 32])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--tpe-seed-offset", type=int, default=100,
                    help="TPE's seed is the random search's plus this (0: both start with the same random trials, "
                         "which flatters TPE: it replays random search's first trials, pruned cheaper)")
    a = ap.parse_args()
    import logging

    import optuna
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from clara_hydra.space import Condition
    from clara_hydra.sweep.upstream import distribution as create_optuna_distribution_from_override
    from clara_hydra.synth import write
    logging.disable(logging.CRITICAL)  # (ignite logs each pruned run as an error)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    os.environ["CLARA_HYDRA_SHARED_CACHE"] = "1"
    tmp = tempfile.mkdtemp(prefix="clara-bench-search-")
    env = write(os.path.join(tmp, "data"), n_train=6, n_val=2, shape=(64, 64, 48))
    doc = yaml.safe_load(open(os.path.join(ROOT, "examples", "conf", "demo_v41.yaml")))
    parser = OverridesParser.create()
    dists = {k: create_optuna_distribution_from_override(parser.parse_override(f"{k}={v}"))
             for k, v in doc["hydra"]["sweeper"]["params"].items()}
    conds = {k: Condition(m["when"]["param"], tuple(m["when"]["in"]))
             for k, m in doc["clara_hydra"]["params"].items() if m.get("when")}
    sampler = {k: v for k, v in doc["hydra"]["sweeper"]["sampler"].items() if k != "seed"}
    print(f"search space: {len(dists)} params, conditional: "
          + ", ".join(f"{k} {c.text()}" for k, c in conds.items()) + f"; converted sampler settings: {sampler}")
    for budget in a.budget:
        results: dict[str, list] = {v: [] for v in a.variants}
        randoms = []
        for seed in range(a.seeds):
            rnd = run("random", seed, budget, a.epochs, env, dists, {}, {}, tmp)
            randoms.append(rnd[-1][1])
            for variant in a.variants:
                spec = VARIANTS[variant]
                tpe = spec.get("tpe", sampler)
                curve = run("tpe", seed + a.tpe_seed_offset, budget, a.epochs, env, dists,
                            conds if spec["conditions"] else {}, tpe, tmp)
                reach = next((spent for spent, best in curve if best >= rnd[-1][1]), None)
                results[variant].append((curve[-1][1], reach))
        print(f"\nbudget {budget} epochs, {a.seeds} seeds, TPE seed offset {a.tpe_seed_offset} "
              "(random search's best per seed: "
              + ", ".join(f"{v:.4f}" for v in randoms) + f"; median {statistics.median(randoms):.4f})")
        print("| variant | median best | epochs to reach random's best, per seed | median | reached |")
        print("|---|---|---|---|---|")
        for variant, rows in results.items():
            reached = [r for _, r in rows if r is not None]
            per_seed = ", ".join(str(r) if r is not None else "-" for _, r in rows)
            median = statistics.median([r if r is not None else 2 * budget for _, r in rows])
            print(f"| {variant} | {statistics.median(b for b, _ in rows):.4f} | {per_seed} | "
                  f"{median:g}{' (not reached counts as 2x budget)' if len(reached) < len(rows) else ''} | "
                  f"{len(reached)}/{len(rows)} |", flush=True)


if __name__ == "__main__":
    main()
