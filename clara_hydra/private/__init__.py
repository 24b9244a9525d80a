"""Every use clara-hydra makes of a library's private (underscored) API, one module per library:
:mod:`.omegaconf` (typed nodes, the YAML loader), :mod:`.hydra` (config sources, a job's
exception), :mod:`.monai` (a checkpoint saver's key-metric checkpoint) and :mod:`.python` (the
standard library: the function a thread runs). Optuna's and hydra-optuna-sweeper's are in
:mod:`clara_hydra.sweep.upstream`.

Each module lists what it reaches into (``PRIVATE_NAMES``, by owner) and names what each function
relies on; ``tests/test_upstream.py`` checks every name and calls every function against the
installed versions, so an upgrade that changes one fails there, by name, instead of somewhere in
a run. None of them imports its library at import time (the pure core imports no torch)."""
