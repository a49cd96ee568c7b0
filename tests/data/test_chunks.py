"""Large files load chunk by chunk; every decision is the one a one-shot load makes: the
same rows, the same quarantine (line, record, reason), the same counts, in every chunking."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentum import open_workspace
from segmentum.data import ingest, readers

CONTACTS = "contact_id,created_at\nc1,2024-01-01\nc2,2024-01-01\n"
COUNTS = ("input", "accepted", "quarantined", "inserted", "updated", "unchanged", "contacts_created")


def orders(rows: list[str]) -> str:
    return "order_id,contact_id,ordered_at,total\n" + "".join(r + "\n" for r in rows)


CLEAN = [f"o{i},c{1 + i % 2},2024-03-{1 + i % 28:02d},{10 + i}.50" for i in range(16)]


def snapshot(ws, kind: str, report) -> tuple:
    t = ws.table(kind)
    data = [c for c in t.columns if c != "_loaded_at"]
    rows = sorted(tuple(r.values()) for r in t.select(*data).to_pyarrow().to_pylist())
    q = ws.quarantine(kind)
    quarantine = sorted(tuple(r.values()) for r in q.select("line", "row", "column", "reason").to_pyarrow().to_pylist())
    contacts = sorted(tuple(r.values()) for r in ws.table("contacts").select("contact_id", "created_at", "_line")
                      .to_pyarrow().to_pylist())
    return rows, quarantine, contacts, {k: getattr(report, k) for k in COUNTS}, report.reasons


def load_both(tmp_path, monkeypatch, kind: str, text: str, chunk_rows: int, *, first: str = CONTACTS,
              again: bool = False, **kw) -> tuple[tuple, tuple, list[int]]:
    """Load the same file one-shot and in chunks of ``chunk_rows`` (tiny Arrow blocks, so
    a chunk is a few records); returns both snapshots and the chunk sizes used."""
    path = tmp_path / f"{kind}.csv"
    path.write_text(text)
    (tmp_path / "first.csv").write_text(first)
    shots, sizes = [], []
    real = ingest._Load.chunk

    def spy(self, read):
        sizes.append(read.records)
        return real(self, read)

    for name, rows, block in (("one", None, 1 << 24), ("chunked", chunk_rows, 64)):
        monkeypatch.setattr(readers, "BLOCK_SIZE", block)
        monkeypatch.setattr(ingest, "CHUNK_ROWS", rows or 10**9)
        monkeypatch.setattr(ingest._Load, "chunk", spy)
        sizes.clear()
        with open_workspace(tmp_path / f"{name}.duckdb") as ws:
            ws.load("contacts", tmp_path / "first.csv")
            sizes.clear()
            r = ws.load(kind, path, **kw)
            if again:
                r = ws.load(kind, path, **kw)
            shots.append(snapshot(ws, kind, r))
    return shots[0], shots[1], list(sizes)


def test_a_clean_file_in_chunks_is_the_file_in_one(tmp_path, monkeypatch):
    one, chunked, sizes = load_both(tmp_path, monkeypatch, "orders", orders(CLEAN), 5)
    assert len(sizes) >= 3 and sum(sizes) == 16  # really chunked
    assert one == chunked


def test_bad_rows_and_duplicates_inside_a_chunk(tmp_path, monkeypatch):
    rows = [*CLEAN[:8], "o3,c1,2024-03-05,bad", "o4,c2,2024-03-31,1", "o5,c1,2024-02-30,1", *CLEAN[8:]]
    one, chunked, sizes = load_both(tmp_path, monkeypatch, "orders", orders(rows), 6)
    assert len(sizes) > 2 and one == chunked
    assert one[3]["quarantined"] == 2 + 1  # 'bad', 2024-02-30, and o4's first version (line 5)


def test_a_key_repeated_across_chunks_decides_as_one_shot(tmp_path, monkeypatch):
    """The later record wins and the earlier is quarantined, as in a one-shot load."""
    rows = [*CLEAN, "o2,c2,2024-04-01,99.00"]
    one, chunked, sizes = load_both(tmp_path, monkeypatch, "orders", orders(rows), 5)
    assert one == chunked
    assert any("duplicate order_id" in q[3] for q in one[1])
    assert sizes[-1] == 17  # found across chunks: loaded again in one


@pytest.mark.parametrize(
    "odd",
    ["o99,c1,2024-03-01", 'o98,c1,2024-03-01,"1\n0"', ""],
    ids=["wrong-width", "value-over-two-lines", "blank-line"],
)
def test_records_whose_positions_need_the_whole_file(tmp_path, monkeypatch, odd):
    rows = [*CLEAN[:8], odd, *CLEAN[8:]]
    one, chunked, sizes = load_both(tmp_path, monkeypatch, "orders", orders(rows), 5)
    assert one == chunked
    assert sizes[-1] >= 16  # started again in one chunk


def test_reloading_in_chunks_changes_nothing(tmp_path, monkeypatch):
    one, chunked, _ = load_both(tmp_path, monkeypatch, "orders", orders(CLEAN), 5, again=True)
    assert one == chunked and chunked[3]["unchanged"] == 16


def test_contacts_created_by_an_earlier_chunk_take_a_later_earlier_activity(tmp_path, monkeypatch):
    rows = [f"o{i},new{i % 3},2024-05-{10 + i % 10:02d},5" for i in range(10)] + ["o99,new1,2024-01-02,5"]
    one, chunked, sizes = load_both(tmp_path, monkeypatch, "orders", orders(rows), 4, create_contacts=True)
    assert len(sizes) > 2 and one == chunked
    created = {c: t for c, t, _ in chunked[2]}
    assert str(created["new1"].date()) == "2024-01-02"  # its activity in the last chunk


def test_parquet_in_chunks(tmp_path, monkeypatch):
    t = pa.table({
        "order_id": [f"o{i}" for i in range(14)] + ["o7"],
        "contact_id": ["c1"] * 15,
        "ordered_at": ["2024-03-01"] * 5 + ["2024-13-01"] + ["2024-03-02"] * 9,
        "total": [1.5] * 15,
    })
    outcomes = []
    for name, rows in (("one", 10**9), ("chunked", 4)):
        (tmp_path / name).mkdir()
        path = tmp_path / name / "orders.parquet"
        pq.write_table(t, path, row_group_size=3)
        monkeypatch.setattr(readers, "PARQUET_BATCH", 3)
        monkeypatch.setattr(ingest, "CHUNK_ROWS", rows)
        with open_workspace(tmp_path / f"{name}.duckdb") as ws:
            (tmp_path / "c.csv").write_text(CONTACTS)
            ws.load("contacts", tmp_path / "c.csv")
            r = ws.load("orders", path)
            outcomes.append(snapshot(ws, "orders", r)[:2] + ({k: getattr(r, k) for k in COUNTS},))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][2]["quarantined"] == 2  # the bad date and o7's first version


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.sampled_from(["good", "good", "good", "bad_total", "dup", "unknown"]), min_size=1, max_size=16),
    st.integers(min_value=1, max_value=9),
)
def test_every_chunking_reconciles_and_agrees(tmp_path_factory, monkeypatch, flavours, chunk_rows):
    rows = []
    for i, fl in enumerate(flavours):
        oid = f"o{i - 1}" if fl == "dup" and i else f"o{i}"
        total = "x" if fl == "bad_total" else "3.25"
        contact = "nobody" if fl == "unknown" else "c1"
        rows.append(f"{oid},{contact},2024-03-01,{total}")
    one, chunked, _ = load_both(tmp_path_factory.mktemp("p"), monkeypatch, "orders", orders(rows), chunk_rows)
    counts = chunked[3]
    assert counts["accepted"] + counts["quarantined"] == counts["input"] == len(rows)
    assert one == chunked
