"""``/campaigns``: campaigns made from a segment, sent, and measured against their control.

    GET  /campaigns                   every campaign, its runs and their outcomes
    GET  /campaigns/new?segment=      the form: audience, channel, content (a template of the
                                      workspace, or written here), control group, caps,
                                      quiet hours, send time, schedule, conversion window
    POST /campaigns/preview           the message rendered for one contact
    POST /campaigns                   save the campaign (the same checks as a campaign file)
    GET  /campaigns/{name}            definition, runs, report per run, delivery outcomes
    POST /campaigns/{name}/send       plan and send the run due (or a dry run)
    GET  /campaigns/{name}/report     the report of one run (?run=, ?as_of=): per arm, the
                                      uplift with its confidence interval drawn

A campaign made here is the document a campaign file holds, built from the form and
saved through :func:`segmentum.activation.campaigns.loads_campaign` (its located errors
come back to the form).
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import Query, Request

from segmentum.errors import UsageError
from segmentum.web.render import first, form_data, page, partial, run, save_from_form, web_router
from segmentum.web.security import require

__all__ = ["router", "campaign_document"]

router = web_router()


# -- library calls ----------------------------------------------------------------------
def _list(ws) -> dict:
    from segmentum.activation.delivery import DeliveryLog
    from segmentum.service.api.activation import _campaigns

    runs = [r for r in DeliveryLog(ws).summary() if r["kind"] == "campaign"]
    return {"campaigns": _campaigns(ws), "runs": runs}


def _choices(ws) -> dict:
    """What the form offers: saved segments, configured channels, workspace templates."""
    from segmentum.activation.channels import load_settings
    from segmentum.activation.content import workspace_dir
    from segmentum.segments.store import SegmentStore

    settings = load_settings(ws)
    folder = workspace_dir(ws)
    templates = []
    if folder is not None and (folder / "templates").is_dir():
        templates = sorted(p.stem for p in (folder / "templates").iterdir()
                           if p.is_dir() or p.suffix in (".yaml", ".yml"))
    return {"segments": SegmentStore(ws).names(), "channels": sorted(settings.channels),
            "templates": templates, "settings_file": settings.file,
            "settings_hint": str(Path(ws.config.path).resolve().parent / "segmentum.yaml")}


def campaign_document(form: dict[str, list[str]]) -> dict:
    """The campaign the form describes, as the document a campaign file holds."""
    get = lambda key, default="": first(form, key, default).strip()  # noqa: E731
    doc: dict = {"name": get("name"), "audience": {"segment": get("segment")},
                 "channel": get("channel", "email"), "control_pct": _number(get("control_pct", "10"), "control group"),
                 "conversion": {"window_days": _number(get("window_days", "14"), "conversion window")},
                 "tags": [t.strip() for t in get("tags", "marketing").split(",") if t.strip()],
                 "transactional": get("transactional") == "on"}
    if get("description"):
        doc["description"] = get("description")
    if get("content_kind") == "template":
        doc["content"] = get("template")
    else:
        inline = {k: first(form, k) for k in ("subject", "text", "html") if first(form, k).strip()}
        doc["content"] = inline
    if get("send_at"):
        doc["schedule"] = {"at": get("send_at") if get("send_at").endswith("Z") else get("send_at") + "Z"}
    if get("cap_limit"):
        doc["caps"] = [{"channel": doc["channel"], "tag": "marketing",
                        "limit": int(_number(get("cap_limit"), "cap")), "window": get("cap_window", "7d")}]
    if get("quiet_start") and get("quiet_end"):
        doc["quiet_hours"] = {"start": get("quiet_start"), "end": get("quiet_end")}
    if get("send_time") == "optimised":
        doc["send_time"] = "optimised"
    return doc


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"The {what} must be a number, not {text!r}.") from None
    return int(value) if value.is_integer() else value


def _save(ws, doc: dict, by: str) -> dict:
    from segmentum.service.api.activation import _save_campaign

    return _save_campaign(ws, json.dumps(doc), f"web:{by}", None)


def _preview(ws, doc: dict, contact_id: str, as_of: str | None) -> dict:
    from segmentum.activation.campaigns import loads_campaign
    from segmentum.activation.content import contact_context, render
    from segmentum.activation.plan import _template
    from segmentum.clock import to_utc
    from segmentum.errors import NotFoundError

    campaign = loads_campaign(json.dumps({**doc, "name": doc.get("name") or "preview"}), "the form")
    template = _template(ws, campaign)
    T = to_utc(as_of or None)
    contexts = contact_context(ws, [contact_id], T, fields=template.fields,
                               recommendations=template.recommendations)
    if contact_id not in contexts:
        raise NotFoundError(f"No contact {contact_id!r} in this workspace.", field="contact_id")
    message = render(template, contexts[contact_id], contact_id=contact_id)
    return {"contact_id": contact_id, "subject": message.subject, "text": message.text,
            "html": message.html, "variant": message.variant}


def _campaign(ws, name: str) -> dict:
    from segmentum.service.api.activation import _campaign as api_campaign

    return api_campaign(ws, name)


def _send(ws, name: str, as_of: str | None, dry_run: bool) -> dict:
    from segmentum.service.api.activation import _send as api_send
    from segmentum.service.schemas.activation import SendRequest

    return api_send(ws, name, SendRequest(as_of=as_of or None, dry_run=dry_run))


def _report(ws, name: str, run_: str | None, as_of: str | None) -> dict:
    from segmentum.service.api.activation import _report as api_report

    return api_report(ws, name, run_ or None, as_of or None, False, 90, "welch")


def lifts(report: dict) -> list[dict]:
    """The measured differences the uplift chart draws (rate in percentage points)."""
    out = []
    conv, rev = report.get("conversion_lift"), report.get("revenue_lift")
    if conv and conv.get("ci_low") is not None:
        out.append({"measure": "Conversion rate (pp)", **{k: conv[k] * 100 for k in ("difference", "ci_low", "ci_high")}})
    if rev and rev.get("ci_low") is not None:
        out.append({"measure": "Revenue per recipient", **{k: rev[k] for k in ("difference", "ci_low", "ci_high")}})
    return out


# -- routes -----------------------------------------------------------------------------
@router.get("/campaigns")
async def campaigns(request: Request):
    return page(request, "campaigns/list.html", d=await run(request, _list))


@router.get("/campaigns/new")
async def new_campaign(request: Request, segment: str = ""):
    choices = await run(request, _choices)
    return page(request, "campaigns/new.html", c=choices, segment=segment)


@router.post("/campaigns/preview")
async def preview(request: Request):
    form = await form_data(request)
    contact = first(form, "preview_contact").strip()
    if not contact:
        raise UsageError("Give a contact id to preview the message for.", field="preview_contact")
    data = await run(request, _preview, campaign_document(form), contact, first(form, "preview_as_of"))
    return partial(request, "campaigns/preview.html", m=data)


@router.post("/campaigns")
async def create(request: Request):
    return await save_from_form(request, _save, campaign_document, "/campaigns")


@router.get("/campaigns/{name}")
async def campaign(request: Request, name: str):
    data = await run(request, _campaign, name)
    return page(request, "campaigns/detail.html", d=data, name=name)


@router.post("/campaigns/{name}/send")
async def send(request: Request, name: str):
    require(request, "write")
    form = await form_data(request)
    result = await run(request, _send, name, first(form, "as_of").strip(), first(form, "dry_run") == "on")
    return partial(request, "campaigns/sent.html", r=result, name=name)


@router.get("/campaigns/{name}/report")
async def report(request: Request, name: str, run_id: str = Query("", alias="run"), as_of: str = ""):
    from segmentum.web.charts import uplift

    data = await run(request, _report, name, run_id, as_of)
    drawn = lifts(data)
    return partial(request, "campaigns/report.html", r=data, spec=uplift(drawn) if drawn else None,
                   name=name)
