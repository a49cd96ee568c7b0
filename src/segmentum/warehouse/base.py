"""The backend-neutral warehouse interface and the factory that picks a backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from segmentum.config import WorkspaceConfig

__all__ = ["Warehouse", "UpsertResult", "connect"]


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert did: rows new to the table, rows that changed, rows already there as-is."""

    inserted: int
    updated: int
    unchanged: int


class Warehouse(ABC):
    """One warehouse reached through Ibis. Subclasses: DuckDBWarehouse, SparkWarehouse."""

    name: str
    con: ibis.BaseBackend

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

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside land together or not at all (where the backend has transactions)."""
        yield

    @abstractmethod
    def add_columns(self, name: str, columns: dict[str, dt.DataType]) -> None:
        """Add missing columns (custom attributes) to an existing table."""

    @abstractmethod
    def upsert(self, name: str, staged: ir.Table, key: tuple[str, ...]) -> UpsertResult:
        """Insert rows with new keys, update rows whose values changed, leave the rest."""

    @abstractmethod
    def delete_where(self, name: str, column: str, values: list) -> None:
        """Delete the rows whose ``column`` is one of ``values``."""

    def close(self) -> None:
        self.con.disconnect()


def connect(config: WorkspaceConfig) -> Warehouse:
    """Open the warehouse a config names."""
    if config.backend == "duckdb":
        from segmentum.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(config)
    if config.backend == "spark":
        from segmentum.warehouse.spark import SparkWarehouse

        return SparkWarehouse(config)
    raise AssertionError(config.backend)  # pydantic already limits the choices
