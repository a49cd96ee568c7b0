"""Ingestion rules, each against a real DuckDB workspace: formats, mappings, validation,
quarantine with lines and reasons, idempotent upsert, derived ids and created contacts."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmentum.errors import InputFileError, MappingError, UsageError
from segmentum.segments.errors import RuleError

from ..conftest import CRM_EXAMPLES, FIXTURES

CRM = CRM_EXAMPLES
UTC = dt.UTC


def quarantine(ws, kind=None) -> pd.DataFrame:
    return ws.to_pandas(ws.quarantine(kind).order_by(["kind", "row"]))


def write(path, text: str, bom: bool = False):
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


# -- a Polish CRM export: semicolons, BOM, decimal commas, local dates, synonyms -----------------
def test_polish_contacts_export(ws):
    r = ws.load("contacts", CRM / "kontakty.csv", mapping=CRM / "kontakty.yaml")
    assert (r.input, r.accepted, r.quarantined) == (7, 3, 4)
    c = ws.to_pandas(ws.table("contacts").order_by("contact_id")).set_index("contact_id")
    assert list(c.index) == ["K001", "K002", "K005"]
    # dd.mm.yyyy in Europe/Warsaw (UTC+1 in winter) stored as UTC
    assert c.loc["K001", "created_at"] == pd.Timestamp("2023-01-31 23:00", tz="UTC")
    # 'K' and 'kobieta' are the Polish for female; 'tak' / '1' mean yes
    assert c.loc["K005", "gender"] == "F" and bool(c.loc["K005", "email_opt_in"]) is True
    # the later K002 record (line 9) replaced the earlier one (line 3)
    assert c.loc["K002", "email"] == "piotr.nowy@example.pl"
    assert c.loc["K002", "_line"] == 9
    # custom attribute kept as a column; constant applied
    assert c.loc["K001", "loyalty_card"] == "gold" and c.loc["K001", "country"] == "PL"
    q = quarantine(ws, "contacts")
    by_line = dict(zip(q.line, q.reason, strict=True))
    assert "duplicate contact_id" in by_line[3] and "row 7" in by_line[3]
    assert "'31.02.2023' does not match the format '%d.%m.%Y'" in by_line[4]  # multi-line record at line 4
    assert "'2023-04-01' does not match" in by_line[6]
    assert by_line[7] == "missing contact_id (required)"
    raw = json.loads(q.set_index("line").loc[4, "raw"])
    assert raw["Imię"] == "Ewa\nMaria" and raw["ID klienta"] == "K003"


def test_polish_orders_export_every_problem_reported(ws):
    ws.load("contacts", CRM / "kontakty.csv", mapping=CRM / "kontakty.yaml")
    r = ws.load("orders", CRM / "zamowienia.csv", mapping=CRM / "zamowienia.yaml")
    assert (r.input, r.accepted, r.quarantined) == (9, 2, 7)
    o = ws.to_pandas("orders").set_index("order_id")
    assert o.loc["Z1", "total"] == Decimal("1234.50")  # "1 234,50"
    assert o.loc["Z1", "channel"] == "offline" and o.loc["Z2", "channel"] == "online"
    assert o.loc["Z1", "currency"] == "PLN" and o.loc["Z1", "status"] == "completed"
    q = quarantine(ws, "orders").set_index("line")
    assert "duplicate order_id" in q.loc[3, "reason"]
    assert q.loc[4, "column"] == "ordered_at" and "'2024-13-45'" in q.loc[4, "reason"]
    assert q.loc[5, "column"] == "contact_id" and "unknown contact_id 'K999'" in q.loc[5, "reason"]
    assert "--create-contacts" in q.loc[5, "reason"]
    assert q.loc[6, "reason"] == "missing order_id (required)"
    assert q.loc[7, "column"] == "total" and "'abc' is not a number" in q.loc[7, "reason"]
    assert q.loc[8, "column"] == "channel" and "'Telefon' is not one of online, offline" in q.loc[8, "reason"]
    assert "5 fields but the header has 6" in q.loc[10, "reason"]
    assert json.loads(q.loc[10, "raw"])["text"] == "Z7;K004;09.01.2024;5,5;Sklep"


def test_reload_is_idempotent_and_quarantine_not_duplicated(ws):
    ws.load("contacts", CRM / "kontakty.csv", mapping=CRM / "kontakty.yaml")
    first = ws.load("orders", CRM / "zamowienia.csv", mapping=CRM / "zamowienia.yaml")
    before = ws.to_pandas("orders").drop(columns=["_loaded_at"]).sort_values("order_id").reset_index(drop=True)
    again = ws.load("orders", CRM / "zamowienia.csv", mapping=CRM / "zamowienia.yaml")
    after = ws.to_pandas("orders").drop(columns=["_loaded_at"]).sort_values("order_id").reset_index(drop=True)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, first.accepted)
    pd.testing.assert_frame_equal(before, after)
    assert len(quarantine(ws, "orders")) == first.quarantined
    assert ws.table("_loads").count().execute() == 3


def test_newer_contact_version_updates_and_keeps_other_attributes(ws, tmp_path):
    v1 = write(tmp_path / "c1.csv", "contact_id,email,created_at,tier\nA,a@x.io,2024-01-01,gold\nB,b@x.io,2024-01-02,silver\n")
    v2 = write(tmp_path / "c2.csv", "contact_id,email,created_at\nA,new@x.io,2024-01-01\nB,b@x.io,2024-01-02\n")
    ws.load("contacts", v1)
    r = ws.load("contacts", v2)
    assert (r.inserted, r.updated, r.unchanged) == (0, 1, 1)
    c = ws.to_pandas("contacts").set_index("contact_id")
    assert c.loc["A", "email"] == "new@x.io"
    assert c.loc["A", "tier"] == "gold"  # a file without the column does not erase it


# -- formats and delimiters --------------------------------------------------------------------
@pytest.mark.parametrize(
    "delim,text",
    [
        (",", 'sku,name,category,price\nS1,"Puree, apple",Baby food,3.5\nS2,Bib,Toddler,2\n'),
        (";", "sku;name;category;price\nS1;Puree, apple;Baby food;3.5\nS2;Bib;Toddler;2\n"),
        ("\t", "sku\tname\tcategory\tprice\nS1\tPuree, apple\tBaby food\t3.5\nS2\tBib\tToddler\t2\n"),
        ("|", "sku|name|category|price\nS1|Puree, apple|Baby food|3.5\nS2|Bib|Toddler|2\n"),
    ],
)
def test_delimiters_are_detected(ws, tmp_path, delim, text):
    r = ws.load("products", write(tmp_path / "p.csv", text, bom=True))
    assert (r.accepted, r.quarantined) == (2, 0)
    assert r.columns["delimiter"] == delim
    p = ws.to_pandas("products").set_index("sku")
    assert p.loc["S1", "name"] == "Puree, apple" and p.loc["S1", "price"] == Decimal("3.50")


def test_cdnow_style_whitespace_log(ws, tmp_path):
    log = write(
        tmp_path / "log.txt",
        " customer_id  date number_of_cds  dollar_value\n"
        " 00001 19970101  1   11.77\n"
        " 00002 19970112  1   12.00\n"
        " 00002 19970112  5   77.00\n"
        " 00002 19970112  5   77.00\n"  # an identical same-day repeat: kept, not merged
        " 00003 19970102  2\n",  # a short record
    )
    mapping = {"delimiter": "whitespace", "columns": {"customer_id": "contact_id", "date": "ordered_at", "dollar_value": "total"}, "formats": {"ordered_at": "%Y%m%d"}}
    r = ws.load("orders", log, mapping=mapping, create_contacts=True)
    assert (r.input, r.accepted, r.quarantined, r.contacts_created) == (5, 4, 1, 2)
    o = ws.to_pandas("orders")
    assert o.order_id.nunique() == 4
    assert (o.contact_id == "00002").sum() == 3
    assert set(o.number_of_cds) == {"1", "5"}  # an extra column is kept
    c = ws.to_pandas("contacts").set_index("contact_id")
    assert c.loc["00002", "created_at"] == pd.Timestamp("1997-01-12", tz="UTC")  # first activity
    q = quarantine(ws, "orders")
    assert list(q.line) == [6] and "3 fields but the header has 4" in q.reason[0]
    ids = set(o.order_id)
    again = ws.load("orders", log, mapping=mapping, create_contacts=True)
    assert again.unchanged == 4 and set(ws.to_pandas("orders").order_id) == ids  # stable ids


def test_cdnow_master_loads_completely(ws, shared_data):
    r = ws.load(
        "orders", shared_data / "CDNOW_master.txt",
        mapping=FIXTURES.parents[1] / "examples" / "mappings" / "cdnow.yaml", create_contacts=True,
    )
    assert (r.input, r.accepted, r.quarantined) == (69_659, 69_659, 0)
    assert ws.table("orders").count().execute() == 69_659
    assert ws.table("contacts").count().execute() == 23_570 == r.contacts_created


def test_parquet_with_native_types(ws, tmp_path):
    path = tmp_path / "contacts.parquet"
    pq.write_table(
        pa.table({
            "contact_id": ["a", "b", None],
            "created_at": pa.array([dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 2, 1, tzinfo=UTC), None], pa.timestamp("us", "UTC")),
            "email_opt_in": [True, False, True],
            "score": [1.5, 2.5, 3.5],
        }),
        path,
    )
    r = ws.load("contacts", path)
    assert (r.input, r.accepted, r.quarantined) == (3, 2, 1)
    q = quarantine(ws)
    assert q.row.tolist() == [3] and q.line.isna().all()
    # without a contact_id nothing says whether the contact is new: created_at is not asked for
    assert q.reason[0] == "missing contact_id (required)"
    c = ws.to_pandas("contacts").set_index("contact_id")
    assert c.loc["b", "score"] == 2.5 and not c.loc["b", "email_opt_in"]


def test_jsonl_events_with_nested_properties_and_a_broken_line(ws, tmp_path):
    ws.load("contacts", write(tmp_path / "c.csv", "contact_id,created_at\nc1,2024-01-01T00:00:00Z\n"))
    lines = [
        {"contact_id": "c1", "type": "email_open", "occurred_at": "2024-03-01T10:00:00+02:00",
         "properties": {"device_os": "iOS", "campaign_id": "spring", "subject_line": "B"}},
        {"contact_id": "c1", "type": "search", "occurred_at": "2024-03-02T10:00:00Z", "query": "pram", "page": "2"},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + "\n{not json}\n"
    r = ws.load("events", write(tmp_path / "e.jsonl", text))
    assert (r.input, r.accepted, r.quarantined) == (3, 2, 1)
    e = ws.table("events")
    opens = e.filter(e.type == "email_open")
    # promoted properties are columns; any other key stays queryable in `properties`
    row = opens.select("occurred_at", "device_os", "campaign_id", subject=opens.properties["subject_line"].str).to_pyarrow().to_pylist()[0]
    assert row["occurred_at"] == dt.datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    assert (row["device_os"], row["campaign_id"], row["subject"]) == ("iOS", "spring", "B")
    s = e.filter(e.type == "search")
    row = s.select("query", page=s.properties["page"].str).to_pyarrow().to_pylist()[0]
    assert row == {"query": "pram", "page": "2"}
    q = quarantine(ws, "events")
    assert q.line.tolist() == [3] and "not a JSON object" in q.reason[0]


def test_event_extra_columns_become_properties_and_ids_are_derived(ws, tmp_path):
    ws.load("contacts", write(tmp_path / "c.csv", "contact_id,created_at\nc1,2024-01-01\n"))
    ev = write(tmp_path / "e.csv", "contact_id,type,occurred_at,device_os,screen\nc1,app_session,2024-05-01 10:00,iOS,home\nc1,app_session,2024-05-01 10:00,iOS,home\nc2,app_session,2024-05-01 10:00,iOS,cart\n")
    r = ws.load("events", ev, create_contacts=True)
    assert (r.accepted, r.contacts_created) == (3, 1)
    e = ws.table("events")
    assert e.event_id.nunique().execute() == 3  # identical rows are two events
    screens = sorted(e.select(s=e.properties["screen"].str).s.to_pyarrow().to_pylist())
    assert screens == ["cart", "home", "home"]


def test_order_items_need_known_orders(ws, tmp_path):
    ws.load("contacts", write(tmp_path / "c.csv", "contact_id,created_at\nc1,2024-01-01\n"))
    ws.load("orders", write(tmp_path / "o.csv", "order_id,contact_id,ordered_at,total\no1,c1,2024-02-01,10\n"))
    r = ws.load("order_items", write(tmp_path / "i.csv", "order_id,sku,quantity,unit_price\no1,S1,2,5\no9,S1,1,5\no1,S2,1.5,3\n"))
    assert (r.accepted, r.quarantined) == (1, 2)
    reasons = quarantine(ws, "order_items").reason.tolist()
    assert "unknown order_id 'o9'" in reasons[0] and "load orders first" in reasons[0]
    assert "quantity '1.5' is not a whole number" in reasons[1]


def test_order_lines_carry_their_orders_fields_and_follow_changes(ws, tmp_path):
    """Order lines keep their order's contact, time and status (segment conditions on lines
    read one table); a later orders file that changes an order changes its lines too, in the
    same load, and the segment engine sees it."""
    from segmentum.segments import SegmentEngine

    ws.load("contacts", write(tmp_path / "c.csv", "contact_id,created_at\nc1,2024-01-01\nc2,2024-01-01\n"))
    ws.load("orders", write(tmp_path / "o.csv", "order_id,contact_id,ordered_at,total,status\no1,c1,2024-02-01,10,completed\no2,c2,2024-03-01,7,completed\n"))
    ws.load("order_items", write(tmp_path / "i.csv", "order_id,sku,quantity,unit_price\no1,S1,2,5\no2,S1,1,7\n"))

    def lines():
        i = ws.table("order_items")
        return ws.to_pandas(i.select("order_id", "_contact_id", "_ordered_at", "_status").order_by("order_id"))

    got = lines()
    assert got._contact_id.tolist() == ["c1", "c2"] and got._status.tolist() == ["completed"] * 2
    assert got._ordered_at.tolist() == [pd.Timestamp("2024-02-01", tz="UTC"), pd.Timestamp("2024-03-01", tz="UTC")]
    engine = SegmentEngine(ws)
    rule = "sum(order_items.quantity) >= 1"
    assert sorted(engine.members(rule, as_of="2024-06-01").to_pyarrow().column(0).to_pylist()) == ["c1", "c2"]
    # o1 is returned and o2 moves to c1 (a merged duplicate) a day later
    r = ws.load("orders", write(tmp_path / "o2.csv", "order_id,contact_id,ordered_at,total,status\no1,c1,2024-02-01,10,returned\no2,c1,2024-03-02,7,completed\n"))
    assert r.updated == 2
    got = lines()
    assert got._status.tolist() == ["returned", "completed"] and got._contact_id.tolist() == ["c1", "c1"]
    assert got._ordered_at.iloc[1] == pd.Timestamp("2024-03-02", tz="UTC")
    assert engine.members(rule, as_of="2024-06-01").to_pyarrow().column(0).to_pylist() == ["c1"]
    assert engine.members(rule, as_of="2024-03-01 12:00").to_pyarrow().column(0).to_pylist() == []
    # the copies are not rule fields
    with pytest.raises(RuleError, match="_status"):
        engine.members('purchased(_status = "returned")', as_of="2024-06-01")


def test_a_workspace_from_before_order_line_copies_gets_them_filled(ws, tmp_path):
    from segmentum.workspace import open_workspace

    ws.load("contacts", write(tmp_path / "c.csv", "contact_id,created_at\nc1,2024-01-01\n"))
    ws.load("orders", write(tmp_path / "o.csv", "order_id,contact_id,ordered_at,total\no1,c1,2024-02-01,10\n"))
    ws.load("order_items", write(tmp_path / "i.csv", "order_id,sku,quantity,unit_price\no1,S1,2,5\n"))
    for col in ("_contact_id", "_ordered_at", "_status"):
        ws.warehouse.raw.execute(f"ALTER TABLE order_items DROP COLUMN {col}")
    path = ws.config.path
    ws.close()
    again = open_workspace(path)
    try:
        row = again.to_pandas(again.table("order_items")).iloc[0]
        assert (row._contact_id, row._status) == ("c1", "completed")
    finally:
        again.close()


def test_events_are_written_clustered_by_type(ws, tmp_path):
    """Each load writes its events grouped by type, so the warehouse's per-block min/max let
    a scan for a few event types skip the blocks of the others."""
    ws.load("contacts", write(tmp_path / "c.csv", "contact_id,created_at\nc1,2024-01-01\n"))
    types = ["page_view", "email_open", "app_session", "email_open", "page_view", "app_session"] * 50
    rows = "".join(f"c1,{t},2024-05-01 10:{i % 60:02d}:{i // 60:02d}\n" for i, t in enumerate(types))
    ws.load("events", write(tmp_path / "e.csv", "contact_id,type,occurred_at\n" + rows))
    stored = [t for (t,) in ws.warehouse.raw.execute("SELECT type FROM events ORDER BY rowid").fetchall()]
    assert stored == sorted(types)


def test_future_and_ancient_dates_are_rejected(ws, tmp_path):
    r = ws.load("contacts", write(tmp_path / "c.csv", "contact_id,created_at\na,2024-01-01\nb,0001-01-01\nc,2999-01-01\n"))
    assert (r.accepted, r.quarantined) == (1, 2)
    assert all("implausible" in x for x in quarantine(ws).reason)


# -- mistakes a person makes get clear errors ------------------------------------------------------
def test_missing_required_column_names_the_file_columns(ws, tmp_path):
    f = write(tmp_path / "o.csv", "id,customer,when,amount\n1,a,2024-01-01,5\n")
    with pytest.raises(InputFileError) as e:
        ws.load("orders", f)
    msg = str(e.value)
    assert "contact_id, ordered_at, total" in msg and "id, customer, when, amount" in msg and "columns:" in msg


def test_mapping_mistakes(ws, tmp_path):
    f = write(tmp_path / "o.csv", "id,customer\n1,a\n")
    with pytest.raises(MappingError, match='unknown setting. Did you mean "columns"'):
        ws.load("orders", f, mapping={"colums": {"id": "order_id"}})
    with pytest.raises(MappingError, match="'client' is not a column of o.csv"):
        ws.load("orders", f, mapping={"columns": {"client": "contact_id"}})
    with pytest.raises(MappingError, match="not a field of orders. Did you mean \"ordered_at\""):
        ws.load("orders", f, mapping={"formats": {"orderd_at": "%Y"}})
    bad = write(tmp_path / "m.yaml", "columns: [oops\n")
    with pytest.raises(MappingError, match="not valid YAML at line"):
        ws.load("orders", f, mapping=bad)
    with pytest.raises(UsageError, match='Did you mean "orders"'):
        ws.load("order", f)


def test_unknown_extension_and_missing_file(ws, tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        ws.load("orders", tmp_path / "nope.csv")
    with pytest.raises(InputFileError, match="cannot tell the format"):
        ws.load("orders", write(tmp_path / "o.xlsx", "x"))


def test_a_load_that_fails_midway_leaves_nothing_behind(ws, tmp_path, monkeypatch):
    from segmentum.data import ingest

    log = write(tmp_path / "o.csv", "order_id,contact_id,ordered_at,total\no1,new1,2024-02-01,10\no2,c9,2024-02-30,5\n")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ingest, "_write_quarantine", boom)
    with pytest.raises(OSError, match="disk full"):
        ws.load("orders", log, create_contacts=True)
    # the created contact, the accepted order and the load log were all rolled back
    for table in ("orders", "contacts", "_quarantine", "_loads"):
        assert ws.table(table).count().execute() == 0, table
    monkeypatch.undo()
    r = ws.load("orders", log, create_contacts=True)  # and the workspace is usable afterwards
    assert (r.accepted, r.quarantined, r.contacts_created) == (1, 1, 1)


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        # one record per line, CRLF endings, no final line feed: lines counted, not searched
        ("contact_id,created_at\r\nA,2024-01-01\r\nB,bad\r\nC,2024-01-03", {"A": 2, "B": 3, "C": 4}),
        # a blank line is skipped, not a record: later records keep their own line numbers
        ("contact_id,created_at\nA,2024-01-01\n\nB,bad\nC,2024-01-03\n", {"A": 2, "B": 4, "C": 5}),
        # a quoted value over two lines: the next record starts a line further down
        ('contact_id,note,created_at\nA,"two\nlines",2024-01-01\nB,x,bad\nC,y,2024-01-03\n',
         {"A": 2, "B": 4, "C": 5}),
    ],
    ids=["crlf-no-final-newline", "blank-line", "multi-line-value"],
)
def test_line_numbers_point_at_the_record_in_the_file(ws, tmp_path, text, lines):
    r = ws.load("contacts", write(tmp_path / "c.csv", text))
    assert (r.input, r.accepted, r.quarantined) == (3, 2, 1)
    c = ws.to_pandas(ws.table("contacts").select("contact_id", "_line"))
    q = quarantine(ws, "contacts")
    got = {**dict(zip(c.contact_id, c._line, strict=True)),
           "B": int(q.line.iloc[0])}
    assert got == lines
    assert "'bad'" in q.reason.iloc[0]
