"""``/segments``: the list, the builder with its live count, a segment's page, explain.

    GET  /segments                      saved segments: size, trend over refreshes, freshness
    GET  /segments/new                  the builder (?rule= text to start from)
    GET  /segments/{name}               definition, size over time, entries / exits, members
    GET  /segments/{name}/edit          the builder on a saved segment
    POST /segments/builder              the builder re-drawn after a change (?action=...)
    POST /segments/editor?to=text|builder   switch between the builder and the text editor
    POST /segments/count                the live count and sample (newest request wins)
    POST /segments/save                 save the rule (create, or replace when editing)
    POST /segments/explain              why a contact is in or out of the editor's rule
    GET  /segments/{name}/explain       ... of a saved segment (?contact_id=)
    POST /segments/refresh              refresh every segment (or ?name=) as of the data
    POST /segments/{name}/delete        delete a segment and its history

The editor form holds either the builder's fields (:mod:`segmentum.web.builder`) or the
rule text (``mode=text``); both become the same rule, checked and counted by the same
:class:`~segmentum.segments.SegmentEngine` the CLI's ``segment preview`` uses.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from segmentum.errors import SegmentumError, UsageError
from segmentum.web import builder as B
from segmentum.web.previews import SUPERSEDED, Previews
from segmentum.web.render import first, form_data, page, partial, run, web_router
from segmentum.web.security import require

__all__ = ["router"]

router = web_router()
_CATALOG_TTL = 30.0
_catalogs: dict[str, tuple[float, dict]] = {}


# -- library calls ----------------------------------------------------------------------
def catalog(ws) -> B.BuilderCatalog:
    """The builder's names (the REST catalogue), kept for a few seconds per workspace."""
    from segmentum.service.api.catalog import _catalog

    key = ws.location
    hit = _catalogs.get(key)
    if hit is None or time.monotonic() - hit[0] > _CATALOG_TTL:
        hit = (time.monotonic(), _catalog(ws))
        _catalogs[key] = hit
    return B.BuilderCatalog(hit[1])


def forget_catalog(ws) -> None:
    _catalogs.pop(ws.location, None)


def values_for(ws, source: str | None, field: str) -> list[str] | None:
    """A text field's values for its picker (None: more than 1,000, or not text)."""
    from segmentum.segments.catalog import Catalog

    cat = Catalog(ws)
    if source is None:
        info = cat.contact_field(tuple(field.split(".")))
    else:
        src = cat.source(source)
        info = cat.row_field(src, (field,)) if src is not None else None
    if info is None or info.type != "string":
        return None
    table = {"deal": "deals", "derived": None, "properties": None}.get(info.table, info.table)
    if table is None or not ws.warehouse.has_table(table):
        return None
    found = cat.values(table, info.column, source if table == "events" else None)
    return list(found) if found is not None else None


def _default_as_of(ws) -> str:
    from segmentum.analytics.freshness import resolve_as_of

    return resolve_as_of(ws, None).time.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_text(text: str, nid: str | None = None) -> dict:
    """A condition's text as a JSON node (located syntax errors, marked with the node)."""
    from segmentum.segments.json_face import to_json
    from segmentum.segments.parser import parse

    try:
        return to_json(parse(text))["rule"]
    except SegmentumError as exc:
        exc.node = nid  # the builder condition it belongs to (see error_of)
        raise


def error_of(exc: SegmentumError, paths: dict[str, str]) -> dict:
    """An error as the editor shows it: its data, the excerpt, the builder condition."""
    data = exc.to_dict()
    data.setdefault("excerpt", getattr(exc, "excerpt", None))
    if data.get("node") is None and getattr(exc, "node", None) is not None:
        data["node"] = exc.node
    return _locate(data, paths)


def text_of(node: dict) -> str:
    from segmentum.segments.json_face import node_from_json
    from segmentum.segments.printer import to_text

    return to_text(node_from_json(node, "$.rule"))


def rule_text(doc: dict, pretty: bool = True) -> str:
    from segmentum.segments.json_face import from_json
    from segmentum.segments.printer import to_text

    return to_text(from_json(doc), pretty=pretty)


def _editor_view(ws, root: dict, mode: str, text: str | None) -> dict:
    """What the editor template needs: the catalogue, the pickers' values, the tree."""
    cat = catalog(ws)
    B.normalize(root, cat)
    values = {pair: values_for(ws, *pair) for pair in B.value_fields(root)}
    return {"cat": cat, "values": values, "root": root, "mode": mode, "text": text}


def _rule_of(form: dict, cat: B.BuilderCatalog) -> tuple[Any, dict[str, str], str]:
    """(the rule to check, JSON path -> builder node, mode) from the editor form."""
    if first(form, "mode") == "text":
        return first(form, "text"), {}, "text"
    doc, paths = B.to_rule(B.from_form(form), cat.type_of, parse_text)
    return doc, paths, "builder"


def _count(ws, rule: Any, as_of: str, sample: int = 10) -> dict:
    from segmentum.clock import to_utc
    from segmentum.segments import SegmentEngine

    p = SegmentEngine(ws).preview(rule, to_utc(as_of or None), sample=sample)
    return {"count": p.count, "total": p.total, "share": p.share, "rule": p.rule, "as_of": p.as_of,
            "sample": p.sample, "warnings": p.warnings, "seconds": p.seconds}


def _save(ws, name: str, rule: Any, description: str | None, editing: str | None) -> dict:
    from segmentum.segments import SegmentEngine

    eng = SegmentEngine(ws)
    replace = bool(editing)
    if replace and editing != name:
        raise UsageError(f"A segment keeps its name: this one is {editing!r}.",
                         hint="Save it under its name, or start a new segment for another name.")
    eng.create(name, rule, description=description or None, replace=replace)
    forget_catalog(ws)
    refreshed = eng.refresh([name], _default_as_of(ws))
    return {"name": name, "size": refreshed[0].size if refreshed else None}


def _list(ws) -> dict:
    from segmentum.analytics.freshness import newest_data_time
    from segmentum.segments import SegmentEngine

    eng = SegmentEngine(ws)
    rows = eng.list()
    for r in rows:
        hist = eng.store.history(r["name"]).tail(12)
        r["sizes"] = [int(s) for s in hist["size"]] if len(hist) else []
    return {"segments": rows, "newest_data": newest_data_time(ws)}


def _segment(ws, name: str) -> dict:
    from segmentum.service.api.segments import _history, _show

    shown = _show(ws, name)
    history = _history(ws, name, None, None)["refreshes"]
    return {"segment": shown, "history": history, "as_of": _default_as_of(ws)}


def _members(ws, name: str, cursor: str | None) -> dict:
    from segmentum.service.api._base import PageArgs
    from segmentum.service.api.segments import _members as api_members

    return api_members(ws, name, None, PageArgs(limit=25, cursor=cursor))


def _explain(ws, rule: Any, contact: str, as_of: str) -> dict:
    from segmentum.service.api.segments import _explain as api_explain

    return api_explain(ws, rule, contact.strip(), as_of or None)


def _refresh(ws, names: list[str] | None) -> dict:
    """Refresh as of the data (triggers fire), then send what the triggers queued."""
    from segmentum.service.api.segments import _refresh as api_refresh
    from segmentum.web.pages.triggers import deliver_due

    done = api_refresh(ws, names, _default_as_of(ws))
    return {**done, "delivered": deliver_due(ws) if done["triggers"] else None}


def _delete(ws, name: str) -> None:
    from segmentum.segments import SegmentEngine

    SegmentEngine(ws).delete(name)
    forget_catalog(ws)


def _load_rule(ws, rule: str | None, name: str | None) -> tuple[dict, str | None]:
    """The builder tree of a saved segment's (or a given text's) rule, and its text."""
    from segmentum.segments import SegmentEngine

    if name is not None:
        rule = SegmentEngine(ws).store.require(name).rule
    if not rule:
        root = B.empty_root()
        root["items"].append(B.new_node("field", catalog(ws)))
        return root, None
    return B.from_rule({"version": 1, "rule": parse_text(rule)}, text_of), rule


# -- helpers ----------------------------------------------------------------------------
def _locate(error: dict, paths: dict[str, str]) -> dict:
    """The error with the builder condition it belongs to (by its JSON path)."""
    node = error.get("node")
    path = error.get("path")
    if node is None and path:
        best = max((p for p in paths if path == p or path.startswith(p + ".") or path.startswith(p + "[")),
                   key=len, default=None)
        node = paths.get(best) if best else None
    return {**error, "node": node, "where": B.node_label(node) if node not in (None, "r") else None}


async def live_freshness(request: Request) -> dict[str, dict] | None:
    """Per segment, the live evaluator's freshness (watermark, lag, last full refresh and
    whether it agreed), or None when the service runs without live segments."""
    from starlette.concurrency import run_in_threadpool

    from segmentum.service.api._base import plain

    live = getattr(request.app.state.service, "live", None)
    if live is None:
        return None
    rows = await run_in_threadpool(live.freshness)
    return {r["segment"]: plain(r) for r in rows}


def previews(request: Request) -> Previews:
    state = request.app.state
    if not hasattr(state, "web_previews"):
        state.web_previews = Previews()
    return state.web_previews


async def _editor(request: Request, root: dict, mode: str, text: str | None, **extra: Any):
    view = await request.app.state.service.access.run(_editor_view, root, mode, text)
    return partial(request, "segments/editor.html", headers={"HX-Trigger-After-Settle": "rule-changed"},
                   **view, **extra)


# -- routes -----------------------------------------------------------------------------
@router.get("/segments")
async def segments(request: Request):
    return page(request, "segments/list.html", d=await run(request, _list),
                live=await live_freshness(request))


async def _builder_page(request: Request, rule: str | None, name: str | None):
    access = request.app.state.service.access
    root, text = await access.run(_load_rule, rule, name)
    view = await access.run(_editor_view, root, "builder", text)
    saved = await run(request, _segment, name) if name else None
    return page(request, "segments/builder.html", **view, editor_id=secrets.token_hex(8),
                as_of=await access.run(_default_as_of), saved=saved, editing=name)


@router.get("/segments/new")
async def new_segment(request: Request, rule: str | None = None):
    return await _builder_page(request, rule, None)


@router.post("/segments/builder")
async def redraw(request: Request, action: str = ""):
    form = await form_data(request)
    root = B.from_form(form)
    action = action or first(form, "action")
    if action.startswith("kind:") and action.count(":") == 1:  # the condition's kind changed
        action += ":" + first(form, f"{action[5:]}:newkind", "field")
    if action:
        cat = await request.app.state.service.access.run(catalog)
        root = B.apply(root, action, cat)
    return await _editor(request, root, "builder", None)


@router.post("/segments/editor")
async def switch(request: Request, to: str = "text"):
    form = await form_data(request)
    access = request.app.state.service.access
    if to == "text":
        cat = await access.run(catalog)
        try:
            doc, _, _ = _rule_of(form, cat)
            text = doc if isinstance(doc, str) else rule_text(doc)
        except SegmentumError:  # a half-built rule: keep what text exists
            text = ""
        return await _editor(request, B.empty_root(), "text", text)
    text = first(form, "text")
    try:
        root, _ = await access.run(_load_rule, text, None)
    except SegmentumError as exc:
        return await _editor(request, B.empty_root(), "text", text, switch_error=exc.to_dict())
    return await _editor(request, root, "builder", None)


@router.post("/segments/count")
async def count(request: Request):
    form = await form_data(request)
    access = request.app.state.service.access
    cat = await access.run(catalog)
    editor, seq = first(form, "editor", "-"), int(first(form, "seq", "0") or 0)
    mode, text, paths = first(form, "mode", "builder"), first(form, "text"), {}
    try:
        rule, paths, mode = _rule_of(form, cat)
        result = await previews(request).count(
            access, editor, seq, lambda ws: _count(ws, rule, first(form, "as_of")))
    except SegmentumError as exc:
        return partial(request, "segments/count.html", result=None, mode=mode, checked=text,
                       error=error_of(exc, paths))
    if result is SUPERSEDED:
        return Response(status_code=204)  # a newer count is on its way
    from segmentum.service.api._base import plain

    return partial(request, "segments/count.html", result=plain(result), mode=mode, checked=text,
                   error=None)


@router.post("/segments/save")
async def save(request: Request):
    require(request, "write")
    form = await form_data(request)
    access = request.app.state.service.access
    cat = await access.run(catalog)
    name = first(form, "name").strip()
    if not name:
        raise UsageError("Name the segment before saving it.", field="name")
    rule, _, _ = _rule_of(form, cat)
    saved = await run(request, _save, name, rule, first(form, "description").strip(),
                      first(form, "editing") or None)
    return Response(status_code=204, headers={"HX-Redirect": f"/segments/{saved['name']}"})


@router.post("/segments/explain")
async def explain_rule(request: Request):
    form = await form_data(request)
    cat = await request.app.state.service.access.run(catalog)
    rule, _, _ = _rule_of(form, cat)
    data = await run(request, _explain, rule, first(form, "contact_id"), first(form, "as_of"))
    return partial(request, "segments/explain.html", e=data)


@router.post("/segments/refresh")
async def refresh(request: Request, name: str | None = None):
    require(request, "write")
    data = await run(request, _refresh, [name] if name else None)
    return partial(request, "segments/refreshed.html", r=data)


@router.get("/segments/{name}")
async def segment(request: Request, name: str):
    from segmentum.web.charts import size_history

    data = await run(request, _segment, name)
    spec = size_history(data["history"]) if len(data["history"]) > 1 else None
    live = await live_freshness(request)
    return page(request, "segments/detail.html", d=data, spec=spec,
                live=(live or {}).get(name))


@router.get("/segments/{name}/edit")
async def edit_segment(request: Request, name: str):
    return await _builder_page(request, None, name)


@router.get("/segments/{name}/members")
async def members(request: Request, name: str, cursor: str | None = None):
    data = await run(request, _members, name, cursor)
    return partial(request, "segments/members.html", m=data, name=name)


@router.get("/segments/{name}/explain")
async def explain_saved(request: Request, name: str, contact_id: str = "", as_of: str = ""):
    if not contact_id.strip():
        raise UsageError("Give a contact id to explain.", field="contact_id")
    data = await run(request, _explain, name, contact_id, as_of)
    if request.headers.get("hx-request") == "true":
        return partial(request, "segments/explain.html", e=data)
    return page(request, "segments/explain_page.html", e=data, name=name)


@router.post("/segments/{name}/delete")
async def delete(request: Request, name: str):
    require(request, "write")
    await run(request, _delete, name)
    return Response(status_code=204, headers={"HX-Redirect": "/segments"})
