"""hydra-core's internals: the registry of config source types (a source of another scheme,
``pkg://``, that :mod:`clara_hydra.typed_source` asks whether it holds a config), a config file's
``# @package`` header, a config name's file name, what a failed job raised, the cluster a
submitit launcher submits to, and the YAML that ``--cfg`` and ``--help`` print."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: What this module reaches into, by owner: the upgrade test checks each is still there.
PRIVATE_NAMES: dict[str, tuple[str, ...]] = {
    "hydra._internal.sources_registry": ("SourcesRegistry",),
    "hydra._internal.sources_registry.SourcesRegistry": ("instance", "resolve"),
    "hydra.plugins.config_source.ConfigSource": ("_get_header_dict", "_normalize_file_name"),
    "hydra.core.utils.JobReturn": ("_return_value",),
    "hydra._internal.hydra": ("OmegaConf",),
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.BaseSubmititLauncher": ("_EXECUTOR",),
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


def submitit_cluster(launcher: Any) -> str | None:
    """The cluster a hydra-submitit-launcher launcher submits to (``slurm``, ``local``: its
    executor's name), or None for another launcher."""
    if not type(launcher).__module__.startswith("hydra_plugins.hydra_submitit_launcher"):
        return None
    cluster = getattr(launcher, "_EXECUTOR", None)
    return cluster if cluster in ("slurm", "local") and hasattr(launcher, "params") else None


def job_exception(ret: Any) -> Any:
    """What a failed Hydra job raised. (The public ``return_value`` re-raises it, after writing an
    "Error executing job" line to stderr that the sweeper's own trial line replaces.)"""
    return ret._return_value


def print_config_with(annotate: Callable[[str], str]) -> None:
    """``--cfg job``, ``--help`` (its ``$CONFIG``) and ``--info config`` print the config as
    ``annotate`` rewrites OmegaConf's YAML. Hydra writes them with the ``OmegaConf`` its
    ``hydra._internal.hydra`` module imported; that module gets a subclass whose ``to_yaml``
    annotates (everything else is OmegaConf's own)."""
    import hydra._internal.hydra as shows
    from omegaconf import OmegaConf
    if getattr(shows.OmegaConf, "annotate", None) is annotate:
        return

    class _Annotated(OmegaConf):
        @staticmethod
        def to_yaml(cfg: Any, *, resolve: bool = False, sort_keys: bool = False) -> str:  # type: ignore[override]
            return annotate(OmegaConf.to_yaml(cfg, resolve=resolve, sort_keys=sort_keys))

    _Annotated.annotate = staticmethod(annotate)  # type: ignore[attr-defined]
    shows.OmegaConf = _Annotated  # type: ignore[misc]
