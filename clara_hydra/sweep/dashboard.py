"""``clara-hydra dashboard [STUDY]``: optuna-dashboard on a sweep's storage (its studies, trials,
params by the names a user reads, learning curves, importances), served on this machine until
Ctrl-C.

optuna-dashboard is an optional extra (``pip install 'clara-hydra[dashboard]'``; the README's set-up
installs it); without it the command says how to get it, in one line.
"""

from __future__ import annotations

import sys
from typing import Any

from ..errors import ClaraHydraError
from .storage import masked, no_study, open_storage

#: How a user installs it where it is missing.
INSTALL = "pip install 'clara-hydra[dashboard]' (or: pip install optuna-dashboard)"


def app(storage: Any) -> Any:
    """optuna-dashboard's WSGI app on an opened Optuna storage."""
    try:
        import optuna_dashboard
    except ImportError:
        raise ClaraHydraError("optuna-dashboard is not installed", hint=INSTALL) from None
    return optuna_dashboard.wsgi(storage)


def study_path(storage: Any, study_name: str | None, spec: str) -> str:
    """The dashboard's page of ``study_name`` (its list of studies without one, or with several)."""
    names = [s.study_name for s in storage.get_all_studies()]
    if study_name is None and len(names) != 1:
        return "/dashboard/"
    name = study_name if study_name is not None else names[0]
    if name not in names:
        raise no_study(study_name, spec, storage)
    return f"/dashboard/studies/{storage.get_study_id_from_name(name)}"


def serve(study_name: str | None, spec: str, host: str, port: int) -> None:
    """Serve the dashboard on ``host:port`` (port 0: a free one) until interrupted; say its address
    first (one line on stdout, then flushed: a script can wait for it)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    storage = open_storage(spec, must_exist=True)
    wsgi_app = app(storage)
    path = study_path(storage, study_name, spec)

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass  # (a line per request would bury the address)

    try:
        server = make_server(host, port, wsgi_app, handler_class=_Quiet)
    except OSError as exc:
        raise ClaraHydraError(f"cannot serve on {host}:{port}: {exc.strerror or exc}", location="--port",
                              hint="pick another port (--port 0: any free one)") from None
    shown_host = host if host not in ("0.0.0.0", "") else "127.0.0.1"
    print(f"http://{shown_host}:{server.server_port}{path}", flush=True)
    print(f"clara-hydra: optuna-dashboard on {masked(spec)}; Ctrl-C stops it", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
