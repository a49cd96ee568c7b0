"""Data-quality decisions (segmentum.data.checks): what is quarantined, what is accepted and
counted, the load summary's and `segmentum info`'s warnings, and the README's copy of the table."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from segmentum.data.checks import CHECKS

from ..conftest import REPO

ACTIONS = {"reject": "quarantined", "warn": "accepted, counted", "clear": "accepted, field left empty, counted"}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def reasons(ws, kind: str) -> dict[int, str]:
    rows = ws.quarantine(kind).select("line", "reason").to_pyarrow().to_pylist()
    return {r["line"]: r["reason"] for r in rows}


CONTACTS = """contact_id,created_at,email,phone,birth_date,country
c1,2024-01-01,ann@example.com,+44 20 7946 0958,1980-05-01,GB
c2,2024-01-01,jan(at)wp.pl,12,2090-01-01,Poland
c3,2024-01-01,bob@example,+48 600 100 200,1899-12-31,PL
c4,2999-01-01,x@example.com,,,
"""


def test_contact_fields_warn_clear_or_reject(ws, tmp_path):
    r = ws.load("contacts", write(tmp_path / "c.csv", CONTACTS))
    assert (r.accepted, r.quarantined) == (3, 1)
    assert "created_at '2999-01-01' is implausible" in reasons(ws, "contacts")[5]
    got = {(q["field"], q["action"]): (q["count"], q["line"], q["value"]) for q in r.quality}
    assert got == {
        ("email", "warn"): (2, 3, "jan(at)wp.pl"),
        ("phone", "warn"): (1, 3, "12"),
        ("birth_date", "clear"): (2, 3, "2090-01-01"),
        ("country", "warn"): (1, 3, "Poland"),
    }
    c = ws.to_pandas(ws.table("contacts").order_by("contact_id"))
    assert c.email.tolist() == ["ann@example.com", "jan(at)wp.pl", "bob@example"]  # kept as written
    assert c.birth_date.isna().tolist() == [False, True, True]  # cleared
    assert "email is not an e-mail address: 2 record(s) accepted, e.g. line 3 'jan(at)wp.pl'" in r.warnings[0]


def test_order_and_line_values(ws, tmp_path):
    ws.load("contacts", write(tmp_path / "c.csv", "contact_id,created_at\nc1,2024-01-01\n"))
    ws.load("products", write(tmp_path / "p.csv", "sku,category,price\nA,toys,9.99\nB,toys,-1\n"))
    assert "price '-1' is negative" in reasons(ws, "products")[3]
    orders = "order_id,contact_id,ordered_at,total,currency\no1,c1,2024-02-01,10,EUR\no2,c1,2024-02-01,-5,EUR\no3,c1,2024-02-01,0,euro\n"
    r = ws.load("orders", write(tmp_path / "o.csv", orders))
    assert (r.accepted, r.quarantined) == (2, 1)
    assert reasons(ws, "orders")[3].startswith("total '-5' is negative")
    assert {(q["field"], q["check"]): q["count"] for q in r.quality} == {("total", "zero"): 1, ("currency", "currency"): 1}
    lines = "order_id,sku,quantity,unit_price\no1,A,1,9.99\no1,GHOST,2,1\no3,A,0,1\no3,B,1,-2\n"
    r = ws.load("order_items", write(tmp_path / "i.csv", lines))
    assert (r.accepted, r.quarantined) == (2, 2)  # GHOST is accepted, and counted
    why = reasons(ws, "order_items")
    assert why[4].startswith("quantity '0' is not a positive quantity")
    assert why[5].startswith("unit_price '-2' is negative")
    assert [(q["check"], q["value"]) for q in r.quality] == [("unknown_sku", "GHOST")]


def test_records_name_their_example_by_index(ws):
    from segmentum.data.ingest import load_records

    r = load_records(ws, "contacts", [{"contact_id": "a", "created_at": "2024-01-01", "phone": "12"}], source="crm")
    assert r.quality[0]["row"] == 1 and r.quality[0]["line"] is None
    assert "e.g. record 1 '12'" in r.warnings[0]


def test_info_shows_the_latest_load_of_each_file(ws, tmp_path):
    path = write(tmp_path / "c.csv", CONTACTS)
    ws.load("contacts", path)
    ws.load("contacts", write(tmp_path / "more.csv", "contact_id,created_at,phone\nc9,2024-01-01,123\n"))
    info = {w["check"]: w for w in ws.info()["warnings"]}
    assert info["phone"]["count"] == 2 and info["phone"]["files"] == 2
    assert info["phone"]["message"] == "contacts: phone is not a phone number (7 to 15 digits): 2 record(s), e.g. c.csv line 3 '12'"
    write(path, CONTACTS.replace(",12,", ",+48 600 100 201,"))  # the file fixed, loaded again
    ws.load("contacts", path)
    assert {w["check"]: w["count"] for w in ws.info()["warnings"]}["phone"] == 1


def test_the_cli_shows_warnings_in_load_and_info(tmp_path):
    segmentum = str(Path(sys.executable).with_name("segmentum"))
    ws = str(tmp_path / "ws.duckdb")
    path = write(tmp_path / "c.csv", CONTACTS)
    out = subprocess.run([segmentum, "-w", ws, "load", "contacts", str(path), "--json"], capture_output=True, text=True)
    data = json.loads(out.stdout)
    assert {q["field"] for q in data["quality"]} == {"email", "phone", "birth_date", "country"}
    text = subprocess.run([segmentum, "-w", ws, "info"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}).stdout
    assert "warning: contacts: email is not an e-mail address: 2 record(s), e.g. c.csv line 3" in text


def test_the_readme_table_is_the_checks_table():
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Data quality", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| kind")]
    want = [[c.kind, c.field, c.says, ACTIONS[c.action], c.why] for c in CHECKS]
    assert rows == want


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: f"{c.kind}.{c.field}.{c.name}")
def test_every_check_names_a_canonical_field(check):
    from segmentum.data.schema import spec

    assert check.field in spec(check.kind).names
    assert re.fullmatch(r"[a-z_]+", check.name)
