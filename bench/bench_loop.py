"""Benchmark: clara-hydra's training loop against a hand-written MONAI loop.

Same model, data, transforms (the same cached dataset object) and batch size, in one process,
alternating the two loops; reports iterations per second and their ratio (ours / hand-written).
Validation is off in both. Run:

    python bench/bench_loop.py [--config examples/conf/demo_v41.yaml] [--epochs 3] [--repeats 3] [--volumes 8]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def effective_tree(config: str, overrides: list[str], data_env: dict) -> dict:
    from clara_hydra.resolve import compose, effective_from_cfg
    cfg = compose(os.path.dirname(os.path.abspath(config)), os.path.splitext(os.path.basename(config))[0],
                  overrides + [f"DATASET_JSON={data_env['DATASET_JSON']}", f"DATA_ROOT={data_env['DATA_ROOT']}"])
    return effective_from_cfg(cfg, enabled_only=True)


def ours(tree: dict, device: str, run_dir: str):
    """The objects train.py trains with (built by clara-hydra), and a function that runs them."""
    import torch

    from clara_hydra.train.run import _defaults, _parsed, _progress, build
    parser, bundle, _ = build(tree, config_file=None, device=device, amp=device == "cuda")
    torch.manual_seed(0)
    trainer = _parsed(parser, "train::trainer")
    _defaults(bundle, parser, trainer, None, run_dir)
    _progress(trainer)
    dataset = parser.get_parsed_content("train::dataset")

    def run(epochs: int) -> float:
        before = trainer.state.epoch
        trainer.state.max_epochs = before + epochs  # MONAI's Workflow.run() resumes up to max_epochs
        start = time.perf_counter()
        trainer.run()
        if device == "cuda":
            torch.cuda.synchronize()
        return (trainer.state.epoch - before) * trainer.state.epoch_length / (time.perf_counter() - start)
    return run, dataset, bundle


def hand_written(bundle: dict, dataset, device: str, batch_size: int, amp: bool):
    """The loop a MONAI user writes by hand for the same model, loss, optimizer and data."""
    import monai
    import torch
    from monai.bundle import ConfigParser
    from monai.data import DataLoader
    torch.manual_seed(0)
    fresh = ConfigParser(bundle, globals={"monai": monai, "torch": torch})  # independent instances, same init
    model = fresh.get_parsed_content("train::model").to(device)
    loss_fn = fresh.get_parsed_content("train::loss")
    opt = torch.optim.Adam(model.parameters(), lr=float(bundle["train"]["optimizer"].get("lr", 1e-3)))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0)
    scaler = torch.amp.GradScaler("cuda") if amp else None

    def run(epochs: int) -> float:
        model.train()
        n = 0
        start = time.perf_counter()
        for _ in range(epochs):
            for batch in loader:
                x = batch["image"].to(device, non_blocking=True)
                y = batch["label"].to(device, non_blocking=True)
                opt.zero_grad(set_to_none=False)
                if amp:
                    with torch.autocast("cuda"):
                        loss = loss_fn(model(x), y)
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss = loss_fn(model(x), y)
                    loss.backward()
                    opt.step()
                n += 1
        if device == "cuda":
            torch.cuda.synchronize()
        return n / (time.perf_counter() - start)
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=os.path.join(ROOT, "examples", "conf", "demo_v41.yaml"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--volumes", type=int, default=8)
    ap.add_argument("--device", default=None)
    ap.add_argument("overrides", nargs="*", help="extra KEY=VALUE overrides of the config")
    args = ap.parse_args()

    import torch

    from clara_hydra.synth import write
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    tmp = tempfile.mkdtemp(prefix="clara-bench-")
    env = write(os.path.join(tmp, "data"), n_train=args.volumes, n_val=1, shape=(64, 64, 48))
    # Adam for both loops, validation off (interval beyond the run), no extra console logging
    tree = effective_tree(args.config, ["useNovograd_useAdam=Adam", "num_interval_per_valid=100000"]
                          + args.overrides, env)
    # the hand-written loop logs nothing: drop the config's own console/TensorBoard logging and
    # validation from ours too (train.py's own additions stay: progress bar, NaN check, epoch-level TensorBoard)
    tree["train"]["handlers"] = [h for h in tree["train"]["handlers"] if h.get("name") not in (
        "StatsHandler", "ValidationHandler", "TensorBoardStatsHandler")]
    batch = int(tree["train"]["dataloader"]["args"]["batch_size"])
    run_ours, dataset, bundle = ours(tree, device, tmp)
    run_hand = hand_written(bundle, dataset, device, batch, amp=device == "cuda")
    run_ours(1), run_hand(1)  # warm-up (caches, allocator, cudnn)
    a, b = [], []
    for _ in range(args.repeats):
        a.append(run_ours(args.epochs))
        b.append(run_hand(args.epochs))
    ra, rb = statistics.median(a), statistics.median(b)
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine()
    extra = (" " + " ".join(args.overrides)) if args.overrides else ""
    print(f"| {device} ({name}, {os.cpu_count()} cores) | {os.path.basename(args.config)}{extra}, batch {batch}, "
          f"{args.volumes} volumes | {ra:.2f} | {rb:.2f} | {ra / rb:.3f} |")


if __name__ == "__main__":
    main()
