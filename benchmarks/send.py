"""SMTP delivery throughput: the Sender against a local aiosmtpd server in another process.

    python benchmarks/send.py [--messages 5000] [--log-rows 1000000] [--work DIR] [--json FILE]

Rows (also the ``send`` suite of benchmarks/run.py):

* the floor: plain smtplib sending one prebuilt message N times on one connection (no
  log, no journal, no rendering of headers), in the same run, for the ratio;

* ``segmentum deliveries send`` of N planned messages (text + HTML, about 2 KB each) to the
  server: messages/s over the Sender's own time (from its JSON summary), peak memory of the
  process; the server's count must equal N, each Message-ID once;
* the same into a delivery log that already holds ``--log-rows`` rows (a 1M-contact
  campaign's log): the per-batch reads and the folds scan it;
* a tenth as many with ``window=1``: one durable claim (one DuckDB commit) per message,
  the cost the window of claims avoids.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
T = "2026-11-01T09:00:00Z"
SECRET_ENV = {"BENCH_UNSUB_SECRET": "bench-secret"}

SERVER = """
import sys, time
from aiosmtpd.controller import Controller
class H:
    async def handle_DATA(self, server, session, envelope):
        with open(sys.argv[2], "ab") as f:
            head = envelope.content.split(b"\\r\\n\\r\\n", 1)[0]
            f.write(head.split(b"Message-ID: ", 1)[1].split(b"\\r\\n", 1)[0] + b"\\n")
        return "250 OK"
c = Controller(H(), hostname="127.0.0.1", port=int(sys.argv[1])); c.start()
print("ready", flush=True)
time.sleep(3600)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(folder: Path, messages: int, log_rows: int, port: int) -> Path:
    """A workspace with ``messages`` contacts, their planned messages, ``log_rows`` older
    rows in the delivery log, and a segmentum.yaml pointing at the server."""
    import pyarrow as pa

    from segmentum.activation.delivery import DELIVERIES, DELIVERIES_SCHEMA, DeliveryLog
    from segmentum.activation.message import Decision, Origin, OutboundMessage, message_key
    from segmentum.workspace import open_workspace

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "segmentum.yaml").write_text(f"""channels:
  email:
    type: smtp
    host: 127.0.0.1
    port: {port}
    security: none
    from: "Bench Shop <news@bench.test>"
    unsubscribe: {{url: "https://bench.test/u?t={{token}}", secret_env: BENCH_UNSUB_SECRET}}
""")
    path = folder / "ws.duckdb"
    with open_workspace(path) as ws:
        at = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
        origin = Origin("campaign", "bench", T)
        text = "Hello {0},\n\n" + "Our November picks for you, with free delivery this week.\n" * 12
        html = "<html><body><p>Hello {0},</p>" + "<p>Our <b>November</b> picks for you.</p>" * 24
        decisions = []
        for i in range(messages):
            cid = f"B{i:07d}"
            msg = OutboundMessage(message_key(origin, cid, "email"), origin, cid, "email",
                                  f"b{i}@bench.test", f"November picks for {cid}",
                                  text.format(cid), html.format(cid) + "</body></html>",
                                  ("marketing", "newsletter"), at, None)
            decisions.append(Decision(cid, "scheduled", "treatment", None, msg, at))
        contacts = pa.table({"contact_id": [d.contact_id for d in decisions],
                             "email": [d.message.to for d in decisions],
                             "email_opt_in": [True] * messages,
                             "created_at": [at - dt.timedelta(days=30)] * messages})
        ws.warehouse.insert("contacts", _cast(ws, contacts))
        DeliveryLog(ws).record_plan(decisions)
        if log_rows:
            ws.warehouse.insert(DELIVERIES, _old_rows(log_rows, DELIVERIES_SCHEMA))
    return path


def _cast(ws, table):
    import ibis

    schema = ws.table("contacts").schema()
    return ibis.memtable(table).cast({c: schema[c] for c in table.column_names})


def _old_rows(n: int, schema: dict):
    """n sent rows of an older campaign (another origin: never due, only scanned)."""
    import ibis
    import pyarrow as pa

    at = dt.datetime(2026, 10, 1, 9, tzinfo=dt.UTC)
    keys = [f"{i:032x}" for i in range(n)]
    cols = {name: pa.nulls(n, ibis.dtype(t).to_pyarrow()) for name, t in schema.items()}
    cols.update(key=pa.array(keys), origin_kind=pa.array(["campaign"] * n),
                origin_name=pa.array(["october"] * n), occurrence=pa.array(["2026-10-01T09:00:00Z"] * n),
                contact_id=pa.array([f"O{i:07d}" for i in range(n)]), channel=pa.array(["email"] * n),
                outcome=pa.array(["sent"] * n), planned_at=pa.array([at] * n, pa.timestamp("us", "UTC")),
                send_at=pa.array([at] * n, pa.timestamp("us", "UTC")),
                sent_at=pa.array([at] * n, pa.timestamp("us", "UTC")),
                attempts=pa.array([1] * n, pa.int64()))
    return pa.table(cols)


RAW = """
import smtplib, sys, time
from email.message import EmailMessage
m = EmailMessage(); m["From"] = "news@bench.test"; m["To"] = "b0@bench.test"; m["Subject"] = "x"
m.set_content("Our November picks for you, with free delivery this week.\\n" * 12)
m.add_alternative("<p>Our <b>November</b> picks for you.</p>" * 24, subtype="html")
data = m.as_bytes()
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1])); s.ehlo()
t = time.perf_counter()
for i in range(int(sys.argv[2])):
    s.mail("news@bench.test"); s.rcpt(f"b{i}@bench.test"); s.data(data)
print('{"sent": %d, "seconds": %f}' % (int(sys.argv[2]), time.perf_counter() - t))
"""


def step(path: str, window: int) -> None:
    """One Sender run in this process: prints its summary as JSON (for run.py / main)."""
    from segmentum.activation.channels import load_channels
    from segmentum.activation.delivery import Sender
    from segmentum.workspace import open_workspace

    with open_workspace(path) as ws:
        summary = Sender(ws, load_channels(ws), window=window).deliver(now=T)
    print(json.dumps(summary.to_dict()))


def _measure(args: list[str], cwd: Path) -> tuple[float, float, dict]:
    t = time.perf_counter()
    p = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, env={**os.environ, **SECRET_ENV})
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"step failed: {' '.join(args)}")
    return time.perf_counter() - t, ru.ru_maxrss / 1024, json.loads(out)


def run_suite(work: Path, messages: int = 5000, log_rows: int = 1_000_000) -> list[dict]:
    port = _free_port()
    received = work / "received.log"
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(received)],
                              stdout=subprocess.PIPE)
    assert server.stdout.readline().strip() == b"ready"
    rows = []
    try:
        wall, rss, raw = _measure([sys.executable, "-c", RAW, str(port), str(messages)], work)
        rows.append({"step": "floor: plain smtplib on one connection, one prebuilt message, no log",
                     "rows": raw["sent"], "seconds": raw["seconds"], "wall": wall, "peak_mib": rss,
                     "target": "", "ok": None})
        cases = [("empty log, window 100", messages, 0, 100),
                 (f"log of {log_rows:,} rows, window 100", messages, log_rows, 100),
                 ("empty log, window 1: a commit per message", messages // 10, 0, 1)]
        for i, (label, n, old, window) in enumerate(cases):
            received.unlink(missing_ok=True)
            path = prepare(work / f"send-{i}", n, old, port)
            if window == 100 and old == 0:  # the command as a person runs it
                args = [str(BIN / "segmentum"), "-w", str(path), "deliveries", "send", "--as-of", T, "--json"]
                what = "segmentum deliveries send"
            else:
                args = [sys.executable, str(HERE / "send.py"), "step", str(path), str(window)]
                what = "Sender.deliver"
            wall, rss, summary = _measure(args, path.parent)
            got = received.read_bytes().splitlines() if received.exists() else []
            exact = len(got) == len(set(got)) == summary["sent"] == n
            rate = summary["sent"] / summary["seconds"]
            rows.append({"step": f"{what} to local aiosmtpd ({label}; each once: {exact})",
                         "rows": summary["sent"], "seconds": summary["seconds"], "wall": wall,
                         "peak_mib": rss, "target": ">= 500 messages/s" if window > 1 else "",
                         "ok": (rate >= 500 and exact) if window > 1 else None})
    finally:
        server.kill()
        server.wait()
    ours = rows[1]["rows"] / rows[1]["seconds"]
    floor = raw["sent"] / raw["seconds"]
    rows.append({"step": f"ratio: Sender / plain smtplib = {ours / floor:.2f}", "rows": None,
                 "seconds": 0.0, "wall": 0.0, "peak_mib": 0.0, "target": "", "ok": None})
    return rows


def suite_send(sizes: list[int], work: Path) -> list:
    """For benchmarks/run.py: the rows as its Result records (--sizes is ignored)."""
    from run import Result  # benchmarks/run.py, the caller

    return [Result("send", r["step"], 0, r["rows"], r["seconds"], r["peak_mib"], r["target"], r["ok"])
            for r in run_suite(work)]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "step":
        step(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--log-rows", type=int, default=1_000_000)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="segmentum-bench-send-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = run_suite(work, args.messages, args.log_rows)
    for r in rows:
        rate = f"{r['rows'] / r['seconds']:>8,.0f}/s" if r["rows"] else ""
        print(f"{r['step']:<100} {r['rows'] or '':>7} {r['seconds']:7.2f} s {rate:>10} "
              f"{r['peak_mib']:6.0f} MiB {r['target']:<18} {'' if r['ok'] is None else ('yes' if r['ok'] else 'NO')}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
