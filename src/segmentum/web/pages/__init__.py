"""The pages of the web app, one module each (every router's routes are pages or htmx
fragments of them; none is in the OpenAPI document)."""

from __future__ import annotations

__all__ = ["routers"]


def routers() -> list:
    from segmentum.web.pages import (
        campaigns, cohorts, contacts, dashboard, exports, inbox, login, personas, rfm, segments,
        triggers)

    return [login.router, dashboard.router, rfm.router, cohorts.router, segments.router,
            contacts.router, personas.router, campaigns.router, triggers.router, exports.router,
            inbox.router]
