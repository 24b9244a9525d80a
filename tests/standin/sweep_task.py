"""A stand-in task for sweeper tests: no training, a deterministic score from the searched
``x``, reported over 3 steps like a validation curve (TRIAL_EPOCHS: steps of given lengths).
Trial 1 raises, trial 2 returns NaN (when FAIL_TRIALS=1), trial EXIT_TRIAL calls sys.exit(0), and SLOW_TRIAL
sleeps; a multi-objective sweep gets the objectives x and
y = 1 - x. Speaks the sweeper's protocol (clara_hydra.sweep.protocol)
as train.py does."""

import json
import os
import time

import hydra
import optuna
from omegaconf import DictConfig

from clara_hydra.resolve import effective_from_cfg
from clara_hydra.sweep.protocol import ENV_NPROC, ENV_OBJECTIVES, ENV_RESULT, ENV_TRIAL, outcome_file, write_outcome
from clara_hydra.sweep.trial import current


@hydra.main(config_path=None)
def main(cfg: DictConfig):
    tree = effective_from_cfg(cfg, enabled_only=True)
    number = int(os.environ.get(ENV_TRIAL, "-1"))
    from hydra.core.hydra_config import HydraConfig
    run_dir = HydraConfig.get().runtime.output_dir

    def outcome(state, **kwargs):  # into the job's folder, as train.py writes it (a worker's: its file)
        write_outcome(state, path=outcome_file(run_dir) if ENV_TRIAL in os.environ else None, **kwargs)
    with open("seen_gpus.txt" if not os.environ.get(ENV_RESULT) else
              os.path.join(os.path.dirname(os.environ[ENV_RESULT]), "seen_gpus.txt"), "a") as fh:
        fh.write(f"{number}:{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}\n")
    if os.environ.get(ENV_RESULT):  # a worker: how many processes it would train in (DDP)
        with open(os.path.join(os.path.dirname(os.environ[ENV_RESULT]), "seen_nproc.txt"), "w") as fh:
            fh.write(os.environ.get(ENV_NPROC, ""))
    if str(number) == os.environ.get("SLOW_TRIAL"):
        time.sleep(float(os.environ.get("SLOW_SECONDS", "3")))
    elif os.environ.get("EVERY_TRIAL_SLEEPS"):
        time.sleep(float(os.environ["EVERY_TRIAL_SLEEPS"]))
    if os.environ.get("CLARA_HYDRA_TRIAL_CRASH") == "kill":  # killed (kill -9, OOM) after a progress line
        print("epoch 1/3, loss 0.5000", flush=True)
        os.kill(os.getpid(), 9)
    if os.environ.get("CLARA_HYDRA_TRIAL_CRASH"):
        os._exit(9)  # dies before writing any outcome
    if str(number) == os.environ.get("EXIT_TRIAL"):
        import sys
        sys.exit(0)  # (code of the task that ends the process)
    if os.environ.get("FAIL_TRIALS") and number == 1:
        outcome("fail", reason="ValueError: boom")
        raise ValueError("boom")
    if os.environ.get("FAIL_TRIALS") and number == 2:
        outcome("complete", value=float("nan"))
        return float("nan")
    x = float(tree["x"])
    models = os.path.join(run_dir, "models")
    os.makedirs(models, exist_ok=True)
    with open(os.path.join(models, "model.pt"), "w") as fh:  # a checkpoint, as training writes one
        fh.write(str(x))
    if os.environ.get(ENV_OBJECTIVES):  # a multi-objective sweep: x, and y = 1 - x (a trade-off)
        values = [{"x": x, "y": 1.0 - x}[name] for name in json.loads(os.environ[ENV_OBJECTIVES])]
        outcome("complete", value=values)
        return values
    trial = current()
    # TRIAL_EPOCHS="4,1,1": trial n reports that many steps (n modulo the list), each after
    # EPOCH_SECONDS of sleep, as training of unequal length would (bench/bench_cluster.py)
    lengths = [int(e) for e in os.environ.get("TRIAL_EPOCHS", "").split(",") if e.strip()]
    steps = lengths[number % len(lengths)] if lengths and number >= 0 else 3
    for step in range(1, steps + 1):
        if lengths:
            time.sleep(float(os.environ.get("EPOCH_SECONDS", "1")))
        value = x * step / steps
        if trial is not None:
            trial.report(value, step)
            if trial.should_prune():
                outcome("pruned", reason=f"pruned at step {step}")
                if os.environ.get(ENV_RESULT):
                    return None
                raise optuna.TrialPruned(f"pruned at step {step}")
    from clara_hydra import faults
    faults.point("before_outcome")  # (as train.py: its job done, its outcome not written yet)
    outcome("complete", value=x)
    return x


if __name__ == "__main__":
    from clara_hydra.app import run_app
    run_app(main)  # failures end as one line, as in train.py
