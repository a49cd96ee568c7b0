"""Cohort matrices, checked against an independent pandas computation (pandas Periods).

The data set is small but has what goes wrong in practice: orders at identical instants,
returned and cancelled orders, orders before sign-up, contacts without orders, contacts and
orders after ``as_of``, a null attribute, e-mail events.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from segmentum.analytics.cohorts import (
    MISSING_LABEL,
    _assemble,
    cohort_heatmap_spec,
    cohort_matrix,
    period_label,
    period_ordinal,
    save_heatmap,
)
from segmentum.errors import UsageError

AS_OF = dt.datetime(2024, 5, 15, 12, 0, tzinfo=dt.UTC)
FREQ = {"week": "W-SUN", "month": "M", "quarter": "Q"}
CHANNELS = ["contest", "popup", "ads", None]


def _data(seed: int = 7):
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2023-10-01", tz="UTC")
    contacts, orders, events = [], [], []
    for i in range(40):
        created = start + pd.Timedelta(minutes=int(rng.integers(0, 60 * 24 * 240)))
        contacts.append(
            {
                "contact_id": f"c{i:02d}",
                "created_at": created,
                "acquisition_channel": CHANNELS[i % 4],
            }
        )
        if i % 7 == 3:
            continue  # never orders
        n = int(rng.integers(1, 7))
        t = created + pd.Timedelta(hours=int(rng.integers(-72, 200)))  # may precede sign-up
        for j in range(n):
            status = rng.choice(["completed"] * 6 + ["returned", "cancelled"])
            orders.append(
                {
                    "order_id": f"o{i:02d}-{j}",
                    "contact_id": f"c{i:02d}",
                    "ordered_at": t,
                    "total": round(float(rng.integers(100, 20000)) / 100, 2),
                    "status": str(status),
                }
            )
            if rng.random() < 0.25:  # a tie: a second order at the very same instant
                orders.append(
                    {
                        "order_id": f"o{i:02d}-{j}b",
                        "contact_id": f"c{i:02d}",
                        "ordered_at": t,
                        "total": 5.5,
                        "status": "completed",
                    }
                )
            t = t + pd.Timedelta(hours=int(rng.integers(24, 24 * 70)))
        for j in range(int(rng.integers(0, 6))):
            sent = created + pd.Timedelta(hours=int(rng.integers(0, 24 * 200)))
            events.append(
                {"event_id": f"s{i}-{j}", "contact_id": f"c{i:02d}", "type": "email_send",
                 "occurred_at": sent}
            )
            for m in range(int(rng.integers(0, 3))):
                events.append(
                    {"event_id": f"op{i}-{j}-{m}", "contact_id": f"c{i:02d}",
                     "type": "email_open", "occurred_at": sent + pd.Timedelta(hours=5 + m)}
                )
    # exactly at as_of: must not count; a contact created after as_of
    orders.append({"order_id": "late", "contact_id": "c00", "ordered_at": AS_OF, "total": 999,
                   "status": "completed"})
    contacts.append({"contact_id": "future", "created_at": AS_OF + dt.timedelta(days=1),
                     "acquisition_channel": "ads"})
    return contacts, orders, events


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def ws(ws_builder, data, tmp_path_factory):
    contacts, orders, events = data
    ws = ws_builder(tmp_path_factory.mktemp("cohorts") / "ws.duckdb",
                    contacts=contacts, orders=orders, events=events)
    yield ws
    ws.close()


# -- the independent reference ---------------------------------------------------------------
def _label(p: pd.Period, period: str) -> str:
    if period == "week":
        return p.start_time.date().isoformat()
    return str(p)


_REF_CACHE: dict = {}


def reference(data, by, period, metric, as_of, *, start="first_order", per_member=False,
              include_incomplete=False):
    """Expected tidy rows and sizes, computed member by member with pandas Periods."""
    key = (by, period, pd.Timestamp(as_of), start, include_incomplete)
    if key not in _REF_CACHE:
        _REF_CACHE[key] = _numerators(data, by, period, as_of, start, include_incomplete)
    rows, sizes = _REF_CACHE[key]
    rows = rows.copy()
    elig = rows.eligible.astype(float)

    def safe(a, b):
        return np.where(b > 0, a / b.where(b > 0), np.nan)

    rows["value"] = {
        "retention": lambda: rows.active / elig,
        "orders": lambda: rows.orders / elig if per_member else rows.orders.astype(float),
        "revenue": lambda: rows.revenue / elig if per_member else rows.revenue,
        "avg_check": lambda: safe(rows.revenue, rows.orders),
        # each period's revenue per member counted in it, summed over periods 0..k
        "ltv": lambda: (rows.revenue / elig).groupby(rows.cohort).cumsum(),
        "open_rate": lambda: safe(rows.opens, rows.sends),
    }[metric]()
    return rows, sizes


def _numerators(data, by, period, as_of, start, include_incomplete):
    contacts, orders, events = (pd.DataFrame(x) for x in data)
    freq = FREQ[period]
    as_of = pd.Timestamp(as_of)

    def per(s):
        return pd.to_datetime(s, utc=True).dt.tz_convert(None).dt.to_period(freq)

    cur = as_of.tz_convert(None).to_period(freq)
    last = cur if include_incomplete else cur - 1
    people = contacts[pd.to_datetime(contacts.created_at, utc=True) < as_of].copy()
    o = orders[(orders.status.fillna("completed") == "completed")
               & (pd.to_datetime(orders.ordered_at, utc=True) < as_of)].copy()
    o["p"] = per(o.ordered_at)
    e = events[pd.to_datetime(events.occurred_at, utc=True) < as_of].copy()
    e["p"] = per(e.occurred_at)
    kind = by if by in ("first_order", "signup") else start
    if kind == "first_order":
        first = o.groupby("contact_id").p.min()
        people = people[people.contact_id.isin(first.index)].copy()
        people["s"] = people.contact_id.map(first)
    else:
        people["s"] = per(people.created_at)
    if by in ("first_order", "signup"):
        people["cohort"] = people.s.map(lambda p: _label(p, period))
    else:
        people["cohort"] = people[by].fillna(MISSING_LABEL).astype(str)
    # per (contact, period): orders, revenue, sends, opens
    n_ord = o.groupby(["contact_id", "p"]).size().to_dict()
    rev = o.groupby(["contact_id", "p"]).total.sum().to_dict()
    sends = e[e.type == "email_send"].groupby(["contact_id", "p"]).size().to_dict()
    opens = e[e.type == "email_open"].groupby(["contact_id", "p"]).size().to_dict()
    rows = []
    for cohort, grp in people.groupby("cohort"):
        members = list(zip(grp.contact_id, grp.s))
        max_k = max((cur - s).n for _, s in members)
        for k in range(max_k + 1):
            counted = [(c, s) for c, s in members if s + k <= last]
            if not counted:
                continue
            r = dict(cohort=cohort, period_index=k, cohort_size=len(members),
                     eligible=len(counted), active=0, orders=0, revenue=0.0, sends=0, opens=0,
                     complete=all(s + k < cur for _, s in counted))
            for c, s in counted:
                p = s + k
                r["active"] += int(n_ord.get((c, p), 0) > 0)
                r["orders"] += n_ord.get((c, p), 0)
                r["revenue"] += rev.get((c, p), 0.0)
                r["sends"] += sends.get((c, p), 0)
                r["opens"] += opens.get((c, p), 0)
            rows.append(r)
    rows = pd.DataFrame(rows)
    rows["cumulative_revenue"] = rows.groupby("cohort").revenue.cumsum()
    return rows, people.groupby("cohort").size()


def assert_matches(res, ref, sizes):
    got = res.tidy.sort_values(["cohort", "period_index"]).reset_index(drop=True)
    exp = ref.sort_values(["cohort", "period_index"]).reset_index(drop=True)
    assert list(got.cohort) == list(exp.cohort)
    assert list(got.period_index) == list(exp.period_index)
    for col in ("cohort_size", "eligible", "active", "orders", "complete"):
        assert list(got[col]) == list(exp[col]), col
    if "sends" in got:
        assert list(got.sends) == list(exp.sends)
        assert list(got.opens) == list(exp.opens)
    for col in ("revenue", "cumulative_revenue", "value"):
        np.testing.assert_allclose(got[col].astype(float), exp[col].astype(float),
                                   rtol=1e-9, atol=1e-9, err_msg=col)
    assert res.sizes.sort_index().to_dict() == sizes.sort_index().to_dict()


# -- comparisons with the reference ----------------------------------------------------------
BY_START = [("first_order", "first_order"), ("signup", "signup"),
            ("acquisition_channel", "first_order"), ("acquisition_channel", "signup")]


@pytest.mark.parametrize("period", ["week", "month", "quarter"])
@pytest.mark.parametrize("by,start", BY_START)
def test_numerators_and_open_rate_match_pandas(ws, data, by, start, period):
    # every tidy table carries all numerators; open_rate adds sends / opens
    res = cohort_matrix(ws, by=by, period=period, metric="open_rate", as_of=AS_OF, start=start)
    ref, sizes = reference(data, by, period, "open_rate", AS_OF, start=start)
    assert_matches(res, ref, sizes)


@pytest.mark.parametrize("by,start", [BY_START[0], BY_START[3]])
@pytest.mark.parametrize("metric", ["retention", "orders", "revenue", "avg_check", "ltv"])
def test_every_metric_matches_pandas(ws, data, by, start, metric):
    res = cohort_matrix(ws, by=by, period="month", metric=metric, as_of=AS_OF, start=start)
    ref, sizes = reference(data, by, "month", metric, AS_OF, start=start)
    assert_matches(res, ref, sizes)
    # every cohort is a row, also one with no finished period yet (all empty)
    matrix = ref.pivot(index="cohort", columns="period_index", values="value")
    matrix = matrix.reindex(sizes.index)
    pd.testing.assert_frame_equal(
        res.matrix.sort_index(), matrix.sort_index(), check_names=False, check_dtype=False
    )


@pytest.mark.parametrize("by,metric", [("first_order", "orders"),
                                       ("acquisition_channel", "revenue")])
def test_per_member_and_incomplete_periods_match_pandas(ws, data, by, metric):
    res = cohort_matrix(ws, by=by, period="month", metric=metric, as_of=AS_OF,
                        per_member=True, include_incomplete=True)
    ref, sizes = reference(data, by, "month", metric, AS_OF, per_member=True,
                           include_incomplete=True)
    assert_matches(res, ref, sizes)
    # the current month is there, and flagged incomplete
    assert not res.tidy[~res.tidy.complete].empty


def test_an_earlier_as_of_only_sees_earlier_data(ws, data):
    as_of = dt.datetime(2024, 1, 10, tzinfo=dt.UTC)
    res = cohort_matrix(ws, by="signup", period="week", metric="ltv", as_of=as_of)
    ref, sizes = reference(data, "signup", "week", "ltv", as_of)
    assert_matches(res, ref, sizes)


# -- hand-checked cases ----------------------------------------------------------------------
def test_small_case_by_hand(make_ws):
    ws = make_ws(
        contacts=[
            {"contact_id": "a", "created_at": "2024-01-03", "acquisition_channel": "contest"},
            {"contact_id": "b", "created_at": "2024-01-20", "acquisition_channel": "ads"},
            {"contact_id": "c", "created_at": "2024-02-01", "acquisition_channel": "ads"},
            {"contact_id": "d", "created_at": "2024-02-05"},  # never orders
        ],
        orders=[
            {"order_id": "1", "contact_id": "a", "ordered_at": "2024-01-05", "total": 10},
            {"order_id": "2", "contact_id": "a", "ordered_at": "2024-01-05", "total": 30},  # tie
            {"order_id": "3", "contact_id": "a", "ordered_at": "2024-03-01", "total": 20},
            {"order_id": "4", "contact_id": "b", "ordered_at": "2024-01-25", "total": 50,
             "status": "returned"},
            {"order_id": "5", "contact_id": "b", "ordered_at": "2024-02-10", "total": 40},
            {"order_id": "6", "contact_id": "c", "ordered_at": "2024-02-02", "total": 60,
             "status": "cancelled"},
            {"order_id": "7", "contact_id": "b", "ordered_at": "2024-04-02", "total": 99},
        ],
    )
    as_of = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)  # order 7 is after as_of; April not begun
    res = cohort_matrix(ws, by="first_order", metric="retention", as_of=as_of)
    # a: first order Jan; b: the returned January order does not count -> first order Feb
    assert res.sizes.to_dict() == {"2024-01": 1, "2024-02": 1}
    assert res.matrix.loc["2024-01"].tolist() == [1.0, 0.0, 1.0]
    assert res.matrix.loc["2024-02", 0] == 1.0 and res.matrix.loc["2024-02", 1] == 0.0
    assert np.isnan(res.matrix.loc["2024-02", 2])  # April has not ended
    avg = cohort_matrix(ws, by="first_order", metric="avg_check", as_of=as_of)
    assert avg.matrix.loc["2024-01", 0] == 20.0  # (10 + 30) / 2 orders
    assert np.isnan(avg.matrix.loc["2024-01", 1])
    ltv = cohort_matrix(ws, by="signup", metric="ltv", as_of=as_of)
    # Jan sign-ups a, b: 40 in Jan, 40 (b) in Feb, 20 (a) in Mar
    assert ltv.matrix.loc["2024-01"].tolist() == [20.0, 40.0, 50.0]
    # Feb sign-ups c, d: c's order was cancelled
    assert ltv.matrix.loc["2024-02"].tolist()[:2] == [0.0, 0.0]
    ch = cohort_matrix(ws, by="acquisition_channel", metric="orders", as_of=as_of,
                       start="signup")
    assert list(ch.sizes.index) == ["ads", "(missing)", "contest"]  # by size, then name
    assert ch.sizes.to_dict() == {"ads": 2, "(missing)": 1, "contest": 1}
    ads = ch.tidy[ch.tidy.cohort == "ads"].set_index("period_index")
    # b (start Jan) and c (start Feb): period 0 = b's Jan (returned: 0) + c's Feb (cancelled)
    assert ads.loc[0, "value"] == 0 and ads.loc[1, "value"] == 1  # b's Feb order
    assert ads.loc[2, "eligible"] == 1  # c has not reached k=2: only b counts
    assert ads.loc[2, "complete"] and ads.loc[2, "value"] == 0


def test_ltv_of_members_starting_at_different_times_never_decreases(make_ws):
    # a (Jan) spent little, b (Mar) a lot: period 2 counts only a. Dividing cumulative revenue
    # by the members still counted gave 55, 55, then 15 (a's 10 + 5 over a alone).
    ws = make_ws(
        contacts=[
            {"contact_id": "a", "created_at": "2024-01-01", "acquisition_channel": "contest"},
            {"contact_id": "b", "created_at": "2024-03-01", "acquisition_channel": "contest"},
        ],
        orders=[
            {"order_id": "1", "contact_id": "a", "ordered_at": "2024-01-05", "total": 10},
            {"order_id": "2", "contact_id": "b", "ordered_at": "2024-03-05", "total": 100},
            {"order_id": "3", "contact_id": "a", "ordered_at": "2024-03-20", "total": 5},
        ],
    )
    res = cohort_matrix(ws, by="acquisition_channel", metric="ltv",
                        as_of=dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    row = res.tidy.set_index("period_index")
    assert row["eligible"].tolist() == [2, 2, 1, 1]
    # per member counted: 110 / 2, 0 / 2, 5 / 1, 0 / 1, summed
    assert row["value"].tolist() == [55.0, 55.0, 60.0, 60.0]
    assert row["cumulative_revenue"].tolist() == [110.0, 110.0, 115.0, 115.0]


@st.composite
def _cohort_inputs(draw):
    """Members per (cohort, start period) and their activity, as the warehouse returns them."""
    limit = draw(st.integers(0, 8))
    pairs = draw(st.lists(st.tuples(st.sampled_from(["x", "y"]), st.integers(0, limit)),
                          min_size=1, max_size=6, unique=True))
    sizes, act = [], []
    for cohort, s in pairs:
        n = draw(st.integers(1, 50))
        sizes.append((cohort, s, n))
        for k in range(limit - s + 1):
            if draw(st.booleans()):
                active = draw(st.integers(1, n))
                orders = draw(st.integers(active, 3 * active))
                revenue = draw(st.floats(0, 1e4, allow_nan=False))
                act.append((cohort, s, k, active, orders, revenue))
    sizes_raw = pd.DataFrame(sizes, columns=["cohort", "s", "n"])
    act = pd.DataFrame(act, columns=["cohort", "s", "k", "active", "orders", "revenue"])
    return sizes_raw, act, limit


@settings(max_examples=40, deadline=None)
@given(_cohort_inputs())
def test_cumulative_metrics_never_decrease(inputs):
    sizes_raw, act, limit = inputs
    tidy, _ = _assemble(sizes_raw, act, None, cur=limit + 1, limit=limit, metric="ltv",
                        per_member=False, time_cohorts=False, period="month")
    for _, rows in tidy.groupby("cohort"):
        rows = rows.sort_values("period_index")
        assert (rows["value"].diff().dropna() >= -1e-9).all()
        assert (rows["cumulative_revenue"].diff().dropna() >= -1e-9).all()


def test_unknown_by_gets_did_you_mean(ws):
    with pytest.raises(UsageError, match='Did you mean "acquisition_channel"'):
        cohort_matrix(ws, by="aquisition_channel", as_of=AS_OF)
    with pytest.raises(UsageError, match="metric"):
        cohort_matrix(ws, metric="retension", as_of=AS_OF)
    with pytest.raises(UsageError, match="period"):
        cohort_matrix(ws, period="year", as_of=AS_OF)


def test_period_ordinals_agree_between_python_and_warehouse(ws):
    import ibis

    stamps = [dt.datetime(2023, 12, 31, 23, 59, tzinfo=dt.UTC),
              dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 2, 29, 12, tzinfo=dt.UTC)]
    for period in ("week", "month", "quarter"):
        for ts in stamps:
            in_wh = ws.con.execute(period_ordinal(ibis.literal(ts), period))
            assert int(in_wh) == period_ordinal(ts, period)
            p = pd.Timestamp(ts).tz_convert(None).to_period(FREQ[period])
            assert period_label(period_ordinal(ts, period), period) == _label(p, period)


def test_empty_workspace(make_ws):
    ws = make_ws()
    res = cohort_matrix(ws, as_of=AS_OF)
    assert res.tidy.empty and res.matrix.empty and res.sizes.empty


# -- chart and CLI ---------------------------------------------------------------------------
def test_heatmap_spec_and_files(ws, tmp_path):
    res = cohort_matrix(ws, by="first_order", metric="retention", as_of=AS_OF)
    spec = cohort_heatmap_spec(res)
    assert "vega-lite" in spec["$schema"]
    json.dumps(spec, default=str)  # plain JSON
    out = save_heatmap(res, tmp_path / "h.html")
    page = open(out, encoding="utf-8").read()
    assert "vegaEmbed" in page and "cdn.jsdelivr" not in page and '<script src="http' not in page
    with pytest.raises(UsageError):
        save_heatmap(res, tmp_path / "h.gif")


def test_cli_cohorts(ws, tmp_path):
    from segmentum.cli.cohorts import app as cohorts_app

    app = typer.Typer()
    app.add_typer(cohorts_app)
    app.command("noop")(lambda: None)  # keep Typer in multi-command mode
    path = str(ws.config.path)  # the CLI opens (and closes) its own connection
    runner = CliRunner()
    out_csv = tmp_path / "tidy.csv"
    r = runner.invoke(app, ["cohorts", "-w", path, "--by", "acquisition_channel", "--metric",
                            "ltv", "--as-of", "2024-05-15T12:00:00Z", "--out", str(out_csv),
                            "--heatmap", str(tmp_path / "h.html")])
    assert r.exit_code == 0, r.output
    assert "contest" in r.output
    tidy = pd.read_csv(out_csv)
    assert {"cohort", "period_index", "value", "cohort_size"} <= set(tidy.columns)
    r = runner.invoke(app, ["cohorts", "-w", path, "--json", "--as-of", "2024-05-15"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.output)
    assert payload["metric"] == "retention" and payload["rows"]
