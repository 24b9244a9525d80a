"""hydra-core's internals: the registry of config source types (a source of another scheme,
``pkg://``, that :mod:`clara_hydra.typed_source` asks whether it holds a config), a config file's
``# @package`` header, a config name's file name, and what a failed job raised."""

from __future__ import annotations

from typing import Any

#: What this module reaches into, by owner: the upgrade test checks each is still there.
PRIVATE_NAMES: dict[str, tuple[str, ...]] = {
    "hydra._internal.sources_registry": ("SourcesRegistry",),
    "hydra._internal.sources_registry.SourcesRegistry": ("instance", "resolve"),
    "hydra.plugins.config_source.ConfigSource": ("_get_header_dict", "_normalize_file_name"),
    "hydra.core.utils.JobReturn": ("_return_value",),
}


def source(provider: str, path: str) -> Any:
    """A config source of ``path``'s scheme (``pkg://...``), as Hydra makes one for its search path."""
    from hydra._internal.sources_registry import SourcesRegistry
    source_type = SourcesRegistry.instance().resolve(path.split("://", 1)[0])
    return source_type(provider=provider, path=path)


def header(text: str) -> dict[str, str | None]:
    """A config file's header (its ``# @package ...`` lines), from its first characters."""
    from hydra.plugins.config_source import ConfigSource
    return ConfigSource._get_header_dict(text)


def file_name(config_path: str) -> str:
    """``db/mysql`` -> ``db/mysql.yaml``, as a config source names a config's file."""
    from hydra.plugins.config_source import ConfigSource
    return ConfigSource._normalize_file_name(config_path)


def job_exception(ret: Any) -> Any:
    """What a failed Hydra job raised. (The public ``return_value`` re-raises it, after writing an
    "Error executing job" line to stderr that the sweeper's own trial line replaces.)"""
    return ret._return_value
