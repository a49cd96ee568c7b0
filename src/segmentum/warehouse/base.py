"""The backend-neutral warehouse interface and the factory that picks a backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from segmentum.config import WorkspaceConfig

__all__ = ["Warehouse", "UpsertResult", "ViewOver", "connect", "warehouse_class"]

# how a derived table is read from the tables it is stored as (see Warehouse.rewrite_view)
ViewOver = Callable[[dict[str, ir.Table]], ir.Table]

F64 = dt.Float64()
TS = dt.Timestamp(timezone="UTC")


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert did: rows new to the table, rows that changed, rows already there as-is."""

    inserted: int
    updated: int
    unchanged: int


class Warehouse(ABC):
    """One warehouse reached through Ibis. Subclasses: DuckDBWarehouse, SparkWarehouse.

    What a backend can do is said by the capabilities below; code above this package asks
    them, never the backend's name.
    """

    name: str
    con: ibis.BaseBackend

    # -- capabilities ------------------------------------------------------------------
    #: files load through it: staging, checks and upserts with change counts (``load``)
    supports_ingest: ClassVar[bool] = False
    #: :meth:`transaction` is all-or-nothing (elsewhere its writes land one by one)
    supports_transactions: ClassVar[bool] = False
    #: ``order_items`` carry their order's contact, time and status (``_contact_id``,
    #: ``_ordered_at``, ``_status``), kept right by ingestion, so rules need no join
    keeps_order_line_copies: ClassVar[bool] = False
    #: builtin ``epoch()`` / ``epoch_us()`` read an instant as a number, much faster than
    #: time-zone aware date arithmetic (DuckDB's ICU calendar)
    has_epoch_functions: ClassVar[bool] = False

    # -- reading -----------------------------------------------------------------------
    def table(self, name: str) -> ir.Table:
        return self.con.table(name)

    def has_table(self, name: str) -> bool:
        return name in self.con.list_tables()

    def list_tables(self) -> list[str]:
        return sorted(self.con.list_tables())

    # -- writing -----------------------------------------------------------------------
    def create_table(self, name: str, schema: dict[str, dt.DataType]) -> None:
        """Create an empty table with this schema unless it exists."""
        if not self.has_table(name):
            self.con.create_table(name, schema=ibis.schema(schema))

    def replace_table(self, name: str, obj) -> None:
        """Create or overwrite a table from an Ibis expression, DataFrame or Arrow table."""
        self.con.create_table(name, obj, overwrite=True)

    def insert(self, name: str, obj) -> None:
        self.con.insert(name, obj)

    def rewrite_table(self, name: str, expr: ir.Table) -> None:
        """Replace a derived table that is rewritten whole on every run (``_order_totals``,
        ...) with the rows of ``expr``, which may read the table it replaces. Backends may
        store it in a way that is cheaper to write; the columns and types are ``expr``'s."""
        self.replace_table(name, expr)

    def rewrite_view(self, name: str, parts: dict[str, ir.Table], view: ViewOver) -> None:
        """Replace the derived table ``name`` with the rows of ``view(parts)``, where
        ``view`` only joins and relabels the ``parts`` (say a narrow per-contact table and
        a small lookup of what its codes mean). A backend where a view over stored tables
        costs next to nothing to read keeps each part as the table ``_{name}_{part}`` and
        ``name`` as that view, which is much cheaper to write than the wide rows; here they
        are written as one table."""
        self.rewrite_table(name, view(parts))

    def temp_table(self, name: str, expr: ir.Table) -> ir.Table:
        """Materialise an expression for this connection only (see :meth:`drop_temp`)."""
        return self.con.create_table(name, expr, temp=True, overwrite=True)

    def drop_temp(self, name: str) -> None:
        self.con.drop_table(name, force=True)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside land together or not at all (where the backend has transactions)."""
        yield

    @abstractmethod
    def add_columns(self, name: str, columns: dict[str, dt.DataType]) -> None:
        """Add missing columns (custom attributes) to an existing table."""

    @abstractmethod
    def upsert(
        self, name: str, staged: ir.Table, key: tuple[str, ...], cluster_by: tuple[str, ...] = ()
    ) -> UpsertResult:
        """Insert rows with new keys, update rows whose values changed, leave the rest.
        New rows are written in ``cluster_by`` order where the backend can use it."""

    @abstractmethod
    def delete_where(self, name: str, column: str, values: list) -> None:
        """Delete the rows whose ``column`` is one of ``values``."""

    # -- JSON event properties ---------------------------------------------------------------
    # Event properties are a JSON column on DuckDB and JSON text on Spark (which has no JSON
    # type); these two methods are the only places that know. Keys are values, never SQL text.
    def json_keys(self, props: ir.Value) -> ir.ArrayValue:
        """The keys of a JSON object column, as an array of strings."""
        return props.map.keys()

    def json_value(self, props: ir.Value, key: str, want: str | None) -> ir.Value:
        """One property of a JSON object column, as the type it is used as: ``number``,
        ``boolean``, ``timestamp`` (null when it holds something else), or its text
        (strings as they are, numbers and booleans as JSON writes them; JSON null is null)."""
        plain = key.isidentifier() and key.isascii()
        raw = props[key] if plain else props.map[key]
        if want == "number":
            return raw.float.coalesce(raw.str.try_cast(F64))
        if want == "boolean":
            return raw.bool
        text = raw.str.coalesce(raw.cast("string").nullif("null"))
        if want == "timestamp":
            return text.try_cast(TS)
        return text

    def close(self) -> None:
        self.con.disconnect()


def warehouse_class(backend: ibis.BaseBackend) -> type[Warehouse]:
    """The Warehouse class of an Ibis connection, for its capabilities where only an
    expression is at hand (``warehouse_class(expr.get_backend()).has_epoch_functions``)."""
    if backend.name == "duckdb":
        from segmentum.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse
    from segmentum.warehouse.spark import SparkWarehouse

    return SparkWarehouse


def connect(config: WorkspaceConfig) -> Warehouse:
    """Open the warehouse a config names."""
    if config.backend == "duckdb":
        from segmentum.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(config)
    if config.backend == "spark":
        from segmentum.warehouse.spark import SparkWarehouse

        return SparkWarehouse(config)
    raise AssertionError(config.backend)  # pydantic already limits the choices
