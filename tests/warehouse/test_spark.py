"""A workspace on Spark (local mode): configured by YAML, canonical tables created, read via Ibis."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from segmentum import open_workspace
from segmentum.errors import WorkspaceError

pytestmark = [pytest.mark.spark, pytest.mark.slow]

if shutil.which("java") is None:
    pytest.skip("Spark needs Java 17 on PATH", allow_module_level=True)
pytest.importorskip("pyspark")


def test_spark_workspace_from_yaml(tmp_path):
    cfg = tmp_path / "workspace.yaml"
    cfg.write_text(
        "backend: spark\n"
        "spark:\n"
        "  master: local[1]\n"
        "  database: segmentum_test\n"
        f"  conf: {{spark.sql.warehouse.dir: '{tmp_path / 'warehouse'}'}}\n"
    )
    ws = open_workspace(cfg)
    assert ws.warehouse.name == "spark"
    assert {"contacts", "orders", "events", "_quarantine"} <= set(ws.tables())
    assert ws.table("orders").schema()["ordered_at"].is_timestamp()
    df = pd.DataFrame({"contact_id": ["a", "a", "b"], "total": [10.0, 5.5, 1.0]})
    ws.warehouse.replace_table("spend", df)
    t = ws.table("spend")
    out = ws.to_pandas(t.group_by("contact_id").agg(s=t.total.sum()).order_by("contact_id"))
    assert out.s.tolist() == [15.5, 1.0]
    with pytest.raises(WorkspaceError, match="spark"):
        ws.load("orders", tmp_path / "x.csv")
