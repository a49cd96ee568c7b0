"""The `service` suite: `segmentum serve` measured from outside, over loopback.

    python benchmarks/service.py [--seconds 20] [--json FILE]      # or: make bench ARGS="--suite service"

One real server process (``segmentum serve --port 0``, fsync on) on a fresh workspace per
step, and a load generator in this process: asyncio with its own minimal HTTP/1.1 client
(keep-alive connections, bodies built before the clock starts), so the generator costs
little of the two cores it shares with the server.

* **throughput**: 8 clients, each sending batches of 100 events back to back: events
  acknowledged (200) per second; then how long the consumer takes to apply the backlog.
* **latency**: single events (``/v1/track``) sent open-loop at 1,000 per second (each on
  its schedule, whether or not earlier ones were answered; latency counted from the
  scheduled moment, so a stall is not hidden): p50 / p99 / max of the acknowledgement.
* **overload**: 400 connections sending batches of 500 as fast as they can: the share of
  429 answers, that the server stays up answering only 200 or 429, and its peak resident
  memory (VmHWM); a server that keeps up answers no 429 at all.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

BIN = Path(sys.executable).parent / "segmentum"


# -- the server ----------------------------------------------------------------------------
class Served:
    def __init__(self, work: Path, name: str, env: dict | None = None):
        self.ws = work / f"{name}.duckdb"
        out = subprocess.run([str(BIN), "-w", str(self.ws), "keys", "create", "bench", "--scopes", "track", "--json"],
                             capture_output=True, text=True, check=True)
        key = json.loads(out.stdout)["key"]
        self.auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        self.proc = subprocess.Popen([str(BIN), "-w", str(self.ws), "serve", "--port", "0", "--json"],
                                     stdout=subprocess.PIPE, env={**os.environ, **(env or {})}, text=True)
        info = json.loads(self.proc.stdout.readline())
        host_port = info["url"].removeprefix("http://")
        self.host, self.port = host_port.rsplit(":", 1)[0], int(host_port.rsplit(":", 1)[1])

    def _status_mib(self, field: str) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    def peak_mib(self) -> float:
        return self._status_mib("VmHWM")

    def rss_mib(self) -> float:
        return self._status_mib("VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU of the server so far (the machine is shared: wall time is not)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=120)


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, served: Served):
        self.served, self.reader, self.writer = served, None, None

    async def post(self, path: str, body: bytes) -> int:
        for attempt in (1, 2):
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(self.served.host, self.served.port)
                head = (f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {self.served.auth}\r\n"
                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
                self.writer.write(head + body)
                status = int((await self.reader.readline()).split()[1])
                length, close = 0, False
                while (line := await self.reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "connection" and "close" in value.lower():
                        close = True
                await self.reader.readexactly(length)
                if close:
                    self.close()
                return status
            except (ConnectionError, asyncio.IncompleteReadError, IndexError, ValueError):
                self.close()
                if attempt == 2:
                    return 0
        return 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _batch(run: str, n: int, size: int) -> bytes:
    return orjson.dumps({"batch": [
        {"type": "track", "userId": f"u{(n * size + i) % 5000}", "event": "Product Viewed",
         "messageId": f"{run}-{n}-{i}", "timestamp": "2026-10-31T12:00:00Z",
         "properties": {"sku": f"SKU-{i % 300}", "category": "Phones", "price": 9.99},
         "context": {"library": {"name": "bench"}, "ip": "127.0.0.1"}} for i in range(size)]})


def _wait_applied(served: Served, timeout: float) -> float:
    """Seconds until the consumer has applied everything (via /health)."""
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        health = httpx.get(f"http://{served.host}:{served.port}/health", timeout=30).json()
        if health["consumer"]["backlog"] == 0:
            return time.perf_counter() - started
        time.sleep(0.2)
    return float("nan")


# -- the steps ----------------------------------------------------------------------------
async def _throughput(served: Served, seconds: float, clients: int = 8, size: int = 100) -> dict:
    per_client = int(seconds * 20_000 / size / clients) + 10  # more than can be sent in time
    bodies = [[_batch(f"t{c}", n, size) for n in range(per_client)] for c in range(clients)]
    acked = [0] * clients
    other: dict[int, int] = {}
    stop_at = time.perf_counter() + seconds

    async def client(c: int) -> None:
        conn = Conn(served)
        for body in bodies[c]:
            if time.perf_counter() >= stop_at:
                break
            status = await conn.post("/v1/batch", body)
            if status == 200:
                acked[c] += size
            else:
                other[status] = other.get(status, 0) + 1
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - started
    return {"events": sum(acked), "seconds": elapsed, "rate": sum(acked) / elapsed, "other": other}


async def _latency(served: Served, seconds: float, rate: int = 1000, pool: int = 64) -> dict:
    n = int(seconds * rate)
    bodies = [orjson.dumps({"userId": f"u{i % 5000}", "event": "Product Viewed", "messageId": f"l-{i}",
                            "properties": {"sku": "SKU-1"}}) for i in range(n)]
    free: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(pool):
        free.put_nowait(Conn(served))
    latencies: list[float] = []
    failures: dict[int, int] = {}
    start = time.perf_counter() + 0.2

    async def one(i: int) -> None:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        conn = await free.get()
        status = await conn.post("/v1/track", bodies[i])
        latencies.append(time.perf_counter() - due)
        if status != 200:
            failures[status] = failures.get(status, 0) + 1
        free.put_nowait(conn)

    await asyncio.gather(*(one(i) for i in range(n)))
    sent = time.perf_counter() - start
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {"events": n, "seconds": sent, "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3,
            "max_ms": latencies[-1] * 1e3, "failures": failures}


async def _overload(served: Served, seconds: float, conns: int = 400, size: int = 500) -> dict:
    bodies = [_batch("o", n, size) for n in range(40)]
    counts: dict[int, int] = {}
    stop_at = time.perf_counter() + seconds
    peak_rss = [0.0]

    async def client(c: int) -> None:
        conn, k = Conn(served), c
        while time.perf_counter() < stop_at:
            status = await conn.post("/v1/batch", bodies[k % len(bodies)])
            counts[status] = counts.get(status, 0) + 1
            k += 1
        conn.close()

    async def sample() -> None:
        while time.perf_counter() < stop_at:
            peak_rss[0] = max(peak_rss[0], served.rss_mib())
            await asyncio.sleep(0.25)

    await asyncio.gather(sample(), *(client(c) for c in range(conns)))
    return {"answers": counts, "peak_rss_mib": peak_rss[0], "alive": served.alive()}


def run_suite(work: Path, seconds: float) -> list[dict]:
    """The three steps, each on its own fresh server; rows for the table."""
    rows = []
    served = Served(work, "throughput")
    try:
        cpu = served.cpu_seconds()
        t = asyncio.run(_throughput(served, seconds))
        per_event = (served.cpu_seconds() - cpu) / max(1, t["events"]) * 1e6
        apply_s = _wait_applied(served, timeout=600)
        rows.append({"step": f"8 clients x batches of 100: events acknowledged (server CPU {per_event:.0f} us/event, "
                             "consumer included)", "rows": t["events"],
                     "seconds": t["seconds"], "peak_mib": served.peak_mib(), "target": ">= 10,000 events/s",
                     "ok": t["rate"] >= 10_000, "note": f"{t['rate']:,.0f} events/s; other answers {t['other']}"})
        rows.append({"step": "consumer: applying that backlog to the workspace after the clients stopped",
                     "rows": t["events"], "seconds": apply_s, "peak_mib": served.peak_mib(), "target": "", "ok": None,
                     "note": ""})
    finally:
        served.stop()
    served = Served(work, "latency")
    try:
        cpu = served.cpu_seconds()
        lat = asyncio.run(_latency(served, seconds))
        per_request = (served.cpu_seconds() - cpu) / lat["events"] * 1e6
        rows.append({"step": f"single events at 1,000/s: ack p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, "
                             f"max {lat['max_ms']:.0f} ms (server CPU {per_request:.0f} us/request)", "rows": lat["events"], "seconds": lat["seconds"],
                     "peak_mib": served.peak_mib(), "target": "p99 <= 50 ms", "ok": lat["p99_ms"] <= 50 and not lat["failures"],
                     "note": f"failures {lat['failures']}"})
    finally:
        served.stop()
    served = Served(work, "overload")
    try:
        over = asyncio.run(_overload(served, seconds))
        answers = over["answers"]
        total = sum(answers.values()) or 1
        rows.append({"step": f"overload, 400 connections x batches of 500: {answers.get(429, 0) / total:.0%} answered 429, "
                             f"{answers.get(200, 0) / total:.0%} 200, server {'up' if over['alive'] else 'DOWN'}",
                     "rows": answers.get(200, 0) * 500, "seconds": seconds, "peak_mib": served.peak_mib(),
                     "target": "up, 429s, memory bounded",
                     "ok": over["alive"] and set(answers) <= {200, 429} and served.peak_mib() < 2048,
                     "note": f"answers {answers}"})
    finally:
        served.stop()
    return rows


def suite_service(sizes: list[int], work: Path, seconds: float = 20.0) -> list:
    """For benchmarks/run.py: the rows as its Result records (the suite has no data size)."""
    from run import Result  # benchmarks/run.py, the caller

    return [Result("service", r["step"], 0, r["rows"], r["seconds"], r["peak_mib"], r["target"], r["ok"])
            for r in run_suite(work, seconds)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each step")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="segmentum-bench-service-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = run_suite(work, args.seconds)
    for r in rows:
        rate = f"{r['rows'] / r['seconds']:,.0f}/s" if r["rows"] and r["seconds"] else ""
        print(f"{r['step']:<110} {r['rows']:>9,} {r['seconds']:7.2f} s {rate:>12} {r['peak_mib']:7.0f} MiB "
              f"{r['target']:<22} {'' if r['ok'] is None else ('yes' if r['ok'] else 'NO')}  {r['note']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
