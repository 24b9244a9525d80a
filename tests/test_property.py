"""Property: for random Clara configs and random values, `resolve` gives what a small
reference interpreter, written here directly from SPEC, gives.

The interpreter knows nothing of Hydra or of our converter: it applies the chosen search
values, aliases and apply, substitutes "{name}" references (command line > environment.json
> first-level params), replaces refs by the train component they name, and turns every
`disabled` into a boolean. The test maps its chosen values to command-line overrides through
`space --json` (name, choices, sources), as a user would.
"""

from __future__ import annotations

import copy
import json
import os
import re
import string

from conftest import resolve, space
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SINGULAR = {"model", "loss", "optimizer", "lr_policy", "lr_scheduler", "inferer", "dataset", "dataloader",
            "image_pipeline", "trainer", "evaluator"}

# ----------------------------------------------------------------------------- reference interpreter


def ref_substitute(value, ns):
    """SPEC: "{name}" exactly -> the typed value; other strings with {name} are formatted."""
    if isinstance(value, dict):
        return {k: (v if k.startswith("_") else ref_substitute(v, ns)) for k, v in value.items()}
    if isinstance(value, list):
        return [ref_substitute(v, ns) for v in value]
    if not isinstance(value, str) or value.startswith(("@", "#", "lambda")):
        return value
    m = re.fullmatch(r"\{(\w+)\}", value)
    if m:
        return ns.get(m.group(1), value)
    # str.format, except that (SPEC) a name nothing defines stays as written, "{NAME}"
    out = []
    for literal, fname, _, _ in string.Formatter().parse(value):
        out.append(literal)
        if fname is not None:
            out.append(str(ns[fname]) if fname in ns else "{" + fname + "}")
    return "".join(out)


def ref_option_values(entry, option):
    args = entry["args"]
    if isinstance(args, str) or len(args) == 1:
        return [option[0] if isinstance(option, list) else option]
    return list(option)


def reference(config, env, cli, chosen):
    """chosen: {(component path or None, entry index): value or option}; cli: {name: value}."""
    c = copy.deepcopy(config)
    sections = ("train", "validate")
    ns = {k: v for k, v in c.items() if k not in sections and k not in ("search", "lr_search")}
    ns.update(env)
    aliases = {}

    def components():
        for sec in sections:
            for slot, val in c.get(sec, {}).items():
                members = val if isinstance(val, list) else [val]
                for i, m in enumerate(members):
                    if isinstance(m, dict) and "name" in m:
                        yield (sec, slot, i if isinstance(val, list) else None), m

    def args_of(entry):
        a = entry["args"]
        return [a] if isinstance(a, str) else a

    # 1. search values (chosen, else SPEC's default: the written value / first option / low)
    def apply_entry(entry, key, comp):
        args = args_of(entry)
        e = dict(entry, args=args)
        if key in chosen:
            vals = chosen[key] if entry["type"] == "enum" else [chosen[key]] * len(args)
            if entry["type"] == "enum":
                vals = ref_option_values(e, vals)
        else:
            first = (ref_option_values(e, entry["targets"][0]) if entry["type"] == "enum"
                     else [entry["targets"][0]] * len(args))
            vals = []
            for i, a in enumerate(args):
                name = a.split("#")[0].lstrip("@")
                if comp is None:
                    vals.append(ns.get(name, first[i]))
                elif a.startswith("@"):
                    vals.append(comp.get("disabled", False))
                else:
                    vals.append(comp.get("args", {}).get(name, first[i]))
        for a, v in zip(args, vals):
            name, _, alias = a.partition("#")
            if comp is None:
                ns[name.lstrip("@")] = v
            elif name.startswith("@"):
                comp["disabled"] = v
            else:
                comp.setdefault("args", {})[name] = v
            if alias:
                aliases[alias] = v

    if "lr_search" in c:
        apply_entry({"type": "float", "args": ["learning_rate"], "targets": c["lr_search"]}, ("lr_search",), None)
    for i, entry in enumerate(c.get("search", [])):
        apply_entry(entry, (None, i), None)
    for where, comp in components():
        for i, entry in enumerate(comp.get("search", [])):
            apply_entry(entry, (where, i), comp)
    ns.update(cli)  # the command line beats everything (it names first-level params)
    # 2. apply
    for _, comp in components():
        for key, name in comp.get("apply", {}).items():
            value = aliases[name] if name in aliases else ns[name]
            if key == "@disabled":
                comp["disabled"] = value
            else:
                comp.setdefault("args", {})[key] = value
    # 3. first-level params as the run sees them, {name} references
    out = {k: ns[k] for k in ns if k in config or k in _new_params(config)}
    for sec in sections:
        if sec in c:
            out[sec] = ref_substitute(c[sec], ns)
    # 4. drop search/apply, disabled -> bool, refs -> the train component
    train = {}
    for sec in sections:
        for val in out.get(sec, {}).values():
            for m in (val if isinstance(val, list) else [val]):
                if isinstance(m, dict):
                    m.pop("search", None)
                    m.pop("apply", None)
                    if "disabled" in m:
                        m["disabled"] = bool(m["disabled"])
                    if sec == "train" and "name" in m:
                        cls, _, alias = m["name"].partition("#")
                        train.setdefault(alias or cls, m)
    for slot, val in out.get("validate", {}).items():
        if isinstance(val, list):
            out["validate"][slot] = [copy.deepcopy(train[m["ref"]]) if "ref" in m else m for m in val]
    return out


def _new_params(config):
    names = set()
    for entry in config.get("search", []):
        args = entry["args"] if isinstance(entry["args"], list) else [entry["args"]]
        names |= {a.split("#")[0].lstrip("@") for a in args}
    if "lr_search" in config:
        names.add("learning_rate")
    return names


# ----------------------------------------------------------------------------- generator

small_float = st.floats(0, 1, allow_nan=False).map(lambda x: round(x, 3))


@st.composite
def clara_configs(draw):
    n = draw(st.integers(1, 4))
    config = {"epochs": draw(st.integers(1, 9)), "learning_rate": 0.001}
    top_search = []
    env = draw(st.sampled_from([{}, {"DATA_ROOT": "/data"}, {"DATA_ROOT": "/data", "epochs": 42}]))
    transforms, float_aliases, bool_aliases = [], [], []
    for i in range(n):
        cls = f"Tx{i}"
        named = draw(st.booleans())
        comp = {"name": f"{cls}#{cls}a" if named else cls,
                "args": {"p": draw(small_float), "k": draw(st.integers(0, 3)), "e": "{epochs}",
                         "root": "{DATA_ROOT}/img_{epochs}", "code": "#@model.parameters()"}}
        if draw(st.booleans()):
            comp["disabled"] = draw(st.booleans())
        kind = draw(st.sampled_from(["none", "float", "float-alias", "attr", "attr-alias", "int", "enum-k",
                                     "joint", "list"]))
        if kind.startswith("float"):
            arg = "p" if kind == "float" else f"p#fa{i}"
            lo = draw(small_float)
            comp["search"] = [{"domain": "transform", "type": "float", "args": [arg], "targets": [lo, lo + 0.5]}]
            if kind == "float-alias":
                float_aliases.append(f"fa{i}")
        elif kind.startswith("attr"):
            arg = "@disabled" if kind == "attr" else f"@disabled#ba{i}"
            opts = draw(st.sampled_from([[[True], [False]], [True, False], [0.0, 1.0]]))
            comp["search"] = [{"domain": "transform", "type": "enum", "args": arg if draw(st.booleans()) else [arg],
                               "targets": opts}]
            if kind == "attr-alias":
                bool_aliases.append(f"ba{i}")
        elif kind == "int":
            comp["search"] = [{"domain": "net", "type": "int", "args": ["k"], "targets": [0, 5]}]
        elif kind == "enum-k":
            comp["search"] = [{"domain": "net", "type": "enum", "args": ["k"], "targets": [[1], [2], 3]}]
        elif kind == "joint":
            comp["search"] = [{"domain": "net", "type": "enum", "args": ["p", "k"],
                               "targets": [[0.1, 1], [0.2, 2], [0.3, 1]]}]
        elif kind == "list":
            comp["args"]["size"] = [8, 8]
            comp["search"] = [{"domain": "transform", "type": "enum", "args": ["size"],
                               "targets": [[[8, 8]], [[16, 16]], [[4, 4, 4]]]}]
        transforms.append(comp)
    # apply: share a float alias or a bool alias/tag with components that do not search that target
    if draw(st.booleans()):
        top_search.append({"domain": "transform", "type": "enum", "args": ["@tagA"], "targets": [[True], [False]]})
        bool_aliases.append("tagA")
    for comp in transforms:
        searched = {a.split("#")[0] for e in comp.get("search", []) for a in
                    (e["args"] if isinstance(e["args"], list) else [e["args"]])}
        apply = {}
        if float_aliases and "p" not in searched and draw(st.booleans()):
            apply["p"] = draw(st.sampled_from(float_aliases))
        if bool_aliases and "@disabled" not in searched and draw(st.booleans()):
            apply["@disabled"] = draw(st.sampled_from(bool_aliases))
        if apply:
            comp["apply"] = apply
    train = {"pre_transforms": transforms}
    m = draw(st.integers(0, 3))
    if m:  # optimizer alternatives, exactly one enabled via one-hot tags
        tags = [f"opt{j}" for j in range(m)]
        train["optimizer"] = [{"name": f"Opt{j}", "args": {"lr": "{learning_rate}"}, "apply": {"@disabled": t}}
                              for j, t in enumerate(tags)]
        onehots = [[j != h for j in range(m)] for h in range(m)]
        top_search.append({"domain": "net", "type": "enum", "args": tags, "targets": draw(st.permutations(onehots))})
    if top_search:
        config["search"] = top_search
    if draw(st.booleans()):
        config["lr_search"] = [0.0001, 0.01]
    config["train"] = train
    names = [(c["name"].partition("#")[2] or c["name"]) for c in transforms]
    refs = draw(st.lists(st.sampled_from(names), max_size=3))
    if refs:
        config["validate"] = {"pre_transforms": [{"ref": r} for r in refs]}
    return config, env


@st.composite
def configs_and_choices(draw):
    config, env = draw(clara_configs())
    chosen = {}
    use_defaults = draw(st.booleans())
    entries = []
    if "lr_search" in config:
        entries.append((("lr_search",), {"type": "float", "args": ["learning_rate"], "targets": config["lr_search"]}))
    entries += [((None, i), e) for i, e in enumerate(config.get("search", []))]
    for slot in ("pre_transforms",):
        for i, comp in enumerate(config["train"][slot]):
            entries += [((("train", slot, i), j), e) for j, e in enumerate(comp.get("search", []))]
    if not use_defaults:
        for key, e in entries:
            if e["type"] == "float":
                lo, hi = e["targets"]
                chosen[key] = round(draw(st.floats(lo, hi, allow_nan=False)), 4)
                chosen[key] = min(max(chosen[key], lo), hi)
            elif e["type"] == "int":
                chosen[key] = draw(st.integers(*e["targets"]))
            else:
                chosen[key] = draw(st.sampled_from(e["targets"]))
    cli = {"epochs": draw(st.integers(1, 9))} if draw(st.booleans()) else {}
    return config, env, chosen, entries, cli


def _target_of(key, entry):
    arg = (entry["args"] if isinstance(entry["args"], list) else [entry["args"]])[0]
    name = arg.split("#")[0]
    if key == ("lr_search",) or key[0] is None:
        return name.lstrip("@")
    (sec, slot, i), _ = key
    return f"{sec}.{slot}[{i}]." + ("disabled" if name.startswith("@") else f"args.{name}")


def overrides_for(params, entries, chosen, cli):
    out = [f"{k}={v}" for k, v in cli.items()]
    for key, entry in entries:
        if key not in chosen:
            continue
        target = _target_of(key, entry)
        param = next(p for p in params if target in p["sources"])
        value = chosen[key]
        if entry["type"] != "enum":
            out.append(f"{param['name']}={value!r}")
            continue
        values = ref_option_values(entry, value)
        label = next(lab for lab, v in param["choices"].items() if v == values)
        out.append(f"{param['name']}={label}")
    return out


@settings(max_examples=int(os.environ.get("CLARA_HYDRA_PROPERTY_EXAMPLES", "50")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(configs_and_choices())
def test_resolve_matches_reference_interpreter(tmp_path_factory, case):
    config, env, chosen, entries, cli = case
    folder = tmp_path_factory.mktemp("cfg")
    path = folder / "config_train.json"
    path.write_text(json.dumps(config))
    if env:
        (folder / "environment.json").write_text(json.dumps(env))
    params = space(path)
    assert len(params) == len(entries)
    overrides = overrides_for(params, entries, chosen, cli)
    got = resolve(path, overrides)
    want = reference(config, env, cli, chosen)
    assert _norm(got) == _norm(want), (overrides, json.dumps(config))


def _norm(tree):
    """Compare numbers as numbers (the schema makes learning_rate a float)."""
    if isinstance(tree, dict):
        return {k: _norm(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_norm(v) for v in tree]
    if isinstance(tree, (int, float)) and not isinstance(tree, bool):
        return float(tree)
    return tree
