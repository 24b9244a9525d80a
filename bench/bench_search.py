"""Search efficiency (issue 4): TPE with median pruning against random search (what Clara's
random controller did) at the same budget of training epochs, on one fixed synthetic training
task (examples/conf/demo_v41.yaml on synthetic data, validation every epoch), several seeds.
Reports the best metric each reaches and the epochs TPE+pruning needs to reach random search's best.

    python bench/bench_search.py [--seeds 3] [--budget 24] [--epochs 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def run(method: str, seed: int, budget: int, epochs: int, env: dict, dists: dict, tmp: str) -> list[tuple[int, float]]:
    """[(epochs spent so far, best so far)] after each trial."""
    import optuna

    from clara_hydra.effective import enabled_only
    from clara_hydra.resolve import compose, effective_from_cfg
    from clara_hydra.train.run import train

    if method == "random":
        sampler, pruner = optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner()
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=3)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    spent, best, curve = 0, float("-inf"), []
    while spent < budget:
        trial = study.ask(dists)
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
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=4)
    a = ap.parse_args()
    import logging

    import optuna
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from clara_hydra.sweep.upstream import distribution as create_optuna_distribution_from_override
    from clara_hydra.synth import write
    logging.disable(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    os.environ["CLARA_HYDRA_SHARED_CACHE"] = "1"
    tmp = tempfile.mkdtemp(prefix="clara-bench-search-")
    env = write(os.path.join(tmp, "data"), n_train=6, n_val=2, shape=(64, 64, 48))
    doc = yaml.safe_load(open(os.path.join(ROOT, "examples", "conf", "demo_v41.yaml")))
    parser = OverridesParser.create()
    dists = {k: create_optuna_distribution_from_override(parser.parse_override(f"{k}={v}"))
             for k, v in doc["hydra"]["sweeper"]["params"].items()}
    rows = []
    for seed in range(a.seeds):
        rnd = run("random", seed, a.budget, a.epochs, env, dists, tmp)
        tpe = run("tpe", seed, a.budget, a.epochs, env, dists, tmp)
        target = rnd[-1][1]
        reach = next((spent for spent, best in tpe if best >= target), None)
        rows.append((seed, rnd[-1][1], tpe[-1][1], reach))
        print(f"| seed {seed} | {rnd[-1][1]:.4f} | {tpe[-1][1]:.4f} | "
              f"{reach if reach is not None else 'not reached'} of {a.budget} |", flush=True)
    reached = [r[3] for r in rows if r[3] is not None]
    median_epochs = statistics.median(reached) if reached else "-"
    print(f"| median | {statistics.median(r[1] for r in rows):.4f} | {statistics.median(r[2] for r in rows):.4f} | "
          f"reached in {len(reached)}/{len(rows)} seeds; median {median_epochs} epochs |")


if __name__ == "__main__":
    main()
