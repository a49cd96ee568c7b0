"""A workspace on Spark (local mode): configured by YAML, canonical tables created, read via Ibis."""

from __future__ import annotations

import pandas as pd
import pytest

from segmentum.errors import ConfigError, WorkspaceError

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_spark_workspace_from_yaml(spark_workspace, tmp_path):
    ws = spark_workspace("segmentum_test")
    assert ws.warehouse.name == "spark"
    assert {"contacts", "orders", "events", "_quarantine"} <= set(ws.tables())
    assert ws.table("orders").schema()["ordered_at"].is_timestamp()
    df = pd.DataFrame({"contact_id": ["a", "a", "b", None], "total": [10.0, 5.5, 1.0, None]})
    ws.warehouse.replace_table("spend", df)
    t = ws.table("spend")
    out = ws.to_pandas(t.group_by("contact_id").agg(s=t.total.sum()).order_by("contact_id"))
    # nulls stay nulls (not the text "NaN", not a NaN that Spark sorts above every number)
    assert out.s.tolist()[:2] == [15.5, 1.0] and out.contact_id.isna().sum() == 1
    assert t.filter(t.total.isnull()).count().to_pyarrow().as_py() == 1
    ws.warehouse.insert("spend", pd.DataFrame({"contact_id": ["c"], "total": [2.0]}))
    ws.warehouse.delete_where("spend", "contact_id", ["a"])
    left = ws.to_pandas(t.order_by("contact_id"))
    assert left.contact_id.tolist()[:2] == ["b", "c"] and len(left) == 3
    with pytest.raises(WorkspaceError, match="spark"):
        ws.load("orders", tmp_path / "x.csv")


def test_a_missing_table_source_is_a_config_error(spark_workspace, tmp_path):
    with pytest.raises(ConfigError, match="spark.tables.orders"):
        spark_workspace("segmentum_bad", tables={"orders": tmp_path / "nowhere"})
