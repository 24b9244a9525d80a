"""GPU readiness: the CUDA checks of one machine, in one command, as Markdown rows for BENCHMARKS.md.

    python bench/gpu_check.py [--quick] [--out FILE]

1. loop: clara-hydra's training loop against a hand-written MONAI loop (bench/bench_loop.py),
   AMP on; target ratio >= 0.95.
2. cache: one training run of examples/conf/demo_v41.yaml; its log must say that the cached
   (deterministic) data is kept on the GPU.
3. workers: a sweep with ``workers=0:0:0:0`` (4 trials at a time on GPU 0); the GPU's busy share
   over the sweep (nvidia-smi, every 0.2 s); target >= 90% for a small model.
4. ddp: with 2 GPUs or more, a 2-GPU DDP run (CLARA_HYDRA_NPROC=2, NCCL); its key metric must equal
   a one-process validation of its checkpoint.

Without CUDA each check runs on the CPU where it can (a smaller loop, the sweep with CPU workers,
DDP with gloo) so the script itself is checked; the rows then say ``cpu`` and the GPU-only
measures say ``n/a``. --quick makes every check small (one epoch, two trials: a smoke run of the script, which the
tests run on the CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "examples", "conf")


def _run(cmd: list[str], env: dict | None = None, cwd: str | None = None, timeout: float = 1800) -> str:
    proc = subprocess.run(cmd, env=dict(os.environ, **(env or {})), cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited with {proc.returncode}:\n{out[-3000:]}")
    return out


def machine(cuda: bool) -> str:
    import torch
    if cuda:
        return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), torch {torch.__version__}"


def check_loop(quick: bool) -> str:
    args = ["--epochs", "1", "--pairs", "2", "--volumes", "2"] if quick else ["--epochs", "2", "--pairs", "10",
                                                                               "--volumes", "8"]
    out = _run([sys.executable, os.path.join(ROOT, "bench", "bench_loop.py"), *args])
    row = [ln for ln in out.splitlines() if ln.startswith("| ")][-1]
    low, ratio, high = (float(x) for x in row.rstrip(" |").rsplit("|", 1)[-1].split("/"))
    pairs = re.search(r"x (\d+) pairs", row).group(1)
    return (f"| loop: ours / hand-written (AMP on CUDA), {pairs} interleaved pairs | median {ratio:.3f} "
            f"(min {low:.3f}, max {high:.3f}) | >= 0.95 | {'ok' if ratio >= 0.95 else 'LOW'} |")


def check_cache(tmp: str, cuda: bool, quick: bool) -> str:
    out = _run([sys.executable, os.path.join(ROOT, "train.py"), "--config-name", "demo_v41",
                f"hydra.run.dir={os.path.join(tmp, 'cache_run')}", *(["epochs=1"] if quick else [])])
    on_gpu = "keeping the cached data on the GPU" in out
    want = "yes" if cuda else "no (CPU)"
    got = "yes" if on_gpu else "no"
    return f"| cache: the cached data kept on the GPU | {got} | {want} | {'ok' if (got == 'yes') == cuda else 'NO'} |"


class BusySampler:
    """nvidia-smi's GPU utilization every 0.2 s, while it runs."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                  "-i", "0"], capture_output=True, text=True).stdout.strip()
            if out.isdigit():
                self.values.append(float(out))
            time.sleep(0.2)

    def __enter__(self) -> BusySampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def check_workers(tmp: str, cuda: bool, quick: bool) -> str:
    trials = 2 if quick else 16
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "-m", "--config-name", "demo_v41",
           *(["epochs=1"] if quick else []),
           f"hydra.sweeper.n_trials={trials}", "hydra.sweeper.workers='0:0:0:0'", "hydra.sweeper.pruner=none",
           "hydra.sweeper.export_best=false", f"hydra.sweeper.storage=sqlite:///{os.path.join(tmp, 'w.db')}",
           f"hydra.sweep.dir={os.path.join(tmp, 'workers')}"]
    sampling = cuda and shutil.which("nvidia-smi") is not None
    start = time.perf_counter()
    if sampling:
        with BusySampler() as busy:
            _run(cmd)
        share = sum(v > 0 for v in busy.values) / max(len(busy.values), 1)
        mean = sum(busy.values) / max(len(busy.values), 1)
        shown = f"{100 * share:.0f}% of samples busy, mean utilization {mean:.0f}%"
        verdict = "ok" if share >= 0.9 else "LOW"
    else:
        _run(cmd)
        shown, verdict = "n/a (no CUDA: CPU workers ran)", "ran"
    took = time.perf_counter() - start
    return f"| workers 0:0:0:0: {trials} trials in {took:.0f} s, GPU busy share | {shown} | >= 90% | {verdict} |"


def check_ddp(tmp: str, cuda: bool, gpus: int, quick: bool) -> str:
    if cuda and gpus < 2:
        return "| ddp: 2-GPU trial | n/a (one GPU) | key metric = 1-process validation | skipped |"
    from clara_hydra.synth import write
    env = write(os.path.join(tmp, "ddp_data"), n_train=4, n_val=3, shape=(48, 48, 32))
    data = [f"DATASET_JSON={env['DATASET_JSON']}", f"DATA_ROOT={env['DATA_ROOT']}"]
    run = os.path.join(tmp, "ddp_run")
    start = time.perf_counter()
    out = _run([sys.executable, os.path.join(ROOT, "train.py"), "--config-name", "demo_v41", *data,
                f"hydra.run.dir={run}", *(["epochs=1"] if quick else [])], env={"CLARA_HYDRA_NPROC": "2"})
    took = time.perf_counter() - start
    value = json.load(open(os.path.join(run, ".ddp", "rank0.json")))["value"]
    (ckpt,) = [f for f in os.listdir(os.path.join(run, "models")) if f.endswith(".pt")]
    check = _run([sys.executable, "-m", "clara_hydra", "validate", "--config-dir", DEMO, "--config-name", "demo_v41",
                  *data, f"MMAR_CKPT='{os.path.join(run, 'models', ckpt)}'", f"hydra.run.dir={run}_val"])
    validated = float(re.search(r"val_mean_dice = ([\d.]+)", check).group(1))
    backend = "NCCL" if "NCCL" in out else "gloo"
    same = abs(validated - value) < 1e-4
    return (f"| ddp: 2 processes ({backend}), {took:.0f} s | key metric {value:.4f}, 1-process validation "
            f"{validated:.4f} | equal | {'ok' if same else 'DIFFERENT'} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small runs: a smoke test of the script")
    ap.add_argument("--out", help="also append the rows to this file")
    ap.add_argument("--only", nargs="+", choices=["loop", "cache", "workers", "ddp"])
    args = ap.parse_args()
    import torch
    cuda = torch.cuda.is_available()
    gpus = torch.cuda.device_count() if cuda else 0
    tmp = tempfile.mkdtemp(prefix="clara-gpu-check-")
    rows = [f"Machine: {machine(cuda)}; {time.strftime('%Y-%m-%d')}; `python bench/gpu_check.py"
            f"{' --quick' if args.quick else ''}`", "", "| check | result | target | verdict |", "|---|---|---|---|"]
    print("\n".join(rows), flush=True)
    checks = {"loop": lambda: check_loop(args.quick), "cache": lambda: check_cache(tmp, cuda, args.quick),
              "workers": lambda: check_workers(tmp, cuda, args.quick),
              "ddp": lambda: check_ddp(tmp, cuda, gpus, args.quick)}
    failed = 0
    for name, check in checks.items():
        if args.only and name not in args.only:
            continue
        try:
            row = check()
        except Exception as exc:  # noqa: BLE001 - one check's failure is its row; the others still run
            failed += 1
            row = f"| {name} | FAILED: {str(exc).splitlines()[0]} | | FAILED |"
            print(str(exc), file=sys.stderr)
        rows.append(row)
        print(row, flush=True)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write("\n".join(rows) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
