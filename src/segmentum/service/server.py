"""serve(): run the application with uvicorn on one workspace, the way ``segmentum serve`` does.

Order: refuse if a live server already holds the workspace (its serve file), bind the
socket (port 0 picks a free port), open the service state (the workspace's DuckDB lock, the
intake log's lock), write ``<workspace>.serve.json`` with the real URL, run uvicorn
(uvloop and httptools; one process, since one process may write the workspace; the
tracking endpoints ahead of the application, :class:`~.tracking.TrackingFront`) until
SIGINT / SIGTERM, then close everything and remove the serve file. Each step that fails
says why, before anything listens.
"""

from __future__ import annotations

import datetime as _dt
import gc
import os
import socket
import sys
from collections.abc import Callable

import uvicorn

from segmentum.errors import UsageError, WorkspaceBusyError
from segmentum.service.app import create_app
from segmentum.service.serve_info import ServeInfo, read_serve_info, remove_serve_info, write_serve_info
from segmentum.service.settings import ServeSettings
from segmentum.service.state import ServiceState
from segmentum.service.tracking import TrackingFront

__all__ = ["serve"]


def serve(settings: ServeSettings, *, on_ready: Callable[[ServeInfo], None] | None = None) -> None:
    """Serve ``settings.workspace`` until stopped; ``on_ready`` is told once it listens."""
    holder = read_serve_info(settings.workspace_path)
    if holder is not None and holder.pid != os.getpid():
        raise WorkspaceBusyError(
            f"{holder.holder()} already serves {settings.workspace_path}.",
            hint=f"Send events to {holder.url}, or stop that server first.",
            pid=holder.pid, url=holder.url,
        )
    # the consumer's Python work and the event loop share the GIL, and uvloop takes it again
    # for every callback: hand it over every 0.2 ms (Python's default is 5 ms) so a request's
    # few callbacks never wait long behind a run (2026-12-03, single events at 1,000/s with
    # the consumer on: p99 362 ms at 1 ms, 168 ms at 0.2 ms)
    sys.setswitchinterval(0.0002)
    sock = _bind(settings)
    try:
        settings = settings.model_copy(update={"port": sock.getsockname()[1]})
        state = ServiceState.open(settings)
    except BaseException:
        sock.close()
        raise
    info = ServeInfo(
        pid=os.getpid(), url=settings.url, workspace=str(settings.workspace_path),
        started_at=_dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    )
    config = uvicorn.Config(
        TrackingFront(create_app(settings, state)),  # tracking requests skip FastAPI's stack
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    server = _Server(
        config,
        ready=lambda: on_ready(info) if on_ready else None,
        stopped=lambda: remove_serve_info(settings.workspace_path, info.pid),
    )
    write_serve_info(settings.workspace_path, info)
    try:
        server.run(sockets=[sock])
    finally:
        remove_serve_info(settings.workspace_path, info.pid)
        sock.close()


def _bind(settings: ServeSettings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"Cannot listen on {settings.url}: {exc.strerror or exc}.",
            hint="Pick another --port (or --host), or stop what uses this one.",
        ) from None
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, telling its caller once the socket listens and once it has shut
    down (uvicorn then raises the SIGTERM / SIGINT it caught again, so code after
    ``run()`` may never run)."""

    def __init__(self, config: uvicorn.Config, *, ready: Callable[[], None], stopped: Callable[[], None]):
        super().__init__(config)
        self._ready, self._stopped = ready, stopped

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            # what start-up loaded (the libraries, the app) is never garbage: left out of
            # collections, a full one walks only what requests and runs allocated since
            gc.freeze()
            self._ready()

    async def shutdown(self, sockets=None) -> None:
        try:
            await super().shutdown(sockets)
        finally:
            self._stopped()
