"""Train a converted Clara config: ``python train.py`` (one run) or ``python train.py -m`` (a sweep).

Without options it trains the shipped demo (``examples/conf/demo.yaml``); ``--config-dir
conf --config-name config_train`` (your own conversions) or ``--config-name demo_v41`` select
another converted config; ``KEY=VALUE`` overrides any
param. The effective config is resolved by the same path as ``clara-hydra resolve``; the key
validation metric is returned, so the Optuna sweeper can use it. ``clara-hydra train`` runs the
same app from any folder (``--mmar DIR``). Failures end as one line (see clara_hydra.app).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from clara_hydra.app import run_app, task


@hydra.main(config_path="examples/conf", config_name="demo")
def main(cfg: DictConfig) -> float:
    return task(cfg)


if __name__ == "__main__":
    run_app(main)
