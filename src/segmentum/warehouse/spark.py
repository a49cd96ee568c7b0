"""A workspace on Spark: the tables live in a Spark catalog database and are read via Ibis.

Configured by a workspace YAML (``backend: spark``; see :mod:`segmentum.config` and the
README's "Spark" section). The session is local (``local[2]``, used by the parity tests) or a
cluster master URL. Canonical tables may be existing Parquet / Delta / Iceberg data named in
``spark.tables`` (by path and format, or by a catalog table name); they are exposed to Ibis as
views. Tables Segmentum writes itself (``rfm``, ``clv``, segment memberships, ...) are Parquet
tables at an explicit location in the database's folder, so a local workspace finds them again
after a restart even with Spark's in-memory catalog.

Analytics and segments run on it unchanged through Ibis. Upserting ingested rows needs a
table format with MERGE and is refused with an error that names the backend: file ingestion
runs on the embedded DuckDB warehouse (validate there, then write the canonical tables with
your Spark jobs). No value is ever spliced into SQL text: writes go through DataFrames.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from segmentum.config import WorkspaceConfig
from segmentum.errors import ConfigError, WorkspaceError
from segmentum.warehouse.base import F64, TS, UpsertResult, Warehouse

__all__ = ["SparkWarehouse", "spark_session"]

# Spark has no JSON type: event properties are JSON text, read through these built-ins.
_MAP = dt.Map(dt.string, dt.string)


@ibis.udf.scalar.builtin(name="from_json")
def _from_json(text: str, schema: str) -> _MAP:  # type: ignore[valid-type]
    """Spark's from_json(text, 'map<string,string>')."""


@ibis.udf.scalar.builtin(name="json_object_keys")
def _json_object_keys(text: str) -> dt.Array(dt.string):  # type: ignore[valid-type]
    """Spark's json_object_keys(text)."""


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
    if s.catalog == "hive":
        builder = builder.enableHiveSupport()
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(s.log_level)
    return session


class SparkWarehouse(Warehouse):
    name = "spark"

    def __init__(self, config: WorkspaceConfig):
        self.config = config
        self.session = spark_session(config)
        db = config.spark.database
        self.session.sql(f"CREATE DATABASE IF NOT EXISTS {_quote(db)}")
        self.session.catalog.setCurrentDatabase(db)
        self.con = ibis.pyspark.connect(self.session)
        self._register_existing()
        self._map_tables()

    # -- set-up --------------------------------------------------------------------------
    def _jvm_fs(self, location: str):
        jvm = self.session.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(location)
        return path, path.getFileSystem(self.session.sparkContext._jsc.hadoopConfiguration())

    def _db_location(self) -> str:
        return self.session.catalog.getDatabase(self.config.spark.database).locationUri

    def _location(self, name: str) -> str:
        return f"{self._db_location().rstrip('/')}/{name}"

    def _register_existing(self) -> None:
        """Tables written by an earlier session whose catalog forgot them (in-memory catalog):
        register every table folder of the database again, as a Parquet table at its path."""
        known = set(self.con.list_tables())
        path, fs = self._jvm_fs(self._db_location())
        if not fs.exists(path):
            return
        for status in fs.listStatus(path):
            name = status.getPath().getName()
            if status.isDirectory() and name not in known and not name.startswith((".", "_tmp")):
                if fs.exists(status.getPath().suffix("/_SUCCESS")):
                    self.session.catalog.createTable(
                        name, path=status.getPath().toString(), source="parquet"
                    )

    def _map_tables(self) -> None:
        """``spark.tables``: existing data exposed under a canonical name (a view)."""
        for name, src in self.config.spark.tables.items():
            try:
                if src.table:
                    df = self.session.table(src.table)
                else:
                    df = self.session.read.format(src.format).options(**src.options).load(src.path)
            except Exception as exc:  # AnalysisException: missing path / table / format
                raise ConfigError(
                    f"spark.tables.{name}: cannot read {src.table or src.path} "
                    f"({src.format}): {str(exc).splitlines()[0]}"
                ) from None
            df.createOrReplaceTempView(name)

    # -- writing -------------------------------------------------------------------------
    def _frame(self, obj, target: str | None = None):
        """A Spark DataFrame from an Ibis expression, an Arrow table or a pandas frame.
        Arrow keeps nulls as nulls (going through pandas would turn them into NaN)."""
        if isinstance(obj, ir.Table):
            if not obj.op().find(ops.InMemoryTable):
                reads = {t.name for t in obj.op().find(ops.DatabaseTable)}
                df = self.session.sql(self.con.compile(obj))
                # overwriting a table from a query that reads it needs the rows first
                return df.localCheckpoint() if target in reads else df
            obj = obj.to_pyarrow()
        if isinstance(obj, pd.DataFrame):
            obj = pa.Table.from_pandas(obj, preserve_index=False)
        if isinstance(obj, pa.Table):
            if obj.num_rows == 0:
                from ibis.backends.pyspark.datatypes import PySparkSchema

                schema = PySparkSchema.from_ibis(ibis.Schema.from_pyarrow(obj.schema))
                return self.session.createDataFrame([], schema)
            return self.session.createDataFrame(obj)
        raise TypeError(f"cannot write a {type(obj).__name__} to Spark")

    def _write(self, name: str, df, mode: str) -> None:
        df.write.mode(mode).format("parquet").option("path", self._location(name)).saveAsTable(name)

    def temp_table(self, name: str, expr: ir.Table) -> ir.Table:
        """A temporary view over the expression's rows, computed once (checkpointed)."""
        self._frame(expr).localCheckpoint().createOrReplaceTempView(name)
        return self.con.table(name)

    def drop_temp(self, name: str) -> None:
        self.session.catalog.dropTempView(name)

    def create_table(self, name: str, schema: dict[str, dt.DataType]) -> None:
        if not self.has_table(name):
            from ibis.backends.pyspark.datatypes import PySparkSchema

            spark_schema = PySparkSchema.from_ibis(ibis.schema(schema))
            self._write(name, self.session.createDataFrame([], spark_schema), "overwrite")

    def replace_table(self, name: str, obj) -> None:
        self._refuse_view(name, "overwrite")
        self._write(name, self._frame(obj, target=name), "overwrite")

    def insert(self, name: str, obj) -> None:
        self._refuse_view(name, "insert into")
        columns = self.session.table(name).columns
        df = self._frame(obj, target=name)
        self._write(name, df.select(*columns), "append")

    def delete_where(self, name: str, column: str, values: list) -> None:
        """Rewrite the table without those rows (an anti-join on a DataFrame of the values;
        rows whose ``column`` is null stay)."""
        self._refuse_view(name, "delete from")
        if not values:
            return
        table = self.session.table(name)
        keys = self.session.createDataFrame(
            [(v,) for v in dict.fromkeys(values)], table.select(column).schema
        )
        kept = table.join(keys, on=column, how="left_anti").select(*table.columns)
        self._write(name, kept.localCheckpoint(), "overwrite")

    def add_columns(self, name: str, columns: dict[str, dt.DataType]) -> None:
        from ibis.backends.sql.datatypes import PySparkType

        existing = set(self.table(name).columns)
        new = {c: t for c, t in columns.items() if c not in existing}
        if new:
            cols = ", ".join(f"{_quote(c)} {PySparkType.to_string(t)}" for c, t in new.items())
            self.session.sql(f"ALTER TABLE {_quote(name)} ADD COLUMNS ({cols})")

    def upsert(
        self, name: str, staged: ir.Table, key: tuple[str, ...], cluster_by: tuple[str, ...] = ()
    ) -> UpsertResult:
        raise WorkspaceError(
            "Upserting rows is not implemented on the spark backend: load files into a DuckDB "
            "workspace, or write the canonical tables with a Spark job (MERGE on Delta/Iceberg) "
            "and name them in the workspace YAML's spark.tables."
        )

    def _refuse_view(self, name: str, verb: str) -> None:
        if name in self.config.spark.tables:
            raise WorkspaceError(
                f"Cannot {verb} {name!r}: on this Spark workspace it is your own data "
                f"(spark.tables.{name}); Segmentum only reads it."
            )

    # -- JSON event properties (JSON text on Spark) --------------------------------------------
    def json_keys(self, props: ir.Value) -> ir.ArrayValue:
        return _json_object_keys(props.cast("string"))

    def json_value(self, props: ir.Value, key: str, want: str | None) -> ir.Value:
        text = _from_json(props.cast("string"), "map<string,string>")[key]
        if want == "number":
            return text.try_cast(F64)
        if want == "boolean":
            return text.cases(("true", True), ("false", False), else_=ibis.null("boolean"))
        if want == "timestamp":
            return text.try_cast(TS)
        return text

    def close(self) -> None:  # the session is shared by the process; leave it running
        pass


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"
