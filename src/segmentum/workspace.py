"""The open workspace: a warehouse plus the canonical tables, for the CLI, the service and notebooks.

    >>> ws = open_workspace("shop.duckdb")
    >>> ws.load("orders", "orders.csv", mapping="orders.yaml")
    >>> ws.table("orders").group_by("channel").agg(n=_.count()).to_pandas()

Opening: ``open_workspace(path)`` creates a missing DuckDB file (a notebook that is about to
load data expects that); ``open_workspace(path, create=False)`` raises
:class:`~segmentum.errors.WorkspaceMissingError` instead, naming a similar existing file
nearby - what every CLI command that only reads does, so a typo in ``-w`` never leaves an
empty workspace behind. A DuckDB file that another process holds (say ``segmentum serve``)
raises :class:`~segmentum.errors.WorkspaceBusyError` with that process's id, and its URL
when it left a :func:`serve_file` next to the workspace.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from segmentum.config import WorkspaceConfig, resolve_config
from segmentum.data.schema import LINEAGE_COLUMNS, ORDER_LINE_COLUMNS, TABLES
from segmentum.errors import UsageError, WorkspaceBusyError, WorkspaceMissingError, did_you_mean
from segmentum.warehouse import Warehouse, connect

__all__ = ["Workspace", "open_workspace", "serve_file"]


class Workspace:
    """One warehouse holding one company's customer data."""

    def __init__(self, config: WorkspaceConfig):
        self.config = config
        try:
            self.warehouse: Warehouse = connect(config)
        except WorkspaceBusyError as exc:
            raise _held_by_server(exc, Path(config.path)) from None
        self._ensure_tables()

    # -- set-up --------------------------------------------------------------------------
    def _ensure_tables(self) -> None:
        from segmentum.data.schema import LOADS_SCHEMA, QUARANTINE_SCHEMA

        wh = self.warehouse
        for spec in TABLES.values():
            # where ingestion owns every write, it can keep order lines' copies right
            keeps = spec.kind == "order_items" and wh.keeps_order_line_copies
            derived = ORDER_LINE_COLUMNS if keeps else {}
            wh.create_table(spec.kind, {**spec.ibis_schema(), **LINEAGE_COLUMNS, **derived})
        if wh.keeps_order_line_copies and not (
            set(ORDER_LINE_COLUMNS) <= set(wh.table("order_items").columns)
        ):
            # a workspace from before order lines carried their order's fields
            from segmentum.data.ingest import sync_order_lines

            with wh.transaction():
                wh.add_columns("order_items", ORDER_LINE_COLUMNS)
                sync_order_lines(wh)
        wh.create_table("_loads", LOADS_SCHEMA)
        wh.create_table("_quarantine", QUARANTINE_SCHEMA)

    @property
    def con(self) -> ibis.BaseBackend:
        """The Ibis backend, for your own expressions."""
        return self.warehouse.con

    @property
    def location(self) -> str:
        if self.config.backend == "duckdb":
            return str(Path(self.config.path).resolve())
        return f"spark:{self.config.spark.master}/{self.config.spark.database}"

    # -- reading -------------------------------------------------------------------------
    def tables(self) -> list[str]:
        return self.warehouse.list_tables()

    def table(self, name: str) -> ir.Table:
        """Any table as an Ibis expression (lazy; nothing is read yet)."""
        if not self.warehouse.has_table(name):
            public = [t for t in self.tables() if not t.startswith("_")]
            raise UsageError(
                f"No table {name!r} in this workspace.{did_you_mean(name, public)} "
                f"Tables: {', '.join(public)}."
            )
        return self.warehouse.table(name)

    def _expr(self, obj: str | ir.Table) -> ir.Table:
        return self.table(obj) if isinstance(obj, str) else obj

    def to_pandas(self, obj: str | ir.Table, limit: int | None = None) -> pd.DataFrame:
        expr = self._expr(obj)
        return (expr.limit(limit) if limit else expr).to_pandas()

    def to_arrow(self, obj: str | ir.Table, limit: int | None = None) -> pa.Table:
        expr = self._expr(obj)
        return (expr.limit(limit) if limit else expr).to_pyarrow()

    # -- ingestion -----------------------------------------------------------------------
    def load(
        self,
        kind: str,
        path: str | os.PathLike,
        mapping: str | os.PathLike | dict | None = None,
        *,
        create_contacts: bool = False,
        progress=None,
    ):
        """Load a CSV / Parquet / JSON Lines file as ``kind``; returns a LoadReport."""
        from segmentum.data.ingest import load_file

        return load_file(
            self, kind, path, mapping=mapping, create_contacts=create_contacts, progress=progress
        )

    def quarantine(self, kind: str | None = None) -> ir.Table:
        q = self.table("_quarantine")
        return q.filter(q.kind == kind) if kind else q

    def info(self) -> dict:
        from segmentum.data.quality import workspace_info

        return workspace_info(self)

    def close(self) -> None:
        self.warehouse.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({self.location!r}, backend={self.config.backend!r})"


def open_workspace(
    workspace: str | os.PathLike | WorkspaceConfig | None = None, *, create: bool = True
) -> Workspace:
    """Open the workspace at a DuckDB path or described by a YAML config (None: the
    ``SEGMENTUM_WORKSPACE`` variable, else ``./segmentum.duckdb``). A missing DuckDB file
    is created, or with ``create=False`` is a :class:`WorkspaceMissingError`."""
    config = resolve_config(workspace)
    if not create and config.backend == "duckdb" and not Path(config.path).exists():
        raise _missing(Path(config.path), given=workspace is not None)
    return Workspace(config)


def serve_file(path: str | os.PathLike) -> Path:
    """Where ``segmentum serve`` notes its pid and URL while it holds the DuckDB file
    ``path``: ``PATH.serve.json``, e.g. ``shop.duckdb.serve.json``."""
    return Path(f"{os.fspath(path)}.serve.json")


def _missing(path: Path, *, given: bool) -> WorkspaceMissingError:
    """No DuckDB file at ``path``: say so, with a similar existing workspace nearby."""
    where = "" if given else (
        " (named by $SEGMENTUM_WORKSPACE)" if os.environ.get("SEGMENTUM_WORKSPACE")
        else " (the default workspace in this folder)"
    )
    folder = path.parent
    others = sorted(p.name for p in folder.glob("*.duckdb")) if folder.is_dir() else []
    close = difflib.get_close_matches(path.name, others, n=1, cutoff=0.5)
    if close:
        nearby = f" Did you mean {folder / close[0]} (an existing file nearby)?"
    elif others:
        nearby = f" Workspaces in {folder}: {', '.join(others[:5])}."
    elif not folder.is_dir():
        nearby = f" (The folder {folder} does not exist either.)"
    else:
        nearby = ""
    return WorkspaceMissingError(
        f"No workspace at {path}{where}.{nearby}",
        hint="Create one with `segmentum load KIND FILE` or `segmentum demo`, or give an "
        "existing one with -w PATH.",
        path=str(path),
        suggestion=str(folder / close[0]) if close else None,
    )


def _held_by_server(exc: WorkspaceBusyError, path: Path) -> WorkspaceBusyError:
    """The lock error, naming the `segmentum serve` process and URL when it is the holder."""
    try:
        note = json.loads(serve_file(path).read_text(encoding="utf-8"))
        pid, url = int(note["pid"]), str(note["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return exc
    holder = exc.details.get("pid")
    if holder is not None and holder != pid:
        return exc  # a stale note of an earlier server: the holder is another process
    return WorkspaceBusyError(
        f"segmentum serve (pid {pid}) at {url} holds this workspace ({path}): use the REST "
        "API there, or stop it",
        hint=f"Stop it with Ctrl-C in its terminal or `kill {pid}`, then run the command again.",
        path=str(path), pid=pid, url=url,
    )
