"""The REST API under ``/api``: one router per resource, thin over the library.

    segments.py    /api/segments        definitions, preview, refresh, history, members, changes
    catalog.py     /api/catalog         the names and values rules may use
    contacts.py    /api/contacts        search, the card, erasure; /api/privacy
    analytics.py   /api/analytics       KPIs, RFM, cohorts, CLV, funnel, drill-down; /api/models
    personas.py    /api/personas        templates, discovered clusters, applying a template
    activation.py  /api/campaigns, /api/triggers, /api/exports, /api/templates, /api/deliveries
    crm.py         /api/crm             contact and deal upserts, consent changes, webhooks

:func:`include` adds them to the application (``segmentum.service.app.create_app``). What
every route shares (key scopes, the workspace thread, pages, JSON) is in :mod:`._base`.
"""

from __future__ import annotations

from fastapi import FastAPI

__all__ = ["include", "start_background"]


def include(app: FastAPI) -> None:
    """Add every REST router to ``app``."""
    from segmentum.service.api import activation, analytics, catalog, contacts, crm, personas, segments

    for router in (segments.router, catalog.router, contacts.router, contacts.privacy_router,
                   analytics.router, analytics.models_router, personas.router, crm.router,
                   *activation.routers):
        app.include_router(router)


def start_background(service):
    """Start what the API runs beside the requests (the CRM webhook dispatcher); the
    returned object's ``stop()`` ends it."""
    from segmentum.crm.dispatch import Dispatcher

    dispatcher = Dispatcher(service.access.call)
    dispatcher.start()
    return dispatcher
