"""Hydra discovers every module under ``hydra_plugins`` at start-up; importing this one
registers clara-hydra's ``clara_schema`` and its ``clara`` logging configs in the ConfigStore, and
the plugins that load a converted config with its component args typed (``TypedSearchPath``,
``TypedConfigSource``), so a converted config composes typed in any Hydra app, not only in
clara-hydra's own commands."""

from clara_hydra.logs import register as register_logging
from clara_hydra.schema import register
from clara_hydra.typed_source import TypedConfigSource, TypedSearchPath

__all__ = ["TypedConfigSource", "TypedSearchPath"]

register()
register_logging()
