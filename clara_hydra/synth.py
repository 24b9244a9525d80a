"""Synthetic NIfTI data: a few small 3D volumes with a bright blob and its label, a
Decathlon-style datalist (``training``/``validation``) and an ``environment.json``, so that any
Clara config can train without real data. Needs numpy and nibabel, not torch."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence


def make_volume(rng, shape: Sequence[int]):
    import numpy as np
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=0).astype(np.float32)
    label = np.zeros(shape, dtype=np.uint8)
    image = rng.normal(0.0, 20.0, size=shape).astype(np.float32)
    for _ in range(2):
        centre = np.array([rng.uniform(0.3, 0.7) * s for s in shape], dtype=np.float32)
        radius = rng.uniform(0.12, 0.22) * min(shape)
        inside = ((grid - centre.reshape(-1, *[1] * len(shape))) ** 2).sum(0) < radius ** 2
        label[inside] = 1
    image[label == 1] += 120.0
    return image, label


#: Each side of a synthetic volume: at least a blob's width, at most what a test machine holds
MIN_SIDE, MAX_SIDE, MAX_VOXELS = 8, 1024, 512**3


def check(*, n_train: int, n_val: int, shape: Sequence[int], spacing: Sequence[float], seed: int) -> None:
    """Refuse, in one line, what cannot make a data set (nothing is written)."""
    import math

    from .errors import ClaraHydraError
    for flag, count in (("--train", n_train), ("--val", n_val)):
        if not 1 <= count <= 10_000:
            raise ClaraHydraError(f"{flag} must be from 1 to 10000 volumes, got {count}", location=flag,
                                  hint="training needs one volume to train on and one to validate")
    if any(not MIN_SIDE <= side <= MAX_SIDE for side in shape) or math.prod(shape) > MAX_VOXELS:
        raise ClaraHydraError(f"--shape must be {MIN_SIDE} to {MAX_SIDE} voxels a side and at most {MAX_VOXELS} "
                              f"in all, got {' '.join(map(str, shape))}", location="--shape",
                              hint="e.g. --shape 96 96 96")
    if any(not (math.isfinite(s) and s > 0) for s in spacing):
        raise ClaraHydraError(f"--spacing must be sizes in mm > 0, got {' '.join(map(str, spacing))}",
                              location="--spacing", hint="e.g. --spacing 1.5 1.5 2")
    if not 0 <= seed < 2**32:
        raise ClaraHydraError(f"--seed must be from 0 to 2**32 - 1, got {seed}", location="--seed")


def write(out_dir: str, n_train: int = 2, n_val: int = 1, shape: Sequence[int] = (96, 96, 96),
          seed: int = 0, spacing: Sequence[float] = (1.0, 1.0, 1.0)) -> dict:
    """Write the data set into ``out_dir``, whole or not at all; returns the environment (paths
    are absolute)."""
    import nibabel as nib
    import numpy as np

    from .staged import staged
    rng = np.random.default_rng(seed)
    out_dir = os.path.abspath(out_dir)
    with staged(out_dir) as tmp:
        os.makedirs(os.path.join(tmp, "imagesTr"))
        os.makedirs(os.path.join(tmp, "labelsTr"))
        affine = np.diag([*map(float, spacing), 1.0])
        items = []
        for i in range(n_train + n_val):
            image, label = make_volume(rng, shape)
            img_path = os.path.join("imagesTr", f"case_{i:03d}.nii.gz")
            lab_path = os.path.join("labelsTr", f"case_{i:03d}.nii.gz")
            nib.save(nib.Nifti1Image(image, affine), os.path.join(tmp, img_path))
            nib.save(nib.Nifti1Image(label, affine), os.path.join(tmp, lab_path))
            items.append({"image": img_path, "label": lab_path})
        datalist = {"name": "clara-hydra synthetic", "labels": {"0": "background", "1": "blob"},
                    "training": items[:n_train], "validation": items[n_train:],
                    # infer's default list (Decathlon's test: images only), the validation images
                    "test": [{"image": item["image"]} for item in items[n_train:]]}
        with open(os.path.join(tmp, "dataset.json"), "w") as fh:
            json.dump(datalist, fh, indent=2)
        env = write_environment(tmp, out_dir)
    return env


def write_environment(folder: str, named: str | None = None) -> dict:
    """``environment.json`` in ``folder``, its paths those of ``named`` (default: ``folder``)."""
    named = named or folder
    env = {"DATA_ROOT": named, "DATASET_JSON": os.path.join(named, "dataset.json"),
           "MMAR_CKPT_DIR": os.path.join(named, "models"),
           "MMAR_CKPT": os.path.join(named, "models", "model.pt")}
    with open(os.path.join(folder, "environment.json"), "w") as fh:
        json.dump(env, fh, indent=2)
    return env


def builtin(shape: Sequence[int] = (48, 48, 32)) -> dict:
    """The built-in data set, made once in a cache folder; returns its environment."""
    root = os.environ.get("CLARA_HYDRA_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "clara-hydra"))
    out = os.path.join(root, "synthetic-" + "x".join(map(str, shape)))
    env_file = os.path.join(out, "environment.json")
    if not os.path.isfile(env_file):
        try:
            write(out, shape=shape)
        except OSError:
            if not os.path.isfile(env_file):
                raise
            # another process made it first
    with open(env_file) as fh:
        return json.load(fh)
