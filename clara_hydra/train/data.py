"""Clara datalists (Decathlon-style JSON via {DATASET_JSON} and {DATA_ROOT})."""

from __future__ import annotations

import os

from ..errors import BuildError


def load_datalist(path: str, base_dir: str | None, key: str, where: str, is_segmentation: bool = True) -> list:
    from monai.data import load_decathlon_datalist
    if not isinstance(path, str) or path.startswith("{"):
        raise BuildError(f"the datalist is not set (data_list_file_path is {path!r})", location=where,
                         hint="set DATASET_JSON and DATA_ROOT in environment.json or on the command line, "
                              "or make data with `clara-hydra synth-data DIR`")
    if not os.path.isfile(path):
        raise BuildError(f"datalist file not found: {path}", location=where,
                         hint="check DATASET_JSON, or make data with `clara-hydra synth-data DIR`")
    try:
        data = load_decathlon_datalist(path, is_segmentation=is_segmentation, data_list_key=key, base_dir=base_dir)
    except TypeError as exc:  # an item that is a string, a number
        raise BuildError(f"cannot read the '{key}' list of {path}: {exc}", location=where,
                         hint='write each case as an object of its files: {"image": "...", "label": "..."}') from None
    except (ValueError, KeyError) as exc:
        raise BuildError(f"cannot read the '{key}' list of {path}: {exc}", location=where) from None
    if not data:
        raise BuildError(f"the '{key}' list of {path} is empty: nothing to "
                         f"{'train on' if where.startswith('train') else 'validate'}", location=where,
                         hint=f"list the cases in '{key}', or give another datalist (DATASET_JSON=...)")
    return data
