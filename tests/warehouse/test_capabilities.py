"""Backend differences are capabilities of the Warehouse class: turning one off on a real
DuckDB warehouse changes what the workspace, ingestion, rules and RFM do - never its name."""

from __future__ import annotations

import pytest

import segmentum.workspace as workspace_module
from segmentum.data.schema import ORDER_LINE_COLUMNS
from segmentum.errors import WorkspaceError
from segmentum.segments import SegmentEngine
from segmentum.warehouse import Warehouse, warehouse_class
from segmentum.warehouse.duckdb import DuckDBWarehouse
from segmentum.warehouse.spark import SparkWarehouse
from tests.workspaces import canonical_frame

from ..conftest import CRM_EXAMPLES


class PlainDuckDB(DuckDBWarehouse):
    """DuckDB without the extras: no ingestion, no order-line copies, no epoch functions."""

    supports_ingest = False
    keeps_order_line_copies = False
    has_epoch_functions = False


@pytest.fixture
def plain_ws(tmp_path, monkeypatch):
    with monkeypatch.context() as m:  # only this workspace: `ws` is a plain DuckDB one
        m.setattr(workspace_module, "connect", PlainDuckDB)
        plain = workspace_module.open_workspace(tmp_path / "plain.duckdb")
    with plain:
        assert isinstance(plain.warehouse, PlainDuckDB) and plain.warehouse.name == "duckdb"
        yield plain


def test_capabilities_per_backend():
    assert DuckDBWarehouse.supports_ingest and DuckDBWarehouse.supports_transactions
    assert DuckDBWarehouse.keeps_order_line_copies and DuckDBWarehouse.has_epoch_functions
    for cap in ("supports_ingest", "supports_transactions", "keeps_order_line_copies",
                "has_epoch_functions"):
        assert getattr(SparkWarehouse, cap) is False and getattr(Warehouse, cap) is False


def test_warehouse_class_of_an_ibis_connection(ws):
    assert warehouse_class(ws.con) is DuckDBWarehouse


def test_without_order_line_copies_the_workspace_keeps_none(plain_ws, ws):
    assert type(ws.warehouse) is DuckDBWarehouse
    assert not set(ORDER_LINE_COLUMNS) & set(plain_ws.table("order_items").columns)
    assert set(ORDER_LINE_COLUMNS) <= set(ws.table("order_items").columns)


def test_without_ingest_loading_is_refused(plain_ws):
    with pytest.raises(WorkspaceError, match="Loading files needs"):
        plain_ws.load("contacts", CRM_EXAMPLES / "kontakty.csv",
                      mapping=CRM_EXAMPLES / "kontakty.yaml")


def _fill(*workspaces) -> None:
    """Four buyers, one order each (January to April 2024), in each workspace."""
    contacts = [{"contact_id": f"C{i}", "created_at": "2024-01-01T00:00:00Z"} for i in range(4)]
    orders = [
        {"order_id": f"O{i}", "contact_id": f"C{i}", "ordered_at": f"2024-0{i + 1}-15T10:00:00Z",
         "status": "completed", "total": 10.0 * (i + 1)}
        for i in range(4)
    ]
    items = [{"order_id": f"O{i}", "sku": "S1", "quantity": 1, "unit_price": 10.0}
             for i in range(4)]
    products = [{"sku": "S1", "name": "Thing", "category": "Toys", "brand": "B"}]
    for w in workspaces:
        for kind, rows in (("contacts", contacts), ("products", products), ("orders", orders),
                           ("order_items", items)):
            frame = canonical_frame(kind, rows)
            if kind == "order_items" and w.warehouse.keeps_order_line_copies:
                frame["_contact_id"] = [f"C{o[1:]}" for o in frame.order_id]
                frame["_ordered_at"] = canonical_frame("orders", orders).ordered_at.values
                frame["_status"] = "completed"
            w.warehouse.insert(kind, frame[list(w.table(kind).columns)])


def test_rules_give_the_same_members_with_the_generic_paths(plain_ws, ws):
    _fill(plain_ws, ws)
    rule = 'purchased(category = "Toys", last 90 days) and days_since(last orders) < 60'
    got = [sorted(SegmentEngine(w).members(rule, "2024-05-01").to_pandas().contact_id)
           for w in (plain_ws, ws)]
    assert got[0] == got[1] == ["C2", "C3"]


def test_rfm_recency_is_the_same_without_epoch_functions(plain_ws, ws):
    from segmentum.analytics.rfm import compute_rfm

    _fill(plain_ws, ws)
    days = [compute_rfm(w, as_of="2024-05-01").table for w in (plain_ws, ws)]
    got = [sorted(w.to_pandas(t)[["contact_id", "recency_days"]].itertuples(index=False))
           for w, t in zip((plain_ws, ws), days, strict=True)]
    assert got[0] == got[1]
    assert dict(got[1])["C3"] == 16  # last order 2024-04-15, as of 2024-05-01
