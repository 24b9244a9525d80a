"""clara-hydra: run NVIDIA Clara Train configs and AutoML search spaces on Hydra, Optuna and MONAI."""

__version__ = "0.1.0"
