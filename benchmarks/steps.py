"""Benchmark steps, one per process: `python benchmarks/steps.py STEP WORKSPACE AS_OF`.

Prints one JSON object {"seconds": ..., "rows": ...}: the time of the computation alone
(imports, and for baselines the reading of the data into memory, are outside the timer and
reported separately as "load_seconds"). run.py reads the process's peak memory from wait4.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _warm(fn, repeat: int = 3):
    """(median of ``repeat`` warm runs, the first (cold) run, the last result): one slow
    moment of a shared machine moves a median less than a single time."""
    cold, out = _timed(fn)
    times = []
    for _ in range(repeat):
        s, out = _timed(fn)
        times.append(s)
    return _median(times), cold, out


def step_rfm(ws, as_of):
    """``compute_rfm``: scores, names and labels written to the workspace's ``rfm`` table, the
    per-cell and per-name summaries. Timed warm, as the segment steps are (the baseline has
    its data in memory): the median of three runs after the first of the process (DuckDB
    reading its blocks from disk), which is ``cold_seconds``. ``source`` says whether the
    metrics came from the per-contact totals the loads keep or from grouping the orders."""
    from segmentum.analytics.rfm import compute_rfm

    s, cold, res = _warm(lambda: compute_rfm(ws, as_of=as_of))
    return {"seconds": s, "cold_seconds": cold, "rows": res.contacts,
            "source": res.model.metrics_source_}


def step_rfm_pandas(ws, as_of):
    """The same RFM written idiomatically in pandas: groupby, tie-safe quantile bins, cells,
    then what ``compute_rfm`` also delivers - each contact's segment name and axis labels from
    the same map, the per-name summary, and the per-contact table written to a file (Parquet:
    how a pandas user keeps a table). "seconds" is all of it; "scores_seconds" stops after
    the per-cell summary (the scores and cells alone). Timed warm, as
    ``step_rfm`` is: the median of three runs after the first, which is ``cold_seconds``.

    Order totals are loaded as float64, as a pandas user holds money: the warehouse's
    decimal(18, 2) would otherwise arrive as Python Decimal objects, which make the groupby
    sum about twice as slow (and the load at 1M contacts minutes long) - an artificially
    slow baseline. Names and labels are looked up with ``Series.map`` on dicts, the fastest
    idiomatic way.
    """
    import tempfile
    from pathlib import Path

    from segmentum.analytics.rfm import load_segment_map

    t = time.perf_counter()
    o = ws.table("orders")
    orders = o.select("contact_id", "ordered_at", o.total.cast("float64").name("total"),
                      "status").to_pandas()
    contacts = ws.table("contacts").select("contact_id", "created_at").to_pandas()
    segmap = load_segment_map(3, None)
    cells = pd.DataFrame(segmap.cells())
    load = time.perf_counter() - t
    ts = pd.Timestamp(as_of)
    scores = []  # each run's time up to the per-cell summary

    def rfm(path):
        start = time.perf_counter()
        o = orders[(orders.ordered_at < ts) & (orders.status.isna() | (orders.status == "completed"))]
        g = o.groupby("contact_id").agg(last=("ordered_at", "max"), frequency=("ordered_at", "size"),
                                        monetary=("total", "sum"))
        g["monetary"] = g["monetary"].astype(float)
        g["recency_days"] = (ts.normalize() - g["last"].dt.normalize()).dt.days
        # equal values share a bin: cut at quantiles of the distinct-value distribution
        for axis, col, best_low in (("r", "recency_days", True), ("f", "frequency", False), ("m", "monetary", False)):
            edges = g[col].quantile([1 / 3, 2 / 3]).to_numpy()
            score = 1 + (g[col] > edges[0]).astype(int) + (g[col] > edges[1]).astype(int)
            g[axis] = 4 - score if best_low else score
        g["cell"] = "R" + g.r.astype(str) + "F" + g.f.astype(str) + "M" + g.m.astype(str)
        out = contacts[contacts.created_at < ts].merge(g.reset_index(), on="contact_id", how="left")
        summary = out.groupby("cell").agg(contacts=("contact_id", "size"), revenue=("monetary", "sum"))
        scores.append(time.perf_counter() - start)
        # names and labels from the map, the per-name summary, the table kept in a file
        out["name"] = out["cell"].map(dict(zip(cells.cell, cells.name))).fillna("No orders")
        for axis in ("r", "f", "m"):
            labels = dict(zip(cells[axis], cells[f"{axis}_label"]))
            out[f"{axis}_label"] = out[axis].map(labels)
        out["as_of"], out["levels"] = ts, 3
        names = out.groupby("name").agg(contacts=("contact_id", "size"), revenue=("monetary", "sum"),
                                        mean_r=("r", "mean"), mean_f=("f", "mean"), mean_m=("m", "mean"))
        out.to_parquet(path)
        return out, summary, names

    with tempfile.TemporaryDirectory() as tmp:
        s, cold, (out, _, _) = _warm(lambda: rfm(Path(tmp) / "rfm.parquet"))
    return {"seconds": s, "cold_seconds": cold, "scores_seconds": _median(scores[1:]),
            "rows": len(out), "load_seconds": load}


def step_cohorts(ws, as_of):
    from segmentum.analytics.cohorts import cohort_matrix

    s, res = _timed(lambda: cohort_matrix(ws, by="first_order", period="month", metric="retention", as_of=as_of))
    return {"seconds": s, "rows": int(res.sizes.sum()) if len(res.sizes) else 0}


def step_drilldown(ws, as_of):
    from segmentum.analytics.drilldown import drilldown

    s, df = _timed(lambda: drilldown(ws, "Champions", by="category", as_of=as_of))
    return {"seconds": s, "rows": len(df)}


def step_clv(ws, as_of):
    from segmentum.analytics.clv import compute_clv

    s, res = _timed(lambda: compute_clv(ws, as_of=as_of))
    return {"seconds": s, "rows": len(res.scores)}


def _persona(ws, as_of, **kw):
    """Persona discovery with saving (the default model): wall and CPU seconds; CPU time
    says more on a shared machine, where K-means' threads wait for the cores."""
    from segmentum.personas.run import discover_personas, save_personas

    cpu = time.process_time()
    s, res = _timed(lambda: discover_personas(ws, as_of, seed=0, **kw))
    s_save, _ = _timed(lambda: save_personas(ws, res, replace=True))
    return {"seconds": s + s_save, "cpu_seconds": time.process_time() - cpu,
            "rows": res.contacts, "k": res.k}


def step_persona_k7(ws, as_of):
    return _persona(ws, as_of, k=7)


def step_persona_auto(ws, as_of):
    return _persona(ws, as_of, auto=True)


# -- segment baselines (pandas, PostgreSQL): see segments_baselines.py --------------------------
# The data folder (the generated Parquet files) comes from SEGMENTUM_BENCH_DATA, the database
# from SEGMENTUM_BENCH_PG (a DSN; benchmarks/postgres.py starts a cluster). The rfm / clv score
# tables three segments use are exported from the workspace into the data folder first
# (computed there if the workspace has none), outside the timer.


def _bench_data(ws, as_of):
    import os
    from pathlib import Path

    from segments_baselines import export_scores

    data = os.environ.get("SEGMENTUM_BENCH_DATA")
    if not data or not (Path(data) / "events.parquet").exists():
        raise SystemExit("set SEGMENTUM_BENCH_DATA to the folder written by `segmentum generate`")
    data = Path(data)
    t = time.perf_counter()
    files = (data / "rfm.parquet").exists() and (data / "clv.parquet").exists()
    if not files or not {"rfm", "clv"} <= set(ws.warehouse.list_tables()):
        # a workspace built afresh next to data kept from an earlier run: compute its
        # scores (deterministic: the same tables the files hold) and write them again
        export_scores(ws, data, as_of)
    return data, time.perf_counter() - t


def _seg_pandas(ws, as_of, names):
    from segments_baselines import load_pandas, run_pandas

    data, _ = _bench_data(ws, as_of)
    frames, load = load_pandas(data)
    res = run_pandas(frames, names, as_of)
    return {"seconds": res.seconds, "rows": res.rows, "load_seconds": load,
            "sizes": res.sizes(), "digests": res.digests(), "per": res.per}


def _seg_pg(ws, as_of, names):
    import os

    from segments_baselines import run_postgres

    dsn = os.environ.get("SEGMENTUM_BENCH_PG")
    if not dsn:
        raise SystemExit("set SEGMENTUM_BENCH_PG to the DSN of the loaded database")
    res = run_postgres(dsn, names, as_of, warmup=True)
    return {"seconds": res.seconds, "rows": res.rows, "cold_seconds": res.cold_seconds,
            "server_peak_mib": res.server_peak_mib,
            "sizes": res.sizes(), "digests": res.digests(), "per": res.per}


def _saved(ws):
    """Every benchmark rule saved afresh (no membership history), dependencies first."""
    from segments_rules import RULES, order

    from segmentum.segments import SegmentEngine

    engine = SegmentEngine(ws)
    for name in reversed(order([n for n in engine.store.names() if n in RULES])):
        engine.delete(name)
    for name in order():
        engine.create(name, RULES[name].text)
    return engine


def step_seg_iphone(ws, as_of):
    """The iPhone rule through the engine: parse, check, compile, run; the member ids come
    back to Python (as the baselines' do). Timed warm, as PostgreSQL is: the first run of the
    process (catalogue lookups, DuckDB reading its blocks from disk) is ``cold_seconds``."""
    from segments_baselines import IPHONE, members_digest
    from segments_rules import RULES

    from segmentum.segments import SegmentEngine

    _bench_data(ws, as_of)  # rfm / clv exist (outside the timer)
    engine = SegmentEngine(ws)

    def run():
        ids = engine.members(RULES[IPHONE[0]].text, as_of=as_of).to_pyarrow().column(0)
        return ids.to_pylist()

    cold, _ = _timed(run)
    s, ids = _timed(run)
    return {"seconds": s, "cold_seconds": cold, "rows": len(ids), "sizes": {IPHONE[0]: len(ids)},
            "digests": {IPHONE[0]: members_digest(ids)}}


def step_seg_20(ws, as_of):
    """`segment refresh` of the 20 saved segments together (shared scans, one transaction):
    a first refresh a day before (``cold_seconds``: everyone enters), then the timed one at
    the as-of time, which records the day's entries and exits - the steady state of a
    scheduled refresh. The members are read back for the digests."""
    from segments_baselines import TWENTY, members_digest

    _bench_data(ws, as_of)
    engine = _saved(ws)
    cold, _ = _timed(lambda: engine.refresh(TWENTY, as_of - pd.Timedelta(days=1)))
    s, results = _timed(lambda: engine.refresh(TWENTY, as_of))
    members = {n: engine.current_members(n).to_pyarrow().column(0).to_pylist() for n in TWENTY}
    return {"seconds": s, "cold_seconds": cold,
            "rows": sum(r.size for r in results if r.segment in TWENTY),
            "entered": sum(r.entered for r in results), "exited": sum(r.exited for r in results),
            "sizes": {n: len(m) for n, m in members.items()},
            "digests": {n: members_digest(m) for n, m in members.items()}}


def step_seg_pandas_iphone(ws, as_of):
    """The iPhone rule in pandas (data already in memory; load_seconds apart)."""
    from segments_baselines import IPHONE

    return _seg_pandas(ws, as_of, IPHONE)


def step_seg_pandas_20(ws, as_of):
    """The 20 saved segments in pandas, in one pass; rows = memberships summed."""
    from segments_baselines import TWENTY

    return _seg_pandas(ws, as_of, TWENTY)


def step_seg_pg_load(ws, as_of):
    """COPY the data folder into SEGMENTUM_BENCH_PG, index, VACUUM ANALYZE: the load time."""
    import os

    from segments_baselines import load_postgres

    dsn = os.environ.get("SEGMENTUM_BENCH_PG")
    if not dsn:
        raise SystemExit("set SEGMENTUM_BENCH_PG to the DSN of an empty database")
    data, _ = _bench_data(ws, as_of)
    out = load_postgres(data, dsn)
    return {"seconds": out["seconds"], "rows": out["rows"], "steps": out["steps"]}


def step_seg_pg_iphone(ws, as_of):
    """The iPhone rule as one PostgreSQL query (database loaded by seg_pg_load); timed on a
    second run, the first (cold_seconds) warming the server's cache."""
    from segments_baselines import IPHONE

    return _seg_pg(ws, as_of, IPHONE)


def step_seg_pg_20(ws, as_of):
    """The 20 saved segments, one PostgreSQL query each, on one connection."""
    from segments_baselines import TWENTY

    return _seg_pg(ws, as_of, TWENTY)


CAMPAIGN = """\
name: bench-newsletter
audience: {rule: "true"}
channel: email
content:
  subject: "{{ first_name }}, our November picks are in"
  text: "Hello {{ first_name }},\\n\\nNew arrivals for {{ city }}.\\n{% if email_opt_in %}You subscribed.{% endif %}"
  html: "<p>Hello {{ first_name }},</p><p>New arrivals for {{ city }}.</p>"
control_pct: 10
caps: [{channel: email, tag: marketing, limit: 2, window: 7d}]
quiet_hours: {start: "21:00", end: "08:00"}
send_time: optimised
conversion: {window_days: 14}
"""
CAMPAIGN_SETTINGS = "channels:\n  email: {type: outbox, path: bench-outbox.jsonl}\n"
CAMPAIGN_RUN = "2026-11-01T09:00:00Z"


def _campaign(ws):
    """The benchmark campaign to every contact, a 5 % global control and an outbox channel
    (nothing is sent: planning and reporting are timed)."""
    from pathlib import Path

    from segmentum.activation.campaigns import loads_campaign
    from segmentum.activation.control_groups import ControlGroups

    Path(ws.config.path).resolve().with_name("segmentum.yaml").write_text(CAMPAIGN_SETTINGS)
    ControlGroups(ws).start_epoch(5, salt="bench-global", at="2026-01-01")
    return loads_campaign(CAMPAIGN)


def step_campaign_plan(ws, as_of):
    """A campaign to every contact planned in full, nothing written: global and campaign
    control, consent, caps checked against the delivery log, each contact's best send hour,
    quiet hours in its time zone, and every message rendered (subject, text, HTML)."""
    from segmentum.activation.plan import plan_send

    campaign = _campaign(ws)
    s, counts = _timed(lambda: plan_send(ws, campaign, as_of=CAMPAIGN_RUN).counts())
    return {"seconds": s, "rows": sum(counts.values()), "outcomes": counts}


def step_campaign_record(ws, as_of):
    """The same plan recorded in the delivery log (caps reserved, control assignments),
    without delivering: what the report reads."""
    from segmentum.activation.runs import send_campaign

    campaign = _campaign(ws)
    s, r = _timed(lambda: send_campaign(ws, campaign, CAMPAIGN_RUN, deliver=False))
    return {"seconds": s, "rows": r.audience, "outcomes": r.outcomes, "planned_now": r.planned_now}


def step_campaign_report(ws, as_of):
    """The report of the recorded run (conversions in 14 days, revenue, Newcombe, Welch,
    MDE and CUPED over 90 days of pre-period revenue), as of 2026-11-15 (the generator's
    ``campaign_orders`` loaded: the weeks after the history)."""
    from segmentum.activation.campaigns import loads_campaign
    from segmentum.activation.report import campaign_report

    campaign = loads_campaign(CAMPAIGN)
    s, r = _timed(lambda: campaign_report(ws, campaign.name, CAMPAIGN_RUN, "2026-11-15",
                                          cuped=True, campaign=campaign))
    rows = r["arms"]["treatment"]["contacts"] + r["arms"]["control"]["contacts"]
    return {"seconds": s, "rows": rows, "verdict": r["verdict"]}


STEPS = {name[5:]: fn for name, fn in globals().items() if name.startswith("step_")}


def main() -> None:
    step, workspace, as_of = sys.argv[1], sys.argv[2], sys.argv[3]
    from segmentum import open_workspace
    from segmentum.cli.common import parse_as_of

    with open_workspace(workspace) as ws:
        out = STEPS[step](ws, parse_as_of(as_of))
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
