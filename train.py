"""Train a converted Clara config: ``python train.py`` (one run) or ``python train.py -m`` (a sweep).

``--config-dir/--config-name`` select another converted config; ``KEY=VALUE`` overrides any
param. The effective config is resolved by the same path as ``clara-hydra resolve``.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from clara_hydra.effective import enabled_components
from clara_hydra.errors import ClaraHydraError
from clara_hydra.resolve import effective_from_cfg


@hydra.main(config_path="conf", config_name="demo")
def main(cfg: DictConfig) -> float | None:
    try:
        tree = effective_from_cfg(cfg, enabled_only=True)
    except ClaraHydraError as exc:
        print(exc.format(), file=sys.stderr)
        raise SystemExit(2) from None
    for loc, comp in enabled_components(tree):
        cls = comp.get("path") or comp.get("name")
        print(f"{loc:45s} {cls}")
    return None


if __name__ == "__main__":
    main()
