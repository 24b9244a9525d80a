"""A trained network as TorchScript (``models/model.ts`` of an exported MMAR)."""

from __future__ import annotations

from ..errors import first_line


def load_weights(network, checkpoint: str) -> None:
    """The weights of a checkpoint MONAI's CheckpointSaver (or clara-hydra's) wrote: ``{"model":
    state}`` or, for one saved object, the state itself."""
    import torch
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = saved["model"] if isinstance(saved, dict) and isinstance(saved.get("model"), dict) else saved
    network.load_state_dict(state)


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
