"""The ``clara-hydra`` command line. Imports stay lazy so ``--help`` answers at once."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command line's parser, and each command's own parser by name."""
    p = argparse.ArgumentParser(
        prog="clara-hydra",
        description="Run NVIDIA Clara Train configs and their AutoML search spaces with Hydra, "
                    "Optuna and MONAI.",
        epilog="Set CLARA_HYDRA_FULL_ERROR=1 to see tracebacks.")
    from . import __version__
    p.add_argument("--version", action="version", version=f"clara-hydra {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser("convert", help="write a Hydra primary config (YAML) for a Clara config",
                       description="Convert a Clara config_train.json into a Hydra primary config. "
                                   "Prints the path of the YAML it wrote.")
    c.add_argument("config", metavar="CONFIG.json")
    c.add_argument("-o", "--output-dir", default="conf", metavar="DIR",
                   help="folder to write <name>.yaml into (default: conf)")
    c.add_argument("--env", metavar="ENV.json",
                   help="environment.json to use (default: the one beside CONFIG, if any)")
    c.add_argument("--automl", metavar="AUTOML.json",
                   help="Clara's config_automl.json to map into hydra.sweeper (default: the config_automl.json "
                        "beside CONFIG, if any; 'none' reads none)")

    s = sub.add_parser("space", help="list the search space",
                       description="List the search space: one sweep parameter per search entry.")
    s.add_argument("config", metavar="CONFIG.json")
    s.add_argument("--json", action="store_true", help="print JSON (one object per parameter)")
    s.add_argument("--env", metavar="ENV.json")

    r = sub.add_parser("resolve", help="print the effective config for some overrides",
                       description="Compose the converted config through Hydra with KEY=VALUE overrides "
                                   "and print the effective Clara-level config (the path train.py takes).")
    r.add_argument("config", metavar="CONFIG", help="a Clara JSON, or a converted YAML")
    r.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    r.add_argument("--json", action="store_true", help="print JSON (default: YAML)")
    r.add_argument("--enabled-only", action="store_true",
                   help="drop disabled components; each alternatives list becomes its one enabled member")
    r.add_argument("--env", metavar="ENV.json")
    rp = sub.add_parser("report", help="plot a study and print its top trials",
                        description="Write optimization_history.png, param_importances.png and "
                                    "parallel_coordinate.png for a study, and print its top trials. The same "
                                    "storage opens in optuna-dashboard.")
    rp.add_argument("study", metavar="STUDY", help="the study name (hydra.sweeper.study_name: the config's name)")
    rp.add_argument("--storage", default="sqlite:///clara_hydra_sweeps.db",
                    help="the storage URL (default: sqlite:///clara_hydra_sweeps.db); journal:PATH for a journal file")
    rp.add_argument("-o", "--output-dir", default=None, metavar="DIR", help="where the PNGs go (default: report-STUDY)")
    rp.add_argument("--top", type=int, default=5)
    db = sub.add_parser("dashboard", help="serve optuna-dashboard on a sweep's study",
                        description="Serve optuna-dashboard (the optional extra clara-hydra[dashboard]) on the "
                                    "storage of a sweep, until Ctrl-C; print its address first.")
    db.add_argument("study", nargs="?", default=None, metavar="STUDY",
                    help="the study to open (default: the storage's only one, else the list)")
    db.add_argument("--storage", default="sqlite:///clara_hydra_sweeps.db",
                    help="the storage URL (default: sqlite:///clara_hydra_sweeps.db); journal:PATH for a journal file")
    db.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1, this machine "
                                                         "only; 0.0.0.0: every interface)")
    db.add_argument("--port", type=int, default=8080, help="the port (default 8080; 0: a free one)")

    sub.add_parser("train", add_help=False, help="train a converted config (the Hydra app; -m runs its sweep)",
                   description="clara-hydra train [--mmar DIR] [--config-name NAME] [--mlflow] [-m] [KEY=VALUE ...]: "
                               "the app of train.py on DIR/conf/NAME.yaml (default: ./conf/config_train.yaml); "
                               "every Hydra flag works (--cfg job, --help, -sc install=bash); --mlflow: the run "
                               "(a sweep: its trials) in MLflow, at MLFLOW_TRACKING_URI (else ./mlflow.db)")

    sub.add_parser("validate", add_help=False, help="validate a checkpoint on the validation data (Clara's "
                                                    "validate.sh)",
                   description="clara-hydra validate [--mmar DIR] [--eval-config FILE|none] [--config-name NAME] "
                               "[KEY=VALUE ...]: the MMAR's config/config_validation.json (else the training "
                               "config's validate section) with the checkpoint MMAR_CKPT names (the MMAR's "
                               "models/model.pt) or the TorchScript model it loads; per-case metrics and summaries "
                               "go to MMAR_EVAL_OUTPUT_PATH (the MMAR's eval/), else the run folder's eval/")

    e = sub.add_parser("export", help="write a run (or a sweep's trial) as a complete MMAR",
                       description="Write the MMAR of a run folder (a single run, or a trial's folder of a sweep): "
                                   "config/config_train.json with the run's values in and no search blocks, "
                                   "environment.json, the validation config, models/model.pt, models/model.ts "
                                   "(where the network scripts) and conf/. validate, infer and train run on it.")
    e.epilog = ("clara-hydra export --mmar DIR [KEY=VALUE ...]: Clara's export.sh, the network of the MMAR's "
                "checkpoint (MMAR_CKPT, models/model.pt) as TorchScript (MMAR_TORCHSCRIPT, else model.ts beside it)")
    e.add_argument("run", metavar="RUN_DIR")
    e.add_argument("-o", "--output-dir", required=True, metavar="DIR", help="the MMAR folder to write")
    e.add_argument("--force", action="store_true",
                   help="write over an earlier export in DIR (never over a config with a search space, nor over "
                        "the MMAR the run trained from: those are refused; give another DIR)")
    e.add_argument("--bundle", action="store_true",
                   help="write a MONAI bundle instead (configs/train.json, inference.json, metadata.json, models/, "
                        "scripts/, docs/), which python -m monai.bundle runs without clara-hydra")

    sub.add_parser("infer", add_help=False, help="predict on a datalist list without labels (Clara's infer.sh)",
                   description="clara-hydra infer [--mmar DIR] [--datalist-key KEY] [--eval-config FILE|none] "
                               "[KEY=VALUE ...]: the evaluation of validate on the datalist's KEY list (default: "
                               "INFER_DATALIST_KEY, else test) without labels or metrics; each prediction is saved "
                               "as NIfTI with its input's affine into MMAR_EVAL_OUTPUT_PATH, else the run folder's "
                               "infer/")

    d = sub.add_parser("synth-data", help="write a small synthetic NIfTI data set with its datalist",
                       description="Write a synthetic NIfTI data set (3D volumes with blobs and their labels), a "
                                   "Decathlon-style dataset.json (training/validation) and an environment.json "
                                   "(DATA_ROOT, DATASET_JSON, MMAR_CKPT_DIR, MMAR_CKPT), so any config can train.")
    d.add_argument("dir", metavar="DIR")
    d.add_argument("--train", type=int, default=2, help="training volumes (default 2)")
    d.add_argument("--val", type=int, default=1, help="validation volumes (default 1)")
    d.add_argument("--shape", type=int, nargs=3, default=[96, 96, 96], metavar=("X", "Y", "Z"))
    d.add_argument("--spacing", type=float, nargs=3, default=[1.0, 1.0, 1.0], metavar=("SX", "SY", "SZ"),
                   help="voxel size in mm (default 1 1 1)")
    d.add_argument("--seed", type=int, default=0)
    return p, sub.choices


def _report(args) -> int:
    from .sweep.report import report
    report(args.study, args.storage, args.output_dir or f"report-{args.study}", top=args.top)
    return 0


def _dashboard(args) -> int:
    from .sweep.dashboard import serve
    try:
        serve(args.study, args.storage, args.host, args.port)
    except KeyboardInterrupt:  # how it is stopped: not a failure
        print("clara-hydra: the dashboard stopped", file=sys.stderr)
    return 0


def _export(args) -> int:
    if args.bundle:
        from .bundle_export import export_bundle
        lines = export_bundle(args.run, args.output_dir, force=args.force)
    else:
        from .export import export
        lines = export(args.run, args.output_dir, force=args.force)
    for line in lines:
        print(f"clara-hydra: {line}", file=sys.stderr)
    print(os.path.abspath(args.output_dir))
    return 0


def _synth(args) -> int:
    import os

    from .synth import check, write
    check(n_train=args.train, n_val=args.val, shape=args.shape, spacing=args.spacing, seed=args.seed)
    write(args.dir, n_train=args.train, n_val=args.val, shape=args.shape, seed=args.seed, spacing=args.spacing)
    print(os.path.join(os.path.abspath(args.dir), "environment.json"))
    return 0


def _convert(args) -> int:
    from . import convert as C
    from .automl import config as A
    from .reader import read
    cfg = read(args.config, args.env)
    path = None if args.automl == "none" else (args.automl or A.beside(args.config))
    automl = A.read(path, args.config) if path else None
    conv = C.convert(cfg, automl=automl)
    C.emit_warnings(conv)
    if automl is not None:
        print(f"clara-hydra: AutoML settings from {automl.file}", file=sys.stderr)
        for note in automl.notes:
            print(f"note: {automl.file}: {note}", file=sys.stderr)
    from .render import write
    print(write(conv, args.output_dir))
    return 0


def _space(args) -> int:
    from . import space as S
    from .paths import clara
    from .reader import read

    params = S.build(read(args.config, args.env))
    if args.json:
        print(S.to_json(params))
        return 0
    if not params:
        print("no search space: this config has no search entries")
        return 0
    rows = [("NAME", "TYPE", "DOMAIN", "SWEEP", "WHEN", "SETS")]
    for p in params:
        rows.append((p.name, p.type, p.domain or "-", p.sweep, p.when.text() if p.when else "-",
                     ", ".join(clara(s) for s in p.sources)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5])
    labelled = [p for p in params if p.mode == "label"]
    for p in labelled:
        print(f"\n{p.name}: " + "; ".join(f"{lab} = {json.dumps(v)}" for lab, v in p.choices.items()))
    return 0


def _resolve(args) -> int:
    from .resolve import resolve_file

    tree = resolve_file(args.config, args.overrides, enabled_only=args.enabled_only, env=args.env)
    if args.json:
        try:
            text = json.dumps(tree, indent=2, allow_nan=False)
        except ValueError:
            from .errors import ClaraHydraError
            where = _non_finite(tree)
            raise ClaraHydraError(f"the value is {where[1]}, which JSON cannot hold", location=where[0],
                                  hint="give a finite number, or print YAML (without --json)") from None
        print(text)
    else:
        import yaml
        print(yaml.safe_dump(tree, sort_keys=False, default_flow_style=False, width=100).rstrip())
    return 0


def _split_option(words: list[str], flag: str) -> tuple[str | None, list[str]]:
    """(the value of ``FLAG VALUE`` / ``FLAG=VALUE``, or None; ``""`` when it has none) and the
    other words."""
    value, rest, i = None, [], 0
    while i < len(words):
        word = words[i]
        if word == flag:
            value = words[i + 1] if i + 1 < len(words) else ""
            i += 2
            continue
        if word.startswith(flag + "="):
            value = word.split("=", 1)[1]
        else:
            rest.append(word)
        i += 1
    return value, rest


def _split_mmar(words: list[str]) -> tuple[str | None, list[str]]:
    return _split_option(words, "--mmar")


def train_argv(argv: list[str]) -> list[str]:
    """``[--mmar DIR] [Hydra args]`` -> the Hydra app's argv: ``--config-dir DIR/conf`` and
    ``--config-name config_train`` unless given."""
    from .errors import ClaraHydraError

    mmar, args = _split_mmar(argv)
    if mmar == "":
        raise ClaraHydraError("--mmar needs a folder", location="--mmar", hint="--mmar path/to/MMAR")
    root = mmar or "."
    if mmar is not None and not os.path.isdir(mmar):
        raise ClaraHydraError("no such MMAR folder", file=mmar, hint="give the folder that holds config/ and conf/")
    has = lambda *flags: any(a in flags or any(a.startswith(f + "=") for f in flags) for a in args)  # noqa: E731
    if not has("--config-dir", "-cd"):
        conf = os.path.join(root, "conf")
        if not os.path.isdir(conf):
            src = os.path.join(root, "config", "config_train.json")
            raise ClaraHydraError("no conf/ folder with converted configs", file=os.path.abspath(root),
                                  hint=f"convert first: clara-hydra convert {src} -o {conf}")
        args = ["--config-dir", os.path.abspath(conf)] + args
        if not has("--config-name", "-cn"):
            yamls = sorted(f[:-5] for f in os.listdir(conf) if f.endswith(".yaml"))
            name = "config_train" if "config_train" in yamls or len(yamls) != 1 else yamls[0]
            if name not in yamls and not has("-sc", "--shell-completion"):
                raise ClaraHydraError(f"no {name}.yaml in {conf}", file=os.path.abspath(conf),
                                      hint=("pick one with --config-name: " + ", ".join(yamls)) if yamls else
                                      "convert a config into it: clara-hydra convert config/config_train.json -o conf")
            args = args + ["--config-name", name]
    return args


def _train(argv: list[str], function=None) -> int:
    from .app import main as app_main
    from .app import task
    from .errors import ClaraHydraError
    if function is None and "--mlflow" in argv:  # (the flag is clara-hydra's: Hydra never sees it)
        from .mlflow_client import ENV_MLFLOW
        argv = [a for a in argv if a != "--mlflow"]
        os.environ[ENV_MLFLOW] = "1"
    try:
        hydra_args = train_argv(argv)
    except ClaraHydraError as exc:
        print(exc.format(), file=sys.stderr)
        return exc.exit_code
    sys.argv = ["clara-hydra"] + hydra_args
    mmar, _ = _split_mmar(argv)
    if mmar and function is None:  # train (not validate, infer): its model is left in the MMAR, as train.sh did
        from .paths import ENV_MMAR
        os.environ[ENV_MMAR] = os.path.abspath(mmar)
    app_main(function=function or task)
    return 0


def _validate(argv: list[str], command: str = "validate") -> int:
    """``clara-hydra validate`` and ``clara-hydra infer`` (``--datalist-key KEY``)."""
    from .app import infer_task, validate_task
    from .errors import ClaraHydraError
    from .train.entry import ENV_EVAL_CONFIG, ENV_INFER_KEY
    try:
        if any(a in ("-m", "--multirun") for a in argv):
            raise ClaraHydraError(f"{command} runs once; it has no sweep", location="-m",
                                  hint="drop -m (sweep with clara-hydra train -m)")
        given, argv = _split_option(argv, "--eval-config")
        key, argv = _split_option(argv, "--datalist-key") if command == "infer" else (None, argv)
        for flag, value in (("--eval-config", given), ("--datalist-key", key)):
            if value == "":
                raise ClaraHydraError(f"{flag} needs a value", location=flag,
                                      hint="--eval-config config/config_validation.json (or none); --datalist-key test")
        mmar, _ = _split_mmar(argv)
        # (the training config need not have the evaluation config's keys)
        argv = _eval_keys(argv, _eval_config(mmar, given, command == "infer"))
    except ClaraHydraError as exc:
        print(exc.format(), file=sys.stderr)
        return exc.exit_code
    if given is not None:
        os.environ[ENV_EVAL_CONFIG] = os.path.abspath(given) if given != "none" else given
    if key is not None:
        os.environ[ENV_INFER_KEY] = key
    return _train(argv, infer_task if command == "infer" else validate_task)


def _eval_config(mmar: str | None, given: str | None, infer: bool) -> str | None:
    """The evaluation config a validate (``infer``) run will read, as far as the command line
    tells: the given one, else the MMAR's config/config_validation.json (config_inference.json)."""
    from .evalconf import find
    return find(os.path.join(mmar or ".", "config", "config_train.json"), given, infer)


def _eval_keys(argv: list[str], eval_config: str | None) -> list[str]:
    """``KEY=VALUE`` of an MMAR path (``MMAR_CKPT``, ``MMAR_EVAL_OUTPUT_PATH`` ...) or of a
    first-level key of the evaluation config (``dont_load_ts_model=true``) as Hydra's
    ``++KEY=VALUE``: the training config that Hydra composes need not have it (as Clara's
    ``--set`` needed no declaration)."""
    from .paths import MMAR_PATH_KEYS
    own = set(MMAR_PATH_KEYS) | {"MMAR_CKPT_DIR"}
    try:
        with open(eval_config or "") as fh:
            own |= {k for k, v in json.load(fh).items() if not isinstance(v, (dict, list))}
    except (OSError, ValueError, AttributeError):
        pass  # none, or the run reads it again and says what is wrong
    out = []
    for arg in argv:
        key = arg.split("=", 1)[0]
        out.append("++" + arg if "=" in arg and key in own and not arg.startswith(("+", "~", "-")) else arg)
    return out


def _completion(argv: list[str]) -> int | None:
    """Hydra's bash completion calls ``clara-hydra -sc query=bash`` with the line in COMP_LINE:
    hand ``clara-hydra train ...`` lines to the train app."""
    line = os.environ.get("COMP_LINE", "")
    words = line.split(" ")
    if len(words) < 2 or words[1] != "train":
        return None
    mmar, kept = _split_mmar(words[2:])
    os.environ["COMP_LINE"] = " ".join(["clara-hydra"] + kept)
    os.environ["COMP_POINT"] = str(len(os.environ["COMP_LINE"]))
    return _train((["--mmar", mmar] if mmar else []) + list(argv))


def _non_finite(tree) -> tuple[str, float]:
    """(place, value) of the first NaN or infinite number in a resolved tree."""
    import math

    from .paths import clara, nodes
    return next(((clara(loc), v) for loc, v in nodes(tree) if isinstance(v, float) and not math.isfinite(v)),
                ("<top level>", float("nan")))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        return _train(argv[1:])
    if argv[:1] in (["validate"], ["infer"]):
        return _validate(argv[1:], argv[0])
    if argv[:1] == ["export"] and any(a == "--mmar" or a.startswith("--mmar=") for a in argv):
        from .app import torchscript_task  # Clara's export.sh: the MMAR's model.pt as model.ts
        return _train(argv[1:], torchscript_task)
    if any(a in ("-sc", "--shell-completion") or a.startswith("--shell-completion=") for a in argv):
        done = _completion(argv)
        if done is not None:
            return done
    parser, commands = _parser()
    if not argv:  # what it does, not an error
        parser.print_help()
        return 0
    if argv and argv[0] in commands and argv[0] not in ("train", "validate", "infer"):
        # flags before or after the overrides: `resolve cfg.json a=1 --json` and `resolve --json cfg.json a=1`
        args = commands[argv[0]].parse_intermixed_args(argv[1:])
        args.command = argv[0]
    else:
        args = parser.parse_args(argv)
    handler = {"convert": _convert, "space": _space, "resolve": _resolve, "synth-data": _synth,
               "report": _report, "export": _export, "dashboard": _dashboard}[args.command]
    from .app import fail, full_error_wanted
    from .errors import allow_large_configs

    allow_large_configs()
    try:
        return handler(args)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # every failure is one line (a bug: "internal error", exit 1)
        where = "another DIR" if args.command == "synth-data" else "-o DIR"
        return fail(exc, full=full_error_wanted(), os_hint=where, file=getattr(args, "config", None))
    except KeyboardInterrupt as exc:
        return fail(exc, full=full_error_wanted())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
