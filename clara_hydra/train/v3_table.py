"""The v3 (TensorFlow era) -> MONAI table: data, no logic.

Each v3 name maps to one or more MONAI/torch components (`Row`): the target, the arg renames
(``fields`` -> ``keys``, ``probability`` -> ``prob``; an optional value converter by name:
``sqrt`` for variance -> std, ``deg2rad``, ``not``, ``int_tuple`` for "1,2,2,4"), fixed args,
and args that have no equivalent (dropped with a notice). ``v3.py`` applies it, and builds the
names with logic of their own (``SPECIAL``, ``SECTION_NAMES``). docs/V3_MAPPING.md gives the
research behind each row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "sqrt": lambda v: math.sqrt(v),
    "deg2rad": lambda v: [math.radians(x) for x in v] if isinstance(v, list) else math.radians(v),
    "not": lambda v: not v,
    "int_tuple": lambda v: [int(x) for x in str(v).split(",")] if isinstance(v, str) else list(v),
    "label_mode": lambda v: "nearest" if v else "bilinear",
    "as_list": lambda v: v if isinstance(v, list) else [v],
}
#: v3 args that only concerned TensorFlow's layout or speed: dropped silently.
LAYOUT_ARGS = {"data_format", "output_data_format", "dtype", "batches_to_gen_at_once", "fast_crop"}


@dataclass(frozen=True)
class Row:
    target: str
    args: dict[str, str | tuple[str, str]] = field(default_factory=dict)  # v3 arg -> MONAI arg [, converter]
    fixed: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)  # when the v3 arg is absent
    drop: tuple[str, ...] = ()  # v3 args with no equivalent (a notice names them)
    note: str = ""


K = {"fields": "keys"}
TX = "monai.transforms."
#: The table: v3 name -> rows (several rows: one v3 component becomes several MONAI ones).
TABLE: dict[str, list[Row]] = {
    "LoadNifti": [Row(TX + "LoadImaged", {**K, "as_closest_canonical": "as_closest_canonical"},
                      {"reader": "NibabelReader", "image_only": True})],
    "LoadPng": [Row(TX + "LoadImaged", dict(K),
                    {"reader": "PILReader", "reverse_indexing": False, "image_only": True})],
    "ConvertToChannelsFirst": [Row(TX + "EnsureChannelFirstd", dict(K))],
    "ConvertToChannelsLast": [Row(TX + "EnsureChannelFirstd", dict(K),
                                  note="channels-last is TensorFlow's layout; MONAI is channel-first")],
    "RepeatChannel": [Row(TX + "RepeatChanneld", {**K, "repeat_times": "repeats"})],
    "SaveAsNifti": [Row(TX + "SaveImaged", {**K, "out_dir": "output_dir"},
                        {"resample": False, "separate_folder": False}, drop=("interrupt",))],
    "CopyProperties": [],
    "ScaleIntensityRange": [Row(TX + "ScaleIntensityRanged", {**K, "a_min": "a_min", "a_max": "a_max", "b_min": "b_min",
                                                             "b_max": "b_max", "clip": "clip"})],
    "ScaleIntensityOscillation": [Row(TX + "RandScaleIntensityd", {**K, "magnitude": "factors", "probability": "prob"},
                                      defaults={"prob": 1.0})],
    "ScaleShiftIntensity": [Row(TX + "RandScaleIntensityd", {**K, "scale": "factors"}, {"prob": 1.0}, {"factors": 0.1}),
                            Row(TX + "RandShiftIntensityd", {**K, "shift": "offsets"}, {"prob": 1.0},
                                {"offsets": 0.1})],
    "AddGaussianNoise": [Row(TX + "RandGaussianNoised", {**K, "probability": "prob", "variance": ("std", "sqrt")},
                             {"mean": 0.0, "sample_std": False}, {"prob": 0.5, "std": math.sqrt(0.1)})],
    "NormalizeNonzeroIntensities": [Row(TX + "NormalizeIntensityd", dict(K), {"nonzero": True, "channel_wise": True})],
    "CenterData": [Row(TX + "NormalizeIntensityd", dict(K), {"divisor": 1.0}, note="inferred: x - mean")],
    "ThresholdValues": [Row(TX + "AsDiscreted", {**K, "threshold": "threshold"}, defaults={"threshold": 0.5})],
    "ScaleByResolution": [Row(TX + "Spacingd", {**K, "target_resolution": "pixdim", "is_label": ("mode", "label_mode")},
                              defaults={"mode": "bilinear"})],
    "ScaleByFactor": [Row(TX + "Zoomd", {**K, "factor": "zoom"}, {"keep_size": False})],
    "ScaleToShape": [Row(TX + "Resized", {**K, "target_shape": "spatial_size"})],
    "SymmetricPadderDiv": [Row(TX + "DivisiblePadd", {**K, "div_int": "k"},
                               {"method": "symmetric", "mode": "constant"})],
    "CropFixedSizeRandomCenter": [Row(TX + "SpatialPadd", {**K, "size": "spatial_size"}),
                                  Row(TX + "RandSpatialCropd", {**K, "size": "roi_size"},
                                      {"random_center": True, "random_size": False})],
    "CropSubVolumeCenter": [Row(TX + "CenterSpatialCropd", {**K, "size": "roi_size"})],
    "RandomAxisFlip": [Row(TX + "RandAxisFlipd", {**K, "probability": "prob"}, defaults={"prob": 0.5})],
    "RandomSpatialFlip": [Row(TX + "RandFlipd", dict(K), {"spatial_axis": axis, "prob": 0.5}) for axis in (0, 1, 2)],
    "RandomRotate3D": [Row(TX + "RandRotated", {**K, "probability": "prob"},
                           {"range_x": 0.26, "range_y": 0.26, "range_z": 0.26, "keep_size": True},
                           {"prob": 0.5}, note="v3 angle ranges are unknown: +-15 degrees per axis")],
    "NegLoss": [], "DiceMaskedOutput": [], "ComputeDice": [], "ComputeAccuracy": [], "ComputeBinaryPreds": [],
    "MergeBatchDims": [],
}
#: Components with logic of their own (keys from several args, value-dependent targets).
SPECIAL = {"FastCropByPosNegRatio", "FastPosNegRatioCropROI", "RandomRotate2D", "RandomZoom",
           "CropRandomSizeWithDisplacement"}
#: Whole-config sections, by v3 name (the README lists them with the table).
SECTION_NAMES = {
    "models": ["SegResnet", "SegAhnet", "DenseNet121"],
    "losses": ["Dice", "Focal", "BinaryClassificationLoss"],
    "optimizers": ["Adam", "NovoGrad"],
    "lr_policies": ["ReducePoly", "ReduceCosine", "DecayOnStep"],
    "inferers": ["TFSimpleInferer", "TFScanWindowInferer"],
    "pipelines": ["SegmentationImagePipeline", "SegmentationImagePipelineWithCache",
                  "SegmentationKerasImagePipelineWithCache", "ClassificationImagePipeline"],
    "metrics": ["ComputeAverageDice", "ComputeAverage", "ComputeAUC"],
    "handlers": ["StatsHandler"],
}

#: The args the v3 names with logic of their own (``v3.py``: models, losses, optimizers, lr
#: policies, the special transforms) read: what an added (``+``) arg may be. An arg a config
#: writes is kept as written, read or not.
V3_ARGS: dict[str, tuple[str, ...]] = {
    "SegResnet": ("num_classes", "reg_weight", "init_filters", "use_group_normG", "use_group_norm", "use_vae",
                  "dropout_prob", "blocks_down", "blocks_up"),
    "SegAhnet": ("num_classes", "reg_weight", "n_spatial_dim", "if_use_psp"),
    "DenseNet121": ("num_classes", "reg_weight", "weight_decay"),
    "Unet": ("num_classes", "reg_weight"),
    "Dice": ("jaccard", "skip_background", "is_onehot_targets", "squared_pred", "top_smooth", "smooth"),
    "Focal": ("skip_background",),
    "BinaryClassificationLoss": (),
    "Adam": ("learning_rate",),
    "NovoGrad": ("learning_rate", "beta1", "beta2", "epsilon", "weight_decay"),
    "ReducePoly": ("poly_power",),
    "ReduceCosine": ("rate",),
    "DecayOnStep": ("decay_freq", "decay_ratio"),
    "FastCropByPosNegRatio": ("image_field", "label_field", "fields", "size", "pos", "neg", "batch_size", "rotation",
                              "rotation_degree", "scale", "scale_factor", "deform"),
    "FastPosNegRatioCropROI": ("image_field", "label_field", "fields", "size", "pos", "neg", "batch_size", "rotation",
                               "rotation_degree", "scale", "scale_factor", "deform"),
    "RandomRotate2D": ("fields", "is_random", "angle"),
    "RandomZoom": ("image_field", "label_field", "fields", "lower_limits", "upper_limits"),
    "CropRandomSizeWithDisplacement": ("fields", "lower_size", "max_displacement"),
}
