"""load_records: records handed over in memory (the service's tracking events and CRM upserts)
go through the file pipeline: same validation, upsert and quarantine, located by record index."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from segmentum.data.ingest import load_records
from segmentum.errors import UsageError

UTC = dt.UTC


def quarantine(ws) -> list[dict]:
    q = ws.quarantine()
    cols = ["kind", "file", "line", "row", "column", "reason"]
    return ws.to_pandas(q.order_by(["kind", "row"]).select(*cols)).to_dict("records")


def stored(ws, table: str, *cols: str) -> list[tuple]:
    t = ws.table(table)
    return [tuple(r.values()) for r in t.select(*cols).order_by(cols[0]).to_pyarrow().to_pylist()]


CONTACTS = [
    {"contact_id": "c1", "created_at": "2024-01-01T09:00:00Z", "email": "ann@example.com", "tier": "gold"},
    {"contact_id": "c2", "created_at": "2024-13-01"},
    "not an object",
    {"email": "nobody@example.com", "created_at": "2024-01-02"},
    {"contact_id": "c3", "created_at": "2024-02-01", "gender": "kobieta"},
]


def test_records_are_validated_upserted_and_quarantined_by_index(ws):
    r = load_records(ws, "contacts", CONTACTS, source="crm-sync")
    assert (r.input, r.accepted, r.quarantined, r.inserted) == (5, 2, 3, 2)
    assert r.format == "records" and r.file == "crm-sync"
    assert stored(ws, "contacts", "contact_id", "gender", "tier", "_source") == [
        ("c1", None, "gold", "crm-sync"), ("c3", "F", None, "crm-sync"),
    ]
    q = quarantine(ws)
    assert [(x["file"], x["row"], x["line"]) for x in q] == [("crm-sync", 2, None), ("crm-sync", 3, None), ("crm-sync", 4, None)]
    assert "created_at '2024-13-01' is not a date-time" in q[0]["reason"]
    assert q[1]["reason"] == "record 3 is not a JSON object"
    assert q[2]["reason"] == "missing contact_id (required)" and q[2]["column"] == "contact_id"


def test_records_and_the_same_lines_in_a_file_load_alike(ws, tmp_path):
    """One pipeline: the records and a JSON Lines file of them give the same rows and reasons."""
    from segmentum import open_workspace

    path = tmp_path / "contacts.jsonl"
    path.write_text("".join(json.dumps(rec) + "\n" for rec in CONTACTS))
    with open_workspace(tmp_path / "file.duckdb") as other:
        f = other.load("contacts", path)
        file_rows = stored(other, "contacts", "contact_id", "created_at", "email", "gender", "tier")
        file_q = [(x["row"], x["reason"]) for x in quarantine(other)]
    r = load_records(ws, "contacts", CONTACTS, source="crm-sync")
    assert (r.input, r.accepted, r.quarantined) == (f.input, f.accepted, f.quarantined)
    assert stored(ws, "contacts", "contact_id", "created_at", "email", "gender", "tier") == file_rows
    # the file's line 3 is not JSON at all; the records' third element is JSON, but not an object
    assert [(x["row"], x["reason"]) for x in quarantine(ws) if x["row"] != 3] == [x for x in file_q if x[0] != 3]


def test_sending_the_same_records_again_changes_nothing(ws):
    load_records(ws, "contacts", CONTACTS, source="crm-sync")
    again = load_records(ws, "contacts", CONTACTS, source="crm-sync")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert len(quarantine(ws)) == 3  # replaced, not doubled


def test_contacts_that_only_update_existing_ones_need_no_created_at(ws, tmp_path):
    load_records(ws, "contacts", CONTACTS, source="crm-sync")
    r = load_records(
        ws, "contacts",
        [{"contact_id": "c1", "email": "ann@new.example.com"}, {"contact_id": "c9", "email": "new@example.com"}],
        source="crm-sync",
    )
    assert (r.accepted, r.updated, r.quarantined) == (1, 1, 1)
    assert stored(ws, "contacts", "contact_id", "email", "created_at", "tier") == [
        ("c1", "ann@new.example.com", dt.datetime(2024, 1, 1, 9, tzinfo=UTC), "gold"),
        ("c3", None, dt.datetime(2024, 2, 1, tzinfo=UTC), None),
    ]
    (q,) = [x for x in quarantine(ws) if x["row"] == 2 and "c9" in x["reason"]]
    assert q["column"] == "created_at"
    assert q["reason"] == "missing created_at (required of a new row): contact_id 'c9' is not in contacts yet"
    # the same in a file: a column of created_at left empty keeps the stored value
    path = tmp_path / "update.csv"
    path.write_text("contact_id,created_at,city\nc1,,Paris\nc3,2024-03-01,Lyon\n")
    r = ws.load("contacts", path)
    assert (r.accepted, r.updated, r.quarantined) == (2, 2, 0)
    assert stored(ws, "contacts", "contact_id", "created_at", "city") == [
        ("c1", dt.datetime(2024, 1, 1, 9, tzinfo=UTC), "Paris"),
        ("c3", dt.datetime(2024, 3, 1, tzinfo=UTC), "Lyon"),
    ]


def test_events_keep_unknown_properties_nested_objects_included(ws):
    load_records(ws, "contacts", CONTACTS, source="crm-sync")
    events = [
        {"event_id": "m1", "contact_id": "c1", "type": "plan_upgraded", "occurred_at": "2024-05-01T10:00:00Z",
         "device_os": "iOS", "plan": "pro", "seats": 3, "context": {"ip": "192.0.2.1", "library": {"name": "js"}}},
        {"event_id": "m2", "contact_id": "ghost", "type": "page", "occurred_at": "2024-05-01T10:00:00Z"},
    ]
    r = load_records(ws, "events", events, source="intake:0-1")
    assert (r.accepted, r.quarantined) == (1, 1)
    ((device, props),) = ws.warehouse.raw.execute(
        "SELECT device_os, properties FROM events WHERE event_id = 'm1'"
    ).fetchall()
    assert device == "iOS"
    assert json.loads(props) == {"plan": "pro", "seats": 3, "context": {"ip": "192.0.2.1", "library": {"name": "js"}}}
    (q,) = [x for x in quarantine(ws) if x["kind"] == "events"]
    assert (q["file"], q["row"]) == ("intake:0-1", 2) and "unknown contact_id 'ghost'" in q["reason"]
    r = load_records(ws, "events", events[1:], source="intake:1", create_contacts=True)
    assert (r.accepted, r.contacts_created) == (1, 1)


def test_an_arrow_table_with_native_types(ws):
    load_records(ws, "contacts", CONTACTS, source="crm-sync")
    t = pa.table({
        "order_id": ["o1", "o2", "o3"],
        "contact_id": ["c1", "c3", "c1"],
        "ordered_at": pa.array([dt.datetime(2024, 6, 1, tzinfo=UTC), None, dt.datetime(2024, 6, 2, tzinfo=UTC)],
                               pa.timestamp("us", "UTC")),
        "total": [19.99, 5.0, 7.5],
    })
    r = load_records(ws, "orders", t, source="shop-api")
    assert (r.input, r.accepted, r.quarantined) == (3, 2, 1)
    assert stored(ws, "orders", "order_id", "total", "status") == [("o1", Decimal("19.99"), "completed"),
                                                                   ("o3", Decimal("7.50"), "completed")]
    (q,) = [x for x in quarantine(ws) if x["kind"] == "orders"]
    assert (q["row"], q["reason"]) == (2, "missing ordered_at (required)")


def test_records_lacking_a_required_field_are_each_quarantined(ws):
    r = load_records(ws, "products", [{"sku": "A1"}, {"sku": "A2", "category": "toys"}], source="pim")
    assert (r.accepted, r.quarantined) == (1, 1)
    assert quarantine(ws)[0]["reason"] == "missing category (required)"
    empty = load_records(ws, "products", [], source="pim")
    assert (empty.input, empty.accepted, empty.quarantined) == (0, 0, 0)


def test_what_load_records_refuses(ws):
    with pytest.raises(UsageError, match="pyarrow Table or a list of dicts"):
        load_records(ws, "contacts", {"contact_id": "c1"}, source="x")
    with pytest.raises(UsageError, match="needs a source"):
        load_records(ws, "contacts", [], source=" ")
    with pytest.raises(UsageError, match='Did you mean "contacts"'):
        load_records(ws, "contact", [], source="x")
