"""``/triggers``: what happens when a contact enters or leaves a segment, exactly once.

    GET  /triggers              every trigger, what it reacts to and does, its occurrences
    GET  /triggers/new          the form: on entering / leaving a segment, send a message
    POST /triggers              save it (the same checks as a trigger file)
    GET  /triggers/{name}       definition, occurrences by status, the latest ones
    POST /triggers/fire         evaluate every trigger now (refreshing segments fires them too)
"""

from __future__ import annotations

import json

from fastapi import Request

from segmentum.web.render import first, page, partial, run, save_from_form, web_router
from segmentum.web.security import require

__all__ = ["router"]

router = web_router()


def _list(ws) -> dict:
    from segmentum.service.api.activation import _triggers

    return {"triggers": _triggers(ws)}


def _trigger(ws, name: str) -> dict:
    from segmentum.activation.triggers import occurrences
    from segmentum.service.api.activation import _trigger as api_trigger

    occ = occurrences(ws, name)
    latest = occ.order_by(occ.occurred_at.desc()).limit(25).select(
        "contact_id", "kind", "occurred_at", "status", "reason").to_pyarrow().to_pylist()
    return {**api_trigger(ws, name), "latest": latest}


def trigger_document(form: dict[str, list[str]]) -> dict:
    """The trigger the form describes, as the document a trigger file holds."""
    get = lambda key, default="": first(form, key, default).strip()  # noqa: E731
    content = {k: first(form, k) for k in ("subject", "text") if first(form, k).strip()}
    return {"kind": "trigger", "name": get("name"), "on": {get("on", "enter"): get("segment")},
            "action": {"send": {"channel": get("channel", "email"), "content": content,
                                "tags": [t.strip() for t in get("tags", "marketing").split(",") if t.strip()]}},
            "reentry": get("reentry", "once")}


def _save(ws, doc: dict, by: str) -> dict:
    from segmentum.service.api.activation import _save_trigger

    return _save_trigger(ws, json.dumps(doc), f"web:{by}", None)


def _fire(ws) -> dict:
    from segmentum.service.api.activation import _fire as api_fire
    from segmentum.service.schemas.activation import FireRequest

    return {"runs": api_fire(ws, FireRequest()), "delivered": deliver_due(ws)}


def deliver_due(ws) -> dict | None:
    """Send the messages now due in the delivery log (what triggers just queued), through
    the configured channels; None when no channel is configured."""
    from segmentum.activation.channels import load_channels
    from segmentum.activation.delivery import Sender

    channels = load_channels(ws)
    if not channels:
        return None
    return Sender(ws, channels).deliver().to_dict()


@router.get("/triggers")
async def triggers(request: Request):
    return page(request, "triggers/list.html", d=await run(request, _list))


@router.get("/triggers/new")
async def new_trigger(request: Request, segment: str = ""):
    from segmentum.web.pages.campaigns import _choices

    return page(request, "triggers/new.html", c=await run(request, _choices), segment=segment)


@router.post("/triggers")
async def create(request: Request):
    return await save_from_form(request, _save, trigger_document, "/triggers")


@router.post("/triggers/fire")
async def fire(request: Request):
    require(request, "write")
    return partial(request, "triggers/fired.html", f=await run(request, _fire))


@router.get("/triggers/{name}")
async def trigger(request: Request, name: str):
    return page(request, "triggers/detail.html", t=await run(request, _trigger, name), name=name)
