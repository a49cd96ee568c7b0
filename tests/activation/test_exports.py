"""Retargeting exports on a real DuckDB workspace: who is in, exact files, incremental diffs.

Expected audiences and file rows are computed here independently: membership from the
orders with pandas, consent and identifiers from hand-written expectations per contact,
hashes with hashlib.
"""

from __future__ import annotations

import csv
import hashlib
import json

import pandas as pd
import pytest

from segmentum.activation import export_segment
from segmentum.activation.exports import EXPORT_MEMBERS, EXPORTS
from segmentum.errors import SegmentumError, UsageError, WorkspaceError
from segmentum.segments import SegmentEngine

T1 = pd.Timestamp("2024-03-31", tz="UTC")
T2 = pd.Timestamp("2024-04-30", tz="UTC")
RULE = "count(orders, last 30 days) >= 1"

# contact -> (raw fields, ads_opt_in text, expected e-mail, expected E.164 phone)
# the expectations are written by hand: None = not usable
PEOPLE = {
    "C01": (dict(email="  John.Doe@Example.COM ", phone="07123 456789", first_name="John",
                 last_name="Doe", city="London", country="GB"), "true",
            "john.doe@example.com", "+447123456789"),
    "C02": (dict(email="anna@example.pl", phone="+48 512 345 678", first_name="Anna",
                 last_name="Kowalska-Nowak", city="Łódź", country="PL"), "yes",
            "anna@example.pl", "+48512345678"),
    "C03": (dict(email="bad@", phone="0044 7123 456780", first_name=" Tom ", country="GB"), "1",
            None, "+447123456780"),
    "C04": (dict(email="nope", phone="123", country="GB"), "true", None, None),
    "C05": (dict(email="x@example.com", country="FR"), None, "x@example.com", None),
    "C06": (dict(email="z@example.com", country="FR"), "false", "z@example.com", None),
    "C07": (dict(email=None, phone="07123 456781", country=None), "true", None, None),
    "C08": (dict(email="Emma@Example.FR", first_name="Emma", last_name="Dupont",
                 city="Saint-Étienne", country="FR"), "TRUE", "emma@example.fr", None),
    "C09": (dict(email="late@example.com", phone="06 12 34 56 78", country="FR"), "true",
            "late@example.com", "+33612345678"),
    "C10": (dict(email="new@example.de", country="DE", first_name="Jörg"), "true",
            "new@example.de", None),
}
YES = {"true", "yes", "1", "TRUE"}
# orders: C01-C08 bought in March (members as of T1); in April C01, C02, C05, C09, C10
MARCH = ["C01", "C02", "C03", "C04", "C05", "C06", "C07", "C08"]
APRIL = ["C01", "C02", "C05", "C09", "C10"]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def contact_rows(consent: dict[str, str | None] | None = None) -> list[dict]:
    rows = []
    for cid, (fields, ads, _, _) in PEOPLE.items():
        ads = (consent or {}).get(cid, ads)
        rows.append({"contact_id": cid, "created_at": "2023-01-01T00:00:00Z",
                     "email_opt_in": cid in ("C01", "C03"), "ads_opt_in": ads, **fields})
    rows.append({"contact_id": "C11", "created_at": "2023-01-01T00:00:00Z",
                 "email": "never@example.com", "ads_opt_in": "true"})  # never a member
    return rows


def order_rows() -> list[dict]:
    rows = [{"order_id": f"M{c}", "contact_id": c, "ordered_at": "2024-03-15T10:00:00Z",
             "total": 10, "status": "completed"} for c in MARCH]
    rows += [{"order_id": f"A{c}", "contact_id": c, "ordered_at": "2024-04-15T10:00:00Z",
              "total": 10, "status": "completed"} for c in APRIL]
    return rows


def members_at(T: pd.Timestamp) -> set[str]:
    """Independent membership: a completed order in [T - 30 days, T)."""
    o = pd.DataFrame(order_rows())
    o["ordered_at"] = pd.to_datetime(o.ordered_at, utc=True)
    hit = o[(o.ordered_at >= T - pd.Timedelta(days=30)) & (o.ordered_at < T)]
    return set(hit.contact_id)


def classify(members: set[str], consent: dict[str, str | None] | None = None) -> dict:
    """reason per member: None (in the audience), no_consent or no_identifier."""
    out = {}
    for cid in members:
        _, ads, email, phone = PEOPLE[cid]
        ads = (consent or {}).get(cid, ads)
        if ads not in YES:
            out[cid] = "no_consent"
        elif email is None and phone is None:
            out[cid] = "no_identifier"
        else:
            out[cid] = None
    return out


def audience(members: set[str], consent=None) -> set[str]:
    return {c for c, reason in classify(members, consent).items() if reason is None}


def google_row(cid: str) -> list[str]:
    fields, _, email, phone = PEOPLE[cid]
    first, last = fields.get("first_name"), fields.get("last_name")
    return [sha(email) if email else "", sha(phone) if phone else "",
            sha(first.strip().lower()) if first else "", sha(last.lower()) if last else "",
            fields.get("country") or "", ""]


META_NAMES = {  # hand-normalised: lower-case letters only
    "John": "john", "Doe": "doe", "Anna": "anna", "Kowalska-Nowak": "kowalskanowak",
    " Tom ": "tom", "Emma": "emma", "Dupont": "dupont", "Jörg": "jörg",
    "London": "london", "Łódź": "łódź", "Saint-Étienne": "saintétienne",
}


def meta_row(cid: str) -> list[str]:
    fields, _, email, phone = PEOPLE[cid]

    def h(key):
        v = fields.get(key)
        return sha(META_NAMES[v]) if v else ""

    country = fields.get("country")
    return [sha(email) if email else "", sha(phone[1:]) if phone else "", h("first_name"),
            h("last_name"), h("city"), sha(country.lower()) if country else "", ""]


def read_csv(path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def snapshot(ws, export_id: int) -> set[str]:
    m = ws.table(EXPORT_MEMBERS).to_pandas()
    return set(m.loc[m.export_id == export_id, "contact_id"])


@pytest.fixture
def shop(make_ws):
    ws = make_ws(contacts=contact_rows(), orders=order_rows())
    eng = SegmentEngine(ws)
    eng.create("buyers", RULE)
    eng.refresh(["buyers"], T1.to_pydatetime())
    return ws


def refresh(ws, T) -> None:
    SegmentEngine(ws).refresh(["buyers"], T.to_pydatetime())


# -- who is in ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["meta", "google", "csv"])
def test_full_export_rows_counts_and_snapshot(shop, tmp_path, fmt):
    out = tmp_path / f"{fmt}.csv"
    r = export_segment(shop, "buyers", fmt, out)
    members = members_at(T1)
    reasons = classify(members)
    expected = audience(members)
    assert r.members == len(members) == 8
    assert r.audience == len(expected) == r.rows == 4  # C01 C02 C03 C08
    assert r.excluded == {
        "unknown_contact": 0,
        "no_consent": sum(v == "no_consent" for v in reasons.values()),  # C05 C06
        "no_identifier": sum(v == "no_identifier" for v in reasons.values()),  # C04 C07
    } == {"unknown_contact": 0, "no_consent": 2, "no_identifier": 2}
    assert r.members == r.audience + sum(r.excluded.values())
    assert r.identifiers == {"email": sum(PEOPLE[c][2] is not None for c in expected),
                             "phone": sum(PEOPLE[c][3] is not None for c in expected)}
    assert r.as_of == T1.to_pydatetime() and not r.incremental and r.removals_file is None
    header, rows = read_csv(out)
    order = sorted(expected)
    if fmt == "meta":
        assert header == ["email", "phone", "fn", "ln", "ct", "country", "zip"]
        assert rows == [meta_row(c) for c in order]
    elif fmt == "google":
        assert header == ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"]
        assert rows == [google_row(c) for c in order]
    else:
        assert header == ["contact_id", "email", "phone", "first_name", "last_name", "city",
                          "country"]
        assert rows == [[c] + [PEOPLE[c][0].get(k) or "" for k in header[1:]] for c in order]
    assert snapshot(shop, r.export_id) == expected
    logged = shop.table(EXPORTS).to_pandas().set_index("export_id").loc[r.export_id]
    assert logged.segment == "buyers" and logged.format == fmt and logged.file == str(out)
    assert json.loads(logged.counts)["excluded"] == r.excluded
    # the documented known value, in the file
    if fmt != "csv":
        assert rows[0][0] == "836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f"


@pytest.mark.parametrize("fmt", ["meta", "google"])
def test_incremental_additions_and_removals_are_exact(shop, tmp_path, fmt):
    out = tmp_path / "audience.csv"
    first = export_segment(shop, "buyers", fmt, out, changes_since_last=True)
    a1 = audience(members_at(T1))
    row_of = meta_row if fmt == "meta" else google_row
    # first incremental export: everything is an addition, no removals
    assert first.previous_export_id is None and first.added == len(a1) and first.removed == 0
    assert read_csv(out)[1] == [row_of(c) for c in sorted(a1)]
    assert first.removals_file == str(tmp_path / "audience.removals.csv")
    assert read_csv(first.removals_file) == (read_csv(out)[0], [])

    # membership changes (C03, C08 leave; C09, C10 join) and C02 withdraws consent
    refresh(shop, T2)
    changed = tmp_path / "changed.csv"
    changed.write_text(
        "contact_id,created_at,email,phone,first_name,last_name,city,country,ads_opt_in\n"
        "C02,2023-01-01T00:00:00Z,anna@example.pl,+48 512 345 678,Anna,Kowalska-Nowak,Łódź,PL,"
        "false\n",
        encoding="utf-8",
    )
    shop.load("contacts", changed)
    consent = {"C02": "false"}
    a2 = audience(members_at(T2), consent)
    second = export_segment(shop, "buyers", fmt, out, changes_since_last=True)
    assert second.previous_export_id == first.export_id
    assert a2 - a1 == {"C09", "C10"} and a1 - a2 == {"C02", "C03", "C08"}
    assert second.added == 2 and second.removed == 3 and second.removed_unwritable == 0
    assert read_csv(out)[1] == [row_of(c) for c in sorted(a2 - a1)]
    # C02's identifiers are still written to the removals (its consent went, not its data)
    assert read_csv(second.removals_file)[1] == [row_of(c) for c in sorted(a1 - a2)]
    assert snapshot(shop, second.export_id) == a2
    assert second.members == len(members_at(T2)) == second.audience + sum(second.excluded.values())

    # nothing changed since: an empty diff
    third = export_segment(shop, "buyers", fmt, out, changes_since_last=True)
    assert (third.added, third.removed, third.rows) == (0, 0, 0)
    assert read_csv(out)[1] == [] and read_csv(third.removals_file)[1] == []
    assert snapshot(shop, third.export_id) == a2


def test_incremental_csv_has_an_action_column_and_formats_keep_their_own_history(shop, tmp_path):
    out = tmp_path / "plain.csv"
    export_segment(shop, "buyers", "csv", out, changes_since_last=True,
                   fields=["contact_id", "email"])
    # a meta export in between does not move the csv baseline
    export_segment(shop, "buyers", "meta", tmp_path / "m.csv")
    refresh(shop, T2)
    r = export_segment(shop, "buyers", "csv", out, changes_since_last=True,
                       fields=["contact_id", "email"])
    a1, a2 = audience(members_at(T1)), audience(members_at(T2))
    header, rows = read_csv(out)
    assert header == ["action", "contact_id", "email"]
    assert rows == (
        [["add", c, PEOPLE[c][0]["email"]] for c in sorted(a2 - a1)]
        + [["remove", c, PEOPLE[c][0].get("email") or ""] for c in sorted(a1 - a2)]
    )
    assert r.rows == len(rows) and r.removals_file is None
    assert not (tmp_path / "plain.removals.csv").exists()


def test_as_of_exports_the_recorded_members_then(shop, tmp_path):
    refresh(shop, T2)
    r = export_segment(shop, "buyers", "google", tmp_path / "g.csv", as_of=T1.to_pydatetime())
    assert r.as_of == T1.to_pydatetime()
    assert snapshot(shop, r.export_id) == audience(members_at(T1))
    now = export_segment(shop, "buyers", "google", tmp_path / "g2.csv")
    assert now.as_of == T2.to_pydatetime()
    assert snapshot(shop, now.export_id) == audience(members_at(T2))
    with pytest.raises(SegmentumError, match="first refreshed"):
        export_segment(shop, "buyers", "google", tmp_path / "g3.csv", as_of="2024-01-01")


def test_consent_column_types_and_null_is_no(shop, tmp_path):
    # a canonical boolean column: only C01 and C03 have email_opt_in true
    r = export_segment(shop, "buyers", "csv", tmp_path / "e.csv", consent_field="email_opt_in")
    assert snapshot(shop, r.export_id) == {"C01", "C03"}
    assert r.excluded["no_consent"] == 6 and r.excluded["no_identifier"] == 0


def test_zip_attribute_is_hashed_for_meta_and_clear_for_google(make_ws, tmp_path):
    ws = make_ws(
        contacts=[{"contact_id": "Z1", "created_at": "2023-01-01T00:00:00Z",
                   "email": "a@example.com", "country": "GB", "ads_opt_in": "true",
                   "zip": " SW1A  1AA "}],
        orders=[{"order_id": "O1", "contact_id": "Z1", "ordered_at": "2024-03-15T00:00:00Z",
                 "total": 5, "status": "completed"}],
    )
    SegmentEngine(ws).create("z", RULE)
    SegmentEngine(ws).refresh(["z"], T1.to_pydatetime())
    export_segment(ws, "z", "meta", tmp_path / "m.csv")
    export_segment(ws, "z", "google", tmp_path / "g.csv")
    assert read_csv(tmp_path / "m.csv")[1][0][-2:] == [sha("gb"), sha("sw1a1aa")]
    assert read_csv(tmp_path / "g.csv")[1][0][-2:] == ["GB", "SW1A 1AA"]


def test_unknown_contact_in_a_segment_is_counted(shop, tmp_path):
    # a member whose contact row was deleted after the refresh
    shop.warehouse.delete_where("contacts", "contact_id", ["C01"])
    r = export_segment(shop, "buyers", "meta", tmp_path / "m.csv")
    assert r.excluded["unknown_contact"] == 1 and "C01" not in snapshot(shop, r.export_id)
    assert r.members == r.audience + sum(r.excluded.values())


# -- mistakes and failures ----------------------------------------------------------------------
def test_mistakes_are_clear(shop, tmp_path, make_ws):
    out = tmp_path / "x.csv"
    with pytest.raises(SegmentumError, match='Did you mean "buyers"'):
        export_segment(shop, "buyer", "meta", out)
    with pytest.raises(UsageError, match='Did you mean "google"'):
        export_segment(shop, "buyers", "gogle", out)
    with pytest.raises(UsageError, match='Did you mean "email"'):
        export_segment(shop, "buyers", "csv", out, fields=["contact_id", "emial"])
    with pytest.raises(UsageError, match="csv format only"):
        export_segment(shop, "buyers", "meta", out, fields=["email"])
    with pytest.raises(UsageError, match="does not exist"):
        export_segment(shop, "buyers", "meta", tmp_path / "missing" / "x.csv")
    with pytest.raises(WorkspaceError, match=r"no column 'ad_ok'.*--consent-field email_opt_in"):
        export_segment(shop, "buyers", "meta", out, consent_field="ad_ok")
    SegmentEngine(shop).create("fresh", RULE)
    with pytest.raises(SegmentumError, match="segmentum segment refresh fresh"):
        export_segment(shop, "fresh", "meta", out)
    bare = make_ws(contacts=[{"contact_id": "B1", "created_at": "2023-01-01T00:00:00Z"}],
                   orders=[{"order_id": "O1", "contact_id": "B1", "total": 5,
                            "ordered_at": "2024-03-15T00:00:00Z", "status": "completed"}])
    SegmentEngine(bare).create("b", RULE)
    SegmentEngine(bare).refresh(["b"], T1.to_pydatetime())
    with pytest.raises(WorkspaceError, match="has no column 'ads_opt_in'"):
        export_segment(bare, "b", "google", out)
    assert not out.exists()
    assert not shop.warehouse.has_table(EXPORTS) or shop.table(EXPORTS).count().execute() == 0


def test_a_failed_export_leaves_no_snapshot_and_no_file(shop, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "audience.csv"
    first = export_segment(shop, "buyers", "google", out, changes_since_last=True)
    before = out.read_bytes()
    refresh(shop, T2)
    members = len(members_at(T2))

    def interrupt(n):  # Ctrl-C while the removals are being written (inside the transaction)
        if n > members:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_segment(shop, "buyers", "google", out, changes_since_last=True, batch_rows=1,
                       progress=interrupt)
    exports = shop.table(EXPORTS).to_pandas()
    assert list(exports.export_id) == [first.export_id]
    assert set(shop.table(EXPORT_MEMBERS).to_pandas().export_id) == {first.export_id}
    assert out.read_bytes() == before
    assert read_csv(first.removals_file)[1] == []  # the first export's, untouched
    assert sorted(p.name for p in folder.iterdir()) == ["audience.csv", "audience.removals.csv"]
    # and the next export diffs against the last one that was written
    again = export_segment(shop, "buyers", "google", out, changes_since_last=True)
    assert again.previous_export_id == first.export_id and again.added == 2
