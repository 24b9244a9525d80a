"""Train a converted Clara config: ``python train.py`` (one run) or ``python train.py -m`` (a sweep).

``--config-dir/--config-name`` select another converted config; ``KEY=VALUE`` overrides any
param. The effective config is resolved by the same path as ``clara-hydra resolve``; the key
validation metric is returned, so the Optuna sweeper can use it.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from clara_hydra.train.entry import run


@hydra.main(config_path="conf", config_name="demo")
def main(cfg: DictConfig) -> float:
    return run(cfg)


if __name__ == "__main__":
    main()
