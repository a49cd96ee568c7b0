"""Benchmark the synthetic data generator: wall time, rows per file and peak memory.

Each measurement runs ``segmentum.data.generate.generate`` in a fresh subprocess, so the
peak resident set size (``ru_maxrss`` of that child) is the generator's own.

    .venv/bin/python benchmarks/generate_bench.py --contacts 100000 --out /tmp/gen --format parquet
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

_CHILD = r"""
import json, resource, sys, time
from segmentum.data.generate import generate
out, contacts, fmt = sys.argv[1], int(sys.argv[2]), sys.argv[3]
began = time.perf_counter()
s = generate(out, contacts=contacts, seed=0, fmt=fmt)
seconds = time.perf_counter() - began
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"seconds": seconds, "rows": s.rows, "peak_rss_mib": peak_kib / 1024}))
"""


def bench_generate(contacts: int, out: Path, fmt: str = "parquet") -> dict:
    """Generate ``contacts`` contacts into ``out`` in a subprocess and measure it.

    Returns {"contacts", "format", "seconds", "rows" (per file), "peak_rss_mib",
    "bytes" (total size of the written files), "contacts_per_second"}.
    """
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(out), str(contacts), fmt],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - began
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    return {
        "contacts": contacts,
        "format": fmt,
        "seconds": round(result["seconds"], 2),
        "wall_seconds_with_startup": round(wall, 2),
        "rows": result["rows"],
        "peak_rss_mib": round(result["peak_rss_mib"], 1),
        "bytes": size,
        "contacts_per_second": round(contacts / result["seconds"]),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/segmentum-generate-bench"))
    ap.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args(argv)
    try:
        result = bench_generate(args.contacts, args.out, args.format)
    finally:
        if not args.keep and args.out.exists():
            shutil.rmtree(args.out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
