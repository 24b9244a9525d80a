"""Benchmark: `clara-hydra convert` time against config size.

Generates synthetic Clara Train v4 configs (``config_train.json``) of growing size: first-level
params (``epochs``, ``learning_rate``, ...), a top-level search that picks one of two optimizers
(a list of alternatives, exactly one enabled: one through ``"disabled": "{useNovograd}"``, one
through ``"apply": {"@disabled": "useAdam"}``), a model with an enum search, and a
``train.pre_transforms`` list of N components; a few of them (``--searched``) carry a float
search on ``prob`` with an alias and an enum search on ``@disabled`` with an alias, and the
component after each applies both aliases. ``validate.pre_transforms`` holds ``{"ref": ...}``
members (by class name and by ``Cls#alias``). For each size it times

  - the real command, ``clara-hydra convert CONFIG.json -o DIR``, in a subprocess (interpreter
    start-up and imports included), and
  - the in-process phases in a separate worker process (warmed up on a tiny config first):
    ``clara_hydra.reader.read``, ``clara_hydra.convert.convert`` (search space, interpolations,
    the exactly-one-of check) and ``clara_hydra.render.write`` (render the YAML, write it),

each as CPU time (the command's user + system time; ``time.process_time`` in process: what the
load of other processes on the machine does not change), the median of R repeats (default 3, but
1 for the largest size), and prints a markdown
table plus the machine. Before timing, it checks the smallest config is valid: ``convert`` and
``resolve`` (default run, an optimizer switch, an alias override) give what the generator meant.

    python bench/bench_convert.py [--sizes 100 1000 3000 10000] [--repeat R] [--timeout 600]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FIXED = [  # the first pre_transforms, named by the validate refs
    {"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
    {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
    {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0,
                                              "b_max": 1.0, "clip": True}},
]


def _filler(i: int) -> dict:
    kind = i % 4
    if kind == 0:
        return {"name": "RandFlipd", "args": {"keys": ["image", "label"], "prob": 0.5, "spatial_axis": i % 3}}
    if kind == 1:
        return {"name": "RandRotate90d", "args": {"keys": ["image", "label"], "prob": 0.5, "max_k": 3}}
    if kind == 2:
        return {"name": "RandScaleIntensityd", "args": {"keys": "image", "factors": 0.1, "prob": 1.0}}
    return {"name": "RandGaussianNoised", "args": {"keys": "image", "prob": 0.1, "std": 0.05}}


def generate(n: int, searched: int = 4) -> dict:
    """A v4-style Clara config with ``n`` pre_transforms, ``searched`` of them searched."""
    searched = max(0, min(searched, (n - len(FIXED)) // 2))
    pre = [dict(c) for c in FIXED[:n]] + [_filler(i) for i in range(max(0, n - len(FIXED)))]
    span = (n - len(FIXED)) // max(searched, 1)
    for k in range(searched):
        j = len(FIXED) + k * span
        pre[j] = {"name": f"RandFlipd#flip{k}", "args": {"keys": ["image", "label"], "prob": 0.5, "spatial_axis": 0},
                  "search": [
                      {"domain": "transform", "type": "float", "args": [f"prob#flipProb{k}"], "targets": [0.0, 1.0]},
                      {"domain": "transform", "type": "enum", "args": [f"@disabled#flipOff{k}"],
                       "targets": [[True], [False]]}]}
        follower = _filler(1)  # RandRotate90d: same prob, switched on and off with the flip
        follower["apply"] = {"prob": f"flipProb{k}", "@disabled": f"flipOff{k}"}
        pre[j + 1] = follower
    refs = [{"ref": c["name"]} for c in FIXED[:n]] + ([{"ref": "flip0"}] if searched else [])
    return {
        "CLARA_TRAIN_VERSION": "4.1.0",
        "epochs": 2,
        "num_interval_per_valid": 1,
        "learning_rate": 1e-3,
        "multi_gpu": False,
        "amp": False,
        "search": [
            {"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [1e-4, 1e-2]},
            {"domain": "net", "type": "enum", "args": ["useNovograd", "useAdam"],
             "targets": [[False, True], [True, False]]},
        ],
        "train": {
            "loss": {"name": "DiceLoss", "args": {"to_onehot_y": True, "softmax": True}},
            "optimizer": [
                {"name": "Novograd", "args": {"params": "#@model.parameters()", "lr": "{learning_rate}"},
                 "disabled": "{useNovograd}"},
                {"name": "Adam", "args": {"params": "#@model.parameters()", "lr": "{learning_rate}"},
                 "apply": {"@disabled": "useAdam"}},
            ],
            "model": {
                "name": "UNet",
                "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [8, 16, 32],
                         "strides": [2, 2], "num_res_units": 1},
                "search": [{"domain": "net", "type": "enum", "args": ["channels"],
                            "targets": [[[8, 16, 32]], [[16, 32, 64]]]}],
            },
            "pre_transforms": pre,
            "dataset": {"name": "CacheDataset", "data_list_file_path": "{DATASET_JSON}",
                        "data_file_base_dir": "{DATA_ROOT}", "data_list_key": "training",
                        "args": {"transform": "@pre_transforms", "cache_rate": 1.0, "num_workers": 2}},
            "dataloader": {"name": "DataLoader", "args": {"dataset": "@dataset", "batch_size": 2, "shuffle": True}},
            "trainer": {"name": "SupervisedTrainer",
                        "args": {"max_epochs": "{epochs}", "train_data_loader": "@dataloader", "network": "@model",
                                 "loss_function": "@loss", "optimizer": "@optimizer", "amp": "{amp}"}},
        },
        "validate": {
            "pre_transforms": refs,
            "inferer": {"name": "SlidingWindowInferer", "args": {"roi_size": [32, 32, 32], "sw_batch_size": 4}},
            "key_metric": {"name": "MeanDice", "log_label": "val_mean_dice", "args": {"include_background": False}},
        },
    }


ENV = {"DATASET_JSON": "/data/dataset.json", "DATA_ROOT": "/data"}


def write_config(folder: str, n: int, searched: int) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "config_train.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(generate(n, searched), fh, indent=2)
    with open(os.path.join(folder, "environment.json"), "w", encoding="utf-8") as fh:
        json.dump(ENV, fh, indent=2)
    return path


# --------------------------------------------------------------------------- running

def cli() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "clara-hydra")
    if os.path.exists(exe):
        return [exe]
    found = shutil.which("clara-hydra")
    return [found] if found else [sys.executable, "-m", "clara_hydra"]


def run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CLARA_HYDRA_FULL_ERROR", None)
    proc = subprocess.run(cli() + args, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode:
        raise SystemExit(f"clara-hydra {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def cli_seconds(config: str, out_dir: str, repeat: int, timeout: float) -> float:
    """The command's CPU time (user + system of the child process: what other load on the machine
    does not change), the median of ``repeat`` runs."""
    import resource
    import statistics
    times = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = run(["convert", config, "-o", out_dir], timeout)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        if proc.stderr.strip():
            raise SystemExit(f"convert {config} warned:\n{proc.stderr[-2000:]}")
    return statistics.median(times)


def worker(config: str, out_dir: str, repeat: int, warm: str) -> None:
    """In-process phases, each the median CPU time (``time.process_time``) of ``repeat``; prints one
    JSON object."""
    import statistics

    from clara_hydra import convert as C
    from clara_hydra.reader import read
    from clara_hydra.render import write

    write(C.convert(read(warm)), os.path.join(out_dir, "warm"))  # imports (omegaconf, yaml), caches
    took: dict[str, list[float]] = {"read": [], "convert": [], "write": []}
    components = 0
    for _ in range(repeat):
        t0 = time.process_time()
        cfg = read(config)
        t1 = time.process_time()
        conv = C.convert(cfg)
        t2 = time.process_time()
        write(conv, out_dir)
        t3 = time.process_time()
        for key, dt in (("read", t1 - t0), ("convert", t2 - t1), ("write", t3 - t2)):
            took[key].append(dt)
        components = len(cfg.components)
    print(json.dumps({**{k: statistics.median(v) for k, v in took.items()}, "components": components,
                      "params": len(conv.params), "refs": len(cfg.refs)}))


def phase_seconds(config: str, out_dir: str, repeat: int, timeout: float, warm: str) -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", config, out_dir, str(repeat), warm],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise SystemExit(f"in-process phases of {config} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- validity

def check_valid(config: str, out_dir: str, n: int, searched: int, timeout: float) -> None:
    """The generated config converts and resolves to what the generator meant."""
    yaml_path = run(["convert", config, "-o", out_dir], timeout).stdout.strip().splitlines()[-1]
    params = json.loads(run(["space", config, "--json"], timeout).stdout)
    names = {p["name"]: p for p in params}
    opt = names["useNovograd_useAdam"]
    adam = next(label for label, values in opt["choices"].items() if values == [True, False])
    want_params = 3 + 2 * min(searched, (n - len(FIXED)) // 2)
    assert len(params) == want_params, (len(params), want_params, sorted(names))

    def resolve(*overrides: str) -> dict:
        return json.loads(run(["resolve", yaml_path, *overrides, "--json", "--enabled-only"], timeout).stdout)

    tree = resolve()
    assert tree["train"]["optimizer"]["name"] == "Novograd", tree["train"]["optimizer"]
    assert tree["train"]["optimizer"]["args"]["lr"] == 1e-3
    assert len(tree["train"]["pre_transforms"]) == n, len(tree["train"]["pre_transforms"])
    val = tree["validate"]["pre_transforms"]
    assert [v["name"] for v in val[:3]] == [c["name"] for c in FIXED], val
    if searched:
        assert val[3]["name"] == "RandFlipd#flip0" and val[3]["args"]["prob"] == 0.5, val[3]
    tree = resolve(f"{opt['name']}={adam}", "learning_rate=0.005", "flipProb0=0.25", "flipOff1=true")
    assert tree["train"]["optimizer"]["name"] == "Adam" and tree["train"]["optimizer"]["args"]["lr"] == 0.005
    pre = tree["train"]["pre_transforms"]
    assert len(pre) == n - 2, len(pre)  # flip1 and its follower switched off
    flip0 = next(i for i, c in enumerate(pre) if c["name"] == "RandFlipd#flip0")
    assert pre[flip0]["args"]["prob"] == 0.25 and pre[flip0 + 1]["args"]["prob"] == 0.25, pre[flip0:flip0 + 2]
    assert tree["validate"]["pre_transforms"][3]["args"]["prob"] == 0.25
    print(f"check: {n}-component config converts and resolves as generated "
          f"({len(params)} search params; optimizer switch, alias override and apply follow)", flush=True)


# --------------------------------------------------------------------------- main

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu}, {platform.machine()}, nproc {cores}, Python {platform.python_version()}, "
            f"{datetime.date.today().isoformat()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 3000, 10000],
                    help="numbers of pre_transforms components (default: 100 1000 3000 10000)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="median of R runs per size (default: 3, and 1 for the largest size)")
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds each command (CLI convert, or the in-process worker) may take (default 600)")
    ap.add_argument("--searched", type=int, default=4, help="searched pre_transforms (default 4)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder with the configs")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        config, out_dir, repeat, warm = a.worker
        worker(config, out_dir, int(repeat), warm)
        return

    sizes = sorted(set(a.sizes))
    tmp = tempfile.mkdtemp(prefix="clara-bench-convert-")
    try:
        warm = write_config(os.path.join(tmp, "warm"), 10, 1)
        check_valid(write_config(os.path.join(tmp, "check"), sizes[0], a.searched), os.path.join(tmp, "check", "out"),
                    sizes[0], a.searched, a.timeout)
        floor = cli_seconds(warm, os.path.join(tmp, "warm", "out"), 3, a.timeout)
        print(f"machine: {machine()}")
        print(f"command: {' '.join(os.path.basename(c) for c in cli())} convert CONFIG.json -o DIR; "
              f"CLI floor (10 components): {floor:.2f} CPU s\n")
        print("| size | components | file size | read CPU s | convert CPU s | write CPU s | CLI CPU s | "
              "CPU s per 1,000 components |")
        print("|---|---|---|---|---|---|---|---|")
        for n in sizes:
            repeat = a.repeat if a.repeat is not None else (1 if n == sizes[-1] and len(sizes) > 1 else 3)
            folder = os.path.join(tmp, f"n{n}")
            config = write_config(folder, n, a.searched)
            kib = os.path.getsize(config) / 1024
            size = f"{kib / 1024:.1f} MiB" if kib >= 1024 else f"{kib:.0f} KiB"
            try:
                ph = phase_seconds(config, os.path.join(folder, "phases"), repeat, a.timeout, warm)
                total = cli_seconds(config, os.path.join(folder, "out"), repeat, a.timeout)
            except subprocess.TimeoutExpired:
                print(f"| {n:,} | - | {size} | timeout (> {a.timeout:.0f} s) | | | | |", flush=True)
                break
            per_k = total / ph["components"] * 1000
            print(f"| {n:,} | {ph['components']:,} | {size} | {ph['read']:.3f} | {ph['convert']:.3f} | "
                  f"{ph['write']:.3f} | {total:.2f} | {per_k:.3f} |", flush=True)
        print(f"\nCPU seconds, median of {a.repeat if a.repeat is not None else '3 (1 for the largest size)'}; "
              f"components = all "
              f"components the reader finds (pre_transforms + model, loss, 2 optimizers, dataset, ...); "
              f"{a.searched} searched pre_transforms, each followed by one applying its aliases")
    finally:
        if a.keep:
            print(f"configs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
