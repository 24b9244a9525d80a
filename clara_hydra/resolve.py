"""Compose a converted config through Hydra and resolve it to the effective Clara config.

``clara-hydra resolve`` and ``train.py`` take this same path: Hydra composes the primary
config (schema, overrides), OmegaConf resolves the interpolations, and
:func:`clara_hydra.effective.effective` checks the alternatives and drops what is disabled.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import Any

from .effective import META_KEY, effective, strip_meta
from .errors import ClaraHydraError, OverrideError, first_line
from .schema import WELL_KNOWN
from .values import DATA_MARK, runs_as_code, unmark


def effective_from_cfg(cfg: Any, *, enabled_only: bool = False, file: str | None = None,
                       overrides: Sequence[str] | None = None) -> dict:
    """Effective Clara config from a composed Hydra config (a DictConfig); ``overrides``: those
    it was composed with (default: the Hydra job's), checked against the classes' args."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from .typed import check_label, check_overrides
    if overrides is None:
        overrides = job_overrides()
    check_overrides(cfg, overrides, file)
    meta = cfg.get(META_KEY) if hasattr(cfg, "get") else None
    for name, table in ((meta or {}).get("choices") or {}).items():
        label = cfg.get(name)
        if label is not None:
            check_label(name, label, table, file=file, location=name)
    warn_outside_domain(cfg, meta, file)
    try:
        tree: Any = OmegaConf.to_container(_env_marked(cfg, meta), resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        raise ClaraHydraError(f"cannot resolve the config: {first_line(exc)}", file=file,
                              location=key or None,
                              hint="check the overrides and the names that interpolations use") from None
    for key in list(tree):
        if key in WELL_KNOWN and tree[key] == "???":
            del tree[key]
    tree = strip_meta(unmark(tree), tree.get(META_KEY))
    try:
        return effective(tree, enabled_only=enabled_only)
    except ClaraHydraError as exc:
        raise (exc.with_file(file) if file else exc) from None


def _env_marked(cfg: Any, meta: Any) -> Any:
    """``cfg`` (a copy, where needed) whose environment.json values that would run as code carry
    :data:`DATA_MARK`: every string made of one is data after resolution (the environment file
    holds data; code is written in the config itself)."""
    import copy

    from omegaconf import open_dict
    code = [k for k in (meta or {}).get("env") or [] if runs_as_code(cfg.get(k))]
    if not code:
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        for key in code:
            cfg[key] = DATA_MARK + cfg[key]
    return cfg


def job_overrides() -> list[str]:
    """The overrides of the running Hydra job (a sweep trial's include its sampled values)."""
    from hydra.core.hydra_config import HydraConfig
    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def first_level_values(cfg: Any) -> dict:
    """The first-level plain values of a composed config (environment keys included), resolved;
    a value that does not resolve is left out (it says so where it is used)."""
    from omegaconf import DictConfig, ListConfig
    out = {}
    for key in cfg:
        if key in ("hydra", META_KEY):
            continue
        try:
            value = cfg[key]
        except Exception:  # noqa: BLE001 - an interpolation that fails says so where it is used
            continue
        if not isinstance(value, (DictConfig, ListConfig)):
            out[str(key)] = value
    return out


def override_keys(overrides: Sequence[str]) -> frozenset:
    """The keys a list of Hydra overrides sets (``+x=1``, ``++x=1``, ``~x`` -> ``x``)."""
    return frozenset(str(o).split("=", 1)[0].lstrip("+~") for o in overrides)


def warn_outside_domain(cfg: Any, meta: Any, file: str | None) -> None:
    """A value given to a sweep param outside its search domain (``prob=1.5`` where the search is
    [0, 1]) is allowed, with a one-line warning: Clara's search would never have tried it."""
    from omegaconf import OmegaConf

    from .logs import warn
    for name, info in ((meta or {}).get("params") or {}).items():
        try:
            value = OmegaConf.select(cfg, name, throw_on_missing=False, throw_on_resolution_failure=False)
        except Exception:
            continue
        if value is None or isinstance(value, bool):
            continue
        rng = info.get("range")
        options = info.get("options")
        if rng is not None and isinstance(value, (int, float)) and not rng[0] <= value <= rng[1]:
            warn(f"{file or 'config'}: {name}={value} is outside its search domain [{rng[0]}, {rng[1]}] "
                 f"(sets {', '.join(info.get('sets') or [])})")
        elif options and not isinstance(value, (list, dict)) and value not in options and \
                str(value) not in [str(o) for o in options]:
            warn(f"{file or 'config'}: {name}={value} is not one of its search options "
                 f"{', '.join(str(o) for o in options)}")


#: Hydra's flags that take the next argument as their value (never read as an override).
VALUE_FLAGS = frozenset({"--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp", "--info", "-i",
                         "--experimental-rerun"})


def quote_equals(args: list[str]) -> list[str]:
    """``KEY=VALUE`` where VALUE holds a ``=`` (the checkpoint names MONAI writes:
    ``MMAR_CKPT=models/net_key_metric=0.9123.pt``) quoted for Hydra's override grammar, which
    refuses a bare ``=`` in a value. Any other argument is left as it is, for Hydra to judge."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    parser = None
    out: list[str] = []
    for i, arg in enumerate(args):
        key, _, value = arg.partition("=")
        if arg.startswith("-") or "=" not in value or value[:1] in "'\"" or (i and args[i - 1] in VALUE_FLAGS) \
                or "'" in value:
            out.append(arg)
            continue
        parser = parser or OverridesParser.create()
        try:
            parser.parse_override(arg)
            out.append(arg)  # (Hydra takes it as it is: a sweep like x=choice(a,b) never gets here)
        except Exception:  # noqa: BLE001 - Hydra's grammar error: try the value quoted
            quoted = f"{key}='{value}'"
            try:
                parser.parse_override(quoted)
                out.append(quoted)
            except Exception:  # noqa: BLE001 - not ours to fix: Hydra says what is wrong
                out.append(arg)
    return out


def compose(config_dir: str, config_name: str, overrides: Sequence[str] = (), file: str | None = None):
    """Compose ``config_name`` from ``config_dir`` with Hydra's compose API (a value with ``=`` in
    it, MONAI's ``net_key_metric=0.91.pt``, needs no quoting: as on the command line)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    from .errors import allow_large_configs
    from .schema import register

    allow_large_configs()
    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=os.path.abspath(config_dir), job_name="clara_hydra"):
            return hydra_compose(config_name=config_name, overrides=quote_equals(list(overrides)))
    except HydraException as exc:
        raise override_error(exc, overrides, file) from None


def override_error(exc: BaseException, overrides: Sequence[str], file: str | None) -> ClaraHydraError:
    from .typed import explain
    explained = explain(exc, file)
    if explained is not None:
        return explained
    text = first_line(exc)
    cause = exc.__cause__ or exc.__context__
    detail = first_line(cause) if cause is not None else ""
    location = None
    for ov in overrides:
        key = ov.split("=", 1)[0].lstrip("+~")
        if ov in str(exc) or f"'{key}'" in str(exc) or (cause is not None and key in str(cause)):
            location = key
            break
    message = text if not detail or detail in text else f"{text.rstrip('.')}: {detail}"
    hint = None
    if "Could not override" in text:
        hint = "the key is not in this config (add a new one with +KEY=VALUE); see `clara-hydra space` for the " \
               "search parameters"
    elif "could not be converted" in message or "Value '" in message:
        hint = "give a value of the param's type"
    return OverrideError(message, file=file, location=location, hint=hint)


def resolve_file(path: str, overrides: Sequence[str] = (), *, enabled_only: bool = False,
                 env: str | None = None) -> dict:
    """Effective Clara config of a Clara JSON (converted on the fly) or a converted YAML."""
    if path.endswith((".yaml", ".yml")):
        if not os.path.isfile(path):
            raise ClaraHydraError("no such config file", file=path, hint="check the path")
        cfg = compose(os.path.dirname(os.path.abspath(path)),
                      os.path.splitext(os.path.basename(path))[0], overrides, file=path)
        return effective_from_cfg(cfg, enabled_only=enabled_only, file=path, overrides=overrides)
    from . import convert as C
    from .reader import read
    from .render import write

    conv = C.convert(read(path, env))
    C.emit_warnings(conv)
    with tempfile.TemporaryDirectory(prefix="clara-hydra-") as tmp:
        written = write(conv, tmp, source_label=path)
        stem = os.path.splitext(os.path.basename(written))[0]
        cfg = compose(tmp, stem, overrides, file=path)
        return effective_from_cfg(cfg, enabled_only=enabled_only, file=path, overrides=overrides)
