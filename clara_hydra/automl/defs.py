"""Clara's AutoML programming interface, as BYO controllers and handlers use it.

Clara Train's ``automl`` package is not public; this is what its documentation (the API pages of
``automl.defs``, ``automl.components.controllers``, ``automl.components.handlers``) and NVIDIA's
BYO example (``myAutoMLController.py``) show of it. A user's module imports it under Clara's
names (``from automl.defs import Context, ContextKey, ...``): while a sweep loads a BYO component,
a package ``automl`` that re-exports these classes is put on the import path (an installed
``automl`` wins). Inferred where the documentation is silent (each is marked so below):

- a search-space key is a PRL string ``<domain>.<type>:<name>`` (``lr.float:learning_rate``):
  the example selects sub-spaces by ``'.enum' in key`` and reads ``key.split(':')[1]``;
- ``SearchSpace.targets`` maps a key to its candidates: for ``float`` a list of one
  :class:`SearchRange` (``.min``, ``.max``), for ``enum`` the list of choices;
- a recommendation's value is a number for ``float`` and a choice *index* for ``enum``;
- the score of an :class:`Outcome` is higher-is-better (Clara's score): a minimized objective is
  negated, and a failed job scores ``FAILED_SCORE`` (-1000000.0, the sentinel Clara's admin
  summary showed).
"""

from __future__ import annotations

import enum
import threading
from typing import Any

FAILED_SCORE = -1_000_000.0


class ContextKey:
    """Keys of :class:`Context` props (the values are inferred; handlers use the names)."""

    RECOMMENDATIONS = "_recommendations"
    JOB_NAME = "_jobName"
    CONCRETE_SEARCH_VALUE = "_concreteSearchValue"
    SCORE = "_score"
    SEARCH_SPACE = "_searchSpace"
    OUTCOME = "_outcome"
    JOB_STATUS = "_jobStatus"


class Status(enum.Enum):
    """A job's end (inferred)."""

    OK = "ok"
    FAILED = "failed"
    PRUNED = "pruned"


class Context:
    """Shared between the engine, the controller and the handlers: props, and a stop request."""

    def __init__(self) -> None:
        self._props: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.stop_requested: str | None = None

    def set_prop(self, key: str, value: Any) -> None:
        with self._lock:
            self._props[key] = value

    def get_prop(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._props.get(key, default)

    def stop_work(self, issuer: Any, msg: str = "") -> None:
        """Ask the engine to stop: no new job starts; the running ones finish."""
        who = type(issuer).__name__ if issuer is not None else "a component"
        self.stop_requested = f"{who} asked to stop" + (f": {msg}" if msg else "")


class SearchRange:
    def __init__(self, minv: float, maxv: float) -> None:
        self.min = minv
        self.max = maxv

    def __repr__(self) -> str:
        return f"SearchRange({self.min}, {self.max})"


class SearchSpace:
    def __init__(self, name: str, targets: dict[str, list]) -> None:
        self.name = name
        self.targets = targets


class SearchResult:
    def __init__(self, space: SearchSpace, values: dict[str, Any]) -> None:
        self.space = space
        self.values = values

    def dump(self) -> None:
        for key, value in self.values.items():
            print(f"{key}: {value}")


class Recommendation:
    def __init__(self, rec_id: Any, result: SearchResult) -> None:
        self.rec_id = rec_id
        self.result = result


class Outcome:
    def __init__(self, recommendation_id: Any, score: float, status: Status = Status.OK,
                 job_name: str = "") -> None:
        self.recommendation_id = recommendation_id
        self.score = score
        self.status = status
        self.job_name = job_name


class Controller:
    """A search strategy: ``set_search_space`` once, ``initial_recommendation`` (one or more
    recommendations, or the search stops), then ``refine_recommendation`` after every job."""

    def __init__(self) -> None:
        pass

    def set_search_space(self, space: SearchSpace, ctx: Context) -> None:
        raise NotImplementedError

    def initial_recommendation(self, ctx: Context) -> list[Recommendation]:
        raise NotImplementedError

    def refine_recommendation(self, outcome: Outcome, ctx: Context) -> list[Recommendation]:
        raise NotImplementedError


class Handler:
    """Clara's AutoML events; every method is optional."""

    def __init__(self) -> None:
        pass

    def startup(self, ctx: Context) -> None:
        pass

    def recommendations_available(self, ctx: Context) -> None:
        pass

    def start_job(self, ctx: Context) -> None:
        pass

    def end_job(self, ctx: Context) -> None:
        pass

    def round_ended(self, ctx: Context) -> None:
        pass

    def shutdown(self, ctx: Context) -> None:
        pass
