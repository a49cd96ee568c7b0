"""``/api/crm``: CRM sync both ways (:mod:`segmentum.crm`).

    POST   /api/crm/{kind}                      contacts, deals (stage changes), orders, order
                                                lines, products or events in; one answer
                                                per record (write scope)
    GET    /api/crm/consent/changes?since=      unsubscribes, resubscribes, suppressions out
    GET    /api/segments/{name}/changes?since=  entries and exits out (segments router)
    POST   /api/crm/webhooks                    subscribe a URL to entries / exits (admin)
    GET    /api/crm/webhooks                    subscriptions with their queue counts
    GET    /api/crm/webhooks/{id}               one subscription
    DELETE /api/crm/webhooks/{id}               unsubscribe (its queue goes too)
    GET    /api/crm/webhooks/{id}/deliveries    its queue: pending, delivered, failed changes
    POST   /api/crm/webhooks/{id}/retry         put its failed batches back in the queue
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from segmentum.service.api._base import ADMIN, ERRORS, READ, WRITE, PageArgs, caller, keyset_page, on_workspace
from segmentum.service.schemas.common import Page
from segmentum.service.schemas.crm import (
    ConsentChanges,
    QueuedChange,
    RecordsIn,
    SyncReport,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/crm", tags=["crm"], responses=ERRORS)
Kind = Literal["contacts", "deals", "orders", "order_items", "products", "events"]


def _sync(ws, kind: str, body: RecordsIn, source: str) -> dict:
    from segmentum.crm.sync import sync_records

    return sync_records(ws, kind, body.records, source=source, create_contacts=body.create_contacts)


def _consent(ws, since: str | None, limit: int) -> dict:
    from segmentum.crm.feeds import consent_changes

    return consent_changes(ws, since, limit)


def _create(ws, body: WebhookCreate, by: str) -> dict:
    from segmentum.crm.webhooks import create_webhook

    row, secret = create_webhook(ws, body.url, segments=body.segments, events=body.events,
                                 description=body.description, by=by)
    return {**row, "secret": secret}


def _queue(ws, webhook_id: str, status: str | None, page: PageArgs) -> dict:
    from segmentum.crm.webhooks import queue_rows

    t = queue_rows(ws, webhook_id, status)
    if t is None:
        return {"items": [], "limit": page.limit, "next": None, "total": 0}
    return keyset_page(t.drop("webhook_id"), ["seq"], page)


def _hooks():
    from segmentum.crm import webhooks

    return webhooks


@router.get("/consent/changes", response_model=ConsentChanges, dependencies=[READ])
async def consent_changes(request: Request,
                          since: str | None = Query(None, max_length=2000, description=(
                              "the `next` of an earlier answer, or an ISO 8601 time")),
                          limit: int = Query(500, ge=1, le=5000)):
    """Consent events (unsubscribes, resubscribes, suppressions) in the order they were
    recorded, after ``since``; keep ``next`` to ask for what follows."""
    return await on_workspace(request, _consent, since, limit)


@router.post("/webhooks", status_code=201, response_model=WebhookCreated, dependencies=[ADMIN])
async def create_webhook(request: Request, body: WebhookCreate, response: Response):
    """Subscribe a URL to segment entries and exits from now on (signed, in order, retried)."""
    row = await on_workspace(request, _create, body, caller(request))
    response.headers["Location"] = f"/api/crm/webhooks/{row['webhook_id']}"
    return row


@router.get("/webhooks", response_model=list[WebhookPublic], dependencies=[ADMIN])
async def list_webhooks(request: Request):
    """Every subscription, with how many of its changes are pending, delivered, failed."""
    return await on_workspace(request, lambda ws: _hooks().list_webhooks(ws))


@router.get("/webhooks/{webhook_id}", response_model=WebhookPublic, dependencies=[ADMIN])
async def get_webhook(request: Request, webhook_id: str):
    """One subscription."""
    return await on_workspace(request, lambda ws: _hooks().get_webhook(ws, webhook_id))


@router.delete("/webhooks/{webhook_id}", status_code=204, dependencies=[ADMIN])
async def delete_webhook(request: Request, webhook_id: str):
    """Unsubscribe: the subscription and its queue are forgotten."""
    await on_workspace(request, lambda ws: _hooks().delete_webhook(ws, webhook_id))
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=Page[QueuedChange], dependencies=[ADMIN])
async def webhook_deliveries(request: Request, webhook_id: str,
                             status: Literal["pending", "delivered", "failed"] | None = None,
                             page: PageArgs = Depends()):
    """A subscription's queue, oldest change first."""
    return await on_workspace(request, _queue, webhook_id, status, page)


@router.post("/webhooks/{webhook_id}/retry", response_model=dict[str, Any], dependencies=[ADMIN])
async def retry_webhook(request: Request, webhook_id: str):
    """Put the subscription's failed batches back in the queue."""
    n = await on_workspace(request, lambda ws: _hooks().retry(ws, webhook_id))
    return {"webhook_id": webhook_id, "requeued": n}


@router.post("/{kind}", response_model=SyncReport, dependencies=[WRITE])
async def sync(request: Request, kind: Kind, body: RecordsIn):
    """Upsert a CRM's records of one kind with the file loader's checks; the answer says,
    for every record by its index, whether it was accepted, quarantined (why, which field)
    or suppressed (an erased person's). A deal's stage change is a deal record with the new
    stage and the time it changed."""
    return await on_workspace(request, _sync, kind, body, f"crm:{caller(request)}")
