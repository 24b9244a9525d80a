from clara_hydra.automl.defs import Controller  # noqa: F401
