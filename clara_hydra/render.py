"""A conversion as the Hydra primary config a user runs: the YAML text (its header, the
``defaults`` list, the ``hydra.sweeper`` block with the search space and the policy a sweep
starts with: direction, study name, storage, the AutoML settings; the ``--help`` text; the
Clara config with its interpolations; what only clara-hydra reads) and the file it is written
to. :mod:`.convert` decides what the config says; this module only writes it down."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import yaml

from . import __version__, better
from .automl.config import AutoML
from .convert import Conversion, escape
from .effective import META_KEY
from .paths import clara
from .schema import defaults_entry

_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: 5x faster


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True  # no anchors/aliases: OmegaConf limits how far they may expand


def _repr_list(dumper, data):
    flow = all(not isinstance(x, (list, dict)) for x in data) and len(data) <= 16
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _repr_str(dumper, data):
    style = "|" if "\n" in data and not data.endswith((" ", "\n")) else None  # readable multi-line text
    if style is None and _read_as_other(data):
        style = "'"  # "1e5" is a string here, but OmegaConf's YAML loader would read a float
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


@lru_cache(maxsize=1)
def _omegaconf_loader():
    from .private.omegaconf import yaml_loader
    return yaml_loader()


def _read_as_other(text: str) -> bool:
    """Would the YAML loader that Hydra and OmegaConf use read the plain scalar ``text`` as
    something other than a string?"""
    if not text or not (text[0].isdigit() or text[0] in "+-.~"):
        return False  # only numbers, .inf/.nan and ~ differ from PyYAML's own rules
    loader = _omegaconf_loader()
    return loader.resolve(loader, yaml.ScalarNode, text, (True, False)) != "tag:yaml.org,2002:str"


_Dumper.add_representer(list, _repr_list)
_Dumper.add_representer(str, _repr_str)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)


def _one_line(text: Any) -> str:
    """Text for a YAML comment: never more than one line."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


def _entry(key: str, value: Any, indent: int) -> list[str]:
    """``key: value`` at ``indent`` spaces, on one line however long (a folded line would not load
    back); a multi-line string gets its block lines indented too."""
    text = yaml.dump({key: value}, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=2**30).rstrip()
    return [" " * indent + line for line in text.splitlines()]


def study_name(config_file: str) -> str:
    """The default study: the config's name, prefixed with its MMAR's folder name when it sits in
    ``MMAR/config/`` (two MMARs swept from one folder get two studies, not one mixed study)."""
    stem = os.path.splitext(os.path.basename(config_file))[0]
    folder = os.path.dirname(os.path.abspath(config_file))
    if os.path.basename(folder) == "config":
        mmar = os.path.basename(os.path.dirname(folder))
        if mmar:
            return f"{mmar}-{stem}"
    return stem


def help_template(conv: Conversion, stem: str, source_label: str) -> str:
    """What ``--help`` shows: how to run it, the search space, the config, Hydra's flags."""
    lines = [f"== {stem}: a Clara config converted by clara-hydra "
             f"(from {os.path.basename(source_label)}) ==",
             "Train once:  clara-hydra train [--mmar DIR] [KEY=VALUE ...]   "
             f"(or: python train.py --config-dir DIR --config-name {stem} ...)",
             "Sweep:       add -m; the search space below is hydra.sweeper.params", ""]
    if conv.params:
        lines.append(f"== Search space: {len(conv.params)} parameter(s); KEY=VALUE sets one, "
                     "the sweep samples it ==")
        for p in conv.params:
            lines.append(f"  {p.name}: {p.sweep}  [{p.type}, domain {p.domain or '-'}]"
                         + (f"  {p.when.text()}" if p.when else ""))
            lines.append("      sets " + ", ".join(clara(s) for s in p.sources)
                         + (f"  (also {p.at}=...)" if p.at else ""))
            if p.mode == "label":
                for lab, v in p.choices.items():
                    lines.append(f"      {lab} = {_flow(v)}")
    else:
        lines.append("== Search space: none (this config has no search entries) ==")
    lines += ["", "== Config (override any key: KEY=VALUE) ==", "$CONFIG", "",
              "== Hydra flags (--cfg job, --multirun, ...) ==", "$FLAGS_HELP"]
    text = "\n".join(_one_line(ln).replace("$", "$$").replace("$$CONFIG", "$CONFIG")
                      .replace("$$FLAGS_HELP", "$FLAGS_HELP") for ln in lines)
    return escape(text)


def render(conv: Conversion, source_label: str) -> str:
    cfg = conv.cfg
    stem = os.path.splitext(os.path.basename(cfg.file))[0]
    goal = better.of_config(cfg.tree)
    direction, why = goal.direction, goal.why
    schema = defaults_entry(conv.body)
    lines = [
        f"# Converted by clara-hydra {__version__.split('+')[0]} from {_one_line(source_label)}",
        "# Do not edit by hand: change the Clara JSON and convert it again:",
        f"#   clara-hydra convert {_one_line(source_label)} -o <this folder>",
        f"# Search space: {len(conv.params)} parameter{'s' * (len(conv.params) != 1)}"
        + (f", see hydra.sweeper.params or `clara-hydra space {_one_line(source_label)}`" if conv.params else ""),
        "",
        "defaults:",
    ] + ([f"  - {schema}"] if schema else []) + [
        "  - override hydra/sweeper: clara_optuna"
        + ("  # hydra/sweeper=optuna (the stock one) works too" if conv.automl is None else
           "  # (the AutoML settings below are clara_optuna's)"),
    ] + _automl_defaults(conv.automl) + [
        "  - override hydra/job_logging: clara",
        "  - override hydra/hydra_logging: clara",
        "  - _self_",
        "",
        "hydra:",
    ] + _automl_sweep_dir(conv.automl) + [
        "  sweeper:",
    ] + _sampler_lines(conv.automl) + [
        f"    direction: {direction}  # {_one_line(why)}",
    ] + _entry("study_name", study_name(cfg.file), 4) + [
        "    storage: sqlite:///clara_hydra_sweeps.db  # persistent: the same command resumes the study",
        f"    n_trials: {(conv.automl.sweeper.get('n_trials') if conv.automl else None) or 20}"
        + ("  # config_automl.json: controller.args.max_rounds" if conv.automl and 'n_trials' in conv.automl.sweeper
           else ""),
        "    max_failure_rate: 0.5",
    ] + _automl_lines(conv.automl)
    if conv.params:
        lines.append("    params:")
        for p in conv.params:
            sets = ", ".join(clara(s) for s in p.sources)
            when = _one_line(f"; {p.when.text()}") if p.when else ""
            lines.append(f"      # {p.type}, domain {_one_line(p.domain or '-')}; sets {_one_line(sets)}{when}")
            if p.mode == "label":
                lines.append("      #   " + _one_line("; ".join(f"{lab} = {_flow(v)}" for lab, v in p.choices.items())))
            lines.extend(_entry(p.name, p.sweep, 6))
    else:
        lines.append("    params: {}")
    lines.append("  help:")
    lines.extend(_entry("template", help_template(conv, stem, source_label), 4))
    lines.append("")
    lines.append("# The Clara config, with searched values, aliases, apply, refs and {names} as interpolations")
    lines.append(_dump(conv.body).rstrip() if conv.body else "{}")
    lines.append("")
    lines.append("# What only clara-hydra needs: keys that are not part of the Clara config, label tables")
    lines.append(_dump({META_KEY: conv.meta}).rstrip())
    return "\n".join(lines) + "\n"


def _automl_defaults(automl: AutoML | None) -> list[str]:
    if automl is None or automl.sampler == "tpe":
        return []
    return [f"  - override hydra/sweeper/sampler: {automl.sampler}  # config_automl.json: controller"]


def _automl_sweep_dir(automl: AutoML | None) -> list[str]:
    if automl is None or automl.sweep_dir is None:
        return []
    return ["  sweep:"] + [line + "  # config_automl.json: MMARHandler work_dir"
                           for line in _entry("dir", automl.sweep_dir, 4)]


def _sampler_lines(automl: AutoML | None) -> list[str]:
    if automl is None or automl.sampler == "tpe":
        why = "TPE (the default sampler), seeded" + (" (config_automl.json: ReinforcementController)" if automl else "")
        return ["    sampler:", f"      seed: 0  # {why}"]
    if automl.sampler == "random":
        return ["    sampler:", "      seed: 0  # Optuna's RandomSampler (config_automl.json: RandomController)"]
    return (["    sampler:  # config_automl.json: your controller, through Clara's controller interface"]
            + _entry("path", automl.sampler_args["path"], 6)
            + ["      args: " + _flow(automl.sampler_args.get("args") or {}),
               "      seed: 0  # for values the controller does not give"])


def _automl_lines(automl: AutoML | None) -> list[str]:
    """The sweeper keys a config_automl.json sets (besides sampler and n_trials), each with where
    it came from."""
    if automl is None:
        return []
    lines = [f"    # from {_one_line(os.path.basename(automl.file))} (Clara's AutoML engine)"]
    for key, value in automl.sweeper.items():
        if key == "n_trials":
            continue
        source = automl.sources.get(key, "")
        entry = _entry(key, value, 4)
        if source and len(entry) == 1:
            entry[0] += f"  # {_one_line(source)}"
        lines.extend(entry)
    return lines


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()


def write(conv: Conversion, out_dir: str, source_label: str | None = None) -> str:
    """Write ``<stem>.yaml`` into ``out_dir`` whole or not at all (a folder it made goes again on
    a failure); returns its path."""
    from .staged import staged
    stem = os.path.splitext(os.path.basename(conv.cfg.file))[0]
    target = os.path.join(out_dir, stem + ".yaml")
    if source_label is None:
        source_label = os.path.relpath(os.path.abspath(conv.cfg.file), os.path.abspath(out_dir))
    conv.meta["source"] = source_label
    text = render(conv, source_label)
    with staged(out_dir) as tmp:
        with open(os.path.join(tmp, stem + ".yaml"), "w", encoding="utf-8") as fh:
            fh.write(text)
    return target


__all__ = ["render", "write", "study_name", "help_template"]
