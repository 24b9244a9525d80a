"""A task that does everything train.py does before training (compose, resolve, build every object,
data included) and returns a constant: the per-trial overhead without the training."""

import hydra
from omegaconf import DictConfig

from clara_hydra.effective import enabled_only
from clara_hydra.resolve import effective_from_cfg
from clara_hydra.train.entry import prepare
from clara_hydra.train.run import _parsed, build


def build_only(cfg: DictConfig, run_dir: str) -> float:
    prepare(cfg, run_dir)
    tree = enabled_only(effective_from_cfg(cfg, enabled_only=False))
    parser, bundle, _ = build(tree, config_file=None, device="cpu", amp=False)
    _parsed(parser, "train::trainer")
    _parsed(parser, "validate::evaluator")
    return 0.5


@hydra.main(config_path="../examples/conf", config_name="demo_v41")
def main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    return build_only(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
