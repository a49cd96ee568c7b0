"""Benchmarks: one command, one table. `make bench` or `python benchmarks/run.py [options]`.

Every step runs as its own process (the real `segmentum` command where there is one), so its
wall time and peak resident memory (from wait4) are its own. Ratios against baselines are taken
in the same run, because this machine is shared and noisy.

Suites:
  ingest     generation time, load throughput (rows/s) from Parquet and CSV with validation on,
             peak memory — for each --sizes value (default 100000 and 1000000 contacts)
  analytics  RFM, cohorts, drill-down, CLV fit+predict: time and peak memory, and the ratio of
             an idiomatic pandas RFM (data already in memory) to Segmentum's in the same run
  segments   the iPhone rule and 20 saved segments refreshed together, against idiomatic
             pandas and PostgreSQL 15 with indexes (members checked equal), as ratios
  cli        start-up: `segmentum --help` and `segmentum rfm --help`, median of 7 processes
             (no workspace, no data; --sizes is ignored)
  service    `segmentum serve` on loopback: events/s acknowledged (8 clients, batches of 100),
             ack latency of single events at 1,000/s, 429s and peak memory under overload
             (benchmarks/service.py; --sizes is ignored)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
console = Console(width=170)  # a table read in logs and pipes, not squeezed to 80 columns


@dataclass
class Result:
    suite: str
    step: str
    size: int
    rows: int | None
    seconds: float
    peak_mib: float
    target: str = ""
    ok: bool | None = None

    @property
    def rate(self) -> float | None:
        return self.rows / self.seconds if self.rows and self.seconds else None


def segmentum(*args: str) -> list[str]:
    return [str(BIN / "segmentum"), *args]


def run_step(args: list[str], cwd: Path) -> tuple[float, float, str]:
    """Each step in a fresh `python -c` wrapper that reports its own peak RSS via wait4."""
    wrapper = (
        "import os, sys, json, time, subprocess;"
        "t=time.perf_counter(); p=subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE);"
        "out=p.stdout.read(); _,status,ru=os.wait4(p.pid,0);"
        "sys.stdout.write(json.dumps({'s':time.perf_counter()-t,'rss':ru.ru_maxrss/1024,'rc':os.waitstatus_to_exitcode(status),'out':out.decode()}))"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark wrapper failed: {proc.stderr}")
    info = json.loads(proc.stdout)
    if info["rc"] != 0:
        raise SystemExit(f"step failed ({info['rc']}): {' '.join(args)}\n{proc.stderr}")
    return info["s"], info["rss"], info["out"]


def suite_ingest(sizes: list[int], work: Path) -> list[Result]:
    results: list[Result] = []
    for n in sizes:
        for fmt in ("parquet", "csv"):
            data = work / f"data-{n}-{fmt}"
            s, rss, out = run_step(segmentum("generate", "--contacts", str(n), "--seed", "0", "--out", str(data), "--format", fmt, "--json"), work)
            rows = sum(json.loads(out).get("rows", {}).values())
            results.append(Result("ingest", f"generate ({fmt})", n, rows, s, rss, "few minutes at 1M", s < 600 if n >= 1_000_000 else None))
            ws = work / f"ws-{n}-{fmt}.duckdb"
            total_rows, total_s, peak = 0, 0.0, 0.0
            for kind in ("products", "contacts", "orders", "order_items", "events", "deals"):
                s, rss, out = run_step(segmentum("-w", str(ws), "load", kind, str(data / f"{kind}.{fmt}"), "--json"), work)
                rep = json.loads(out)
                assert rep["accepted"] + rep["quarantined"] == rep["input"], rep
                total_rows += rep["input"]
                total_s += s
                peak = max(peak, rss)
                if kind in ("orders", "events"):
                    target = ">= 1M rows/s" if fmt == "parquet" else ">= 300k rows/s"
                    floor = 1_000_000 if fmt == "parquet" else 300_000
                    results.append(Result("ingest", f"load {kind} ({fmt})", n, rep["input"], s, rss, target, rep["input"] / s >= floor))
            results.append(Result("ingest", f"load all six ({fmt})", n, total_rows, total_s, peak, "peak < 4096 MiB", peak < 4096))
            # the floor: DuckDB itself copying the same events file into a table, no checks
            floor_db = work / f"floor-{n}.duckdb"
            reader = "read_parquet" if fmt == "parquet" else "read_csv"
            code = (
                "import duckdb,sys; c=duckdb.connect(sys.argv[1]); c.execute('SET enable_progress_bar=false');"
                "c.execute('SET preserve_insertion_order=false');"
                f"c.execute('CREATE TABLE e AS SELECT * FROM {reader}(?)'.replace('?', repr(sys.argv[2])))"
            )
            s, rss, _ = run_step([sys.executable, "-c", code, str(floor_db), str(data / f"events.{fmt}")], work)
            ours = next(r for r in results if r.step == f"load events ({fmt})" and r.size == n)
            results.append(Result("ingest", f"baseline: plain DuckDB copy of events.{fmt}", n, ours.rows, s, rss, "", None))
            results.append(Result("ingest", f"validation overhead: ours / plain copy = {ours.seconds / s:.2f}x", n, None, 0.0, 0.0, "", None))
            for p in work.glob(f"floor-{n}.duckdb*"):
                p.unlink()
            shutil.rmtree(data, ignore_errors=True)
            for p in work.glob(f"ws-{n}-{fmt}.duckdb*"):
                p.unlink()
        print_table(results)  # long runs: show what is done so far
    return results


AS_OF = "2026-11-01"  # the generator's data ends on 2026-10-31


def _workspace(n: int, work: Path, kinds: tuple[str, ...]) -> Path:
    """A workspace with generated data for n contacts (reused across suites of one run)."""
    data = work / f"data-{n}-parquet"
    ws = work / f"ws-{n}.duckdb"
    if not (data / "manifest.json").exists():
        run_step(segmentum("generate", "--contacts", str(n), "--seed", "0", "--out", str(data), "--json"), work)
    done = work / f"ws-{n}.kinds"
    have = set(done.read_text().split()) if done.exists() else set()
    for kind in kinds:
        if kind not in have:
            run_step(segmentum("-w", str(ws), "load", kind, str(data / f"{kind}.parquet"), "--json"), work)
            have.add(kind)
    done.write_text(" ".join(sorted(have)))
    return ws


def step(name: str, ws: Path, work: Path) -> tuple[dict, float]:
    s, rss, out = run_step([sys.executable, str(Path(__file__).with_name("steps.py")), name, str(ws), AS_OF], work)
    return json.loads(out), rss


def suite_analytics(sizes: list[int], work: Path) -> list[Result]:
    results: list[Result] = []
    for n in sizes:
        ws = _workspace(n, work, ("products", "contacts", "orders", "order_items"))
        rfm, rss = step("rfm", ws, work)
        results.append(Result("analytics", f"RFM (segmentum, warm median of 3; cold {rfm['cold_seconds']:.2f} s; from {rfm['source']})", n, rfm["rows"], rfm["seconds"], rss, "< 3 s at 1M", rfm["seconds"] < 3 if n >= 1_000_000 else None))
        pdr, rss = step("rfm_pandas", ws, work)
        assert pdr["rows"] == rfm["rows"], (pdr, rfm)
        ratio = pdr["seconds"] / rfm["seconds"]
        results.append(Result("analytics", f"RFM (pandas, in memory, same output, warm median of 3; cold {pdr['cold_seconds']:.2f} s; load {pdr['load_seconds']:.1f} s)", n, pdr["rows"], pdr["seconds"], rss, "", None))
        results.append(Result("analytics", f"RFM ratio pandas/segmentum = {ratio:.1f}x (scores only: {pdr['scores_seconds'] / rfm['seconds']:.1f}x)", n, None, 0.0, 0.0, ">= 5x", ratio >= 5))
        for name, label, target, limit in (
            ("cohorts", "cohorts (retention, monthly)", "", None),
            ("drilldown", "drill-down (Champions by category)", "", None),
            ("clv", "CLV fit + predict", "< 30 s at 1M", 30),
        ):
            r, rss = step(name, ws, work)
            ok = (r["seconds"] < limit and rss < 4096) if (limit and n >= 1_000_000) else None
            results.append(Result("analytics", label, n, r["rows"], r["seconds"], rss, target, ok))
    return results


def suite_segments(sizes: list[int], work: Path) -> list[Result]:
    """The iPhone rule and 20 saved segments: engine vs idiomatic pandas vs PostgreSQL 15
    (Debian's packages, a throwaway cluster with indexes), same data, same run. Members are
    compared by digest: a baseline that disagrees with the engine is reported, not timed."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import postgres

    results: list[Result] = []
    for n in sizes:
        ws = _workspace(n, work, ("products", "contacts", "orders", "order_items", "events", "deals"))
        os.environ["SEGMENTUM_BENCH_DATA"] = str(work / f"data-{n}-parquet")
        runs: dict[str, dict] = {}
        for key in ("seg_iphone", "seg_20", "seg_pandas_iphone", "seg_pandas_20"):
            runs[key], runs[key]["rss"] = step(key, ws, work)
        shutil.rmtree(work / f"pg-{n}", ignore_errors=True)
        try:  # installs Debian's postgresql first when it is missing (as root)
            pg = postgres.Cluster.start(work / f"pg-{n}")
        except (SystemExit, Exception) as exc:
            console.print(f"[yellow]PostgreSQL baseline skipped: {exc}[/]")
            pg = None
        if pg:
            os.environ["SEGMENTUM_BENCH_PG"] = pg.dsn
            try:
                for key in ("seg_pg_load", "seg_pg_iphone", "seg_pg_20"):
                    runs[key], runs[key]["rss"] = step(key, ws, work)
            finally:
                pg.stop(remove=True)
        for what, target_s, label in (("iphone", 1.0, "iPhone rule"), ("20", 10.0, "20 segments")):
            eng = runs[f"seg_{what}"]
            ok = (eng["seconds"] <= target_s * 1.5 and eng["rss"] < 4096) if n >= 1_000_000 else None
            results.append(Result("segments", f"{label} (segmentum, warm; cold {eng['cold_seconds']:.1f} s)", n, eng["rows"], eng["seconds"],
                                  eng["rss"], f"~{target_s:g} s at 1M" if what == "iphone" else "< 10 s at 1M", ok))
            for base, need in (("pandas", 10), ("pg", 5)):
                r = runs.get(f"seg_{base}_{what}")
                if r is None:
                    continue
                same = r["digests"] == eng["digests"]
                name = "pandas, in memory" if base == "pandas" else "PostgreSQL 15, warm"
                extra = f"load {r['load_seconds']:.1f} s" if base == "pandas" else f"cold {r['cold_seconds']:.1f} s"
                rss = r["rss"] if base == "pandas" else r.get("server_peak_mib") or r["rss"]
                results.append(Result("segments", f"{label} ({name}; {extra})", n, r["rows"], r["seconds"], rss))
                ratio = r["seconds"] / eng["seconds"]
                verdict = f"{label}: {base}/segmentum = {ratio:.1f}x" + ("" if same else " - MEMBERS DIFFER")
                ok = (same and ratio >= need) if n >= 1_000_000 else (None if same else False)
                results.append(Result("segments", verdict, n, None, 0.0, 0.0, f">= {need}x at 1M", ok))
        if "seg_pg_load" in runs:
            r = runs["seg_pg_load"]
            results.append(Result("segments", "PostgreSQL load (COPY, indexes, ANALYZE)", n, r["rows"], r["seconds"], r["rss"]))
        print_table(results)
    return results


def _startup(args: list[str], cwd: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, peak MiB) of one process, its output discarded."""
    t = time.perf_counter()
    p = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"step failed: {' '.join(args)}")
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def suite_cli(sizes: list[int], work: Path) -> list[Result]:
    """Start-up of the command: every command pays it, even --help. The CPU time is shown
    too, as a shared machine's load stretches the wall time."""
    results: list[Result] = []
    for args in (("--help",), ("rfm", "--help")):
        runs = sorted(_startup(segmentum(*args), work) for _ in range(7))
        wall, cpu, rss = runs[len(runs) // 2]
        results.append(Result("cli", f"segmentum {' '.join(args)} (median of 7; CPU {cpu:.2f} s)",
                              0, None, wall, rss, "< 0.5 s", wall < 0.5))
    return results


def suite_service(sizes: list[int], work: Path) -> list[Result]:
    """`segmentum serve` over loopback (benchmarks/service.py; --sizes is ignored)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import service

    return service.suite_service(sizes, work)


def suite_campaigns(sizes: list[int], work: Path) -> list[Result]:
    """A campaign to every contact: planned in full without writing (controls, consent, caps,
    best send hours, quiet hours, every message rendered), recorded in the delivery log, and
    its report (with the generator's orders of the weeks after the history loaded)."""
    results: list[Result] = []
    for n in sizes:
        ws = _workspace(n, work, ("products", "contacts", "orders", "order_items", "events"))
        marker = work / f"ws-{n}.campaign-orders"
        if not marker.exists():
            orders = work / f"data-{n}-parquet" / "campaign_orders.parquet"
            run_step(segmentum("-w", str(ws), "load", "orders", str(orders), "--json"), work)
            marker.write_text("loaded")
        big = n >= 1_000_000
        r, rss = step("campaign_plan", ws, work)
        ok = (r["seconds"] < 60 and rss < 2048) if big else None
        results.append(Result("campaigns", "plan a campaign to every contact (dry run, all rendered)",
                              n, r["rows"], r["seconds"], rss, "< 60 s, < 2 GiB at 1M", ok))
        r, rss = step("campaign_record", ws, work)
        what = "plan + record in the delivery log" if r["planned_now"] else "record (already there)"
        results.append(Result("campaigns", what, n, r["rows"], r["seconds"], rss))
        r, rss = step("campaign_report", ws, work)
        results.append(Result("campaigns", "report (Newcombe, Welch, MDE, CUPED)", n, r["rows"],
                              r["seconds"], rss, "< 5 s at 1M", r["seconds"] < 5 if big else None))
        print_table(results)
    return results


SUITES = {"ingest": suite_ingest, "analytics": suite_analytics, "segments": suite_segments,
          "cli": suite_cli, "service": suite_service, "campaigns": suite_campaigns}


def print_table(results: list[Result]) -> None:
    t = Table(title="Segmentum benchmarks", title_justify="left")
    for col in ("suite", "step", "contacts", "rows", "seconds", "rows/s", "peak MiB", "target", "ok"):
        t.add_column(col, justify="left" if col in ("suite", "step", "target") else "right")
    for r in results:
        t.add_row(
            r.suite, r.step, f"{r.size:,}", f"{r.rows:,}" if r.rows else "",
            f"{r.seconds:.2f}", f"{r.rate:,.0f}" if r.rate else "", f"{r.peak_mib:,.0f}",
            r.target, "" if r.ok is None else ("yes" if r.ok else "NO"),
        )
    console.print(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", action="append", choices=sorted(SUITES), help="default: all")
    ap.add_argument("--sizes", default="100000,1000000", help="contacts, comma-separated")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="also write results to this JSON file")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    work = args.work or Path(tempfile.mkdtemp(prefix="segmentum-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    for name in args.suite or sorted(SUITES):
        results += SUITES[name](sizes, work)
        print_table(results)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ | {"rate": r.rate} for r in results], indent=2))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
