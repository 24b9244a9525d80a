"""A stand-in task function for sweep tests: resolves the effective Clara config exactly as
train.py does, writes it to the job's output folder and returns a deterministic score."""

import json
import os

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from clara_hydra.resolve import effective_from_cfg


@hydra.main(config_path=None)
def main(cfg: DictConfig) -> float:
    tree = effective_from_cfg(cfg, enabled_only=True)
    out = HydraConfig.get().runtime.output_dir
    with open(os.path.join(out, "effective.json"), "w") as fh:
        json.dump(tree, fh)
    text = json.dumps(tree, sort_keys=True)
    return float(sum(map(ord, text)) % 1000) / 1000.0


if __name__ == "__main__":
    main()
