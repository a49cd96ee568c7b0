"""``/api/segments``: saved segments over :class:`segmentum.segments.SegmentEngine`.

    GET    /api/segments                     list (size and last refresh), ?q= filters by name
    POST   /api/segments                     create (201); a bad rule: 400 with line / column
    POST   /api/segments/check               check a rule: canonical text, JSON face, warnings
    POST   /api/segments/preview             count, share, a sample and the SQL of a rule
    POST   /api/segments/refresh             refresh (all or some) as of a time; triggers fire
    POST   /api/segments/explain             why a contact is in or out of a rule
    GET    /api/segments/{name}              definition, dependencies, last refresh
    PUT    /api/segments/{name}              change the rule / description (history kept)
    DELETE /api/segments/{name}              delete with its history (204)
    POST   /api/segments/{name}/refresh      refresh one
    GET    /api/segments/{name}/history      one row per refresh
    GET    /api/segments/{name}/members      members (paginated), ?as_of= from the history
    GET    /api/segments/{name}/changes      entries and exits after a cursor (CRM sync)
    GET    /api/segments/{name}/explain      why ?contact_id= is in or out
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response

from segmentum.clock import to_utc
from segmentum.service.api._base import ERRORS, READ, WRITE, PageArgs, keyset_page, list_page, on_workspace
from segmentum.service.schemas.common import Page
from segmentum.service.schemas.segments import (
    ChangesPage,
    ExplainRequest,
    Explanation,
    History,
    Member,
    Preview,
    PreviewRequest,
    Refreshed,
    RefreshRequest,
    RuleCheck,
    RuleChecked,
    SegmentCreate,
    SegmentPublic,
    SegmentSummary,
    SegmentUpdate,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/segments", tags=["segments"], responses=ERRORS)
AsOf = Query(None, max_length=64, description="ISO 8601 (UTC if no offset), a date, or `now`")


def _engine(ws):
    from segmentum.segments import SegmentEngine

    return SegmentEngine(ws)


def _as_of(value: str | None, *, default_now: bool = True):
    return to_utc(value) if value is not None or default_now else None


# -- library calls, run on the workspace thread ------------------------------------------------
def _list(ws, q: str | None) -> list[dict]:
    rows = _engine(ws).list()
    return [r for r in rows if not q or q.lower() in r["name"].lower()]


def _show(ws, name: str, warnings: list[str] | None = None) -> dict:
    return {**_engine(ws).show(name), "warnings": warnings or []}


def _save(ws, name: str, rule: Any, description: str | None, *, replace: bool) -> dict:
    eng = _engine(ws)
    if replace:
        eng.get(name)  # 404 for an unknown segment, never a silent create
    warnings = eng.check(rule, name=name).warnings
    eng.create(name, rule, description=description, replace=replace)
    return _show(ws, name, warnings)


def _check(ws, rule: Any) -> dict:
    from segmentum.segments.json_face import to_json
    from segmentum.segments.printer import to_text

    checked = _engine(ws).check(rule)
    return {"ok": True, "rule": to_text(checked.tree), "rule_json": to_json(checked.tree),
            "warnings": checked.warnings}


def _refresh(ws, names: list[str] | None, as_of: str | None) -> dict:
    import time

    from segmentum.activation.triggers import fire_from_refresh

    started = time.perf_counter()
    results = _engine(ws).refresh(names, to_utc(as_of))
    runs = fire_from_refresh(ws, results, results[0].as_of) if results else []
    return {"refreshed": results, "triggers": runs, "seconds": round(time.perf_counter() - started, 3)}


def _history(ws, name: str, since: str | None, until: str | None) -> dict:
    hist = _engine(ws).history(name)
    if since is not None:
        hist = hist[hist.as_of >= to_utc(since)]
    if until is not None:
        hist = hist[hist.as_of <= to_utc(until)]
    return {"segment": name, "refreshes": hist}


def _members(ws, name: str, as_of: str | None, page: PageArgs) -> dict:
    members = _engine(ws).current_members(name, _as_of(as_of, default_now=False))
    c = ws.warehouse.table("contacts")
    cols = [x for x in ("email", "first_name", "last_name") if x in c.columns]
    t = members.left_join(c.select("contact_id", *cols), "contact_id").select(
        "contact_id", "entered_at", *cols
    )
    return keyset_page(t, ["contact_id"], page)


def _changes(ws, name: str, since: str | None, limit: int) -> dict:
    from segmentum.crm.feeds import membership_changes

    return membership_changes(ws, name, since, limit)


def _explain(ws, rule_or_name: Any, contact_id: str, as_of: str | None) -> dict:
    return _engine(ws).explain(rule_or_name, contact_id, to_utc(as_of)).to_dict()


def _explain_saved(ws, name: str, contact_id: str, as_of: str | None) -> dict:
    _engine(ws).get(name)
    return _explain(ws, name, contact_id, as_of)


# -- routes ----------------------------------------------------------------------------------
@router.get("", response_model=Page[SegmentSummary], dependencies=[READ])
async def list_segments(request: Request, q: str | None = Query(None, max_length=200,
                        description="only names containing this (case-insensitive)"),
                        page: PageArgs = Depends()):
    """Saved segments with their size and the time of their last refresh, by name."""
    return list_page(await on_workspace(request, _list, q), "name", page)


@router.post("", status_code=201, response_model=SegmentPublic, dependencies=[WRITE])
async def create_segment(request: Request, body: SegmentCreate, response: Response):
    """Check and save a segment; run a refresh to record its members."""
    response.headers["Location"] = f"/api/segments/{quote(body.name, safe='')}"
    return await on_workspace(request, _save, body.name, body.rule, body.description, replace=False)


@router.post("/check", response_model=RuleChecked, dependencies=[READ])
async def check_rule(request: Request, body: RuleCheck):
    """Check a rule against this workspace without running it (errors carry their position)."""
    return await on_workspace(request, _check, body.rule)


@router.post("/preview", response_model=Preview, dependencies=[READ])
async def preview_rule(request: Request, body: PreviewRequest):
    """How many contacts a rule selects as of a time, a sample of them, and the SQL it runs."""
    return await on_workspace(
        request, lambda ws: _engine(ws).preview(body.rule, to_utc(body.as_of), sample=body.sample)
    )


@router.post("/refresh", response_model=Refreshed, dependencies=[WRITE])
async def refresh_segments(request: Request, body: RefreshRequest):
    """Recompute saved segments as of a time, record who entered and left, fire triggers."""
    return await on_workspace(request, _refresh, body.names, body.as_of)


@router.post("/explain", response_model=Explanation, dependencies=[READ])
async def explain_rule(request: Request, body: ExplainRequest):
    """Every condition's value and truth for one contact (a saved segment's name works too)."""
    return await on_workspace(request, _explain, body.rule, body.contact_id, body.as_of)


@router.get("/{name}", response_model=SegmentPublic, dependencies=[READ])
async def get_segment(request: Request, name: str):
    """A segment's definition, the segments it names and that name it, its last refresh."""
    return await on_workspace(request, _show, name)


@router.put("/{name}", response_model=SegmentPublic, dependencies=[WRITE])
async def update_segment(request: Request, name: str, body: SegmentUpdate):
    """Change a segment's rule (and description); its membership history is kept."""
    return await on_workspace(request, _save, name, body.rule, body.description, replace=True)


@router.delete("/{name}", status_code=204, dependencies=[WRITE])
async def delete_segment(request: Request, name: str):
    """Delete a segment with its history (refused while other segments name it)."""
    await on_workspace(request, lambda ws: _engine(ws).delete(name))
    return Response(status_code=204)


@router.post("/{name}/refresh", response_model=Refreshed, dependencies=[WRITE])
async def refresh_segment(request: Request, name: str,
                          as_of: str | None = Query(None, max_length=64, description="default: now")):
    """Refresh one segment (and record its entries and exits) as of a time."""
    return await on_workspace(request, _refresh, [name], as_of)


@router.get("/{name}/history", response_model=History, dependencies=[READ])
async def segment_history(request: Request, name: str,
                          since: str | None = Query(None, max_length=64, description="refreshes at or after"),
                          until: str | None = Query(None, max_length=64, description="refreshes at or before")):
    """Size over time: one row per refresh with its entries and exits."""
    return await on_workspace(request, _history, name, since, until)


@router.get("/{name}/members", response_model=Page[Member], dependencies=[READ])
async def segment_members(request: Request, name: str, as_of: str | None = AsOf,
                          page: PageArgs = Depends()):
    """The members recorded by the last refresh (or at ``as_of``, from the history)."""
    return await on_workspace(request, _members, name, as_of, page)


@router.get("/{name}/changes", response_model=ChangesPage, dependencies=[READ])
async def segment_changes(request: Request, name: str,
                          since: str | None = Query(None, max_length=2000, description=(
                              "the `next` of an earlier answer, or an ISO 8601 time; "
                              "default: from the first change")),
                          limit: int = Query(500, ge=1, le=5000)):
    """Entries and exits in the order they were recorded, after ``since``. Keep the answer's
    ``next`` and ask again with it: nothing is missed or repeated, across restarts too."""
    return await on_workspace(request, _changes, name, since, limit)


@router.get("/{name}/explain", response_model=Explanation, dependencies=[READ])
async def explain_contact(request: Request, name: str,
                          contact_id: str = Query(..., min_length=1, max_length=500),
                          as_of: str | None = AsOf):
    """Why a contact is in or out of a saved segment, condition by condition."""
    return await on_workspace(request, _explain_saved, name, contact_id, as_of)
