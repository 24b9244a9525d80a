"""``clara-hydra report STUDY``: PNG plots of a study and its top trials."""

from __future__ import annotations

import os
from typing import Any

from .. import better
from ..errors import ClaraHydraError


def report(study_name: str, storage: str, out_dir: str, top: int = 5) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState

    from . import results
    from .storage import masked, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(storage, must_exist=True))
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(open_storage(storage, must_exist=True))]
        hint = ("its studies: " + ", ".join(names)) if names else "the storage has no study"
        raise ClaraHydraError(f"no study '{study_name}' in {masked(storage)}", location="STUDY", hint=hint) from None
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ClaraHydraError(f"study '{study_name}' has no complete trial yet", location="STUDY")
    os.makedirs(out_dir, exist_ok=True)
    from optuna.visualization import matplotlib as vis
    written = []
    many = len(study.directions) > 1
    # Optuna's plots of one objective need a target in a multi-objective study: the first one's
    metric_names = study.metric_names  # (what the sweep called each value; None: "Objective Value")
    if many:
        first: dict[str, Any] = {"target": lambda t: t.values[0],
                                 "target_name": metric_names[0] if metric_names else "objective 0"}
    else:
        first = {"target_name": metric_names[0]} if metric_names else {}
    plots = [("pareto_front.png", lambda: vis.plot_pareto_front(study))] if many else []
    plots += [("optimization_history.png", lambda: vis.plot_optimization_history(study, **first)),
              ("parallel_coordinate.png", lambda: vis.plot_parallel_coordinate(study, **first))]
    if len(complete) >= 2 and len({k for t in complete for k in t.params}) >= 1:
        plots.append(("param_importances.png", lambda: vis.plot_param_importances(study, **first)))
    import warnings
    for name, plot in plots:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ax = plot()
            except (ValueError, RuntimeError) as exc:  # e.g. importances need variation
                print(f"clara-hydra: {name}: not drawn ({exc})")
                continue
        fig: Any = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure  # type: ignore[attr-defined]
        fig.set_size_inches(10, 6)
        fig.tight_layout()
        path = os.path.join(out_dir, name)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    states = {s.name.lower(): n for s in TrialState if (n := len(study.get_trials(deepcopy=False, states=(s,))))}
    directions = ", ".join(d.name.lower() for d in study.directions)
    print(f"study '{study_name}' ({directions}): " + ", ".join(f"{n} {s}" for s, n in states.items()))
    if many:
        from .protocol import ATTR_OBJECTIVES
        objectives = study.user_attrs.get(ATTR_OBJECTIVES)
        pareto = results.front(study)
        print(f"Pareto front: {len(pareto)} trial(s):")
        for t in pareto:
            print(f"  #{t.number:<4d} {results.format_values(t.values, objectives)}  "
                  f"{results.format_params(t.params)}")
    else:
        best = better.of_study(study).ranked(complete, lambda t: float(t.value))[:top]  # complete: a value
        print(f"top {len(best)} trials:")
        for t in best:
            print(f"  #{t.number:<4d} {t.value:.4f}  {results.format_params(t.params)}")
    for path in written:
        print(path)
    return written
