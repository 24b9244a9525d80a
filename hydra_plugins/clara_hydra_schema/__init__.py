"""Hydra discovers every module under ``hydra_plugins`` at start-up; importing this one
registers clara-hydra's ``clara_schema`` and its ``clara`` logging configs in the ConfigStore, so
a converted config composes in any Hydra app, not only in clara-hydra's own commands."""

from clara_hydra.logs import register as register_logging
from clara_hydra.schema import register

register()
register_logging()
