"""Benchmark: clara-hydra's training loop against a hand-written MONAI loop, like for like.

Both sides train the same model (independent instances, same init) on the same device, from the
same loader object (the one clara-hydra built: its ``ThreadDataLoader`` or ``DataLoader``, over
the same cached dataset, so the same data placement and the GPU cache where there is one), with
the same loss, the config's optimizer, ``zero_grad(set_to_none=True)`` (PyTorch's default, and
the trainer's), AMP on CUDA on both. Ours is what ``train.py`` trains with: MONAI's
``SupervisedTrainer`` as clara-hydra builds it, the network placed on the device as ``train()``
places it, and the NaN-loss check (:class:`clara_hydra.train.loss.LossWatch`). Validation and
the config's own console/TensorBoard logging are off on both sides.

The two run in pairs, interleaved (ours first in one pair, second in the next); each pair gives a
ratio of iterations per second, ours / hand-written. Reported: the median ratio with its min and
max and the number of pairs, and each side's median iterations per second. Run:

    python bench/bench_loop.py [--config examples/conf/demo_v41.yaml] [--epochs 3] [--pairs 10] [--volumes 8]
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


def ours(tree: dict, device: str):
    """The trainer train.py trains with (built by clara-hydra, placed as train() places it, with
    its NaN check), and a function that runs it for some epochs (iterations per second)."""
    import torch

    from clara_hydra.train.loss import LossWatch
    from clara_hydra.train.run import _parsed, build, place
    parser, bundle, _ = build(tree, config_file=None, device=device, amp=device == "cuda")
    torch.manual_seed(0)
    trainer = _parsed(parser, "train::trainer")
    place(device, trainer)
    LossWatch().attach(trainer)

    def run(epochs: int) -> float:
        before = trainer.state.epoch
        trainer.state.max_epochs = before + epochs  # MONAI's Workflow.run() resumes up to max_epochs
        start = time.perf_counter()
        trainer.run()
        if device == "cuda":
            torch.cuda.synchronize()
        return (trainer.state.epoch - before) * trainer.state.epoch_length / (time.perf_counter() - start)
    return run, trainer, bundle


def hand_written(bundle: dict, trainer, device: str):
    """The loop a MONAI user writes by hand for the same model, loss, optimizer and loader."""
    import monai
    import torch
    from monai.bundle import ConfigParser
    torch.manual_seed(0)
    fresh = ConfigParser(bundle, globals={"monai": monai, "torch": torch})  # independent instances, same init
    model = fresh.get_parsed_content("train::model").to(device)
    loss_fn = fresh.get_parsed_content("train::loss")
    optimizer = fresh.get_parsed_content("train::optimizer")  # (its params: this model's, through the reference)
    if optimizer.param_groups[0]["params"][0] is not next(model.parameters()):
        optimizer = type(optimizer)(model.parameters(), **optimizer.defaults)
    loader = trainer.data_loader  # the very loader ours reads: the same batches, the same placement
    amp = bool(getattr(trainer, "amp", False))
    scaler = torch.amp.GradScaler("cuda") if amp else None
    blocking = not bool(getattr(trainer, "non_blocking", False))

    def run(epochs: int) -> float:
        model.train()
        n = 0
        start = time.perf_counter()
        for _ in range(epochs):
            for batch in loader:
                x = batch["image"].to(device, non_blocking=not blocking)
                y = batch["label"].to(device, non_blocking=not blocking)
                optimizer.zero_grad(set_to_none=True)
                if amp:
                    with torch.autocast("cuda"):
                        loss = loss_fn(model(x), y)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss = loss_fn(model(x), y)
                    loss.backward()
                    optimizer.step()
                n += 1
        if device == "cuda":
            torch.cuda.synchronize()
        return n / (time.perf_counter() - start)
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=os.path.join(ROOT, "examples", "conf", "demo_v41.yaml"))
    ap.add_argument("--epochs", type=int, default=3, help="epochs per measurement")
    ap.add_argument("--pairs", type=int, default=10, help="interleaved pairs of measurements")
    ap.add_argument("--volumes", type=int, default=8)
    ap.add_argument("--device", default=None, help="cuda where there is one, else cpu")
    ap.add_argument("overrides", nargs="*", help="extra KEY=VALUE overrides of the config")
    args = ap.parse_args()

    import torch

    from bench.pairs import interleaved, spread
    from clara_hydra.synth import write
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    tmp = tempfile.mkdtemp(prefix="clara-bench-")
    env = write(os.path.join(tmp, "data"), n_train=args.volumes, n_val=1, shape=(64, 64, 48))
    # Adam for both loops, validation off (interval beyond the run), no extra console logging
    tree = effective_tree(args.config, ["num_interval_per_valid=100000"] + args.overrides, env)
    tree["train"]["handlers"] = [h for h in tree["train"].get("handlers") or [] if h.get("name") not in (
        "StatsHandler", "ValidationHandler", "TensorBoardStatsHandler")]
    run_ours, trainer, bundle = ours(tree, device)
    run_hand = hand_written(bundle, trainer, device)
    model = next(trainer.network.parameters())
    assert model.device.type == device, f"the network is on {model.device}, not {device}"
    run_ours(1), run_hand(1)  # warm-up (caches, allocator, cudnn)
    a, b = interleaved(lambda _i: run_ours(args.epochs), lambda _i: run_hand(args.epochs), args.pairs)
    low, mid, high = spread(a, b)
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine()
    extra = (" " + " ".join(args.overrides)) if args.overrides else ""
    batch = trainer.data_loader.batch_size
    print(f"| {device} ({name}, {os.cpu_count()} cores) | {os.path.basename(args.config)}{extra}, batch {batch}, "
          f"{args.volumes} volumes, {args.epochs} epoch(s) x {len(a)} pairs | {statistics.median(a):.2f} | "
          f"{statistics.median(b):.2f} | {low:.3f} / {mid:.3f} / {high:.3f} |")


if __name__ == "__main__":
    main()
