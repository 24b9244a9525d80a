"""The Hydra plugins that load a converted config typed (see :mod:`clara_hydra.typed`).

``TypedSearchPath`` (a SearchPathPlugin) puts a ``clara-typed://ID`` entry first in Hydra's
config search path and keeps the search path under ID (Hydra adds ``--config-dir`` to it later).
``TypedConfigSource`` serves that entry: asked for a config, it finds where Hydra would load it
from (the first source after it that has it), and when that is a folder and the file a converted
Clara config (its first line is ``# Converted by clara-hydra``) loads it and types its component
args. Any other config is "not here", so Hydra loads it as it always does.
"""

from __future__ import annotations

import builtins
import os
from typing import Any

from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin

from .private import hydra as private_hydra
from .typed import MARKER, apply_types

SCHEME = "clara-typed"
#: The search path of each Hydra app set up in this process, by the id its ``clara-typed://ID``
#: entry names (a process may set up several: the compose API, then a run).
_SEARCH_PATHS: dict[str, Any] = {}


class TypedSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path) -> None:
        if any(e.path.startswith(f"{SCHEME}://") for e in search_path.get_path()):
            return
        ident = str(len(_SEARCH_PATHS) + 1)
        _SEARCH_PATHS[ident] = search_path
        search_path.prepend(provider="clara-hydra", path=f"{SCHEME}://{ident}")


class TypedConfigSource(ConfigSource):
    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path)
        self._others: dict[str, Any] = {}  # the other sources of the search path, made once each

    @staticmethod
    def scheme() -> str:
        return SCHEME

    def _other(self, provider: str, path: str) -> Any:
        if path not in self._others:
            self._others[path] = private_hydra.source(provider, path)
        return self._others[path]

    def _find(self, config_path: str) -> tuple[str, str] | None:
        """(folder, file) of the converted config Hydra would load for ``config_path``: the first
        source after this one in the search path that has it, when that is a folder and the file
        a converted config; else None."""
        search_path = _SEARCH_PATHS.get(self.path.split("://", 1)[-1])
        if search_path is None:
            return None
        name = private_hydra.file_name(config_path)
        for e in search_path.get_path():
            path = e.path or ""
            if path.startswith(f"{SCHEME}://"):
                continue
            if path.startswith("file://") or "://" not in path:
                folder = path[len("file://"):] if path.startswith("file://") else path
                full = os.path.realpath(os.path.join(folder, name))
                if os.path.isfile(full):
                    return (folder, full) if _is_converted(full) else None
                continue
            try:  # another kind of source (pkg://, structured://): Hydra loads the config from it
                if self._other(e.provider, path).is_config(config_path):
                    return None
            except Exception:  # noqa: BLE001 - a source that cannot say: Hydra will judge it
                continue
        return None

    def load_config(self, config_path: str) -> ConfigResult:
        from omegaconf import OmegaConf
        found = self._find(config_path)
        if found is None:
            raise ConfigLoadError(f"Config not found : {config_path}")
        folder, full = found
        with open(full, encoding="utf-8") as fh:
            header = private_hydra.header(fh.read(512))
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
