"""Clara's ``automl`` package names for BYO controllers and handlers (see clara_hydra.automl.defs)."""
