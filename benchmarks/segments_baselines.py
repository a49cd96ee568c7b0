"""Baselines for the segment benchmark: the same segments in pandas and in PostgreSQL 15.

The data is a folder written by ``segmentum generate`` (Parquet), plus ``rfm.parquet`` and
``clv.parquet``: the workspace's score tables, which three segments use (``export_scores``
writes them from a workspace, computing them there first when missing). The rules themselves
are in ``segments_rules.py``.

pandas: ``load_pandas(dir)`` reads the tables into DataFrames (needed columns only,
categoricals for keys and low-cardinality strings); ``run_pandas(frames, names, as_of)`` runs
segments in one pass (shared row subsets, ``in_segment`` reuses results) and returns member
sets and the time.

PostgreSQL: ``load_postgres(dir, dsn)`` creates the tables, streams every file with COPY, adds
sensible indexes and runs VACUUM ANALYZE, and returns the time per step; ``run_postgres(dsn,
names, as_of)`` runs one query per segment on one connection and returns member sets and the
time. ``postgres.py`` next to this file starts a throwaway cluster.

    frames, load_s = load_pandas("data/")
    res = run_pandas(frames, ["iphone-accessories"], "2026-11-01T00:00:00Z")
    res.seconds, res.members["iphone-accessories"]

    python benchmarks/segments_baselines.py check DATA_DIR [--pg DSN]  # cross-check + timings
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segments_rules import RULES, SEGMENTS, AsOf, Frames, order  # noqa: E402

__all__ = [
    "AS_OF",
    "IPHONE",
    "TWENTY",
    "RunResult",
    "export_scores",
    "load_pandas",
    "run_pandas",
    "load_postgres",
    "run_postgres",
    "members_digest",
    "ground_truth_check",
]

AS_OF = "2026-11-01T00:00:00Z"
IPHONE = ["iphone-accessories"]
TWENTY = list(SEGMENTS)


def as_timestamp(as_of) -> pd.Timestamp:
    t = pd.Timestamp(as_of)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


@dataclass
class RunResult:
    """Members per segment (sets of contact_id), the time of all of them together, and the
    time of each (``per``)."""

    members: dict[str, set[str]]
    seconds: float
    per: dict[str, float] = field(default_factory=dict)
    server_peak_mib: float = 0.0
    cold_seconds: float | None = None

    def sizes(self) -> dict[str, int]:
        return {n: len(m) for n, m in self.members.items()}

    def digests(self) -> dict[str, str]:
        return {n: members_digest(m) for n, m in self.members.items()}

    @property
    def rows(self) -> int:
        return sum(len(m) for m in self.members.values())


def members_digest(ids) -> str:
    """A short fingerprint of a member set (sha256 of the sorted ids, one per line), to
    compare the engine's members with a baseline's across processes."""
    text = "\n".join(sorted(str(i) for i in ids))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- scores (rfm, clv) from the workspace -------------------------------------------------------


def export_scores(ws, data_dir: str | Path, as_of=AS_OF, *, recompute: bool = False) -> dict:
    """Write the workspace's ``rfm`` and ``clv`` tables to DATA_DIR/rfm.parquet, clv.parquet.

    Tables the workspace lacks (or all, with ``recompute``) are computed there first as of
    ``as_of`` (3-level RFM, CLV over 365 days), the same tables the engine reads. Returns
    the seconds spent per table."""
    from segmentum.analytics.clv import compute_clv
    from segmentum.analytics.rfm import compute_rfm

    data_dir = Path(data_dir)
    have = set(ws.warehouse.list_tables())
    spent = {}
    for name, compute in (("rfm", lambda: compute_rfm(ws, as_of=as_of)),
                          ("clv", lambda: compute_clv(ws, as_of=as_of))):
        t = time.perf_counter()
        if recompute or name not in have:
            compute()
        ws.table(name).to_parquet(str(data_dir / f"{name}.parquet"))
        spent[name] = time.perf_counter() - t
    return spent


# -- pandas ---------------------------------------------------------------------------------------


def _codes(col: pa.ChunkedArray, values: pa.Array) -> np.ndarray:
    """Positions in ``values`` of a dictionary-encoded string column's values (-1: absent):
    the chunks' dictionaries are unified and looked up in one go."""
    if col.num_chunks == 0:
        return np.empty(0, np.int32)
    col = col.unify_dictionaries()
    lookup = pc.fill_null(pc.index_in(col.chunks[0].dictionary, value_set=values), -1)
    lookup = lookup.to_numpy().astype(np.int32)
    parts = []
    for chunk in col.chunks:
        ind = pc.fill_null(chunk.indices, -1).to_numpy()
        parts.append(np.where(ind >= 0, lookup[np.maximum(ind, 0)], -1).astype(np.int32))
    return np.concatenate(parts)


@dataclass
class _Key:
    values: pa.Array  # the key's values in order: code i is values[i]
    dtype: pd.CategoricalDtype | None = None  # contact_id only: the categorical's type


def _read(path: Path, columns: list[str] | None = None, cats: tuple[str, ...] = (),
          keys: dict[str, _Key] | None = None) -> pd.DataFrame:
    """A Parquet file as a DataFrame: contact_id as a categorical over all contacts, order_id
    as an integer surrogate key (its row in orders), ``cats`` as categoricals. Keys are read
    dictionary-encoded, so their strings are never all in memory at once."""
    keys = keys or {}
    names = columns or pq.read_schema(path).names
    keyed = [n for n in names if n in keys]
    t = pq.read_table(path, columns=names, read_dictionary=[*cats, *keyed])
    out = {}
    for name in names:
        col = t.column(name)
        if name in keys:
            codes = _codes(col, keys[name].values)
            dtype = keys[name].dtype
            out[name] = codes if dtype is None else pd.Categorical.from_codes(codes, dtype=dtype)
        else:
            out[name] = col.to_pandas()  # dictionary columns become categoricals
    return pd.DataFrame(out)


def load_pandas(data_dir: str | Path) -> tuple[Frames, float]:
    """Read the generated Parquet files (and rfm / clv when present) into DataFrames.

    Only the columns the rules use are read from events, orders and order items. Keys are
    made cheap to group and join on, as a pandas user does with tens of millions of rows:
    contact_id becomes one categorical (the contacts' ids) in every table, contacts and the
    score tables are indexed by it, and order_id becomes an integer surrogate key."""
    t0 = time.perf_counter()
    d = Path(data_dir)

    def ids(table: str, name: str) -> pa.Array:
        return pq.read_table(d / f"{table}.parquet", columns=[name]).column(name).combine_chunks()

    contact_ids = ids("contacts", "contact_id")
    keys = {
        "contact_id": _Key(contact_ids, pd.CategoricalDtype(pd.Index(contact_ids.to_pandas()))),
        "order_id": _Key(ids("orders", "order_id")),
    }
    contacts = _read(d / "contacts.parquet", keys=keys).set_index("contact_id")
    contacts["birth_date"] = pd.to_datetime(contacts["birth_date"])
    events = _read(d / "events.parquet",
                   ["contact_id", "type", "occurred_at", "device_os", "category"],
                   cats=("type", "device_os", "category"), keys=keys)
    orders = _read(d / "orders.parquet",
                   ["order_id", "contact_id", "ordered_at", "total", "channel", "status"],
                   cats=("channel", "status"), keys=keys)
    items = _read(d / "order_items.parquet", ["order_id", "sku", "quantity"], cats=("sku",),
                  keys=keys)
    products = pd.read_parquet(d / "products.parquet", columns=["sku", "category", "brand"])
    deals = _read(d / "deals.parquet", keys=keys)
    scores = {}
    for name in ("rfm", "clv"):
        p = d / f"{name}.parquet"
        scores[name] = _read(p, keys=keys).set_index("contact_id") if p.exists() else None
    frames = Frames(contacts, events, orders, items, products, deals, scores["rfm"], scores["clv"])
    return frames, time.perf_counter() - t0


def run_pandas(frames: Frames, names: list[str], as_of=AS_OF) -> RunResult:
    """Evaluate segments in pandas as of ``as_of``, in one pass sharing row subsets."""
    v = AsOf(frames, as_timestamp(as_of))
    members, per = {}, {}
    t0 = time.perf_counter()
    for name in order(names):
        t = time.perf_counter()
        members[name] = v.segment(name)
        per[name] = time.perf_counter() - t
    seconds = time.perf_counter() - t0
    return RunResult({n: set(members[n]) for n in names}, seconds, per)


# -- PostgreSQL -----------------------------------------------------------------------------------

# the canonical tables (every column the generator writes), money as numeric(18,2)
PG_TABLES = {
    "contacts": """contact_id text PRIMARY KEY, email text, phone text, first_name text,
        last_name text, gender text, birth_date date, city text, country text, timezone text,
        created_at timestamptz NOT NULL, acquisition_channel text, email_opt_in boolean,
        sms_opt_in boolean, push_opt_in boolean, loyalty_tier text, preferred_store text,
        newsletter_topics text""",
    "products": """sku text PRIMARY KEY, name text, category text NOT NULL, brand text,
        price numeric(18,2), in_stock boolean, target_age_min_months bigint,
        target_age_max_months bigint, department text""",
    "orders": """order_id text PRIMARY KEY, contact_id text NOT NULL,
        ordered_at timestamptz NOT NULL, total numeric(18,2) NOT NULL, channel text,
        store_id text, currency text, status text""",
    "order_items": """order_id text NOT NULL, sku text NOT NULL, quantity bigint NOT NULL,
        unit_price numeric(18,2) NOT NULL, PRIMARY KEY (order_id, sku)""",
    "events": """event_id text, contact_id text NOT NULL, type text NOT NULL,
        occurred_at timestamptz NOT NULL, source text, device_os text, category text, sku text,
        brand text, campaign_id text, query text, url text, properties jsonb""",
    "deals": """deal_id text NOT NULL, contact_id text NOT NULL, stage text NOT NULL,
        updated_at timestamptz NOT NULL, pipeline text, amount numeric(18,2)""",
    "rfm": """contact_id text PRIMARY KEY, as_of timestamptz, recency_days bigint, frequency bigint,
        monetary numeric(18,2), r bigint, f bigint, m bigint, cell text, name text, r_label text,
        f_label text, m_label text, levels bigint, revenue numeric(18,2)""",
    "clv": """contact_id text PRIMARY KEY, as_of timestamptz, frequency bigint,
        recency double precision, "T" double precision, monetary_value double precision,
        p_alive double precision,
        expected_purchases double precision, expected_value double precision,
        horizon_days double precision""",
}

# what a DBA would add for these queries (primary keys above cover contacts, products, orders,
# order_items(order_id, sku) and the score tables). No index on orders(ordered_at) alone: the
# planner then walks 40% of the orders through it at random, slower than a sequential scan.
PG_INDEXES = [
    "CREATE INDEX events_type_time ON events (type, occurred_at)",
    "CREATE INDEX events_contact ON events (contact_id, type, occurred_at)",
    "CREATE INDEX orders_contact ON orders (contact_id, ordered_at)",
    "CREATE INDEX products_brand ON products (brand)",
    "CREATE INDEX products_category ON products (category)",
    "CREATE INDEX deals_contact ON deals (contact_id, updated_at)",
]


def _copy(conn, table: str, path: Path, batch_rows: int = 200_000) -> int:
    """Stream one Parquet file into a table with COPY ... (FORMAT csv): the columns the
    table declares (a custom attribute no rule uses is left out)."""
    pf = pq.ParquetFile(path)
    declared = {r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))}
    cols = [f.name for f in pf.schema_arrow if f.name in declared]
    quoted = ", ".join(f'"{c}"' for c in cols)
    n = 0
    sql = f"COPY {table} ({quoted}) FROM STDIN WITH (FORMAT csv)"
    with conn.cursor() as cur, cur.copy(sql) as cp:
        for batch in pf.iter_batches(batch_size=batch_rows, columns=cols):
            buf = io.BytesIO()
            pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=False))
            cp.write(buf.getbuffer())
            n += batch.num_rows
    return n


def load_postgres(data_dir: str | Path, dsn: str) -> dict:
    """Create the tables in the database ``dsn``, COPY the files in, index, VACUUM ANALYZE.

    Returns {"seconds": total, "rows": total rows, "steps": {step: seconds}}."""
    import psycopg

    d = Path(data_dir)
    steps: dict[str, float] = {}
    rows = 0
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, ddl in PG_TABLES.items():
            path = d / f"{table}.parquet"
            if not path.exists():
                continue
            t = time.perf_counter()
            # create + COPY in one transaction: with wal_level=minimal the rows skip the WAL
            with conn.transaction():
                conn.execute(f"DROP TABLE IF EXISTS {table}")
                conn.execute(f"CREATE TABLE {table} ({ddl})")
                rows += _copy(conn, table, path)
            steps[f"copy {table}"] = time.perf_counter() - t
        t = time.perf_counter()
        for sql in PG_INDEXES:
            conn.execute(sql)
        steps["indexes"] = time.perf_counter() - t
        t = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        steps["vacuum analyze"] = time.perf_counter() - t
    return {"seconds": time.perf_counter() - t0, "rows": rows, "steps": steps}


def run_postgres(dsn: str, names: list[str], as_of=AS_OF, *, warmup: bool = False) -> RunResult:
    """Run one self-contained query per segment on one connection; fetch the members.

    With ``warmup`` every query first runs once untimed (its time is ``cold_seconds``), so
    the timed pass finds the buffer cache as a long-running server has it. ``server_peak_mib``
    is the peak proportional set size of the server's processes during the run (sampled every
    100 ms; 0 when they cannot be read)."""
    import psycopg

    T = as_timestamp(as_of).to_pydatetime()
    with psycopg.connect(dsn) as conn, _ServerMemory(dsn) as mem:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SELECT 1 FROM contacts LIMIT 1").fetchall()  # connection warm, not data

        def one_pass() -> RunResult:
            members, per = {}, {}
            t0 = time.perf_counter()
            for name in names:
                t = time.perf_counter()
                rows = conn.execute(RULES[name].sql, {"T": T}).fetchall()
                members[name] = {r[0] for r in rows}
                per[name] = time.perf_counter() - t
            return RunResult(members, time.perf_counter() - t0, per)

        cold = one_pass() if warmup else None
        res = one_pass()
    res.server_peak_mib = mem.peak
    res.cold_seconds = cold.seconds if cold else None
    return res


class _ServerMemory:
    """Samples the PSS of a local cluster's processes (the DSN's host is its folder)."""

    def __init__(self, dsn: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        host = str(conninfo_to_dict(dsn).get("host") or "")
        self.dir = host if host.startswith("/") else None
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = None

    def _loop(self) -> None:
        from postgres import server_pss_mib

        while not self._stop.is_set():
            self.peak = max(self.peak, server_pss_mib(self.dir))
            self._stop.wait(0.1)

    def __enter__(self):
        if self.dir:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


# -- checks ---------------------------------------------------------------------------------------


def ground_truth_check(data_dir: str | Path, members: set[str], label: str = "apple_fan") -> dict:
    """Precision / recall of a member set against the generator's planted label."""
    gt = pd.read_parquet(Path(data_dir) / "ground_truth.parquet")
    truth = set(gt.loc[gt.label == label, "contact_id"])
    hit = len(members & truth)
    return {
        "label": label, "members": len(members), "labelled": len(truth), "true_positives": hit,
        "precision": hit / len(members) if members else float("nan"),
        "recall": hit / len(truth) if truth else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="run every rule in pandas (and PostgreSQL), compare, time")
    c.add_argument("data", type=Path)
    c.add_argument("--pg", default=None, help="DSN of a database to load and query")
    c.add_argument("--no-load", action="store_true", help="the database is loaded already")
    c.add_argument("--as-of", default=AS_OF)
    args = ap.parse_args()
    frames, load_s = load_pandas(args.data)
    out: dict = {"pandas_load_seconds": load_s}
    pi = run_pandas(frames, IPHONE, args.as_of)
    p20 = run_pandas(frames, TWENTY, args.as_of)
    out |= {"pandas_iphone_seconds": pi.seconds, "pandas_20_seconds": p20.seconds,
            "sizes": {n: len(m) for n, m in (pi.members | p20.members).items()},
            "ground_truth": ground_truth_check(args.data, pi.members[IPHONE[0]])}
    if args.pg:
        if not args.no_load:
            out["pg_load"] = load_postgres(args.data, args.pg)
        gi = run_postgres(args.pg, IPHONE, args.as_of)
        g20 = run_postgres(args.pg, TWENTY, args.as_of)
        out |= {"pg_iphone_seconds": gi.seconds, "pg_20_seconds": g20.seconds,
                "pg_per": g20.per,
                "mismatches": {n: (len(m), len((gi.members | g20.members)[n]))
                               for n, m in (pi.members | p20.members).items()
                               if m != (gi.members | g20.members)[n]}}
    out["pandas_per"] = p20.per
    print(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
