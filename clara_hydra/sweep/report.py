"""``clara-hydra report STUDY``: PNG plots of a study (its metric named on each), its trials'
learning curves, its top trials, and ``report.html``: all of it on one self-contained page."""

from __future__ import annotations

import os
from pathlib import Path
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
    from .storage import no_study, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = open_storage(storage, must_exist=True)
    try:
        study = optuna.load_study(study_name=study_name, storage=opened)
    except KeyError:
        raise no_study(study_name, storage, opened) from None
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
        if len(complete) < FEW_FOR_IMPORTANCES:
            print(f"clara-hydra: param_importances.png rests on {len(complete)} complete trial(s): too few to mean "
                  f"much ({FEW_FOR_IMPORTANCES} or more)")
    curved = [t for t in study.get_trials(deepcopy=False) if t.intermediate_values]
    if curved:
        plots.append(("learning_curves.png", lambda: _learning_curves(curved, metric_names)))
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
    page = os.path.join(out_dir, "report.html")
    with open(page, "w", encoding="utf-8") as fh:
        fh.write(_html(study, written, complete, many))
    written.append(page)
    for path in written:
        print(path)
    return written


#: fewer complete trials than this: the report says its parameter importances mean little
FEW_FOR_IMPORTANCES = 20


def _learning_curves(trials: list, metric_names: list[str] | None) -> Any:
    """Each trial's reported value by epoch (Optuna's intermediate values): complete trials solid,
    pruned ones dashed and ended with an x where they were stopped."""
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    fig, ax = plt.subplots()
    for t in trials:
        steps = sorted(t.intermediate_values)
        values = [t.intermediate_values[s] for s in steps]
        pruned = t.state == TrialState.PRUNED
        (line,) = ax.plot(steps, values, linestyle="--" if pruned else "-", alpha=0.6 if pruned else 0.9,
                          label=f"#{t.number}" + (" (pruned)" if pruned else ""))
        if pruned:
            ax.plot(steps[-1:], values[-1:], "x", color=line.get_color())
    ax.set_xlabel("epoch")
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric_names[0] if metric_names else "reported value")
    ax.set_title("Learning curves (the value each trial reported, by epoch; pruned: dashed, x where stopped)")
    if len(trials) <= 20:
        ax.legend(fontsize="small")
    return ax


def _html(study: Any, images: list[str], complete: list, many: bool) -> str:
    """One page: the study, its top trials, every plot inline (it opens from anywhere)."""
    import base64
    import html

    from . import results
    names = study.metric_names or [f"objective {i}" for i in range(len(study.directions))]
    shown = results.front(study) if many else better.of_study(study).ranked(complete, lambda t: float(t.value))[:10]
    rows = "".join(
        f"<tr><td>#{t.number}</td>"
        f"<td>{html.escape(results.format_values(t.values, names) if many else f'{t.value:.4f}')}</td>"
        f"<td>{html.escape(results.format_params(t.params))}</td></tr>" for t in shown)
    figures = "".join(
        f"<h2>{html.escape(os.path.basename(path))}</h2><img alt='{html.escape(os.path.basename(path))}' "
        f"src='data:image/png;base64,{base64.b64encode(Path(path).read_bytes()).decode()}'>" for path in images)
    directions = ", ".join(f"{n}: {d.name.lower()}" for n, d in zip(names, study.directions))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(study.study_name)}</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}}img{{max-width:100%}}td{{padding:0 1em}}</style>"
            f"</head><body><h1>Study {html.escape(study.study_name)}</h1><p>{html.escape(directions)}; "
            f"{len(study.get_trials(deepcopy=False))} trial(s), {len(complete)} complete</p>"
            f"<h2>{'Pareto front' if many else 'Top trials'}</h2><table><tr><th>trial</th>"
            f"<th>{'values' if many else html.escape(names[0])}</th><th>params</th></tr>{rows}</table>"
            f"{figures}</body></html>")
