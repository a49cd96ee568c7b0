"""Workspace facts for `segmentum info`: table counts, date ranges, data-quality figures and
the data-quality warnings of the loads (see :mod:`segmentum.data.checks`)."""

from __future__ import annotations

from pathlib import Path

import ibis

from segmentum.data.checks import CHECKS
from segmentum.data.schema import TABLES

__all__ = ["workspace_info", "load_warnings"]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def load_warnings(ws) -> list[dict]:
    """The data-quality warnings of the data as loaded (``segmentum.data.checks``): per kind,
    field and check, the records counted by the latest load of each file (or source), with
    the first example. A file loaded again replaces its figures."""
    if not ws.warehouse.has_table("_load_warnings"):
        return []
    con = ws.con
    loads = con.table("_loads")
    latest = loads.group_by(["kind", "file"]).agg(load_id=loads.load_id.argmax(loads.started_at))
    w = con.table("_load_warnings")
    w = w.filter(w.load_id.isin(latest.load_id))
    first = ibis.row_number().over(group_by=[w.kind, w.field, w.check], order_by=[w.file, w.row])
    ranked = w.mutate(_first=first)
    per = ranked.group_by(["kind", "field", "check", "action"]).agg(
        count=ranked["count"].sum(),
        files=ranked.file.nunique(),
        file=ranked.file.argmin(ranked._first),
        line=ranked.line.argmin(ranked._first),
        row=ranked.row.argmin(ranked._first),
        value=ranked.value.argmin(ranked._first),
    )
    rows = per.order_by(["kind", "field", "check"]).to_pyarrow().to_pylist()
    says = {(c.kind, c.name): c.says for c in CHECKS}
    out = []
    for r in rows:
        n, where = int(r["count"]), f"line {r['line']}" if r["line"] is not None else f"record {r['row']}"
        out.append({**r, "count": n, "files": int(r["files"]), "message": (
            f"{r['kind']}: {r['field']} {says.get((r['kind'], r['check']), r['check'])}: {n:,} record(s), "
            f"e.g. {Path(r['file']).name} {where} '{r['value']}'"
        )})
    return out


def workspace_info(ws) -> dict:
    """Counts, date ranges, null/consent rates, orphan checks and quarantine per kind."""
    con = ws.con
    tables: dict[str, dict] = {}
    for kind, tspec in TABLES.items():
        t = con.table(kind)
        aggs = {"rows": t.count()}
        if tspec.time_column:
            aggs["first"] = t[tspec.time_column].min()
            aggs["last"] = t[tspec.time_column].max()
        row = t.aggregate(**aggs).to_pyarrow().to_pylist()[0]
        custom = [c for c in t.columns if c not in tspec.names and not c.startswith("_")]
        tables[kind] = {
            "rows": int(row["rows"]),
            "first": row.get("first"),
            "last": row.get("last"),
            "custom_columns": custom,
        }
    quality: dict[str, object] = {}
    c = con.table("contacts")
    n_contacts = tables["contacts"]["rows"]
    if n_contacts:
        r = c.aggregate(
            email=c.email.notnull().sum(),
            phone=c.phone.notnull().sum(),
            email_opt_in=c.email_opt_in.fill_null(False).sum(),
            sms_opt_in=c.sms_opt_in.fill_null(False).sum(),
            push_opt_in=c.push_opt_in.fill_null(False).sum(),
            dup_emails=c.email.count() - c.email.lower().nunique(),
        ).to_pyarrow().to_pylist()[0]
        quality["contacts"] = {
            "with_email": _ratio(int(r["email"] or 0), n_contacts),
            "with_phone": _ratio(int(r["phone"] or 0), n_contacts),
            "email_opt_in": _ratio(int(r["email_opt_in"] or 0), n_contacts),
            "sms_opt_in": _ratio(int(r["sms_opt_in"] or 0), n_contacts),
            "push_opt_in": _ratio(int(r["push_opt_in"] or 0), n_contacts),
            "duplicate_emails": int(r["dup_emails"] or 0),
        }
    o, oi, p = con.table("orders"), con.table("order_items"), con.table("products")
    if tables["orders"]["rows"]:
        by_status = o.group_by("status").agg(n=o.count()).to_pyarrow().to_pylist()
        quality["orders"] = {
            "by_status": {str(r["status"]): int(r["n"]) for r in by_status},
            "without_items": int(o.filter(~o.order_id.isin(oi.order_id)).count().execute())
            if tables["order_items"]["rows"]
            else None,
        }
    if tables["order_items"]["rows"] and tables["products"]["rows"]:
        quality["order_items"] = {
            "unknown_sku": int(oi.filter(~oi.sku.isin(p.sku)).count().execute()),
        }
    if tables["events"]["rows"]:
        e = con.table("events")
        by_type = (
            e.group_by("type").agg(n=e.count()).order_by([ibis.desc("n"), "type"]).to_pyarrow().to_pylist()
        )
        quality["events"] = {"by_type": {r["type"]: int(r["n"]) for r in by_type}}
    q = con.table("_quarantine")
    by_kind = q.group_by("kind").agg(n=q.count()).to_pyarrow().to_pylist()
    loads = con.table("_loads")
    totals = loads.aggregate(
        loads_=loads.count(), input=loads.input.sum(), accepted=loads.accepted.sum(),
        quarantined=loads.quarantined.sum(),
    ).to_pyarrow().to_pylist()[0]
    return {
        "workspace": ws.location,
        "warnings": load_warnings(ws),
        "backend": ws.config.backend,
        "tables": tables,
        "quality": quality,
        "quarantine": {r["kind"]: int(r["n"]) for r in by_kind},
        "loads": {
            "count": int(totals["loads_"] or 0),
            "input": int(totals["input"] or 0),
            "accepted": int(totals["accepted"] or 0),
            "quarantined": int(totals["quarantined"] or 0),
        },
    }
