"""A workspace on Spark: the canonical tables live in a Spark catalog database, read via Ibis.

Configured by a workspace YAML (``backend: spark``; see :mod:`segmentum.config`). The session
is local (``local[2]``, used by the parity tests) or a cluster master URL; tables may be plain
Parquet, Delta or Iceberg tables registered in the catalog. Analytics and segments run on it
unchanged through Ibis. Row-level writes (upsert, delete) need a table format with MERGE/DELETE
and are refused here with an error that names the backend; file ingestion runs on the embedded
DuckDB warehouse (validate there, then write the canonical tables with your Spark jobs).
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from segmentum.config import WorkspaceConfig
from segmentum.errors import ConfigError, WorkspaceError
from segmentum.warehouse.base import UpsertResult, Warehouse

__all__ = ["SparkWarehouse", "spark_session"]


def spark_session(config: WorkspaceConfig):
    """Get or create the SparkSession a workspace config describes."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            "This workspace uses Spark, but pyspark is not installed: pip install -e '.[spark]' "
            "(ibis 12 needs pyspark below 4.1, and Java 17)."
        ) from None
    s = config.spark
    builder = SparkSession.builder.master(s.master).appName(s.app_name)
    defaults = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
    }
    for key, value in {**defaults, **s.conf}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


class SparkWarehouse(Warehouse):
    name = "spark"

    def __init__(self, config: WorkspaceConfig):
        self.config = config
        self.session = spark_session(config)
        db = config.spark.database
        self.session.sql(f"CREATE DATABASE IF NOT EXISTS {_quote(db)}")
        self.session.catalog.setCurrentDatabase(db)
        self.con = ibis.pyspark.connect(self.session)

    def add_columns(self, name: str, columns: dict[str, dt.DataType]) -> None:
        from ibis.backends.sql.datatypes import PySparkType

        existing = set(self.table(name).columns)
        new = {c: t for c, t in columns.items() if c not in existing}
        if new:
            cols = ", ".join(f"{_quote(c)} {PySparkType.to_string(t)}" for c, t in new.items())
            self.session.sql(f"ALTER TABLE {_quote(name)} ADD COLUMNS ({cols})")

    def upsert(self, name: str, staged: ir.Table, key: tuple[str, ...]) -> UpsertResult:
        raise WorkspaceError(
            "Upserting rows is not implemented on the spark backend: load files into a DuckDB "
            "workspace, or write the canonical tables with a Spark job (MERGE on Delta/Iceberg)."
        )

    def delete_where(self, name: str, column: str, values: list) -> None:
        raise WorkspaceError(
            "Deleting rows is not implemented on the spark backend (needs Delta/Iceberg DELETE)."
        )

    def close(self) -> None:  # the session is shared by the process; leave it running
        pass


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"
