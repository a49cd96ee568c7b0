"""create_app(): the FastAPI application of ``segmentum serve``.

One application per workspace: the tracking routes (``/v1/*``), ``GET /health``, the web
app (``/``, :mod:`segmentum.web`), and whatever routers are added with
``app.include_router`` (each resource its own router, using the dependencies of :mod:`.deps`).
The lifespan opens a :class:`ServiceState` (or takes the one given), starts its consumer,
and closes it on shutdown.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from segmentum import web
from segmentum.service import api, live, tracking
from segmentum.service.errors import install_error_handlers
from segmentum.service.settings import ServeSettings
from segmentum.service.state import ServiceState

__all__ = ["create_app"]


def create_app(settings: ServeSettings | None = None, state: ServiceState | None = None) -> FastAPI:
    """The application; it opens ``settings``' workspace at start-up unless ``state`` is given."""
    settings = settings or (state.settings if state else ServeSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service = state or ServiceState.open(settings)
        app.state.service = service
        app.state.admission = tracking.Admission()
        service.start()
        hooks = api.start_background(service)  # CRM webhook deliveries
        try:
            yield
        finally:
            hooks.stop()
            service.close()

    app = FastAPI(
        title="Segmentum",
        summary="Tracking API (Segment-compatible) and REST API over a Segmentum workspace.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.router.routes.extend(tracking.routes)
    api.include(app)  # the REST API under /api (segmentum.service.api)
    app.include_router(live.router)  # /metrics and /api/live/* (segmentum.service.live)
    web.mount(app)  # the web app at / and /static (segmentum.web)

    @app.get("/health", tags=["service"])
    async def health() -> dict:
        """The intake log and the consumer: positions, backlog, last error."""
        return app.state.service.health()

    return app
