"""Source tables rewritten in contact order keep their columns, rows and every answer."""

from __future__ import annotations

import pytest

from segmentum.live.contact_eval import ContactEvaluator
from segmentum.live.layout import ORDER, keep_ordered, order_table, unordered_rows
from segmentum.segments.engine import SegmentEngine
from tests.segments.conftest import T, _scores, _world_rows
from tests.workspaces import build_workspace

RULES = [
    'purchased(brand = "Apple")',
    "count(orders, last 90 days) >= 1",
    'count(email_open where device_os = "iOS", last 30 days) >= 1',
    'deal.stage not in ("won", "lost")',
    "sum(order_items.quantity, last 365 days) >= 2",
]


@pytest.fixture()
def ws(tmp_path):
    rows = _world_rows()
    for table in ("events", "orders", "order_items", "deals", "contacts"):
        rows[table] = list(reversed(rows[table]))  # out of contact order
    ws = build_workspace(tmp_path / "w.duckdb", **{k: list(v) for k, v in rows.items()}, **_scores(rows["contacts"]))
    yield ws
    ws.close()


def _shape(raw, table: str):
    return (raw.execute(f'DESCRIBE "{table}"').fetchall(),
            sorted(raw.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr))


def _in_order(raw, table: str) -> bool:
    keys = ", ".join(f'"{k}"' for k in ORDER[table])
    got = raw.execute(f'SELECT {keys} FROM "{table}"').fetchall()
    return got == sorted(got, key=lambda r: tuple(x for v in r for x in (v is None, v or "")))


def _answers(ws):
    eng = SegmentEngine(ws)
    checked = {r: eng.check(r) for r in RULES}
    ids = ws.warehouse.table("contacts").contact_id.to_pyarrow().to_pylist()
    at = T.to_pydatetime()
    live = ContactEvaluator(eng.catalog, checked)
    batch = {r: set(eng.members(c, at).to_pyarrow().column("contact_id").to_pylist()) for r, c in checked.items()}
    return batch, live.evaluate(list(checked), live.fetch(ids, at), at)


def test_ordered_tables_keep_their_columns_rows_and_answers(ws):
    raw = ws.warehouse.raw
    tables = [t for t in ORDER if ws.warehouse.has_table(t)]
    assert len(tables) >= 5
    before = {t: _shape(raw, t) for t in tables}
    answers = _answers(ws)
    assert not all(_in_order(raw, t) for t in tables)
    assert all(unordered_rows(ws.warehouse, t) == len(before[t][1]) for t in tables)
    done = keep_ordered(ws.warehouse, share=0.0, minimum=1)
    assert set(done) == set(tables)
    for t in tables:
        assert _shape(raw, t) == before[t], t
        assert _in_order(raw, t), t
        assert unordered_rows(ws.warehouse, t) == 0
    assert _answers(ws) == answers
    assert any(answers[0].values())  # the rules select someone


def test_appended_rows_count_until_the_next_ordering_and_a_replaced_table_counts_whole(ws):
    wh = ws.warehouse
    order_table(wh, "events")
    wh.raw.execute("INSERT INTO events SELECT * FROM events LIMIT 3")
    assert unordered_rows(wh, "events") == 3
    assert keep_ordered(wh) == {}  # 3 rows are below the minimum
    assert "events" in keep_ordered(wh, share=0.0, minimum=3)
    assert unordered_rows(wh, "events") == 0
    n = wh.raw.execute("SELECT count(*) FROM events").fetchone()[0]
    wh.raw.execute("CREATE OR REPLACE TABLE events AS SELECT * FROM events")
    assert unordered_rows(wh, "events") == n
