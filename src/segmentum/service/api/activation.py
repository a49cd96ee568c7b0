"""``/api/campaigns``, ``/api/triggers``, ``/api/exports``, ``/api/templates``,
``/api/deliveries``: the activation layer (:mod:`segmentum.activation`).

    GET/POST         /api/campaigns                 list / create (JSON or YAML body)
    GET/PUT/DELETE   /api/campaigns/{name}          definition and runs / replace / delete
    POST             /api/campaigns/{name}/send     plan and send the due run (or dry run)
    GET              /api/campaigns/{name}/report   treatment vs. control: uplift with CIs
    GET              /api/campaigns/{name}/deliveries   the delivery log of its runs
    GET/POST         /api/campaigns/global-control  the global control group's epochs
    GET/POST         /api/triggers                  list / create
    GET/PUT/DELETE   /api/triggers/{name}           definition and occurrences / ...
    POST             /api/triggers/fire             evaluate triggers as of a time
    GET              /api/triggers/{name}/occurrences
    GET/POST         /api/exports                   export history / export a segment
    GET              /api/exports/{id}[/file|/removals]   one export, its files
    POST             /api/templates/{name}/preview  a template rendered for one contact
    GET              /api/deliveries                outcomes per campaign / trigger run

Exports made here are written to ``<workspace folder>/exports/`` under a name of their own.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse

from segmentum.clock import to_utc
from segmentum.errors import NotFoundError, UsageError
from segmentum.service.api._base import ERRORS, READ, WRITE, PageArgs, caller, keyset_page, list_page, on_workspace
from segmentum.service.schemas.activation import (
    CampaignPublic,
    CampaignSummary,
    Epochs,
    ExportPublic,
    ExportRequest,
    FireRequest,
    GlobalControl,
    PreviewFor,
    RenderedMessage,
    Report,
    RunResult,
    Saved,
    SendRequest,
    TriggerPublic,
    TriggerSummary,
)
from segmentum.service.schemas.common import Page

__all__ = ["routers"]

campaigns = APIRouter(prefix="/api/campaigns", tags=["campaigns"], responses=ERRORS)
triggers = APIRouter(prefix="/api/triggers", tags=["triggers"], responses=ERRORS)
exports = APIRouter(prefix="/api/exports", tags=["exports"], responses=ERRORS)
other = APIRouter(prefix="/api", tags=["campaigns"], responses=ERRORS)
routers = (campaigns, triggers, exports, other)

DOCUMENT = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "additionalProperties": True}},
    "application/yaml": {"schema": {"type": "string"}},
}}}
MAX_BODY = 1 << 20


async def _text(request: Request) -> str:
    """A definition's body as text (JSON is YAML too), for the file loaders' located errors."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise UsageError(f"A definition is at most {MAX_BODY:,} bytes.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("The body is not UTF-8 text.") from None
    if re.search(r"(?m)^\s*[\"']?templates_dir[\"']?\s*:", text) or '"templates_dir"' in text:
        raise UsageError("templates_dir is set by the workspace, not by a request: leave it out "
                         "(templates are looked up in the workspace's templates/ folder).",
                         field="templates_dir")
    return text


# -- campaigns ------------------------------------------------------------------------------
def _campaign_summary(ws, c, row) -> dict:
    from segmentum.activation.report import runs

    audience = f"segment {c.audience.segment}" if c.audience.segment else f"rule {c.audience.rule}"
    return {"name": c.name, "audience": audience, "channel": c.channel, "schedule": c.schedule.kind,
            "control_pct": c.control_pct, "runs": runs(ws, c.name), "source": row["source"],
            "updated_at": row["updated_at"]}


def _campaigns(ws) -> list[dict]:
    from segmentum.activation.campaigns import CampaignStore

    return [_campaign_summary(ws, c, row) for c, row in CampaignStore(ws).all()]


def _campaign(ws, name: str) -> dict:
    from segmentum.activation.campaigns import CampaignStore
    from segmentum.activation.message import Origin
    from segmentum.activation.runs import run_outcomes

    store = CampaignStore(ws)
    c = store.require(name)
    summary = next(_campaign_summary(ws, x, row) for x, row in store.all() if x.name == name)
    outcomes = {r: run_outcomes(ws, Origin("campaign", name, r)) for r in summary["runs"]}
    return {"campaign": json.loads(c.to_json()), "source": summary["source"], "runs": outcomes}


def _save_campaign(ws, text: str, source: str, name: str | None) -> dict:
    from segmentum.activation.campaigns import CampaignStore, loads_campaign

    c = loads_campaign(text, "request body")
    if name is not None:
        _same_name(name, c.name)
        CampaignStore(ws).require(name)
    action = CampaignStore(ws).save(c, source, replace=name is not None)
    return {"name": c.name, "action": action}


def _same_name(path_name: str, body_name: str) -> None:
    if path_name != body_name:
        raise UsageError(f"The body names {body_name!r}, the path {path_name!r}: rename by "
                         "creating the new one and deleting the old.", field="name")


def _delete_campaign(ws, name: str) -> dict:
    from segmentum.activation.campaigns import CampaignStore

    CampaignStore(ws).require(name)
    CampaignStore(ws).delete(name)
    return {"name": name, "action": "deleted"}


def _send(ws, name: str, body: SendRequest) -> dict:
    from segmentum.activation.campaigns import CampaignStore
    from segmentum.activation.runs import send_campaign

    c = CampaignStore(ws).require(name)
    return send_campaign(ws, c, to_utc(body.as_of), run=body.run, dry_run=body.dry_run,
                         retry_unknown=body.retry_unknown).to_dict()


def _report(ws, name, run, as_of, cuped, pre_days, revenue) -> dict:
    from segmentum.activation.report import campaign_report

    return campaign_report(ws, name, run, to_utc(as_of), cuped=cuped, pre_days=pre_days,
                           revenue_method=revenue)


_DELIVERY_COLUMNS = ("key", "occurrence", "contact_id", "channel", "arm", "outcome", "reason",
                     "planned_at", "send_at", "sent_at", "attempts", "error")


def _deliveries_of(ws, kind: str, name: str, run: str | None, outcome: str | None, page: PageArgs) -> dict:
    from segmentum.activation.delivery import DeliveryLog

    log = DeliveryLog(ws)
    t = log.of(name=name)
    t = t.filter(t.origin_kind == kind)
    if run is not None:
        t = t.filter(t.occurrence == run)
    if outcome is not None:
        t = t.filter(t.outcome == outcome)
    return keyset_page(t.select(*[c for c in _DELIVERY_COLUMNS if c in t.columns]), ["key"], page)


def _epochs(ws, body: GlobalControl | None) -> dict:
    from segmentum.activation.control_groups import ControlGroups

    cg = ControlGroups(ws)
    if body is not None:
        cg.start_epoch(body.pct, salt=body.salt, at=to_utc(body.start))
    return {"epochs": [e.to_dict() for e in cg.epochs()]}


@campaigns.get("", response_model=Page[CampaignSummary], dependencies=[READ])
async def list_campaigns(request: Request, page: PageArgs = Depends()):
    """Every campaign: audience, channel, schedule, control group, runs so far."""
    return list_page(await on_workspace(request, _campaigns), "name", page)


@campaigns.post("", status_code=201, response_model=Saved, dependencies=[WRITE], openapi_extra=DOCUMENT)
async def create_campaign(request: Request):
    """Save a campaign: the document a campaign file holds, as JSON or YAML."""
    text = await _text(request)
    return await on_workspace(request, _save_campaign, text, f"api:{caller(request)}", None)


@campaigns.get("/global-control", response_model=Epochs, dependencies=[READ])
async def global_control(request: Request):
    """The global control group's epochs (salt, share, start)."""
    return await on_workspace(request, _epochs, None)


@campaigns.post("/global-control", response_model=Epochs, dependencies=[WRITE])
async def start_global_control(request: Request, body: GlobalControl):
    """Start a new epoch of the global control group (a new salt draws it anew)."""
    return await on_workspace(request, _epochs, body)


@campaigns.get("/{name}", response_model=CampaignPublic, dependencies=[READ])
async def get_campaign(request: Request, name: str):
    """A campaign's definition and the outcomes of each of its runs."""
    return await on_workspace(request, _campaign, name)


@campaigns.put("/{name}", response_model=Saved, dependencies=[WRITE], openapi_extra=DOCUMENT)
async def replace_campaign(request: Request, name: str):
    """Change a campaign (its past runs stay in the delivery log)."""
    text = await _text(request)
    return await on_workspace(request, _save_campaign, text, f"api:{caller(request)}", name)


@campaigns.delete("/{name}", response_model=Saved, dependencies=[WRITE])
async def delete_campaign(request: Request, name: str):
    """Forget a campaign (its runs stay in the delivery log)."""
    return await on_workspace(request, _delete_campaign, name)


@campaigns.post("/{name}/send", response_model=RunResult, dependencies=[WRITE])
async def send_campaign(request: Request, name: str, body: SendRequest):
    """Plan the run due at ``as_of``, record every contact's outcome, deliver what is due.
    Sending a run again only resumes its delivery: no message goes out twice."""
    return await on_workspace(request, _send, name, body)


@campaigns.get("/{name}/report", response_model=Report, dependencies=[READ])
async def campaign_report(request: Request, name: str,
                          run: str | None = Query(None, max_length=64),
                          as_of: str | None = Query(None, max_length=64),
                          cuped: bool = False, pre_days: int = Query(90, ge=1, le=3650),
                          revenue: Literal["welch", "bootstrap"] = "welch"):
    """Treatment against control: conversion and revenue per recipient, 95% CIs, p, MDE."""
    return await on_workspace(request, _report, name, run, as_of, cuped, pre_days, revenue)


@campaigns.get("/{name}/deliveries", response_model=Page[dict[str, Any]], dependencies=[READ])
async def campaign_deliveries(request: Request, name: str,
                              run: str | None = Query(None, max_length=64),
                              outcome: str | None = Query(None, max_length=40),
                              page: PageArgs = Depends()):
    """The delivery log of a campaign's runs: one row per contact and run."""
    return await on_workspace(request, _deliveries_of, "campaign", name, run, outcome, page)


# -- triggers -------------------------------------------------------------------------------
def _trigger_summary(trigger, row) -> dict:
    on = trigger.on
    what = on.kind if not on.segments else f"{on.kind} {' -> '.join(on.segments)}"
    return {"name": trigger.name, "on": what, "action": trigger.action.kind,
            "reentry": trigger.reentry, "enabled": trigger.enabled,
            "active_from": row["active_from"], "source": row["source"]}


def _triggers(ws) -> list[dict]:
    from segmentum.activation.triggers import TriggerStore

    return [_trigger_summary(t, row) for t, row in TriggerStore(ws).all()]


def _trigger(ws, name: str) -> dict:
    from segmentum.activation.triggers import TriggerStore, occurrences

    store = TriggerStore(ws)
    trigger = store.require(name)
    occ = occurrences(ws, name)
    counts = {r["status"]: r["n"] for r in
              occ.group_by("status").agg(n=occ.count()).to_pyarrow().to_pylist()}
    return {**json.loads(trigger.to_json()), "active_from": store.row(name)["active_from"],
            "occurrences": counts}


def _save_trigger(ws, text: str, source: str, name: str | None) -> dict:
    from segmentum.activation.triggers import TriggerStore, loads_trigger

    t = loads_trigger(text, "request body")
    if name is not None:
        _same_name(name, t.name)
        TriggerStore(ws).require(name)
    return {"name": t.name, "action": TriggerStore(ws).save(t, source, replace=name is not None)}


def _delete_trigger(ws, name: str) -> dict:
    from segmentum.activation.triggers import TriggerStore

    TriggerStore(ws).require(name)
    TriggerStore(ws).delete(name)
    return {"name": name, "action": "deleted"}


def _fire(ws, body: FireRequest) -> list[dict]:
    from segmentum.activation.triggers import fire

    return [r.to_dict() for r in fire(ws, to_utc(body.as_of), body.names or None)]


def _occurrences(ws, name: str, status: str | None, page: PageArgs) -> dict:
    from segmentum.activation.triggers import TriggerStore, occurrences

    TriggerStore(ws).require(name)
    t = occurrences(ws, name)
    if status is not None:
        t = t.filter(t.status == status)
    return keyset_page(t.drop("data_json") if "data_json" in t.columns else t, ["occurrence_id"], page)


@triggers.get("", response_model=Page[TriggerSummary], dependencies=[READ])
async def list_triggers(request: Request, page: PageArgs = Depends()):
    """Every trigger: what it reacts to, what it does, its re-entry policy."""
    return list_page(await on_workspace(request, _triggers), "name", page)


@triggers.post("", status_code=201, response_model=Saved, dependencies=[WRITE], openapi_extra=DOCUMENT)
async def create_trigger(request: Request):
    """Save a trigger: the document a trigger file holds, as JSON or YAML."""
    text = await _text(request)
    return await on_workspace(request, _save_trigger, text, f"api:{caller(request)}", None)


@triggers.post("/fire", response_model=list[dict[str, Any]], dependencies=[WRITE])
async def fire_triggers(request: Request, body: FireRequest):
    """Evaluate triggers as of a time: record new occurrences, carry out pending ones."""
    return await on_workspace(request, _fire, body)


@triggers.get("/{name}", response_model=TriggerPublic, dependencies=[READ])
async def get_trigger(request: Request, name: str):
    """A trigger's definition and its occurrences by status."""
    return await on_workspace(request, _trigger, name)


@triggers.put("/{name}", response_model=Saved, dependencies=[WRITE], openapi_extra=DOCUMENT)
async def replace_trigger(request: Request, name: str):
    """Change a trigger."""
    text = await _text(request)
    return await on_workspace(request, _save_trigger, text, f"api:{caller(request)}", name)


@triggers.delete("/{name}", response_model=Saved, dependencies=[WRITE])
async def delete_trigger(request: Request, name: str):
    """Forget a trigger (its occurrences stay recorded)."""
    return await on_workspace(request, _delete_trigger, name)


@triggers.get("/{name}/occurrences", response_model=Page[dict[str, Any]], dependencies=[READ])
async def trigger_occurrences(request: Request, name: str,
                              status: str | None = Query(None, max_length=40),
                              page: PageArgs = Depends()):
    """What the trigger detected, each occurrence once, with its status."""
    return await on_workspace(request, _occurrences, name, status, page)


# -- exports --------------------------------------------------------------------------------
def _export_dir(ws) -> Path:
    return Path(ws.config.path).resolve().parent / "exports"


def _export(ws, body: ExportRequest) -> dict:
    from segmentum.activation.exports import export_segment
    from segmentum.segments.store import slugify

    folder = _export_dir(ws)
    folder.mkdir(exist_ok=True)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    kind = ".changes" if body.changes_since_last else ""
    out = folder / f"{slugify(body.segment)}.{body.format}{kind}.{stamp}.csv"
    return export_segment(ws, body.segment, body.format, out, as_of=body.as_of,
                          changes_since_last=body.changes_since_last, fields=body.fields,
                          consent_field=body.consent_field).to_dict()


def _exports_table(ws, segment: str | None, fmt: str | None):
    wh = ws.warehouse
    if not wh.has_table("exports"):
        return None
    t = wh.table("exports")
    if segment is not None:
        t = t.filter(t.segment == segment)
    if fmt is not None:
        t = t.filter(t.format == fmt)
    return t


def _exports(ws, segment: str | None, fmt: str | None, page: PageArgs) -> dict:
    t = _exports_table(ws, segment, fmt)
    if t is None:
        return {"items": [], "limit": page.limit, "next": None, "total": 0}
    out = keyset_page(t, ["export_id"], page)
    for row in out["items"]:
        row["counts"] = json.loads(row["counts"]) if row.get("counts") else None
    return out


def _one_export(ws, export_id: int) -> dict:
    t = _exports_table(ws, None, None)
    rows = t.filter(t.export_id == export_id).to_pyarrow().to_pylist() if t is not None else []
    if not rows:
        raise NotFoundError(f"No export {export_id}.", hint="GET /api/exports lists them.")
    row = rows[0]
    return {**row, "counts": json.loads(row["counts"]) if row.get("counts") else None}


@exports.get("", response_model=Page[dict[str, Any]], dependencies=[READ])
async def list_exports(request: Request, segment: str | None = Query(None, max_length=200),
                       format: Literal["csv", "meta", "google"] | None = None,
                       page: PageArgs = Depends()):
    """Every export recorded, oldest first: segment, format, time, files, counts."""
    return await on_workspace(request, _exports, segment, format, page)


@exports.post("", status_code=201, response_model=ExportPublic, dependencies=[WRITE])
async def export(request: Request, body: ExportRequest):
    """Write a saved segment's audience (or its changes since the last export in this
    format) to a file in the workspace's exports/ folder; download it from ``file``."""
    return await on_workspace(request, _export, body)


@exports.get("/{export_id}", response_model=dict[str, Any], dependencies=[READ])
async def get_export(request: Request, export_id: int):
    """One export: what it wrote, whom it left out and why."""
    return await on_workspace(request, _one_export, export_id)


def _download(row: dict, key: str) -> FileResponse:
    path = row.get(key)
    if not path or not Path(path).is_file():
        raise NotFoundError(f"Export {row['export_id']} has no {key.replace('_', ' ')} on disk.")
    return FileResponse(path, media_type="text/csv", filename=Path(path).name)


@exports.get("/{export_id}/file", dependencies=[READ], response_class=FileResponse,
             responses={200: {"content": {"text/csv": {}}}})
async def export_file(request: Request, export_id: int):
    """The export's file (additions, for an incremental export)."""
    return _download(await on_workspace(request, _one_export, export_id), "file")


@exports.get("/{export_id}/removals", dependencies=[READ], response_class=FileResponse,
             responses={200: {"content": {"text/csv": {}}}})
async def export_removals(request: Request, export_id: int):
    """An incremental Meta / Google export's removals file."""
    return _download(await on_workspace(request, _one_export, export_id), "removals_file")


# -- templates and the delivery log --------------------------------------------------------
def _preview(ws, name: str, body: PreviewFor) -> dict:
    from segmentum.activation.content import contact_context, find_template, render, template_dirs

    template = find_template(name, template_dirs(ws))
    T = to_utc(body.as_of)
    contexts = contact_context(ws, [body.contact_id], T, fields=template.fields,
                               recommendations=template.recommendations)
    if body.contact_id not in contexts:
        raise NotFoundError(f"No contact {body.contact_id!r} in this workspace.")
    message = render(template, contexts[body.contact_id], contact_id=body.contact_id)
    return {"template": template.name, "contact_id": body.contact_id, "as_of": T,
            "variant": message.variant, "subject": message.subject, "text": message.text,
            "html": message.html}


def _runs(ws, name: str | None) -> list[dict]:
    from segmentum.activation.delivery import DeliveryLog

    return DeliveryLog(ws).summary(name)


@other.post("/templates/{name}/preview", response_model=RenderedMessage, dependencies=[READ])
async def preview_template(request: Request, name: str, body: PreviewFor):
    """A message template rendered for one contact: subject, text, HTML, the variant used."""
    return await on_workspace(request, _preview, name, body)


@other.get("/deliveries", response_model=list[dict[str, Any]], tags=["campaigns"], dependencies=[READ])
async def delivery_runs(request: Request, name: str | None = Query(None, max_length=200)):
    """Outcomes per campaign / trigger run, from the delivery log."""
    return await on_workspace(request, _runs, name)
