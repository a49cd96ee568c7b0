"""Named models: a recompute never changes what saved segments mean behind their back.

A small shop of 60 buyers (one to six orders each) is scored by RFM in a real workspace; a
saved segment reads ``rfm.cell``. Recomputing with other levels is refused (naming the
segment and the ways forward), goes to another name (``rfm5.cell``) or replaces the model,
re-checking the segment and counting, against pandas, what its next refresh would change.
Saved segments record the models they were checked against, and a refresh refuses a
segment whose model changed meaning under it.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from segmentum.analytics.rfm import compute_rfm
from segmentum.errors import ModelConflictError, UsageError
from segmentum.segments import SegmentEngine
from segmentum.segments.models import (
    ModelRegistry,
    ModelSpec,
    check_model_name,
    readers,
    writing,
)
from tests.test_cli import run
from segmentum.workspace import open_workspace
from tests.workspaces import build_workspace

T = "2024-07-01"


def shop_rows() -> dict[str, list[dict]]:
    contacts, orders = [], []
    for i in range(60):
        cid = f"C{i:02d}"
        contacts.append({"contact_id": cid, "created_at": "2023-01-01T00:00:00Z"})
        for j in range(1 + i % 6):
            day = pd.Timestamp("2024-06-30", tz="UTC") - pd.Timedelta(days=(i * 7 + j * 29) % 360)
            orders.append(
                {
                    "order_id": f"O{cid}{j}",
                    "contact_id": cid,
                    "ordered_at": day.isoformat(),
                    "total": 10.0 + (i * 13 + j * 7) % 90,
                    "status": "completed",
                }
            )
    return {"contacts": contacts, "orders": orders}


@pytest.fixture(scope="module")
def shop_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "shop.duckdb"
    ws = build_workspace(path, **shop_rows())
    compute_rfm(ws, as_of=T)
    engine = SegmentEngine(ws)
    engine.create("best", 'rfm.cell = "R3F3M3"')
    engine.create("best-or-new", 'in_segment("best") or rfm.name = "New"')
    engine.refresh(as_of=T)
    ws.close()
    return path


@pytest.fixture
def shop(shop_file, tmp_path):
    """A copy of the scored shop with two saved segments reading rfm, refreshed as of T."""
    path = tmp_path / "shop.duckdb"
    shutil.copy(shop_file, path)
    ws = open_workspace(path)
    yield ws
    ws.close()


def members(ws, table: str, cell: str) -> set[str]:
    df = ws.table(table).to_pandas()
    return set(df.loc[df.cell == cell, "contact_id"])


def test_other_levels_are_refused_while_segments_read_the_model(shop):
    before = ws_rows(shop)
    with pytest.raises(ModelConflictError) as info:
        compute_rfm(shop, as_of=T, levels=5)
    err = info.value
    assert err.details["segments"] == ["best", "best-or-new"]  # the second through in_segment
    assert err.details["changes"]["levels"] == {"from": 3, "to": 5}
    assert '"best", "best-or-new"' in err.message and "levels 3 -> 5" in err.message
    assert "--name rfm5" in err.hint and "--replace" in err.hint
    assert ws_rows(shop) == before  # nothing written


def ws_rows(ws) -> list[tuple]:
    return sorted(ws.table("rfm").select("contact_id", "cell", "levels").to_pyarrow().to_pylist(),
                  key=lambda r: r["contact_id"])


def test_the_same_settings_refresh_in_place_as_of_another_date(shop):
    res = compute_rfm(shop, as_of="2024-07-15")
    assert res.written.status == "refreshed"
    assert ModelRegistry(shop).get("rfm").as_of.isoformat().startswith("2024-07-15")
    # an as-of time is data, not meaning: the segments still refresh
    assert [r.segment for r in SegmentEngine(shop).refresh(as_of="2024-07-15")] == [
        "best", "best-or-new"]


def test_another_name_writes_another_model_rules_read_by_that_name(shop):
    res = compute_rfm(shop, as_of=T, levels=5, name="rfm5")
    assert res.written.status == "new" and res.table == "rfm5" and res.levels == 5
    engine = SegmentEngine(shop)
    assert engine.count('rfm5.cell = "R5F5M5"', as_of=T) == len(members(shop, "rfm5", "R5F5M5"))
    assert engine.count('rfm.cell = "R3F3M3"', as_of=T) == len(members(shop, "rfm", "R3F3M3"))
    assert set(ws_rows(shop)[0]) and {r["levels"] for r in ws_rows(shop)} == {3}  # untouched
    engine.create("best5", 'rfm5.cell = "R5F5M5"')
    assert json.loads(engine.get("best5").models) == {"rfm5": res.written.spec.digest}


def test_replace_rechecks_the_segments_and_counts_what_their_refresh_would_change(shop):
    old = members(shop, "rfm", "R3F3M3")
    res = compute_rfm(shop, as_of=T, levels=5, replace=True)
    assert res.written.status == "replaced"
    new = members(shop, "rfm", "R3F3M3")  # the same cell text, now in a 5-level grid
    impact = {i.segment: i for i in res.written.impact}
    best = impact["best"]
    assert best.checks and best.members == len(old) and best.would_be == len(new)
    assert best.entered == len(new - old) and best.exited == len(old - new)
    assert best.entered + best.exited > 0
    # the segments were pinned to the new model: the next refresh records exactly that
    r = {x.segment: x for x in SegmentEngine(shop).refresh(as_of="2024-07-02")}
    assert (r["best"].entered, r["best"].exited, r["best"].size) == (
        best.entered, best.exited, best.would_be)


def test_a_model_nobody_reads_changes_freely(shop):
    compute_rfm(shop, as_of=T, levels=5, name="rfm5")
    res = compute_rfm(shop, as_of=T, levels=3, name="rfm5")
    assert res.written.status == "changed" and res.written.readers == []


def test_a_refresh_refuses_a_segment_whose_model_changed_meaning_under_it(shop):
    # another process records rfm with other settings (as a tool bypassing compute_rfm would)
    spec = ModelSpec("rfm", "rfm", {"levels": 5, "monetary": "sum"})
    ModelRegistry(shop).record(spec, pd.Timestamp(T, tz="UTC"))
    with pytest.raises(ModelConflictError) as info:
        SegmentEngine(shop).refresh(as_of="2024-07-02")
    assert info.value.details["segments"] == ["best", "best-or-new"]
    assert "levels 5" in info.value.message
    # re-saving a segment accepts the model as it is now
    engine = SegmentEngine(shop)
    for name, rule in (("best", 'rfm.cell = "R3F3M3"'),
                       ("best-or-new", 'in_segment("best") or rfm.name = "New"')):
        engine.create(name, rule, replace=True)
    assert len(SegmentEngine(shop).refresh(as_of="2024-07-02")) == 2


def test_segments_saved_before_pins_are_pinned_at_their_next_refresh(shop):
    wh = shop.warehouse
    wh.raw.execute("ALTER TABLE segments DROP COLUMN models")  # a workspace from before
    engine = SegmentEngine(shop)
    assert engine.get("best").pins is None
    engine.refresh(as_of="2024-07-02")
    digest = ModelRegistry(shop).get("rfm").digest
    assert SegmentEngine(shop).get("best").pins == {"rfm": digest}


def test_an_rfm_table_from_before_the_registry_needs_replace_while_read(shop):
    shop.warehouse.raw.execute("DROP TABLE models")
    with pytest.raises(ModelConflictError, match="never recorded"):
        compute_rfm(shop, as_of=T)
    assert compute_rfm(shop, as_of=T, replace=True).written.status == "replaced"


def test_readers_follow_in_segment(shop):
    assert readers(shop, "rfm") == ["best", "best-or-new"]
    assert readers(shop, "clv") == []


@pytest.mark.parametrize(
    "name,kind,needle",
    [
        ("Bad-Name", "rfm", "lower-case letters"),
        ("clv", "rfm", "default clv model"),
        ("deal", "rfm", "rules already use"),
        ("orders", "rfm", "rules already use"),
        ("rfm", "clv", "default rfm model"),
    ],
)
def test_model_names(shop, name, kind, needle):
    with pytest.raises(UsageError, match=needle):
        check_model_name(shop, name, kind)


def test_a_name_of_another_kind_or_of_a_table_is_refused(shop):
    compute_rfm(shop, as_of=T, name="scores")
    with pytest.raises(UsageError, match="is a rfm model"):
        check_model_name(shop, "scores", "clv")
    shop.warehouse.replace_table("mine", pd.DataFrame({"a": [1]}))
    with pytest.raises(UsageError, match="already has a table mine"):
        check_model_name(shop, "mine", "rfm")


def test_a_failed_computation_records_nothing(shop):
    spec = ModelSpec("rfm", "rfm9", {"levels": 3})
    with pytest.raises(RuntimeError), writing(shop, spec, pd.Timestamp(T, tz="UTC")):
        shop.warehouse.replace_table("rfm9", pd.DataFrame({"contact_id": ["C00"]}))
        raise RuntimeError("boom")
    assert ModelRegistry(shop).get("rfm9") is None and not shop.warehouse.has_table("rfm9")


def test_cli_refuses_and_names_the_way_forward(shop, tmp_path):
    path = shop.location
    shop.close()
    r = run("-w", str(path), "rfm", "--as-of", T, "--levels", "5", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert '"best", "best-or-new"' in r.stderr and "--name rfm5" in r.stderr
    r = run("-w", str(path), "rfm", "--as-of", T, "--levels", "5", "--name", "rfm5", "--json",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"]["status"] == "new"
    r = run("-w", str(path), "rfm", "--as-of", T, "--levels", "5", "--replace", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Saved segments reading rfm" in r.stdout and "best-or-new" in r.stdout
    r = run("-w", str(path), "models", "--json", cwd=tmp_path)
    rows = {m["name"]: m for m in json.loads(r.stdout)["models"]}
    assert rows["rfm"]["meaning"]["levels"] == 5 and rows["rfm"]["readers"] == ["best",
                                                                                 "best-or-new"]
    assert rows["rfm5"]["readers"] == []


def test_clv_is_a_model_too_its_horizon_is_meaning_and_its_as_of_data(shop):
    from segmentum.analytics.clv import compute_clv

    compute_clv(shop, as_of=T)
    SegmentEngine(shop).create("likely", "clv.expected_purchases > 1")
    assert compute_clv(shop, as_of="2024-07-08").written.status == "refreshed"
    with pytest.raises(ModelConflictError, match="horizon days 365.0 -> 90.0") as info:
        compute_clv(shop, as_of=T, horizon_days=90)
    assert info.value.details["segments"] == ["likely"] and "--name clv90" in info.value.hint
    res = compute_clv(shop, as_of=T, horizon_days=90, name="clv90")
    # refitted without settings: the model's own (90 days), not the defaults
    assert compute_clv(shop, as_of="2024-07-08", name="clv90").horizon_days == 90
    assert res.table == "clv90" and shop.warehouse.has_table("clv90_models")
    assert set(shop.table("clv90").horizon_days.to_pandas()) == {90.0}
    assert set(shop.table("clv").horizon_days.to_pandas()) == {365.0}
    count = SegmentEngine(shop).count("clv90.expected_purchases > 0.1", as_of=T)
    assert count == int((shop.table("clv90").to_pandas().expected_purchases > 0.1).sum())


def test_without_settings_a_model_is_refreshed_with_its_own(shop):
    compute_rfm(shop, as_of=T, levels=5, monetary="mean", replace=True)
    res = compute_rfm(shop, as_of="2024-07-10")  # e.g. the service's scheduled recompute
    assert res.written.status == "refreshed" and res.levels == 5 and res.monetary == "mean"
    fixed = {"levels": 3, "recency": [30, 90], "monetary": [50.5, 200]}
    compute_rfm(shop, as_of=T, thresholds=fixed, replace=True)
    res = compute_rfm(shop, as_of="2024-07-10")
    assert res.written.status == "refreshed"
    assert res.edges["recency"] == [30, 90] and res.edges["monetary"] == [50.5, 200.0]
    assert compute_rfm(shop, as_of=T, levels=3, replace=True).written.status == "replaced"


def test_replace_says_which_segments_no_longer_check(shop):
    # an rfm table from before the registry, with a column of its own a rule reads
    old = shop.table("rfm").to_pandas().assign(custom=1)
    wh = shop.warehouse
    wh.raw.execute("DROP TABLE models")
    wh.raw.execute("DROP VIEW rfm")
    wh.replace_table("rfm", old)
    SegmentEngine(shop).create("custom", "rfm.custom = 1 and rfm.levels = 3")
    res = compute_rfm(shop, as_of=T, replace=True)
    impact = {i.segment: i for i in res.written.impact}
    assert impact["best"].checks
    assert not impact["custom"].checks and 'unknown field "rfm.custom"' in impact["custom"].error
    assert SegmentEngine(shop).get("custom").pins == {"rfm": None}  # not re-pinned
