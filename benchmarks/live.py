"""The `live` suite: real-time segments on the generated retailer, measured from outside.

    python benchmarks/live.py --workspace W.duckdb [--seconds 300] [--rate 1000] [--json FILE]

``W`` is a loaded workspace of the generated retailer (``segmentum generate`` + ``load`` of the
six kinds, ``rfm`` and ``clv fit``; ``run.py --suite live`` builds it). Steps, each in its
own process:

* **prepare**: the tables in contact order (:mod:`segmentum.live.layout`, as the service's
  live start does), 50 saved segments - the 20 of the segments suite, the iPhone rule, the persona
  templates the data allow, rules of the golden suite's kinds, and two live rules:
  ``live-ios`` (an iOS e-mail open in the last hour; a trigger sets an attribute on entry)
  and ``live-late`` (the same over a shorter stay: events sent late, so each entry has an
  exit due 20-120 s after it arrives);
* **per contact**: all 50 segments evaluated for one contact at a time, as the live path
  does (read the contact's rows, evaluate every rule, compute its next moments): p50 / p95
  over 200 random contacts;
* **stream**: ``segmentum serve`` (fsync on, live segments on) gets single events at
  ``--rate`` per second for ``--seconds``, open loop from 64 concurrent connections: half of
  them iOS e-mail opens of random contacts (entries, a trigger each), a quarter opens dated
  59 minutes ago (exits by timer), a quarter product views. Measured: the server's own
  histograms (``/metrics``): from each record's arrival to its evaluation recorded and its
  triggers enqueued, and from each timer's due time to its exit recorded; the backlog
  every second; the server's CPU time and peak memory; the start-up (baseline) time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent / "segmentum"

GOLDEN = [
    "count(email_open, last 30 days) > 2",
    'exists(email_open where device_os = "iOS", last 30 days)',
    'no(orders where channel = "online")',
    "count(search, between 60 and 30 days ago) > 2",
    'purchased(category = "Home & Garden", last 180 days)',
    "days_since(last orders) > 180",
    "first(orders) within last 30 days",
    "last(email_open) not within last 90 days",
    "trend(email_open, 30 days, ratio) < 0.5",
    "trend(sum(orders.total), 90 days) < -100",
    "avg(orders.total) > 50 and min(orders.total) >= 10 and max(orders.total) < 1000",
    "age between 18 and 30 and email_opt_in",
    'deal.stage not in ("won", "lost")',
    'rfm.cell in ("R1F3M3", "R1F3M2", "R1F2M3")',
    "clv.expected_value > 100 and clv.expected_purchases >= 1.5",
    "count(product_view, last 7 days) >= 3",
    "sum(order_items.quantity, last 90 days) >= 5",
    "count(email_click, last 14 days) >= 1 and not purchased(last 30 days)",
    'count(orders where status = "returned", last 365 days) >= 2',
    "count(app_session, last 12 hours) >= 1",
]
LIVE = {
    "live-ios": 'count(email_open where device_os = "iOS", last 1 hour) >= 1',
    "live-late": 'count(email_open where device_os = "iOS" and campaign_id = "late", last 1 hour) >= 1',
}
TRIGGER = """
kind: trigger
name: live-ios-welcome
on: {enter: live-ios}
action:
  set_attribute: {name: live_welcomed, value: "yes"}
reentry: each
"""


# -- prepare (its own process: the workspace is free again when it ends) --------------------------
def prepare(path: str) -> dict:
    from benchmarks.segments_rules import IPHONE, SEGMENTS, order
    from segmentum import open_workspace
    from segmentum.activation.triggers import TriggerStore, loads_trigger
    from segmentum.errors import SegmentumError
    from segmentum.live.layout import keep_ordered
    from segmentum.personas.apply import apply_template
    from segmentum.personas.library import load_library
    from segmentum.segments.engine import SegmentEngine

    with open_workspace(path) as ws:
        eng = SegmentEngine(ws)
        have = set(eng.store.names())
        wanted = {**{n: SEGMENTS[n].text for n in order()}, "iphone-accessories": IPHONE.text, **LIVE}
        for name, text in wanted.items():
            if name not in have:
                eng.create(name, text)
        for template in load_library():
            if len(eng.store.names()) >= 50 - len(GOLDEN):
                break
            try:
                if template.name not in eng.store.names():
                    apply_template(ws, template.name)
            except SegmentumError:
                continue  # the data lack what it needs
        for i, text in enumerate(GOLDEN):
            eng = SegmentEngine(ws)
            if len(eng.store.names()) >= 50:
                break
            try:
                if f"golden-{i}" not in eng.store.names():
                    eng.create(f"golden-{i}", text)
            except SegmentumError:
                continue
        TriggerStore(ws).save(loads_trigger(TRIGGER))
        ordered = keep_ordered(ws.warehouse)  # as the service's live start does
        return {"segments": len(SegmentEngine(ws).store.names()), "ordered_seconds": ordered}


# -- per contact ----------------------------------------------------------------------------------
def per_contact(path: str, n: int = 200) -> dict:
    import datetime as _dt

    from segmentum import open_workspace
    from segmentum.live.engine import _Rules

    with open_workspace(path) as ws:
        rules = _Rules(ws)
        names = list(rules.checked)
        ids = ws.warehouse.table("contacts").contact_id.to_pyarrow().to_pylist()
        picks = random.Random(0).sample(ids, n)
        T = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
        times, read = [], []
        for cid in picks:
            t0 = time.perf_counter()
            data = rules.evaluator.fetch([cid], T)
            t1 = time.perf_counter()
            rules.evaluator.evaluate(names, data, T)
            rules.evaluator.next_change(names, data, T)
            times.append(time.perf_counter() - t0)
            read.append(t1 - t0)
        q, r = statistics.quantiles(times, n=100), statistics.quantiles(read, n=100)
        return {"segments": len(names), "contacts": n, "p50_ms": q[49] * 1e3, "p95_ms": q[94] * 1e3,
                "read_p50_ms": r[49] * 1e3, "read_p95_ms": r[94] * 1e3}


# -- the stream -----------------------------------------------------------------------------------
def _quantiles(metrics: str, name: str) -> dict:
    """p50 / p95 / p99 from a Prometheus histogram (linear inside a bucket), and its count."""
    buckets = []
    for line in metrics.splitlines():
        if line.startswith(f"{name}_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0
    out = {"count": int(total)}
    for p in (50, 95, 99):
        want, lo, below = total * p / 100, 0.0, 0.0
        for le, cum in buckets:
            if cum >= want and total:
                share = (want - below) / (cum - below) if cum > below else 1.0
                out[f"p{p}_s"] = None if le == float("inf") else round(lo + share * (le - lo), 3)
                break
            lo, below = le, cum
    return out


async def _stream(served, ids: list[str], seconds: float, rate: int, pool: int = 64) -> dict:
    from benchmarks.service import Conn

    rng = random.Random(1)
    n = int(seconds * rate)
    now = time.time()
    bodies = []
    for i in range(n):
        cid, kind = rng.choice(ids), i % 4
        event = {"userId": cid, "messageId": f"live-{i}", "context": {"os": {"name": "iOS"}}}
        if kind in (0, 1):
            event["event"] = "Email Opened"
        elif kind == 2:  # 59 minutes late (by the time it is sent): an exit due soon after
            event.update(event="Email Opened", properties={"campaign_id": "late"})
            event["_late"] = rng.uniform(20, 120)
        else:
            event.update(event="Product Viewed", properties={"sku": "SKU-1", "category": "Phones"})
        bodies.append(event)
    free: asyncio.Queue = asyncio.Queue()
    for _ in range(pool):
        free.put_nowait(Conn(served))
    failures: dict[int, int] = {}
    acks: list[float] = []
    start = time.perf_counter() + 0.5
    del now

    async def one(i: int) -> None:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        event = dict(bodies[i])
        late = event.pop("_late", None)
        if late is not None:
            sent = time.time()
            iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"  # noqa: E731
            event["timestamp"] = iso(sent - 3600 + late)
            event["sentAt"] = iso(sent)
        conn = await free.get()
        status = await conn.post("/v1/track", orjson.dumps(event))
        acks.append(time.perf_counter() - due)
        if status != 200:
            failures[status] = failures.get(status, 0) + 1
        free.put_nowait(conn)

    await asyncio.gather(*(one(i) for i in range(n)))
    q = statistics.quantiles(sorted(acks), n=100)
    return {"events": n, "seconds": time.perf_counter() - start, "ack_p99_ms": q[98] * 1e3, "failures": failures}


def stream(path: Path, seconds: float, rate: int) -> dict:
    import threading

    import httpx

    from benchmarks.service import Served

    out = subprocess.run([str(BIN), "-w", str(path), "keys", "create", "bench-read", "--scopes", "read", "--json"],
                         capture_output=True, text=True, check=True)
    read = {"Authorization": f"Bearer {json.loads(out.stdout)['key']}"}
    from segmentum import open_workspace

    with open_workspace(path) as ws:
        every = ws.warehouse.table("contacts").contact_id.to_pyarrow().to_pylist()
        ids = random.Random(2).sample(every, min(200_000, len(every)))
    t0 = time.perf_counter()
    served = Served(path.parent, path.stem, env={"SEGMENTUM_SERVE_LIVE_LAG_ALARM_SECONDS": "5"})
    url = f"http://{served.host}:{served.port}"
    while True:  # the baseline (segments never evaluated live, every contact's timers) runs at start
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    started_s = time.perf_counter() - t0
    cpu0 = served.cpu_seconds()
    backlog, stop = [], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                backlog.append(httpx.get(url + "/health", timeout=10).json()["consumer"]["backlog"])
            except httpx.HTTPError:
                pass
            stop.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    sent = asyncio.run(_stream(served, ids, seconds, rate))
    drained_t0 = time.perf_counter()
    while httpx.get(url + "/health", timeout=30).json()["consumer"]["backlog"]:
        time.sleep(0.2)
    drain_s = time.perf_counter() - drained_t0
    time.sleep(125)  # the last late events' exits come due
    stop.set()
    metrics = httpx.get(url + "/metrics", headers=read, timeout=30).text
    health = httpx.get(url + "/health", timeout=30).json()
    result = {
        "start_seconds": round(started_s, 1), **sent, "drain_seconds": round(drain_s, 2),
        "lag": _quantiles(metrics, "segmentum_live_evaluation_lag_seconds"),
        "timer_delay": _quantiles(metrics, "segmentum_live_timer_delay_seconds"),
        "backlog_max": max(backlog, default=0), "backlog_last": backlog[-1] if backlog else None,
        "cpu_seconds": round(served.cpu_seconds() - cpu0, 1),
        "cpu_share": round((served.cpu_seconds() - cpu0) / (sent["seconds"] + drain_s + 125), 2),
        "peak_mib": round(served.peak_mib()), "live": health.get("live", {}),
    }
    for line in metrics.splitlines():
        if line.startswith(("segmentum_live_membership_changes_total", "segmentum_trigger_occurrences_total",
                            "segmentum_live_evaluations_total", "segmentum_alarms_total")):
            key, value = line.rsplit(" ", 1)
            result.setdefault("counters", {})[key] = float(value)
    served.stop()
    return result


def suite_live(sizes: list[int], work: Path, seconds: float = 300.0, rate: int = 1000) -> list:
    """For benchmarks/run.py: each size's workspace (scores computed), the three steps, rows."""
    from run import Result, _workspace, run_step, segmentum  # benchmarks/run.py, the caller

    results = []
    for n in sizes:
        ws = _workspace(n, work, ("products", "contacts", "orders", "order_items", "events", "deals"))
        if not (work / f"ws-{n}.live-scores").exists():
            run_step(segmentum("-w", str(ws), "rfm", "--json"), work)
            run_step(segmentum("-w", str(ws), "clv", "fit", "--json"), work)
            (work / f"ws-{n}.live-scores").write_text("computed")
        me = [sys.executable, __file__, "--workspace", str(ws), "--seconds", str(seconds), "--rate", str(rate)]
        run_step([*me, "--step", "prepare"], work)
        s, rss, out = run_step([*me, "--step", "per_contact"], work)
        pc = json.loads(out.strip().splitlines()[-1])
        results.append(Result("live", f"all {pc['segments']} segments for one contact: p50 {pc['p50_ms']:.0f} ms, "
                              f"p95 {pc['p95_ms']:.0f} ms (reading its rows p95 {pc['read_p95_ms']:.0f} ms)",
                              n, pc["contacts"], s, rss, "p95 <= 50 ms", pc["p95_ms"] <= 50 if n >= 1_000_000 else None))
        s, rss, out = run_step([*me, "--step", "stream"], work)
        st = json.loads(out.strip().splitlines()[-1])
        lag, delay = st["lag"], st["timer_delay"]
        results.append(Result("live", f"{rate}/s for {seconds:.0f} s: arrival -> membership + trigger p50 "
                              f"{lag.get('p50_s')} s, p95 {lag.get('p95_s')} s, p99 {lag.get('p99_s')} s; backlog max "
                              f"{st['backlog_max']}; CPU {st['cpu_share']:.0%} of a core", n, st["events"],
                              st["seconds"], st["peak_mib"], "p95 <= 1 s, p99 <= 2 s",
                              (lag.get("p95_s") or 99) <= 1 and (lag.get("p99_s") or 99) <= 2 if n >= 1_000_000 else None))
        results.append(Result("live", f"timer exits: due -> recorded p50 {delay.get('p50_s')} s, p95 "
                              f"{delay.get('p95_s')} s, p99 {delay.get('p99_s')} s", n, delay["count"], 0.0, 0.0,
                              "<= 1 s", (delay.get("p99_s") or 99) <= 1 if delay["count"] else None))
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workspace", required=True)
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument("--contacts", type=int, default=200, help="per_contact: how many contacts")
    p.add_argument("--json")
    p.add_argument("--step", choices=["prepare", "per_contact", "stream"])
    a = p.parse_args()
    if a.step == "prepare":
        print(json.dumps(prepare(a.workspace)))
        return
    if a.step == "per_contact":
        print(json.dumps(per_contact(a.workspace, a.contacts)))
        return
    if a.step == "stream":
        print(json.dumps(stream(Path(a.workspace).resolve(), a.seconds, a.rate), default=str))
        return
    results = {}
    for step in ("prepare", "per_contact", "stream"):
        args = [sys.executable, __file__, "--workspace", a.workspace, "--step", step,
                "--seconds", str(a.seconds), "--rate", str(a.rate)]
        out = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if out.returncode:
            raise SystemExit(f"{step} failed:\n{out.stderr[-4000:]}")
        results[step] = json.loads(out.stdout.strip().splitlines()[-1])
        print(step, json.dumps(results[step], indent=1, default=str), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
