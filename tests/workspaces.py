"""Small real workspaces for tests: canonical rows in, a DuckDB workspace out.

``canonical_frame(kind, rows)`` turns dicts (or a frame) into the table's canonical columns plus
lineage (missing columns null; extra keys kept as custom attributes).
``build_workspace(path, **tables)`` opens a workspace and inserts the canonical kinds; other
tables are written as given with ``replace_table``. ``generated_workspace(root, contacts, seed)``
generates the synthetic retailer into ROOT/data and loads it through ingestion into ROOT/ws.duckdb.
"""

from __future__ import annotations

import json

import pandas as pd

from segmentum.data.schema import LINEAGE_COLUMNS, TABLES
from segmentum.workspace import open_workspace

__all__ = ["canonical_frame", "build_workspace", "generated_workspace", "LOADED_AT"]

LOADED_AT = pd.Timestamp("2000-01-01", tz="UTC")


def canonical_frame(kind: str, rows) -> pd.DataFrame:
    """Rows (dicts or a frame) as a frame with the table's canonical columns (+ lineage);
    extra keys are kept as extra columns (custom attributes)."""
    spec = TABLES[kind]
    records = rows.to_dict(orient="records") if isinstance(rows, pd.DataFrame) else list(rows)
    extra = sorted({k for r in records for k in r} - set(spec.names))
    cols = [*spec.names, *extra]
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in records], columns=cols)
    for col in spec.columns:
        if col.dtype.is_timestamp():
            df[col.name] = pd.to_datetime(df[col.name], utc=True, format="mixed").astype(
                "datetime64[us, UTC]"
            )
        elif col.dtype.is_date():
            df[col.name] = pd.to_datetime(df[col.name]).dt.date
        elif col.dtype.is_decimal() or col.dtype.is_floating():
            df[col.name] = pd.to_numeric(df[col.name]).astype("float64")
        elif col.dtype.is_integer():
            df[col.name] = pd.array(df[col.name], dtype="Int64")
        elif col.dtype.is_boolean():
            df[col.name] = pd.array(df[col.name], dtype="boolean")
        elif col.dtype.is_json():
            df[col.name] = [None if v is None else json.dumps(v) for v in df[col.name]]
        else:
            df[col.name] = df[col.name].astype(object)
    for col in extra:
        df[col] = df[col].astype(object)
    df["_source"] = "test"
    df["_line"] = range(2, len(df) + 2)
    df["_loaded_at"] = LOADED_AT
    return df[[*cols, *LINEAGE_COLUMNS]]


def build_workspace(path, **tables):
    """A workspace at ``path`` holding the given rows (canonical kinds) and other tables."""
    import ibis

    ws = open_workspace(path)
    for kind in ("contacts", "products", "orders", "order_items", "events", "deals"):
        rows = tables.pop(kind, None)
        if rows is None or not len(rows):
            continue
        df = canonical_frame(kind, rows)
        spec = TABLES[kind]
        extra = [c for c in df.columns if c not in spec.names and c not in LINEAGE_COLUMNS]
        if extra:
            ws.warehouse.add_columns(kind, {c: ibis.dtype("string") for c in extra})
        schema = ws.table(kind).schema()
        mem = ibis.memtable(df).cast({c: schema[c] for c in df.columns})
        ws.warehouse.insert(kind, mem)
    if ws.warehouse.name == "duckdb":
        from segmentum.data.ingest import sync_order_lines

        sync_order_lines(ws.warehouse)  # as ingestion keeps them
    for name, frame in tables.items():
        ws.warehouse.replace_table(name, frame)
    return ws


def generated_workspace(root, contacts: int, seed: int):
    """Generate ``contacts`` contacts into ROOT/data and load every kind (as `segmentum demo`
    does) into ROOT/ws.duckdb. Returns (workspace, manifest, data folder)."""
    from pathlib import Path

    from segmentum.cli.demo import LOAD_ORDER
    from segmentum.data.generate import generate

    data = Path(root) / "data"
    generate(data, contacts=contacts, seed=seed)
    manifest = json.loads((data / "manifest.json").read_text())
    ws = open_workspace(Path(root) / "ws.duckdb")
    for kind in LOAD_ORDER:
        ws.load(kind, data / f"{kind}.parquet")
    return ws, manifest, data
