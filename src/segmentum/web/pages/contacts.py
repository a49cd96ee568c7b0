"""``/contacts``: search by id, e-mail or name, and a contact's 360-degree card.

    GET /contacts?q=&cursor=     matching contacts (25 a page)
    GET /contacts/{id}           the card (by contact_id or e-mail): profile, consents, RFM,
                                 CLV, segments now and before, personas, deals, orders,
                                 timeline of orders, events and messages; why in / out
"""

from __future__ import annotations

from fastapi import Request

from segmentum.web.render import page, run, web_router

__all__ = ["router"]

router = web_router()


def _search(ws, q: str, cursor: str | None) -> dict:
    from segmentum.service.api._base import PageArgs
    from segmentum.service.api.contacts import _search as api_search

    return api_search(ws, q or None, PageArgs(limit=25, cursor=cursor))


def _card(ws, key: str, as_of: str | None) -> dict:
    from segmentum.segments.store import SegmentStore
    from segmentum.service.api.contacts import _card as api_card

    card = api_card(ws, key, as_of, 30, 10)
    card["saved_segments"] = SegmentStore(ws).names()
    return card


@router.get("/contacts")
async def contacts(request: Request, q: str = "", cursor: str | None = None):
    found = await run(request, _search, q.strip(), cursor) if q.strip() else None
    return page(request, "contacts/search.html", q=q, found=found)


@router.get("/contacts/{key}")
async def contact(request: Request, key: str, as_of: str | None = None):
    card = await run(request, _card, key, as_of or None)
    return page(request, "contacts/card.html", c=card)
