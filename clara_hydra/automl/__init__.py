"""Clara's AutoML engine on Optuna: ``config_automl.json`` (:mod:`.config`, pure), Clara's
controller and handler interface (:mod:`.defs`), and the adapters that run a controller or
handler of your own inside a ``clara_optuna`` sweep (:mod:`.controller`, :mod:`.handlers`)."""
