"""RFM against an independent plain-pandas computation on small hand-made and random data.

The reference here re-derives every number from the raw orders with pandas: metrics with
groupby, edges with a loop over ``value_counts``, scores with ``pandas.cut``, names with
the cell patterns read as regular expressions, summaries with groupby and crosstab.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import ROUND_HALF_UP, Decimal

import ibis
import numpy as np
import pandas as pd
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import yaml
from typer.testing import CliRunner

from segmentum.analytics.rfm import (
    NO_ORDERS,
    NOT_YET_A_CONTACT,
    OTHER,
    RFM,
    RFM_COLUMNS,
    compute_rfm,
    load_segment_map,
    load_thresholds,
    quantile_edges,
    rfm_migration,
    summarise,
)
from segmentum.errors import NotFittedError, UsageError, WorkspaceError

UTC = dt.UTC
AS_OF = dt.datetime(2024, 7, 1, tzinfo=UTC)
AXES = ("recency", "frequency", "monetary")


# -- small workspaces: `ws_builder(path, contacts=[...], orders=[...])` from conftest.py ------
def random_data(seed: int, n_contacts: int = 160, skew: bool = True):
    """Contacts and orders with many ties, a skewed order count, returns and cancellations."""
    rng = np.random.default_rng(seed)
    contacts = [{"contact_id": f"c{i:03d}", "created_at": "2022-01-01"} for i in range(n_contacts)]
    orders = []
    for i in range(n_contacts - 15):  # the last 15 never order
        n = int(rng.choice([1, 1, 1, 1, 2, 2, 3, 5, 8])) if skew else int(rng.integers(1, 6))
        for k in range(n):
            day = int(rng.choice([3, 10, 10, 40, 100, 100, 200, 400]))
            orders.append(
                {
                    "order_id": f"o{i}_{k}",
                    "contact_id": f"c{i:03d}",
                    "ordered_at": AS_OF - dt.timedelta(days=day, hours=int(rng.integers(0, 20))),
                    "total": float(rng.choice([10, 25.5, 25.5, 40, 99.99, 150, 0.01])),
                    "status": str(rng.choice(["completed"] * 8 + ["returned", "cancelled", None])),
                }
            )
    orders.append(  # after the as-of date: never counts
        {
            "order_id": "late",
            "contact_id": "c000",
            "ordered_at": AS_OF + dt.timedelta(hours=1),
            "total": 1000.0,
            "status": "completed",
        }
    )
    return contacts, orders


# -- the independent reference ---------------------------------------------------------------
def ref_metrics(
    contacts: list[dict], orders: list[dict], as_of: dt.datetime, monetary: str
) -> pd.DataFrame:
    c = pd.DataFrame(contacts)
    o = pd.DataFrame(orders)
    c["created_at"] = pd.to_datetime(c["created_at"], utc=True)
    o["ordered_at"] = pd.to_datetime(o["ordered_at"], utc=True)
    o["total"] = o["total"].map(lambda v: Decimal(str(v)))
    ts = pd.Timestamp(as_of)
    ok = o[(o.ordered_at < ts) & (o.status.isna() | (o.status == "completed"))]
    g = ok.groupby("contact_id")
    per = pd.DataFrame(
        {
            "last": g.ordered_at.max(),
            "frequency": g.size(),
            "revenue": g.total.apply(lambda s: sum(s, Decimal(0))),
        }
    )
    per["recency_days"] = [(ts.date() - last.date()).days for last in per["last"]]
    if monetary == "sum":
        per["monetary"] = per["revenue"]
    else:
        per["monetary"] = [
            (rev / n).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            for rev, n in zip(per.revenue, per.frequency, strict=True)
        ]
    ids = set(c[c.created_at < ts].contact_id) | set(per.index)
    out = per.reindex(sorted(ids))
    out["frequency"] = out["frequency"].fillna(0).astype(int)
    out["revenue"] = [float(v) if isinstance(v, Decimal) else 0.0 for v in out["revenue"]]
    none = 0.0 if monetary == "sum" else np.nan
    out["monetary"] = [float(v) if isinstance(v, Decimal) else none for v in out["monetary"]]
    return out.rename_axis("contact_id")[["recency_days", "frequency", "monetary", "revenue"]]


def ref_edges(values: pd.Series, levels: int) -> list:
    """The documented rule, written as a plain loop over the sorted value counts."""
    vc = values.value_counts().sort_index()
    distinct, cum, n = list(vc.index), list(vc.cumsum()), int(vc.sum())
    edges, pos, done = [], 0, 0  # pos: first index still free; done: contacts binned
    for k in range(1, levels):
        bins_left = levels - k + 1
        last_allowed = min(max(pos, len(distinct) - 1 - (levels - k)), len(distinct) - 2)
        if pos > last_allowed:
            edges.append(distinct[-1])
            pos, done = len(distinct), n
            continue
        target = done + (n - done) / bins_left
        best = None
        for j in range(pos, last_allowed + 1):
            if best is None or abs(cum[j] - target) < abs(cum[best] - target):
                best = j
        edges.append(distinct[best])
        pos, done = best + 1, cum[best]
    return edges


def ref_scores(ref: pd.DataFrame, edges: dict, levels: int) -> pd.DataFrame:
    out = ref.copy()
    buyers = out.frequency > 0
    for axis, col, score in (
        ("recency", "recency_days", "r"),
        ("frequency", "frequency", "f"),
        ("monetary", "monetary", "m"),
    ):
        bins = pd.cut(
            out.loc[buyers, col], [-np.inf, *edges[axis], np.inf], right=True, labels=False
        )
        bins = bins.astype(int) + 1
        out.loc[buyers, score] = (levels + 1 - bins) if axis == "recency" else bins
    out["cell"] = [
        f"R{int(r)}F{int(f)}M{int(m)}" if b else None
        for r, f, m, b in zip(out.r, out.f, out.m, buyers, strict=True)
    ]
    return out


def ref_name(cell: str | None, segments: list[dict]) -> str:
    if cell is None or pd.isna(cell):
        return NO_ORDERS
    for seg in segments:
        if any(re.fullmatch(p.upper().replace("*", r"\d"), cell) for p in seg["cells"]):
            return seg["name"]
    return OTHER


def default_map(levels: int) -> dict:
    from importlib import resources

    text = resources.files("segmentum.analytics").joinpath("rfm_segments.yaml").read_text()
    return yaml.safe_load(text)["levels"][levels]


def nulls(values) -> list:
    """A column as a list with every missing value as None."""
    return [None if pd.isna(v) else v for v in values]


def as_frame(ws) -> pd.DataFrame:
    return ws.table("rfm").to_pandas().set_index("contact_id").sort_index()


# -- the whole pipeline against the reference --------------------------------------------------
@pytest.fixture(scope="module")
def rand_ws(tmp_path_factory, ws_builder):
    contacts, orders = random_data(7)
    ws = ws_builder(tmp_path_factory.mktemp("rand") / "ws.duckdb", contacts=contacts, orders=orders)
    yield ws, contacts, orders
    ws.close()


@pytest.mark.parametrize(("levels", "monetary"), [(3, "sum"), (5, "mean")])
def test_every_column_matches_pandas(rand_ws, levels, monetary):
    ws, contacts, orders = rand_ws
    res = compute_rfm(ws, as_of=AS_OF, levels=levels, monetary=monetary)
    got = as_frame(ws)
    ref = ref_metrics(contacts, orders, AS_OF, monetary)

    assert list(ws.table("rfm").columns) == list(RFM_COLUMNS)
    assert list(got.index) == list(ref.index)  # one row per contact, no-order contacts too
    pd.testing.assert_series_equal(got.frequency, ref.frequency, check_dtype=False)
    pd.testing.assert_series_equal(got.recency_days, ref.recency_days, check_dtype=False)
    assert np.array_equal(
        got.monetary.to_numpy(float), ref.monetary.to_numpy(float), equal_nan=True
    )
    assert np.array_equal(got.revenue.to_numpy(float), ref.revenue.to_numpy(float))

    buyers = ref[ref.frequency > 0]
    edges = {
        "recency": ref_edges(buyers.recency_days.astype(int), levels),
        "frequency": ref_edges(buyers.frequency, levels),
        "monetary": ref_edges(buyers.monetary, levels),
    }
    assert res.edges == edges
    assert res.edges_source == dict.fromkeys(AXES, "quantile")
    ref = ref_scores(ref, edges, levels)
    for col in ("r", "f", "m"):
        assert np.array_equal(got[col].to_numpy(float), ref[col].to_numpy(float), equal_nan=True), (
            col
        )
    assert nulls(got.cell) == nulls(ref.cell)

    segmap = default_map(levels)
    assert got.name.tolist() == [ref_name(c, segmap["segments"]) for c in ref.cell]
    for axis, col, score in (
        ("recency", "r_label", "r"),
        ("frequency", "f_label", "f"),
        ("monetary", "m_label", "m"),
    ):
        want = [None if pd.isna(s) else segmap["labels"][axis][int(s)] for s in ref[score]]
        assert nulls(got[col]) == want
    assert (got.levels == levels).all()
    assert (got.as_of == pd.Timestamp(AS_OF)).all()

    # equal values always share a score
    b = got[got.frequency > 0]
    for col, score in (("recency_days", "r"), ("frequency", "f"), ("monetary", "m")):
        assert (b.groupby(col)[score].nunique() == 1).all()

    # summaries: per cell and per name, from pandas groupby on the reference
    ref["name"] = got.name
    total_rev = ref.revenue.sum()
    cells = res.cells.set_index("cell")
    assert len(cells) == levels**3
    by_cell = ref[ref.cell.notna()].groupby("cell")
    for cell, grp in by_cell:
        row = cells.loc[cell]
        assert row.contacts == len(grp)
        assert row.share == pytest.approx(len(grp) / len(ref))
        assert row.revenue_share == pytest.approx(grp.revenue.sum() / total_rev)
        assert row.mean_recency_days == pytest.approx(grp.recency_days.mean())
        assert row.mean_frequency == pytest.approx(grp.frequency.mean())
        assert row.mean_monetary == pytest.approx(grp.monetary.mean())
    assert cells.contacts.sum() == (ref.frequency > 0).sum()
    names = res.names.set_index("name")
    for name, grp in ref.groupby("name"):
        row = names.loc[name]
        assert row.contacts == len(grp)
        assert row.share == pytest.approx(len(grp) / len(ref))
        assert row.revenue_share == pytest.approx(grp.revenue.sum() / total_rev)
        if name != NO_ORDERS:
            assert row.mean_r == pytest.approx(grp.r.mean())
            assert row.mean_m == pytest.approx(grp.m.mean())
            assert row.mean_monetary == pytest.approx(grp.monetary.mean())
    assert names.contacts.sum() == len(ref)
    assert res.contacts == len(ref) and res.contacts_with_orders == (ref.frequency > 0).sum()
    # bins report the sizes that scoring produced
    for axis, score in (("recency", "r"), ("frequency", "f"), ("monetary", "m")):
        bins = res.bins[res.bins.axis == axis].set_index("score").contacts
        assert bins.to_dict() == {s: int((got[score] == s).sum()) for s in range(1, levels + 1)}


def test_returns_cancellations_as_of_and_no_orders(tmp_path, ws_builder):
    """Hand-checked numbers: what counts and what does not."""
    contacts = [
        {"contact_id": "a", "created_at": "2024-01-01"},
        {"contact_id": "b", "created_at": "2024-01-01"},
        {"contact_id": "never", "created_at": "2024-01-01"},
        {"contact_id": "only_returned", "created_at": "2024-01-01"},
        {"contact_id": "later", "created_at": "2024-08-01"},  # not a contact yet on AS_OF
        {"contact_id": "late_but_bought", "created_at": "2024-08-01"},
    ]

    def o(i, c, when, total, status="completed"):
        return {
            "order_id": i,
            "contact_id": c,
            "ordered_at": when,
            "total": total,
            "status": status,
        }

    orders = [
        o("a1", "a", "2024-06-30T23:59:00Z", 100.00),  # 1 day before AS_OF (calendar days)
        o("a2", "a", "2024-05-01T08:00:00Z", 50.00, "returned"),
        o("a3", "a", "2024-04-01T08:00:00Z", 20.01, None),  # no status = completed
        o("a4", "a", "2024-07-01T00:00:00Z", 999.00),  # at AS_OF: not before it
        o("b1", "b", "2024-06-01T12:00:00Z", 30.00, "cancelled"),
        o("b2", "b", "2024-03-01T12:00:00Z", 30.00),
        o("r1", "only_returned", "2024-06-01T12:00:00Z", 75.00, "returned"),
        o("l1", "late_but_bought", "2024-06-15T12:00:00Z", 10.00),
    ]
    ws = ws_builder(tmp_path / "ws.duckdb", contacts=contacts, orders=orders)
    compute_rfm(ws, as_of="2024-07-01")
    got = as_frame(ws)
    assert set(got.index) == {"a", "b", "never", "only_returned", "late_but_bought"}
    assert got.loc["a", ["recency_days", "frequency", "monetary", "revenue"]].tolist() == [
        1,
        2,
        120.01,
        120.01,
    ]
    assert got.loc["b", ["recency_days", "frequency", "monetary"]].tolist() == [122, 1, 30.0]
    assert got.loc["late_but_bought", "frequency"] == 1
    for who in ("never", "only_returned"):
        row = got.loc[who]
        assert row["name"] == NO_ORDERS and row["frequency"] == 0 and row["monetary"] == 0
        assert pd.isna(row["r"]) and pd.isna(row["cell"]) and pd.isna(row["r_label"])
        assert pd.isna(row["recency_days"])

    RFM(monetary="mean").fit(ws, as_of="2024-07-01")  # mean rounds half away from zero
    mean = RFM(monetary="mean").fit_transform(ws, as_of="2024-07-01").to_pandas()
    mean = mean.set_index("contact_id")
    assert mean.loc["a", "monetary"] == 60.01  # 120.01 / 2 = 60.005 -> 60.01
    assert pd.isna(mean.loc["never", "monetary"]) and mean.loc["a", "revenue"] == 120.01

    # an earlier as-of date sees less
    compute_rfm(ws, as_of=dt.date(2024, 4, 2))
    early = as_frame(ws)
    assert early.loc["a", ["recency_days", "frequency", "monetary"]].tolist() == [1, 1, 20.01]
    assert "late_but_bought" not in early.index  # neither a contact nor a buyer yet
    mig = rfm_migration(ws, dt.date(2024, 4, 2), "2024-07-01", by="name")
    assert mig.matrix.loc[NOT_YET_A_CONTACT].sum() == 1  # late_but_bought
    assert mig.matrix.loc[NO_ORDERS, NO_ORDERS] == 2  # never, only_returned
    ws.close()


@pytest.mark.parametrize(
    ("levels", "monetary", "segment_map"),
    [
        (3, "sum", None),
        (5, "mean", None),
        (3, "sum", {"segments": [{"name": "Best", "cells": ["R3F[23]M*"]}]}),  # with "Other"
    ],
)
def test_summaries_match_a_groupby_of_the_written_table(rand_ws, levels, monetary, segment_map):
    """compute_rfm summarises from integer scores; the same numbers come from grouping the
    `rfm` table it wrote by cell and name (summarise), and from pandas on that table."""
    ws = rand_ws[0]
    res = compute_rfm(ws, as_of=AS_OF, levels=levels, monetary=monetary, segment_map=segment_map)
    table = ws.table("rfm")
    cells, names = summarise(table, load_segment_map(levels, segment_map))
    pd.testing.assert_frame_equal(res.cells, cells, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(res.names, names, check_exact=False, rtol=1e-12)

    got = table.to_pandas()
    by_name = got.groupby("name").agg(
        contacts=("contact_id", "size"), revenue=("revenue", "sum"), freq=("frequency", "mean")
    )
    named = res.names.set_index("name")
    assert set(named.index[named.contacts > 0]) == set(by_name.index)
    for name, row in by_name.iterrows():
        assert named.loc[name, "contacts"] == row.contacts
        assert named.loc[name, "revenue"] == pytest.approx(row.revenue, rel=1e-12)
        assert named.loc[name, "mean_frequency"] == pytest.approx(row.freq, rel=1e-12)
    by_cell = got[got.cell.notna()].groupby("cell").size()
    per_cell = res.cells.set_index("cell").contacts
    assert per_cell[per_cell > 0].sort_index().to_dict() == by_cell.sort_index().to_dict()
    assert per_cell.sum() == int(got.cell.notna().sum())


def test_large_totals_stay_exact_to_the_cent(tmp_path, ws_builder):
    """Money goes through whole cents: sums of big totals are exact, means round half up."""
    contacts = [{"contact_id": c, "created_at": "2024-01-01"} for c in ("big", "small", "mid")]
    totals = {"big": [12_345_678_901.23, 87_654_321_098.77, 0.01], "small": [0.01], "mid": [5.0]}
    orders = [
        {
            "order_id": f"{c}{i}",
            "contact_id": c,
            "ordered_at": "2024-06-01T12:00:00Z",
            "total": t,
            "status": "completed",
        }
        for c, ts in totals.items()
        for i, t in enumerate(ts)
    ]
    ws = ws_builder(tmp_path / "ws.duckdb", contacts=contacts, orders=orders)
    compute_rfm(ws, as_of=AS_OF)
    got = as_frame(ws)
    want = {c: sum((Decimal(str(t)) for t in ts), Decimal(0)) for c, ts in totals.items()}
    for c, total in want.items():
        assert got.loc[c, "revenue"] == float(total) and got.loc[c, "monetary"] == float(total)
    assert want["big"] == Decimal("100000000000.01")
    mean = RFM(monetary="mean").fit_transform(ws, as_of=AS_OF).to_pandas().set_index("contact_id")
    three = (want["big"] / 3).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert mean.loc["big", "monetary"] == float(three) == 33_333_333_333.34
    ws.close()


def test_rfm_table_is_replaced_whole_or_not_at_all(rand_ws):
    ws = rand_ws[0]

    def tables() -> set[str]:  # Ibis' in-memory lookups (ibis_*) come and go with Python
        return {t for t in ws.tables() if not t.startswith("ibis_")}

    # a workspace from before the view: its `rfm` table gives way to the view
    ws.warehouse.raw.execute("DROP VIEW IF EXISTS rfm")
    ws.warehouse.raw.execute("CREATE OR REPLACE TABLE rfm AS SELECT 1 AS contact_id")
    compute_rfm(ws, as_of=AS_OF)
    before = as_frame(ws)
    names = tables()
    compute_rfm(ws, as_of=AS_OF)  # a second run replaces the table, leaving nothing behind
    pd.testing.assert_frame_equal(as_frame(ws), before)
    assert tables() == names
    # stored as a narrow table of scores by cell code and a lookup of the map's cells, with
    # `rfm` the view joining them; contact ids uncompressed (a compression costs more to
    # choose than the whole RFM); Ibis reads the view like any table
    kinds = dict(
        ws.warehouse.raw.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_name IN ('rfm', '_rfm_rows', '_rfm_cells')"
        ).fetchall()
    )
    assert kinds == {"rfm": "VIEW", "_rfm_rows": "BASE TABLE", "_rfm_cells": "BASE TABLE"}
    assert ws.table("_rfm_rows").columns == (
        "contact_id", "recency_days", "frequency", "revenue", "code"
    )
    ws.warehouse.raw.execute("CHECKPOINT")  # small tables are compressed when checkpointed
    stored = ws.warehouse.raw.execute(
        "SELECT DISTINCT compression FROM pragma_storage_info('_rfm_rows') "
        "WHERE column_name = 'contact_id' AND segment_type = 'VARCHAR'"
    ).fetchall()
    assert stored == [("Uncompressed",)]
    assert ws.table("_rfm_cells").count().execute() == 28  # 27 cells and "No orders"
    assert ws.table("rfm").schema()["name"].is_string()
    assert before["name"].map(type).eq(str).all()
    # a part that fails half-way leaves the previous view and its tables as they were
    model = RFM().fit(ws, as_of=AS_OF)
    parts, view = model.stored_parts()
    rows = parts["rows"]
    parts["rows"] = rows.mutate(
        code=ibis.ifelse(rows.frequency > 2, ibis.literal("x"), "1").cast("int16")
    )
    with pytest.raises(Exception, match="(?i)conver|cast"):
        ws.warehouse.rewrite_view("rfm", parts, view)
    model.release()
    pd.testing.assert_frame_equal(as_frame(ws), before)
    assert tables() == names
    # a write that fails half-way leaves the previous table as it was
    t = ws.table("rfm")
    broken = t.mutate(levels=ibis.ifelse(t.frequency > 2, ibis.literal("x"), "3").cast("int64"))
    with pytest.raises(Exception, match="(?i)conver|cast"):
        ws.warehouse.rewrite_table("rfm", broken)
    pd.testing.assert_frame_equal(as_frame(ws), before)
    assert tables() == names


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(["rfm.cell = {v}", "rfm.name != {v}", "rfm.f_label contains {v}",
                     'rfm.name in ({v}, "Champions")', "rfm.m_label starts with {v}"]),
    st.one_of(st.sampled_from(["R1F3M3", "Champions", "No orders", "Can't Lose Them", "loyal",
                               "Hig", "R9F9M9", "'; DROP TABLE rfm; --", "", "é"]),
              st.text(max_size=12)),
)
def test_rules_on_the_stored_text_columns_compare_any_value(rand_ws, template, value):
    """cell, name and labels come from the view's lookup of the map's cells: a rule compares
    them with any text - one that is not among their values too - and gets what pandas gets
    on the same table."""
    from segmentum.segments import SegmentEngine, SegmentError
    from segmentum.segments.lexer import quote_string

    ws = rand_ws[0]
    if not ws.warehouse.has_table("rfm"):
        compute_rfm(ws, as_of=AS_OF)
    rule = template.replace("{v}", quote_string(value))
    try:
        got = SegmentEngine(ws).count(rule, as_of=AS_OF)
    except SegmentError:  # a clean refusal (the NUL character): never a database error
        assert "\x00" in value
        return
    r = as_frame(ws)
    col = template.split()[0].split(".")[1]
    values = r[col].astype(object)
    expected = {
        "rfm.cell = {v}": values == value,
        "rfm.name != {v}": values.notna() & (values != value),
        "rfm.f_label contains {v}": values.map(lambda x: isinstance(x, str) and value in x),
        'rfm.name in ({v}, "Champions")': values.isin([value, "Champions"]),
        "rfm.m_label starts with {v}": values.map(
            lambda x: isinstance(x, str) and x.startswith(value)
        ),
    }[template]
    assert got == int(expected.sum())


# -- the quantile rule ------------------------------------------------------------------------
def _bins(values, edges):
    return (
        pd.cut(pd.Series(values), [-np.inf, *edges, np.inf], right=True, labels=False)
        .value_counts()
        .sort_index()
    )


def test_quantile_edges_without_ties_are_equal_bins():
    values = np.arange(1, 10)
    edges = quantile_edges(values, np.ones(9), 3)
    assert edges == [3, 6]
    assert _bins(values, edges).tolist() == [3, 3, 3]
    assert (
        pd.qcut(values, 3, labels=False).tolist()
        == pd.cut(values, [-np.inf, *edges, np.inf], labels=False).tolist()
    )


def test_skewed_frequency_gets_one_bin_per_heavy_value():
    freq = pd.Series([1] * 70 + [2] * 20 + [3] * 6 + [4] * 4)
    vc = freq.value_counts().sort_index()
    edges = quantile_edges(vc.index.to_numpy(), vc.to_numpy(), 3)
    assert edges == [1, 2] == ref_edges(freq, 3)
    assert _bins(freq, edges).tolist() == [70, 20, 10]
    # five levels: every distinct value its own bin
    assert quantile_edges(vc.index.to_numpy(), vc.to_numpy(), 5) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("hist", "levels", "expected"),
    [
        ({1: 70, 2: 30}, 3, [1, 2]),  # fewer distinct values than levels: top bin empty
        ({5: 10}, 3, [5, 5]),  # one value: everyone in bin 1
        (
            {
                1: 1,
                2: 1,
                50: 80,
                60: 1,
                61: 1,
                62: 1,
                63: 1,
                64: 1,
                65: 1,
                66: 1,
                67: 1,
                68: 1,
                69: 1,
            },
            3,
            [2, 50],
        ),
        ({}, 3, []),
    ],
)
def test_quantile_edges_edge_cases(hist, levels, expected):
    assert quantile_edges(list(hist), list(hist.values()), levels) == expected
    if hist:
        assert (
            ref_edges(pd.Series([v for v, n in hist.items() for _ in range(n)]), levels) == expected
        )


def test_skewed_workspace_scores_all_one_timers_alike(tmp_path, ws_builder):
    contacts = [{"contact_id": f"c{i:02d}", "created_at": "2024-01-01"} for i in range(20)]
    orders = []
    for i in range(20):
        n = 1 if i < 14 else (2 if i < 17 else 5)  # 70% one-time
        for k in range(n):
            orders.append(
                {
                    "order_id": f"o{i}_{k}",
                    "contact_id": f"c{i:02d}",
                    "ordered_at": AS_OF - dt.timedelta(days=10 + i),
                    "total": 10.0,
                    "status": "completed",
                }
            )
    ws = ws_builder(tmp_path / "ws.duckdb", contacts=contacts, orders=orders)
    res = compute_rfm(ws, as_of=AS_OF)
    got = as_frame(ws)
    assert res.edges["frequency"] == [1, 2]
    assert got.groupby("frequency").f.unique().map(list).to_dict() == {1: [1], 2: [2], 5: [3]}
    assert set(got[got.frequency == 1].f_label) == {"one-time"}
    # every contact spent 10.00 a time: monetary still splits by totals 10 / 20 / 50
    assert res.edges["monetary"] == [10.0, 20.0]
    ws.close()


# -- thresholds, parameters, segment maps ----------------------------------------------------
def test_fixed_thresholds_score_like_pandas_cut(rand_ws, tmp_path):
    ws, contacts, orders = rand_ws
    path = tmp_path / "th.yaml"
    path.write_text("levels: 3\nrecency: [30, 120.5]\nfrequency: [1, 3]\n")  # monetary: quantiles
    res = compute_rfm(ws, as_of=AS_OF, levels=None, thresholds=path)
    assert res.edges["recency"] == [30, 120] and res.edges["frequency"] == [1, 3]
    assert res.edges_source == {
        "recency": "thresholds",
        "frequency": "thresholds",
        "monetary": "quantile",
    }
    got = as_frame(ws)
    ref = ref_scores(ref_metrics(contacts, orders, AS_OF, "sum"), res.edges, 3)
    assert np.array_equal(got.r.to_numpy(float), ref.r.to_numpy(float), equal_nan=True)
    assert np.array_equal(got.f.to_numpy(float), ref.f.to_numpy(float), equal_nan=True)

    from importlib import resources

    example = resources.files("segmentum.analytics").joinpath("rfm_thresholds_example.yaml")
    assert load_thresholds(str(example)) == (
        3,
        {"recency": [30, 90], "frequency": [1, 3], "monetary": [10000, 50000]},  # cents
    )
    m = RFM(thresholds={"monetary": [100, 500.5]}).fit(ws, as_of=AS_OF)
    assert m.edges_["monetary"] == [100.0, 500.5]
    with pytest.raises(UsageError, match="levels: 3, but levels is 5"):
        RFM(levels=5, thresholds=path).fit(ws, as_of=AS_OF)
    with pytest.raises(UsageError, match="needs a list of 2 cut points"):
        RFM(thresholds={"frequency": [1, 2, 3]}).fit(ws, as_of=AS_OF)
    with pytest.raises(UsageError, match="must increase"):
        RFM(thresholds={"recency": [90, 30]}).fit(ws, as_of=AS_OF)


def test_parameter_validation_and_not_fitted(rand_ws):
    ws = rand_ws[0]
    with pytest.raises(
        UsageError, match=r"^The 'levels' parameter must be 3 or 5\. Got 4 instead\.$"
    ):
        RFM(levels=4).fit(ws)
    with pytest.raises(
        UsageError, match="The 'monetary' parameter must be 'sum' or 'mean'. Got 'median'"
    ):
        RFM(monetary="median").fit(ws)
    with pytest.raises(NotFittedError):
        RFM().transform()
    model = RFM(levels=5)
    assert model.get_params()["levels"] == 5 and not hasattr(
        model, "edges_"
    )  # __init__ stores only
    assert model.fit(ws, as_of=AS_OF) is model
    df = model.set_output(transform="pandas").transform()
    assert isinstance(df, pd.DataFrame) and len(df) == model.n_contacts_
    # the same edges applied to another date
    later = model.transform(as_of=AS_OF + dt.timedelta(days=30))
    assert later.recency_days.max() >= df.recency_days.max() + 30


def test_default_maps_cover_every_cell_and_use_every_name():
    names = {
        "Champions",
        "Loyal",
        "Potential Loyalist",
        "New",
        "Promising",
        "Need Attention",
        "About to Sleep",
        "At Risk",
        "Can't Lose Them",
        "Hibernating",
        "Lost",
    }
    for levels in (3, 5):
        cells = load_segment_map(levels).cells()
        assert len(cells) == levels**3
        assert {c["name"] for c in cells} == names  # no "Other", every name reachable
        segs = default_map(levels)["segments"]
        assert all(c["name"] == ref_name(c["cell"], segs) for c in cells)
    by_cell = {c["cell"]: c["name"] for c in load_segment_map(3).cells()}
    assert by_cell["R1F3M3"] == "Can't Lose Them" and by_cell["R3F3M3"] == "Champions"


def test_custom_map_other_and_errors(rand_ws, tmp_path):
    ws = rand_ws[0]
    custom = {
        "segments": [{"name": "Best", "cells": ["r3f[2-3]m*"]}],
        "labels": {"monetary": ["cheap", "mid", "rich"]},
    }
    res = compute_rfm(ws, as_of=AS_OF, segment_map=custom)
    got = as_frame(ws)
    assert set(got.name) <= {"Best", OTHER, NO_ORDERS}
    assert (got[(got.r == 3) & (got.f >= 2)].name == "Best").all()
    assert set(got.m_label.dropna()) <= {"cheap", "mid", "rich"}
    assert set(got.f_label.dropna()) <= {"one-time", "casual", "loyal"}  # default labels kept
    assert list(res.names.name) == ["Best", OTHER, NO_ORDERS]
    with pytest.raises(UsageError, match="uses score 4, but with 3 levels"):
        load_segment_map(3, {"segments": [{"name": "X", "cells": ["R4F1M1"]}]})
    with pytest.raises(UsageError, match="Cannot read the cell pattern"):
        load_segment_map(3, {"segments": [{"name": "X", "cells": ["R3-F1"]}]})
    path = tmp_path / "map.yaml"
    path.write_text(
        yaml.safe_dump({"levels": {3: {"segments": [{"name": "A", "cells": ["R*F*M*"]}]}}})
    )
    assert load_segment_map(3, path).name_of(1, 1, 1) == "A"
    with pytest.raises(UsageError, match="no map for 5 levels"):
        load_segment_map(5, path)


def test_out_files_and_errors(rand_ws, tmp_path):
    ws = rand_ws[0]
    compute_rfm(ws, as_of=AS_OF, out=tmp_path / "rfm.parquet")
    compute_rfm(ws, as_of=AS_OF, out=tmp_path / "rfm.csv")
    table = as_frame(ws)
    pq = pd.read_parquet(tmp_path / "rfm.parquet").set_index("contact_id").sort_index()
    assert pq.cell.tolist() == table.cell.tolist()
    assert len(pd.read_csv(tmp_path / "rfm.csv")) == len(table)
    with pytest.raises(UsageError, match="use .csv or .parquet"):
        compute_rfm(ws, as_of=AS_OF, out=tmp_path / "rfm.xlsx")
    with pytest.raises(WorkspaceError, match="nothing to score"):
        compute_rfm(ws, as_of="2000-01-01")


def test_orders_table_input_without_contacts(rand_ws):
    ws, contacts, orders = rand_ws
    t = RFM().fit_transform(ws.table("orders"), as_of=AS_OF).to_pandas()
    ref = ref_metrics(contacts, orders, AS_OF, "sum")
    assert sorted(t.contact_id) == sorted(ref[ref.frequency > 0].index)  # buyers only


# -- migration --------------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["cell", "name"])
def test_migration_matrix_matches_pandas_crosstab(rand_ws, by):
    ws, contacts, orders = rand_ws
    start = AS_OF - dt.timedelta(days=60)
    mig = rfm_migration(ws, start, AS_OF, by=by)
    sides, segments = [], default_map(3)["segments"]
    for when in (start, AS_OF):
        ref = ref_metrics(contacts, orders, when, "sum")
        buyers = ref[ref.frequency > 0]
        edges = {
            a: ref_edges(buyers[c].astype(float if a == "monetary" else int), 3)
            for a, c in zip(AXES, ("recency_days", "frequency", "monetary"), strict=True)
        }
        ref = ref_scores(ref, edges, 3)
        ref["name"] = [ref_name(c, segments) for c in ref.cell]
        sides.append(ref[by].fillna(NO_ORDERS) if by == "cell" else ref[by])
    both = pd.concat(sides, axis=1, keys=["from", "to"]).fillna("Not yet a contact")
    want = pd.crosstab(both["from"], both["to"])
    got = mig.matrix.loc[want.index, want.columns]
    assert (got.to_numpy() == want.to_numpy()).all()
    assert mig.matrix.to_numpy().sum() == len(both) == mig.contacts
    assert mig.stayed == int((both["from"] == both["to"]).sum())


# -- CLI ---------------------------------------------------------------------------------------
@pytest.fixture
def cli():
    from segmentum.cli.rfm import app as rfm_app

    app = typer.Typer()
    app.add_typer(rfm_app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps `rfm` a sub-command
        pass

    return app


def test_cli_json_and_tables(cli, tmp_path, ws_builder):
    contacts, orders = random_data(3, n_contacts=40)
    ws_builder(tmp_path / "ws.duckdb", contacts=contacts, orders=orders).close()  # CLI opens it
    path = str(tmp_path / "ws.duckdb")
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["rfm", "-w", path, "--as-of", "2024-07-01", "--json", "--out", str(tmp_path / "x.csv")],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"as_of", "levels", "edges", "cells", "names", "contacts"} <= set(data)
    assert (
        data["levels"] == 3 and len(data["cells"]) == 27 and data["as_of"].startswith("2024-07-01")
    )
    assert data["contacts"] == len(ref_metrics(contacts, orders, AS_OF, "sum"))
    assert data["metrics_from"] == "orders"  # rows written directly: no load-time totals
    assert len(pd.read_csv(tmp_path / "x.csv")) == data["contacts"]

    result = runner.invoke(cli, ["rfm", "-w", path, "--as-of", "2024-07-01", "--levels", "5"])
    assert result.exit_code == 0, result.output
    assert "Champions" in result.stdout and "Bins per axis" in result.stdout

    result = runner.invoke(
        cli,
        [
            "rfm",
            "migration",
            "-w",
            path,
            "--from",
            "2024-05-01",
            "--to",
            "2024-07-01",
            "--by",
            "name",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["contacts"] == sum(map(sum, data["matrix"])) == 40
    result = runner.invoke(
        cli, ["rfm", "migration", "-w", path, "--from", "2024-05-01", "--to", "2024-07-01"]
    )
    assert result.exit_code == 0 and "RFM migration" in result.stdout

    result = runner.invoke(cli, ["rfm", "-w", path, "--levels", "4"])
    assert isinstance(result.exception, UsageError)
    assert "The 'levels' parameter must be 3 or 5. Got 4 instead." in str(result.exception)
