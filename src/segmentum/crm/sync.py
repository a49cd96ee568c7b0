"""Records from a CRM, loaded like a file and answered record by record.

:func:`sync_records` takes a CRM's records of one kind (contacts, deals - a stage change is a
deal row with the new stage and its time -, orders, order lines, products, events), drops
those of erased people (:mod:`segmentum.privacy.tombstones`; stored nowhere), loads the
rest with :func:`segmentum.data.ingest.load_records` (the file loader's parsing, checks,
upsert on the natural key and quarantine, ``_source`` = the source), and answers for each
record by its index in the request: ``accepted``, ``quarantined`` (with the reason and the
field at fault, as ``segmentum quarantine`` shows it) or ``suppressed``.
``accepted + quarantined + suppressed = input``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmentum.errors import UsageError

__all__ = ["KINDS", "sync_records"]

KINDS = ("contacts", "deals", "orders", "order_items", "products", "events")
MAX_RECORDS = 10_000


_INT64 = 2**63


def _check_value(value: Any, index: int, key: str) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        raise UsageError(f"records[{index}].{key}: the number {value} does not fit 64 bits.",
                         field=f"records[{index}].{key}", index=index)
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_value(v, index, f"{key}.{k}")
    elif isinstance(value, list | tuple):
        for v in value:
            _check_value(v, index, key)


def _check_records(records: list[Mapping[str, Any]]) -> None:
    """Field names a table can hold and numbers a column can hold, or a UsageError naming
    the record and the key (a field name is the request's shape, not one record's data)."""
    for i, r in enumerate(records):
        for key, value in r.items():
            if not isinstance(key, str) or not key.strip() or any(ord(c) < 32 or ord(c) == 127 for c in key):
                raise UsageError(f"records[{i}] has the field name {str(key)[:40]!r}: a field name is "
                                 "non-empty text without control characters.",
                                 field=f"records[{i}]", index=i)
            _check_value(value, i, key)


def _suppressed(ws, kind: str, records: list[Mapping[str, Any]]) -> set[int]:
    """Indexes of the records that carry an erased identifier."""
    from segmentum.privacy.tombstones import erased_hashes, hashes_of, identifier_values, salt

    hashes = erased_hashes(ws.warehouse)
    if not hashes:
        return set()
    s = salt(ws.warehouse)
    out = set()
    for i, r in enumerate(records):
        if kind == "order_items":
            values = {"order": {str(r.get("order_id", "")).strip()} - {""}}
        elif kind == "contacts":
            values = identifier_values(r.get("contact_id"), r.get("email"), r.get("phone"), r.get("country"))
        elif kind in ("deals", "orders", "events"):
            values = identifier_values(r.get("contact_id"))
        else:
            continue
        if any(h in hashes for h, _ in hashes_of(s, values)):
            out.add(i)
    return out


def sync_records(ws, kind: str, records: list[Mapping[str, Any]], *, source: str,
                 create_contacts: bool = False) -> dict:
    """Load a CRM's records of ``kind``; the load report with ``records``, one answer per
    record (see the module doc)."""
    from segmentum.data.ingest import load_records

    if kind not in KINDS:
        raise UsageError(f"CRM sync takes {', '.join(KINDS)}, not {kind!r}.", field="kind")
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise UsageError("records is a list of JSON objects, one per record.", field="records")
    if not records:
        raise UsageError("records is empty: send at least one record.", field="records")
    if len(records) > MAX_RECORDS:
        raise UsageError(f"At most {MAX_RECORDS:,} records per request, not {len(records):,}.",
                         hint="Split the records over several requests.", field="records")
    _check_records(records)
    gone = _suppressed(ws, kind, records)
    keep = [i for i in range(len(records)) if i not in gone]
    answers: list[dict] = [{"index": i, "status": "suppressed",
                            "reason": "an erased person's identifier (readmit to accept it)"}
                           if i in gone else {"index": i, "status": "accepted"} for i in range(len(records))]
    report = None
    if keep:
        report = load_records(ws, kind, [dict(records[i]) for i in keep], source=source,
                              create_contacts=create_contacts and kind in ("deals", "orders", "events"))
        q = ws.warehouse.table("_quarantine")
        rows = q.filter(q.load_id == report.load_id).select("row", "column", "reason").to_pyarrow().to_pylist()
        for r in rows:
            i = keep[int(r["row"]) - 1]  # row: the 1-based index among the records loaded
            answers[i] = {"index": i, "status": "quarantined", "reason": r["reason"], "field": r["column"]}
    out = report.to_dict() if report is not None else {"kind": kind, "input": 0, "accepted": 0,
                                                        "quarantined": 0}
    out.update(input=len(records), suppressed=len(gone), records=answers, source=source)
    return out
