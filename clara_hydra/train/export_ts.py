"""A trained network as TorchScript (``models/model.ts`` of an exported MMAR)."""

from __future__ import annotations

from typing import Any

from ..errors import BuildError, first_line


def saved_weights(checkpoint: str) -> Any:
    """The network's state in a checkpoint MONAI's CheckpointSaver (or clara-hydra's) wrote:
    ``{"model": state}`` or, for one saved object, the state itself."""
    import torch
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return saved["model"] if isinstance(saved, dict) and isinstance(saved.get("model"), dict) else saved


def load_weights(network, checkpoint: str) -> None:
    """Load :func:`saved_weights` of ``checkpoint`` into ``network``; another network's is one line."""
    state = saved_weights(checkpoint)
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:  # another network's weights (another config, a sweep trial's searched values)
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        raise BuildError(f"the checkpoint does not fit the network: {lines[1] if len(lines) > 1 else first_line(exc)}",
                         file=checkpoint, location="train.model",
                         hint="use the config it was trained with (a sweep's trial: its searched values, or "
                              "clara-hydra export of the trial)") from None


def script(tree: dict, checkpoint: str, out: str, config_file: str | None) -> str | None:
    """Write ``tree``'s network (an effective, enabled-only Clara config) with the weights of
    ``checkpoint`` as TorchScript into ``out``; give why not (one line) where it does not script."""
    import torch

    from .ids import item_id
    from .run import _parsed, build
    parser, _bundle, _era = build({**tree, "validate": {}}, config_file=config_file, device="cpu", amp=False,
                                  validate_only=True)
    network = _parsed(parser, item_id("train", "model"))
    load_weights(network, checkpoint)
    network.eval()
    try:
        scripted = torch.jit.script(network)
    except Exception as exc:  # noqa: BLE001 - torch.jit's many refusals: one line
        return f"{type(network).__name__} does not script ({type(exc).__name__}: {first_line(exc)[:200]}); " \
               f"validate and infer load the checkpoint: dont_load_ts_model=true dont_load_ckpt_model=false"
    torch.jit.save(scripted, out)
    return None
