"""An empty config folder: the primary config folder of clara-hydra's own Hydra app (the configs
come from --config-dir), so that Hydra does not search this package for config groups."""
