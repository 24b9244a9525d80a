"""The few MLflow calls clara-hydra makes, to a tracking server through MLflow's REST API (no
``mlflow`` package needed: MONAI imports an installed ``mlflow`` in every training process, about a
second each) or, for a local store (``sqlite:///...``, a folder), through the ``mlflow`` package's
own client.

Where: ``MLFLOW_TRACKING_URI``, else MLflow's own default, ``mlflow.db`` in the current folder with
the artifacts in ``mlruns/`` there (``mlflow ui`` in that folder shows them). A server's
credentials are MLflow's: ``MLFLOW_TRACKING_TOKEN``, or ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD``."""

from __future__ import annotations

import base64
import json
import os
import posixpath
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Protocol

from .errors import ClaraHydraError, TrackingError
from .sweep.storage import masked

#: ``clara-hydra train --mlflow``: a plain run is an MLflow run, a sweep (``-m``) a parent run
ENV_MLFLOW = "CLARA_HYDRA_MLFLOW"
#: MLflow's own tag that makes a run the child of another (what its UI nests runs by)
PARENT_TAG = "mlflow.parentRunId"
#: MLflow's limits on one log-batch call
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else ``mlflow.db`` in the current folder (MLflow's own default)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"


def where(uri: str, experiment: str, run: str | None = None) -> str:
    """How a user opens a run: a server's page, else ``mlflow ui`` on the local store."""
    if urllib.parse.urlsplit(uri).scheme in ("http", "https"):
        return masked(uri.rstrip("/")) + "/#/experiments/" + experiment + (f"/runs/{run}" if run else "")
    return f"mlflow ui --backend-store-uri {uri}"


def now_ms() -> int:
    return int(time.time() * 1000)


class Client(Protocol):
    def experiment(self, name: str) -> str: ...
    def create_run(self, experiment: str, name: str, tags: dict[str, str], start_ms: int | None = None) -> str: ...
    def log(self, run: str, *, params: dict | None = None, metrics: list | None = None,
            tags: dict | None = None) -> None: ...
    def end(self, run: str, status: str, end_ms: int | None = None) -> None: ...
    def upload(self, run: str, local: Path, artifact_path: str) -> None: ...


def connect(uri: str) -> Client:
    """A client of the store at ``uri``: a server's REST API, else the ``mlflow`` package's client."""
    if urllib.parse.urlsplit(uri).scheme in ("http", "https"):
        return Rest(uri)
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ClaraHydraError(f"MLflow tracking into the local store {masked(uri)} needs the mlflow package, which "
                              "is not installed", location="MLFLOW_TRACKING_URI", file="",  # (no config's)
                              hint="pip install 'clara-hydra[mlflow]', or set MLFLOW_TRACKING_URI to a tracking "
                                   "server (http://host:5000): a server needs no mlflow package here") from None
    return Library(uri)


def _entries(values: dict | None, limit: int) -> list[dict]:
    return [{"key": str(k), "value": str(v)[:limit]} for k, v in (values or {}).items()]


class Rest:
    """MLflow's REST API (``/api/2.0/mlflow``), with ``urllib``."""

    def __init__(self, uri: str, timeout: float = 30.0) -> None:
        self.base, self.timeout = uri.rstrip("/"), timeout
        self.artifact_uris: dict[str, str] = {}

    def _headers(self) -> dict[str, str]:
        if os.environ.get("MLFLOW_TRACKING_TOKEN"):
            return {"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]}
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if user:
            pair = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}

    def _call(self, method: str, endpoint: str, body: dict | None = None, *, data: Any = None,
              query: dict | None = None, headers: dict | None = None) -> dict:
        """``data``: bytes, or an open file sent in blocks (its ``Content-Length`` in ``headers``)."""
        url = self.base + endpoint + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {**self._headers(), **(headers or {})}
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode() or "{}"
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                answer = json.loads(detail)
            except ValueError:
                answer = {"message": detail[:300]}
            error = TrackingError(f"{method} {endpoint}: HTTP {exc.code} {answer.get('error_code', '')} "
                                  f"{answer.get('message', '')}".rstrip(), location="MLFLOW_TRACKING_URI",
                                  hint="check the server's address and credentials")
            error.code = answer.get("error_code")  # type: ignore[attr-defined]
            raise error from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingError(f"no answer from {masked(self.base)}: {reason}", location="MLFLOW_TRACKING_URI",
                                hint="start the server, or check MLFLOW_TRACKING_URI") from None
        return json.loads(text)

    def experiment(self, name: str) -> str:
        """The id of the experiment ``name``, made where there is none."""
        try:
            return self._call("GET", "/api/2.0/mlflow/experiments/get-by-name",
                              query={"experiment_name": name})["experiment"]["experiment_id"]
        except TrackingError as exc:
            if getattr(exc, "code", None) != "RESOURCE_DOES_NOT_EXIST":
                raise
        try:
            return self._call("POST", "/api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"]
        except TrackingError as exc:  # another sweep made it meanwhile
            if getattr(exc, "code", None) != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.experiment(name)

    def create_run(self, experiment: str, name: str, tags: dict[str, str], start_ms: int | None = None) -> str:
        info = self._call("POST", "/api/2.0/mlflow/runs/create", {
            "experiment_id": experiment, "run_name": name, "start_time": start_ms or now_ms(),
            "tags": _entries(dict(tags, **{"mlflow.runName": name}), 5000)})["run"]["info"]
        self.artifact_uris[info["run_id"]] = info.get("artifact_uri", "")
        return info["run_id"]

    def log(self, run: str, *, params: dict | None = None, metrics: list | None = None,
            tags: dict | None = None) -> None:
        """``metrics``: ``(name, value, step)`` triples, in MLflow's batches."""
        stamp = now_ms()
        rows = {"params": _entries(params, 6000), "tags": _entries(tags, 5000),
                "metrics": [{"key": str(k), "value": float(v), "timestamp": stamp, "step": int(s)}
                            for k, v, s in metrics or []]}
        while any(rows.values()):
            batch = {kind: rows[kind][:_BATCH[kind]] for kind in rows}
            rows = {kind: rows[kind][_BATCH[kind]:] for kind in rows}
            self._call("POST", "/api/2.0/mlflow/runs/log-batch", dict(batch, run_id=run))

    def end(self, run: str, status: str, end_ms: int | None = None) -> None:
        self._call("POST", "/api/2.0/mlflow/runs/update", {"run_id": run, "status": status,
                                                             "end_time": end_ms or now_ms()})

    def upload(self, run: str, local: Path, artifact_path: str) -> None:
        """The file ``local``, or the files of the folder ``local``, under ``artifact_path``, through
        the server's artifact proxy (``mlflow server``'s default: artifact URIs ``mlflow-artifacts:/``)."""
        uri = self.artifact_uris.get(run) or self._call("GET", "/api/2.0/mlflow/runs/get",
                                                        query={"run_id": run})["run"]["info"]["artifact_uri"]
        parsed = urllib.parse.urlsplit(uri)
        if parsed.scheme != "mlflow-artifacts":
            raise TrackingError(f"the server keeps artifacts at {uri}, which only the mlflow package writes",
                                location="MLFLOW_TRACKING_URI",
                                hint="serve artifacts through the server (mlflow server --artifacts-destination "
                                     "...), or pip install mlflow")
        top = local.parent if local.is_file() else local
        for path in [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file()):
            parts = (parsed.path, artifact_path, *path.relative_to(top).parts)
            endpoint = _ARTIFACTS + urllib.parse.quote(posixpath.join("/", *parts))
            with open(path, "rb") as fh:  # (streamed: a model file is not read into memory whole)
                self._call("PUT", endpoint, data=fh, headers={"Content-Length": str(path.stat().st_size)})


class Library:
    """The ``mlflow`` package's client, for a local store."""

    def __init__(self, uri: str) -> None:
        import logging

        from mlflow import MlflowClient
        for name in ("mlflow", "alembic"):  # (their set-up lines, in their own format, at every start)
            logging.getLogger(name).setLevel(logging.WARNING)
        self.client = MlflowClient(tracking_uri=uri)

    def experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found is not None else self.client.create_experiment(name)

    def create_run(self, experiment: str, name: str, tags: dict[str, str], start_ms: int | None = None) -> str:
        return self.client.create_run(experiment, run_name=name, start_time=start_ms, tags=tags).info.run_id

    def log(self, run: str, *, params: dict | None = None, metrics: list | None = None,
            tags: dict | None = None) -> None:
        from mlflow.entities import Metric, Param, RunTag
        stamp = now_ms()
        self.client.log_batch(run, metrics=[Metric(str(k), float(v), stamp, int(s)) for k, v, s in metrics or []],
                              params=[Param(str(k), str(v)[:6000]) for k, v in (params or {}).items()],
                              tags=[RunTag(str(k), str(v)[:5000]) for k, v in (tags or {}).items()])

    def end(self, run: str, status: str, end_ms: int | None = None) -> None:
        self.client.set_terminated(run, status=status, end_time=end_ms)

    def upload(self, run: str, local: Path, artifact_path: str) -> None:
        if local.is_file():
            self.client.log_artifact(run, str(local), artifact_path=artifact_path or None)
        else:
            self.client.log_artifacts(run, str(local), artifact_path=artifact_path or None)
