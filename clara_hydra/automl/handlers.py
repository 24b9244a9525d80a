"""Clara's AutoML handler events for handlers of your own (``{"path": "module.MyHandler"}``).

The sweeper fires them: ``startup`` when the sweep starts; ``recommendations_available`` and
``start_job`` when a trial is about to run; ``end_job`` when it finished; ``round_ended`` after
each finished trial has been handled (Clara's engine ended a round when its jobs had reported);
``shutdown`` when the sweep ends, however it ends. The context carries Clara's keys:
``ContextKey.JOB_NAME`` (the trial's folder name, its number), ``CONCRETE_SEARCH_VALUE``
(PRL key -> [value]), ``SCORE`` (Clara's score: see :func:`.controller.score_of`),
``RECOMMENDATIONS`` and ``JOB_STATUS``. A handler that raises is named in a notice; the sweep
goes on.
"""

from __future__ import annotations

from typing import Any

from ..logs import notice
from . import defs
from .controller import load, prl_key


class Events:
    def __init__(self, specs: list[dict], dirs: list[str], dists: dict, domains: dict[str, str],
                 ctx: defs.Context | None = None) -> None:
        self.ctx = ctx or defs.Context()
        self.dists, self.domains = dists, domains  # the sweep's space, for Clara's keys
        self.handlers: list[Any] = []
        for i, spec in enumerate(specs):
            where = f"hydra.sweeper.handlers[{i}]"
            cls = load(spec["path"], dirs, where + ".path")
            try:
                self.handlers.append(cls(**dict(spec.get("args") or {})))
            except Exception as exc:
                from ..errors import ClaraHydraError, first_line
                raise ClaraHydraError(f"cannot make the handler {spec['path']}: {type(exc).__name__}: "
                                      f"{first_line(exc)}", location=where) from None

    def fire(self, event: str, **props: Any) -> None:
        for key, value in props.items():
            self.ctx.set_prop(key, value)
        for handler in self.handlers:
            method = getattr(handler, event, None)
            if method is None:
                continue
            try:
                method(self.ctx)
            except Exception as exc:  # a handler's bug does not end a long sweep
                notice(f"warning: the handler {type(handler).__name__} failed at {event}: "
                       f"{type(exc).__name__}: {exc}")

    def concrete(self, params: dict) -> dict[str, list]:
        """A trial's params as Clara's concrete search values (PRL key -> [value])."""
        out = {}
        for name, value in params.items():
            dist = self.dists.get(name)
            out[prl_key(name, dist, self.domains.get(name)) if dist is not None else name] = [value]
        return out

    def job_started(self, number: int, params: dict, space: defs.SearchSpace | None) -> None:
        if not self.handlers:
            return
        values = self.concrete(params)
        recs = [defs.Recommendation(number, defs.SearchResult(space or defs.SearchSpace("clara_hydra", {}), values))]
        props = {defs.ContextKey.JOB_NAME: str(number), defs.ContextKey.CONCRETE_SEARCH_VALUE: values,
                 defs.ContextKey.RECOMMENDATIONS: recs, defs.ContextKey.SCORE: None}
        self.fire("recommendations_available", **props)
        self.fire("start_job", **props)

    def job_ended(self, number: int, params: dict, score: float, status: defs.Status) -> None:
        if not self.handlers:
            return
        self.fire("end_job", **{defs.ContextKey.JOB_NAME: str(number),
                                defs.ContextKey.CONCRETE_SEARCH_VALUE: self.concrete(params),
                                defs.ContextKey.SCORE: score, defs.ContextKey.JOB_STATUS: status})
        self.fire("round_ended")
