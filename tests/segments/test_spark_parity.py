"""Spark parity: every condition kind, segment refreshes and RFM give identical results on
DuckDB and on a real local Spark session, over the same data.

The golden world (``conftest.world``) is copied table by table into a Spark workspace; every
golden rule of ``test_compiler.CASES`` then runs through the same engine on both backends and
must select the same contacts (and the pandas oracle's). A generated retailer is exported from
DuckDB to Parquet and named in the Spark workspace's ``spark.tables`` (the way a cluster points
at its own files); RFM (quantile scores, with ties) and the planted personas' rules, which use
inline RFM, CLV scores and deals, must agree contact by contact.
"""

from __future__ import annotations


import pandas as pd
import pyarrow.parquet as pq
import pytest

from segmentum.analytics.clv import compute_clv
from segmentum.analytics.rfm import compute_rfm
from segmentum.cli.demo import LOAD_ORDER
from segmentum.cli.segment import persona_rules
from segmentum.segments import SegmentEngine
from segmentum.workspace import open_workspace
from tests.segments.test_compiler import CASES, Oracle, assert_one_plan_matches
from tests.workspaces import generated_workspace

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _ids(table) -> set[str]:
    return set(table.to_pandas().contact_id)


@pytest.fixture(scope="module")
def spark_world(world, spark_workspace):
    """The golden world's tables (canonical, scores, custom attributes) copied into Spark."""
    sw = spark_workspace("parity_world")
    for name in world.ws.tables():
        if not name.startswith("_"):
            sw.warehouse.replace_table(name, world.ws.to_arrow(name))
    return sw


@pytest.fixture(scope="module")
def oracle(world):
    return Oracle(world)


@pytest.mark.parametrize("rule,expected", CASES, ids=[c[0] for c in CASES])
def test_rule_selects_the_same_contacts_on_spark(world, spark_world, oracle, rule, expected):
    on_duckdb = _ids(SegmentEngine(world.ws).members(rule, as_of=world.as_of))
    on_spark = _ids(SegmentEngine(spark_world).members(rule, as_of=world.as_of))
    assert on_spark == on_duckdb == Oracle.members(expected(oracle).reindex(oracle.ids))


def test_all_rules_in_one_plan_on_spark(world, spark_world, oracle):
    assert_one_plan_matches(SegmentEngine(spark_world), oracle, world.as_of)


def test_property_keys_and_explain_on_spark(world, spark_world):
    de, se = SegmentEngine(world.ws), SegmentEngine(spark_world)
    for t in ("email_open", "search"):
        assert se.catalog.property_keys(t) == de.catalog.property_keys(t)
    rule = 'count(email_open where mail_client = "Gmail") >= 2 and sum(search.results) > 30'
    for cid in ("C01", "C02", "C05", "C12"):
        a = de.explain(rule, cid, world.as_of)
        b = se.explain(rule, cid, world.as_of)
        assert b.member == a.member
        assert [(ln.text, ln.result, ln.value) for ln in b.lines] == [
            (ln.text, ln.result, ln.value) for ln in a.lines
        ]


SAVED = {
    "openers": "count(email_open, last 30 days) >= 1",
    "buyers": "count(orders, last 90 days) >= 1",
    "openers-not-buyers": 'in_segment("openers") and not in_segment("buyers")',
}


def _refresh_story(ws, as_of):
    """Three refreshes 30 days apart; what each did, the members and the history."""
    eng = SegmentEngine(ws)
    for name, rule in SAVED.items():
        eng.create(name, rule, replace=True)
    steps = []
    for days in (60, 30, 0):
        at = as_of - pd.Timedelta(days=days)
        for r in eng.refresh(list(SAVED), at):
            steps.append((r.segment, days, r.size, r.entered, r.exited))
    again = [(r.segment, r.entered, r.exited, r.skipped is not None) for r in eng.refresh(None, as_of)]
    members = {n: _ids(eng.current_members(n)) for n in SAVED}
    history = {n: eng.history(n)[["size", "entered", "exited"]].values.tolist() for n in SAVED}
    return steps, again, members, history


def test_refresh_records_the_same_entries_and_exits_on_spark(tmp_path, world, spark_workspace):
    """Membership intervals on Spark: inserts, and the rewrite that closes intervals."""
    local = open_workspace(tmp_path / "copy.duckdb")
    sw = spark_workspace("parity_refresh")
    for name in world.ws.tables():
        if not name.startswith("_"):
            local.warehouse.replace_table(name, world.ws.to_arrow(name))
            sw.warehouse.replace_table(name, world.ws.to_arrow(name))
    on_duckdb = _refresh_story(local, world.as_of)
    on_spark = _refresh_story(sw, world.as_of)
    assert on_spark == on_duckdb
    steps, again, _, _ = on_duckdb
    assert any(exited for *_, exited in steps)  # the story has exits, not only entries
    assert all(skipped and not e and not x for _, e, x, skipped in again)
    local.close()


# -- a generated retailer, read by Spark from Parquet files -----------------------------------
@pytest.fixture(scope="module")
def retail(tmp_path_factory, spark_workspace):
    root = tmp_path_factory.mktemp("retail")
    ws, manifest, _ = generated_workspace(root, contacts=3_000, seed=3)
    # the canonical tables as Parquet files, as a Spark job on a cluster would leave them
    files = {}
    for kind in LOAD_ORDER:
        files[kind] = root / "lake" / kind / "part-0.parquet"
        files[kind].parent.mkdir(parents=True)
        pq.write_table(ws.to_arrow(kind), files[kind])
    sw = spark_workspace("parity_retail", tables={k: v.parent for k, v in files.items()})
    yield ws, sw, manifest
    ws.close()


def test_spark_reads_the_canonical_tables_from_parquet(retail):
    ws, sw, _ = retail
    for kind in LOAD_ORDER:
        assert sw.table(kind).count().to_pyarrow().as_py() == ws.table(kind).count().to_pyarrow().as_py()
    with pytest.raises(Exception, match="only reads it"):
        sw.warehouse.replace_table("orders", ws.to_arrow("orders"))


@pytest.mark.parametrize("levels", [3, 5])
def test_rfm_scores_are_identical_on_spark(retail, levels):
    ws, sw, manifest = retail
    a = compute_rfm(ws, as_of=manifest["as_of"], levels=levels)
    b = compute_rfm(sw, as_of=manifest["as_of"], levels=levels)
    # DuckDB reads the totals its loads kept; Spark groups the orders: the same table
    assert (a.model.metrics_source_, b.model.metrics_source_) == ("order totals", "orders")
    cols = ["contact_id", "recency_days", "frequency", "monetary", "r", "f", "m", "cell", "name",
            "r_label", "f_label", "m_label"]
    left = ws.to_pandas("rfm")[cols].sort_values("contact_id", ignore_index=True)
    right = sw.to_pandas("rfm")[cols].sort_values("contact_id", ignore_index=True)
    assert len(left) == 3_000
    pd.testing.assert_frame_equal(right, left, check_dtype=False)
    edges = getattr(a, "edges", None)
    if edges is not None:
        assert b.edges == edges


def test_planted_persona_rules_select_the_same_contacts_on_spark(retail):
    """RFM labels and cells, CLV scores, deals, trends, windows, purchases, properties."""
    ws, sw, manifest = retail
    compute_rfm(ws, as_of=manifest["as_of"])
    compute_rfm(sw, as_of=manifest["as_of"])
    compute_clv(ws, as_of=manifest["as_of"])
    sw.warehouse.replace_table("clv", ws.to_arrow("clv"))  # CLV is fitted in Python either way
    de, se = SegmentEngine(ws), SegmentEngine(sw)
    sizes = {}
    for label, rule in persona_rules(manifest).items():
        a = _ids(de.members(rule, as_of=manifest["as_of"]))
        b = _ids(se.members(rule, as_of=manifest["as_of"]))
        assert b == a, label
        sizes[label] = len(a)
    assert sum(sizes.values()) > 100, sizes  # the rules select real audiences


def test_tables_written_on_spark_are_found_again_after_a_restart(retail, spark_workspace):
    """With Spark's in-memory catalog a new session forgets tables; the workspace registers
    the ones it wrote from the database's folder again."""
    _, sw, manifest = retail
    compute_rfm(sw, as_of=manifest["as_of"])
    before = sw.to_pandas("rfm").sort_values("contact_id", ignore_index=True)
    sw.warehouse.session.catalog.dropTempView("rfm")
    sw.warehouse.session.sql("DROP TABLE IF EXISTS rfm")  # Parquet at a path: files stay
    assert "rfm" not in sw.warehouse.con.list_tables()
    again = spark_workspace("parity_retail", tables={})
    after = again.to_pandas("rfm").sort_values("contact_id", ignore_index=True)
    pd.testing.assert_frame_equal(after, before)
