"""The web app a marketer opens: server-rendered pages (Jinja2) with htmx fragments and a
little Alpine.js, on the same library and workspace thread as the REST API.

    render.py     the Jinja2 environment, running library calls, forms, errors as pages
    security.py   who may use it (loopback: the local user; elsewhere: a REST key), CSRF
    assets.py     the npm files it serves (static/vendor/, built by `make install`)
    charts.py     Vega-Lite specs only the web app draws (trends, size history, uplift)
    builder.py    the segment builder's model <-> the rule's JSON face (no I/O)
    previews.py   live counts: the newest request of an editor wins, stale ones never run
    pages/        one module per page: dashboard, rfm, cohorts, segments, contacts,
                  personas, campaigns (and triggers), exports, inbox
    inbox.py      a local SMTP sink (127.0.0.1) and the messages it caught
    demo.py       `make demo`: the demo workspace served, with simulated live visitors

:func:`mount` adds the pages and ``/static`` to the service's application
(:func:`segmentum.service.app.create_app`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

__all__ = ["mount"]

STATIC = Path(__file__).resolve().parent / "static"


def mount(app: FastAPI) -> None:
    """Serve the web app at ``/`` on ``app`` (its static files at ``/static``)."""
    from fastapi.staticfiles import StaticFiles

    from segmentum.web.pages import routers

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in routers():
        app.include_router(router)
