"""Records no table can hold as they are (a blank or control-character field name, a field
name that is not text, a lone surrogate, a number past 64 bits), handed to ``load_records``
or written as JSON Lines: each poison record is quarantined with its reason and the rest
load; never a traceback, and ``accepted + quarantined = input``."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from segmentum.data.ingest import load_records
from segmentum.errors import UsageError

GOOD = {"contact_id": "ok", "created_at": "2026-01-01T00:00:00Z", "email": "ok@example.com"}

POISON = {
    "blank name": ({"contact_id": "p", "created_at": "2026-01-01", "": "x"}, "the field name ''"),
    "spaces only": ({"contact_id": "p", "created_at": "2026-01-01", "   ": "x"}, "the field name '   '"),
    "NUL in a name": ({"contact_id": "p", "created_at": "2026-01-01", "a\x00b": "x"}, "'a\\x00b'"),
    "newline in a name": ({"contact_id": "p", "created_at": "2026-01-01", "a\nb": "x"}, "'a\\nb'"),
    "DEL in a name": ({"contact_id": "p", "created_at": "2026-01-01", "a\x7f": "x"}, "'a\\x7f'"),
    "a name that is a number": ({"contact_id": "p", "created_at": "2026-01-01", 5: "x"}, "the field name '5'"),
    "a lone surrogate": ({"contact_id": "p", "created_at": "2026-01-01", "note": "a\ud800"}, "field 'note': text that is not Unicode"),
    "a surrogate in a name": ({"contact_id": "p", "created_at": "2026-01-01", "n\udc00": 1}, "text that is not Unicode"),
    "a surrogate nested": ({"contact_id": "p", "created_at": "2026-01-01", "tags": ["\ud83d"]}, "field 'tags'"),
}


def _reasons(ws) -> list[str]:
    return ws.quarantine().reason.to_pyarrow().to_pylist()


@pytest.mark.parametrize("case", sorted(POISON))
def test_a_poison_record_is_quarantined_and_the_rest_load(ws, case):
    poison, said = POISON[case]
    r = load_records(ws, "contacts", [GOOD, poison, dict(GOOD, contact_id="ok2")], source="feed")
    assert (r.input, r.accepted, r.quarantined) == (3, 2, 1)
    [reason] = _reasons(ws)
    assert reason.startswith("record 2 has ") and said in reason, reason
    assert ws.quarantine().row.to_pyarrow().to_pylist() == [2]


@pytest.mark.parametrize("number", [2**63, 2**64 - 1, 2**70, -(2**63) - 1, 10**40])
def test_numbers_past_64_bits_are_kept_as_text_top_level_and_nested(ws, number):
    records = [dict(GOOD, score=number, extra={"n": number}, many=[1, number]),
               dict(GOOD, contact_id="ok2", score=1)]
    r = load_records(ws, "contacts", records, source="feed")
    assert (r.input, r.accepted, r.quarantined) == (2, 2, 0)
    t = ws.table("contacts").order_by("contact_id")
    assert t.score.to_pyarrow().to_pylist() == [str(number), "1"]
    assert json.loads(t.extra.to_pyarrow().to_pylist()[0]) == {"n": number}


def test_an_order_amount_past_64_bits_is_a_located_reason_not_a_crash(ws):
    load_records(ws, "contacts", [GOOD], source="feed")
    order = {"order_id": "o1", "contact_id": "ok", "ordered_at": "2026-02-01T00:00:00Z", "amount": 10**30}
    r = load_records(ws, "orders", [order], source="feed")
    assert r.input == r.accepted + r.quarantined == 1


def test_only_poison_records_are_all_quarantined(ws):
    r = load_records(ws, "contacts", [{"": 1}, {"\x01": 2}, "text", None], source="feed")
    assert (r.input, r.accepted, r.quarantined) == (4, 0, 4)


def test_an_arrow_table_with_a_blank_column_name_is_a_usage_error(ws):
    table = pa.table({"contact_id": ["a"], "": ["x"]})
    with pytest.raises(UsageError, match="column name ''"):
        load_records(ws, "contacts", table, source="feed")


def test_json_lines_with_poison_lines_quarantine_them_by_line(ws, tmp_path):
    lines = [json.dumps(GOOD), '{"contact_id": "p", "": 1}', '{"contact_id": "p2", "a\\u0000": 1}',
             '{"contact_id": "p3", "note": "\\ud800"}', '{"contact_id": "big", "created_at": "2026-01-01", "n": 1180591620717411303424}',
             "[1, 2]", ""]
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    r = ws.load("contacts", path)
    assert (r.input, r.accepted, r.quarantined) == (6, 2, 4)
    q = ws.quarantine().order_by("line").select("line", "reason").to_pyarrow().to_pylist()
    assert [x["line"] for x in q] == [2, 3, 4, 6]
    assert all(x["reason"] for x in q)


def test_json_lines_none_of_which_is_an_object_are_quarantined_not_a_column_error(ws, tmp_path):
    path = tmp_path / "junk.jsonl"
    path.write_text('{"": 1}\n[1]\n"x"\n')
    r = ws.load("contacts", path)
    assert (r.input, r.accepted, r.quarantined) == (3, 0, 3)
