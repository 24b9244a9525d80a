from clara_hydra.automl.defs import Handler  # noqa: F401
