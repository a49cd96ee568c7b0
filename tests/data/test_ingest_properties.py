"""Property test: any mix of good and bad rows reconciles: accepted + quarantined = input, and
exactly the bad records (by their line in the file) are in quarantine."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentum import open_workspace

FLAVOURS = ["good", "good", "good", "bad_date", "bad_total", "no_contact", "unknown_contact",
            "bad_channel", "dup_of_previous", "ragged", "quoted_newline"]


def build(flavours: list[str]) -> tuple[str, set[int], int]:
    """CSV text, the lines expected in quarantine, and the number of records."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["order_id", "contact_id", "ordered_at", "total", "channel", "note"])
    line = 2
    bad: set[int] = set()
    prev: tuple[str, int] | None = None  # (order id, line) of the last good, non-superseded row
    for i, fl in enumerate(flavours):
        row = [f"o{i}", "c1", "2024-03-01T10:00:00Z", "10.50", "online", "x"]
        if fl == "bad_date":
            row[2] = "2024-02-30"
        elif fl == "bad_total":
            row[3] = "12,3,4"
        elif fl == "no_contact":
            row[1] = ""
        elif fl == "unknown_contact":
            row[1] = "nobody"
        elif fl == "bad_channel":
            row[4] = "fax"
        elif fl == "dup_of_previous" and prev is not None:
            row[0] = prev[0]
            bad.add(prev[1])  # the earlier record is superseded by this one
        elif fl == "quoted_newline":
            row[5] = "two\nlines"
        if fl == "ragged":
            out.write(f"o{i},c1,2024-03-01\n")
            bad.add(line)
            line += 1
            continue
        w.writerow(row)
        if fl in ("good", "quoted_newline", "dup_of_previous"):
            prev = (row[0], line)
        else:
            bad.add(line)
        line += 1 + row[5].count("\n")
    return out.getvalue(), bad, len(flavours)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("prop")
    with open_workspace(root / "ws.duckdb") as ws:
        (root / "c.csv").write_text("contact_id,created_at\nc1,2024-01-01\n")
        ws.load("contacts", root / "c.csv")
        yield ws, root


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(FLAVOURS), min_size=1, max_size=25), st.booleans())
def test_any_mix_reconciles(workspace, flavours, bom):
    ws, root = workspace
    text, bad_lines, n = build(flavours)
    path = root / f"orders_{abs(hash((tuple(flavours), bom)))}.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    r = ws.load("orders", path)
    assert r.input == n
    assert r.accepted + r.quarantined == r.input
    q = ws.quarantine("orders")
    lines = set(q.filter(q.load_id == r.load_id).line.to_pyarrow().to_pylist())
    assert lines == bad_lines
    assert r.quarantined == len(bad_lines)
