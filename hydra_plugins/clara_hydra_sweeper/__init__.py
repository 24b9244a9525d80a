"""The ``clara_optuna`` Hydra sweeper: hydra-optuna-sweeper's config keys and params grammar,
plus pruning, resume, recorded failures, Clara's GPU workers and result files.
Select it with ``hydra/sweeper=clara_optuna`` (converted configs do).

Laid out as hydra-optuna-sweeper is: ``config`` (the typed config, in Hydra's ConfigStore),
``sweeper`` (the class Hydra finds when it scans plugins, light to import) and ``_impl`` (the work,
imported only when a sweep starts, so that Hydra apps that do not sweep never import Optuna)."""
