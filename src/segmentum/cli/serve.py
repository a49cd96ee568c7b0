"""`segmentum serve`: the tracking API (and later the REST API) on one workspace.

    segmentum serve                                  # http://127.0.0.1:8000, ./segmentum.duckdb
    segmentum -w shop.duckdb serve --host 0.0.0.0 --port 9000
    segmentum serve --port 0 --json                  # a free port; one JSON line once it listens

The work is :func:`segmentum.service.server.serve`; every other setting comes from
``SEGMENTUM_SERVE_*`` variables (:class:`segmentum.service.settings.ServeSettings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segmentum.cli.common import JsonOpt, WorkspaceOpt, console, emit_json, json_errors

__all__ = ["app"]

app = typer.Typer()


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on. Default: 127.0.0.1.", show_default=False)
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", "-p", min=0, max=65535, help="Port (0: any free one). Default: 8000.",
                     show_default=False),
    ] = None,
    event_types: Annotated[
        Path | None,
        typer.Option("--event-types", help="YAML: Segment event name -> event type (over the defaults).",
                     show_default=False),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve the workspace: Segment-compatible tracking API at /v1/*, until Ctrl-C."""
    from segmentum.service.server import serve as run
    from segmentum.service.settings import ServeSettings

    def ready(info) -> None:
        if as_json:
            emit_json({"pid": info.pid, "url": info.url, "workspace": info.workspace,
                       "started_at": info.started_at})
            return
        console.print(
            f"Serving [bold]{info.workspace}[/] at [bold]{info.url}[/] (pid {info.pid}). "
            f"Tracking: POST {info.url}/v1/batch with a write key "
            "(`segmentum keys create web --scopes track`). Ctrl-C stops.",
            highlight=False,
        )

    with json_errors(as_json):
        given = {"host": host, "port": port, "workspace": workspace,
                 "event_types": str(event_types) if event_types else None}
        run(ServeSettings(**{k: v for k, v in given.items() if v is not None}), on_ready=ready)
