"""``/api/contacts`` and ``/api/privacy``: search, the 360-degree card, erasure.

    GET    /api/contacts?q=           search by id (prefix), e-mail or name (paginated)
    GET    /api/contacts/{id}         the card: profile, consents, RFM, CLV, segments now and
                                      before, personas, deals, orders, timeline (id or e-mail)
    DELETE /api/contacts/{id}         erase the contact everywhere (admin); the audit record
    GET    /api/privacy/erasures      the audit: every erasure and readmission (admin)
    POST   /api/privacy/readmit       lift an erased person's tombstones (consent given again)
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from segmentum.clock import to_utc
from segmentum.errors import UsageError
from segmentum.service.api._base import ADMIN, ERRORS, READ, PageArgs, caller, keyset_page, on_workspace
from segmentum.service.schemas.common import Page
from segmentum.service.schemas.contacts import ContactCard, ContactSummary, ErasureReport, Readmit, Readmitted

__all__ = ["router", "privacy_router"]

router = APIRouter(prefix="/api/contacts", tags=["contacts"], responses=ERRORS)
privacy_router = APIRouter(prefix="/api/privacy", tags=["contacts"], responses=ERRORS)
_SHOWN = ("contact_id", "email", "first_name", "last_name", "city", "country", "created_at")


def _search(ws, q: str | None, page: PageArgs) -> dict:
    import ibis

    c = ws.table("contacts")
    cols = [x for x in _SHOWN if x in c.columns]
    t = c.select(*cols)
    if q is not None and q.strip():
        low = ibis.literal(q.strip().lower(), type="string")
        cond = t.contact_id.lower().startswith(low)
        if "email" in cols:
            cond = cond | t.email.lower().contains(low)
        names = [t[x].fill_null("") for x in ("first_name", "last_name") if x in cols]
        if names:
            full = ibis.literal(" ").join(names).lower()
            cond = cond | full.contains(low)
        t = t.filter(cond)
    return keyset_page(t, ["contact_id"], page)


def _card(ws, key: str, as_of: str | None, events: int, orders: int) -> dict:
    from segmentum.analytics.contact_card import contact_card

    return contact_card(ws, key, to_utc(as_of), events=events, orders=orders).to_dict()


def _erase(ws, contact_id: str, by: str, log, compact: bool) -> dict:
    from segmentum.privacy import erase_contact

    return erase_contact(ws, contact_id, by=by, log=log, compact=compact)


def _audit(ws) -> list[dict]:
    from segmentum.privacy.erase import audit_rows

    return audit_rows(ws)


def _readmit(ws, body: Readmit, by: str) -> dict:
    from segmentum.privacy import readmit

    return readmit(ws, contact_id=body.contact_id, email=body.email, phone=body.phone,
                   reason=body.reason, by=by)


@router.get("", response_model=Page[ContactSummary], dependencies=[READ])
async def search_contacts(request: Request, q: str | None = Query(
        None, max_length=200, description="an id prefix, part of an e-mail address or of a name"),
        page: PageArgs = Depends()):
    """Contacts whose id starts with ``q`` or whose e-mail or name contains it, by id."""
    return await on_workspace(request, _search, q, page)


@router.get("/{contact}", response_model=ContactCard, dependencies=[READ])
async def get_contact(request: Request, contact: str,
                      as_of: str | None = Query(None, max_length=64, description="default: now"),
                      events: int = Query(20, ge=0, le=1000, description="timeline length"),
                      orders: int = Query(5, ge=0, le=200, description="last orders with their items")):
    """One contact's card, by contact_id or e-mail address (the closest ids when unknown)."""
    return await on_workspace(request, _card, contact, as_of, events, orders)


@router.delete("/{contact_id}", response_model=ErasureReport, dependencies=[ADMIN])
async def erase(request: Request, contact_id: str,
                compact: bool = Query(True, description=(
                    "rewrite the workspace file afterwards so no freed page keeps the data "
                    "(seconds to minutes on a large workspace; false for a batch, then erase "
                    "the last one with true)"))):
    """Erase a contact from every table and file the workspace owns; keep salted-hash
    tombstones so a later load or tracking call with its identifiers is suppressed."""
    if not contact_id.strip():
        raise UsageError("Name the contact to erase by its contact_id.", field="contact_id")
    state = request.app.state.service
    return await on_workspace(request, _erase, contact_id, caller(request), state.log, compact)


@privacy_router.get("/erasures", response_model=list[ErasureReport], dependencies=[ADMIN])
async def list_erasures(request: Request):
    """Every erasure and readmission: who, when, what was removed where (never the identifiers)."""
    return await on_workspace(request, _audit)


@privacy_router.post("/readmit", response_model=Readmitted, dependencies=[ADMIN])
async def readmit_person(request: Request, body: Readmit):
    """Lift the tombstones of an erased person's identifiers once they gave consent again."""
    return await on_workspace(request, _readmit, body, caller(request))
