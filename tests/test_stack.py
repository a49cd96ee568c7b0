"""Pins of the stack that we rely on: these fail loudly if a dependency bump breaks us."""

from __future__ import annotations

import ibis
import pandas as pd
import sqlglot
from packaging.version import Version


def test_sqlglot_is_below_the_version_that_breaks_ibis_create_table():
    # ibis 12 + sqlglot >= 30.18 render `DROP VIEW IF EXISTS` without a name in create_table
    assert Version(sqlglot.__version__) < Version("30.18")


def test_ibis_duckdb_create_table_overwrite_and_memtable_work(tmp_path):
    con = ibis.duckdb.connect(str(tmp_path / "stack.duckdb"))
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    con.create_table("t", df, overwrite=True)
    con.create_table("t", df.assign(a=df.a * 10), overwrite=True)  # the path that broke
    t = con.table("t")
    assert t.a.sum().execute() == 60
    assert "t" in con.list_tables()  # duckdb 2.0 broke list_tables under ibis 12
    m = ibis.memtable(df)
    assert con.execute(m.count()) == 3
