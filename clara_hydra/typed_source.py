"""The Hydra plugins that load a converted config typed (see :mod:`clara_hydra.typed`).

``TypedSearchPath`` (a SearchPathPlugin) puts a ``clara-typed://`` entry first in Hydra's config
search path and keeps the search path, to which Hydra later adds ``--config-dir``.
``TypedConfigSource`` serves that entry: asked for a config, it finds the file Hydra would load
(the first ``file://`` folder that has it), and when it is a converted Clara config (its first
line is ``# Converted by clara-hydra``) loads it and types its component args. Any other config is
"not here", so Hydra loads it as it always does.
"""

from __future__ import annotations

import builtins
import os

from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin

from .typed import MARKER, apply_types

SCHEME = "clara-typed"
_SEARCH_PATHS: list = []  # the search path of the Hydra app being set up (the last one)


class TypedSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path) -> None:
        _SEARCH_PATHS[:] = [search_path]
        if not any(e.path == f"{SCHEME}://" for e in search_path.get_path()):
            search_path.prepend(provider="clara-hydra", path=f"{SCHEME}://")


def _file_dirs() -> list[str]:
    if not _SEARCH_PATHS:
        return []
    out = []
    for e in _SEARCH_PATHS[0].get_path():  # a folder is "file://DIR" or plain "DIR"
        if e.path and (e.path.startswith("file://") or "://" not in e.path):
            out.append(e.path[len("file://"):] if e.path.startswith("file://") else e.path)
    return out


class TypedConfigSource(ConfigSource):
    @staticmethod
    def scheme() -> str:
        return SCHEME

    def _find(self, config_path: str) -> tuple[str, str] | None:
        """(folder, file) of the converted config Hydra would load for ``config_path``, or None."""
        name = self._normalize_file_name(config_path)
        for folder in _file_dirs():
            full = os.path.realpath(os.path.join(folder, name))
            if os.path.isfile(full):
                return (folder, full) if _is_converted(full) else None
        return None

    def load_config(self, config_path: str) -> ConfigResult:
        from omegaconf import OmegaConf
        found = self._find(config_path)
        if found is None:
            raise ConfigLoadError(f"Config not found : {config_path}")
        folder, full = found
        with open(full, encoding="utf-8") as fh:
            header = ConfigSource._get_header_dict(fh.read(512))
            fh.seek(0)
            cfg = OmegaConf.load(fh)
        return ConfigResult(config=apply_types(cfg), path=f"file://{folder}", provider=self.provider, header=header)

    def available(self) -> bool:
        return True

    def is_group(self, config_path: str) -> bool:
        return False

    def is_config(self, config_path: str) -> bool:
        return self._find(config_path) is not None

    def list(self, config_path: str, results_filter: ObjectType | None) -> builtins.list[str]:
        return []


def _is_converted(path: str) -> bool:
    if not path.endswith(".yaml"):
        return False
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline().startswith(MARKER)
    except (OSError, UnicodeDecodeError):
        return False
