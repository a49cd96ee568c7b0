"""Shared fixtures for analytics tests: small real DuckDB workspaces built from rows.

``make_ws(contacts=[...], orders=[...], order_items=[...], products=[...], events=[...],
rfm=DataFrame)`` opens ``tmp_path/ws0.duckdb`` and inserts the rows (dicts; missing canonical
columns are null, lineage columns are filled in). Tables other than the canonical six are
written as given with ``replace_table``. ``ws_builder(path, **tables)`` does the same at a
given path, for module-scoped fixtures.
"""

from __future__ import annotations

import pandas as pd
import pytest

from segmentum.data.schema import LINEAGE_COLUMNS, TABLES
from segmentum.workspace import open_workspace

LOADED_AT = pd.Timestamp("2000-01-01", tz="UTC")


def canonical_frame(kind: str, rows) -> pd.DataFrame:
    """Rows (dicts or a DataFrame) as a frame with exactly the table's columns, in order."""
    spec = TABLES[kind]
    records = rows.to_dict(orient="records") if isinstance(rows, pd.DataFrame) else list(rows)
    unknown = {k for r in records for k in r} - set(spec.names)
    if unknown:
        raise KeyError(f"{kind} has no columns {sorted(unknown)}")
    cols = list(spec.names)
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in records], columns=cols)
    for col in spec.columns:
        if col.dtype.is_timestamp():
            df[col.name] = pd.to_datetime(df[col.name], utc=True)
        elif col.dtype.is_decimal() or col.dtype.is_floating():
            df[col.name] = pd.to_numeric(df[col.name]).astype("float64")
        elif col.dtype.is_integer():
            df[col.name] = pd.array(df[col.name], dtype="Int64")
        elif col.dtype.is_boolean():
            df[col.name] = pd.array(df[col.name], dtype="boolean")
        elif col.dtype.is_string():
            df[col.name] = df[col.name].astype(object)
    df["_source"] = "test"
    df["_line"] = range(2, len(df) + 2)
    df["_loaded_at"] = LOADED_AT
    assert list(df.columns) == [*cols, *LINEAGE_COLUMNS]
    return df


def build_workspace(path, **tables):
    """Open a workspace at ``path`` and insert the given rows / tables (see module doc)."""
    ws = open_workspace(path)
    for kind in ("contacts", "products", "orders", "order_items", "events", "deals"):
        rows = tables.pop(kind, None)
        if rows is not None and len(rows):
            ws.warehouse.insert(kind, canonical_frame(kind, rows))
    for name, frame in tables.items():
        ws.warehouse.replace_table(name, frame)
    return ws


@pytest.fixture(scope="session")
def ws_builder():
    """``build(path, **tables)`` for module-scoped workspaces (caller closes them)."""
    return build_workspace


@pytest.fixture
def make_ws(tmp_path):
    """``make_ws(**tables)``: a fresh workspace in this test's tmp_path, closed afterwards."""
    opened = []

    def build(**tables):
        ws = build_workspace(tmp_path / f"ws{len(opened)}.duckdb", **tables)
        opened.append(ws)
        return ws

    yield build
    for ws in opened:
        ws.close()
