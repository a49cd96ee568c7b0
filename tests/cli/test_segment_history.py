"""`segment history NAME --members`: who entered and who left, with the time of each change."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from segmentum.cli.app import app
from segmentum.segments import SegmentEngine

CONTACTS = [{"contact_id": c, "email": f"{c.lower()}@example.com",
             "created_at": "2023-12-01T00:00:00Z"} for c in ("C1", "C2", "C3")]
ORDERS = [
    {"order_id": "O1", "contact_id": "C1", "ordered_at": "2024-01-01T10:00:00Z", "total": 10.0},
    {"order_id": "O2", "contact_id": "C2", "ordered_at": "2024-02-20T10:00:00Z", "total": 10.0},
    {"order_id": "O3", "contact_id": "C1", "ordered_at": "2024-03-20T10:00:00Z", "total": 10.0},
]


@pytest.fixture
def lapsing(make_ws):
    """`lapsing` refreshed on March 1st (C1 in) and April 1st (C2 in, C1 out)."""
    ws = make_ws(contacts=CONTACTS, orders=[{**o, "status": "completed"} for o in ORDERS])
    eng = SegmentEngine(ws)
    eng.create("lapsing", "days_since(last orders) > 30")
    for t in ("2024-03-01", "2024-04-01"):
        SegmentEngine(ws).refresh(["lapsing"], t)
    path = str(ws.config.path)
    ws.close()
    return path


def _json(*args: str) -> dict:
    r = CliRunner().invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_members_lists_every_entry_and_exit_with_its_time(lapsing):
    out = _json("segment", "history", "lapsing", "--members", "-w", lapsing)
    assert [(c["at"][:10], c["contact_id"], c["change"], c["email"]) for c in out["changes"]] == [
        ("2024-03-01", "C1", "entered", "c1@example.com"),
        ("2024-04-01", "C2", "entered", "c2@example.com"),
        ("2024-04-01", "C1", "exited", "c1@example.com"),
    ]
    assert (out["entered"], out["exited"]) == (2, 1)
    assert [r["size"] for r in out["refreshes"]] == [1, 1]


def test_since_and_until_bound_the_changes_and_refreshes(lapsing):
    later = _json("segment", "history", "lapsing", "--members", "--since", "2024-03-15",
                  "-w", lapsing)
    assert [(c["contact_id"], c["change"]) for c in later["changes"]] == [
        ("C2", "entered"), ("C1", "exited")]
    assert [r["as_of"][:10] for r in later["refreshes"]] == ["2024-04-01"]
    first = _json("segment", "history", "lapsing", "--members", "--until", "2024-03-01",
                  "-w", lapsing)
    assert [(c["contact_id"], c["change"]) for c in first["changes"]] == [("C1", "entered")]


def test_without_members_no_changes_and_the_table_names_who(lapsing):
    assert "changes" not in _json("segment", "history", "lapsing", "-w", lapsing)
    r = CliRunner().invoke(app, ["segment", "history", "lapsing", "--members", "-n", "1",
                                 "-w", lapsing])
    assert r.exit_code == 0, r.output
    assert "2 entered, 1 exited; the first 1 of 3 changes" in r.output
    assert "c1@example.com" in r.output and "C2" not in r.output.split("changes:")[1]
