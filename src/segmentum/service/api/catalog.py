"""``/api/catalog``: the names a rule may use here, for a builder's pickers.

    GET /api/catalog          profile fields, sources (tables and event types) with their
                              row fields, models, saved segments, each with its rule type
    GET /api/catalog/values   the distinct values of a text field (null past 1,000)

Read from :class:`segmentum.segments.catalog.Catalog`, the same catalogue the rule checker
resolves names with, so a name offered here is a name that checks.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import Field

from segmentum.errors import UsageError, did_you_mean
from segmentum.service.api._base import ERRORS, READ, on_workspace
from segmentum.service.schemas.common import Model

__all__ = ["router"]

router = APIRouter(prefix="/api/catalog", tags=["segments"], responses=ERRORS)


class FieldName(Model):
    name: str
    type: str = Field(description="boolean, number, string, timestamp, date or any (JSON)")


class Source(Model):
    name: str
    kind: str = Field(description="event, or the table: orders, order_items, deals")
    fields: list[FieldName]


class CatalogPublic(Model):
    profile: list[FieldName] = Field(description="contact fields, models' fields (rfm.cell), deal.*")
    sources: list[Source]
    segments: list[str]


class Values(Model):
    source: str
    field: str
    values: list[str] | None = Field(description="null when the field has more than 1,000 values")


def _catalog(ws) -> dict:
    from segmentum.segments.catalog import Catalog, type_name
    from segmentum.segments.store import SegmentStore

    cat = Catalog(ws)
    profile = []
    for name in cat.contact_field_names():
        info = cat.contact_field(tuple(name.split(".")))
        if info is not None:
            profile.append({"name": name, "type": info.type})
    sources = []
    for name in cat.source_names():
        src = cat.source(name)
        cols = cat.row_columns(src)
        fields = [{"name": c, "type": type_name(dtype) or "any"} for c, (_t, dtype) in cols.items()]
        if src.kind == "event":
            fields += [{"name": k, "type": "any"} for k in cat.property_keys(name) if k not in cols]
        sources.append({"name": name, "kind": src.kind, "fields": fields})
    return {"profile": profile, "sources": sources, "segments": SegmentStore(ws).names()}


def _values(ws, source: str, field: str) -> dict:
    from segmentum.segments.catalog import Catalog

    cat = Catalog(ws)
    if source == "contacts":
        info = cat.contact_field((field,))
        table, column, event_type = "contacts", field, None
    else:
        src = cat.source(source)
        if src is None:
            raise UsageError(f"No source {source!r}.{did_you_mean(source, ['contacts', *cat.source_names()])}",
                             field="source")
        info = cat.row_field(src, (field,))
        table, column = (info.table, info.column) if info is not None else (None, None)
        event_type = source if src.kind == "event" else None
    if info is None or table not in ("contacts", "events", "orders", "order_items", "products", "deals"):
        raise UsageError(f"No text field {field!r} in {source}.", field="field",
                         hint="GET /api/catalog lists the fields of every source.")
    if info.type != "string":
        return {"source": source, "field": field, "values": None}
    found = cat.values(table, column, event_type if table == "events" else None)
    return {"source": source, "field": field, "values": list(found) if found is not None else None}


@router.get("", response_model=CatalogPublic, dependencies=[READ])
async def get_catalog(request: Request):
    """Every name a rule may use in this workspace, with its type."""
    return await on_workspace(request, _catalog)


@router.get("/values", response_model=Values, dependencies=[READ])
async def get_values(request: Request,
                     source: str = Query(..., min_length=1, max_length=200,
                                         description="contacts, orders, order_items, deals or an event type"),
                     field: str = Query(..., min_length=1, max_length=200)):
    """The values a text field holds, for a value picker."""
    return await on_workspace(request, _values, source, field)
