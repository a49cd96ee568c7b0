"""Analytics: KPIs, RFM grid and cells, migration, cohorts, CLV, funnel, drill-down, life
stage, models. Each answer carries the as-of time it was computed for (``as_of``, how it was
chosen in ``as_of_rule``, ``newest_data``, and ``warnings`` when it lies after the data),
the same keys as the CLI's ``--json``; rows are lists of records, one key per column."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from segmentum.service.schemas.common import Model

__all__ = ["Loose", "AsOfInfo", "Kpis", "RfmSummary", "RfmCell", "RfmCompute", "Cohorts",
           "ClvSummary", "ClvFit", "FunnelReport", "Drilldown", "Lifestage", "ModelInfo",
           "Migration"]


class Loose(BaseModel):
    """An answer with the keys below and possibly more (the library's own)."""

    model_config = ConfigDict(extra="allow")


class AsOfInfo(Loose):
    as_of: _dt.datetime
    as_of_rule: str | None = Field(default=None, description="given, now, or the end of the newest data's day")
    newest_data: _dt.datetime | None = None
    warnings: list[str] = Field(default_factory=list)


class Kpis(AsOfInfo):
    contacts: int
    buyers: int
    orders: int
    revenue: float
    orders_per_buyer: float | None
    average_check: float | None
    repeat_rate: float | None = Field(description="share of buyers with two or more purchases")
    saved_segments: int
    quarantined: int = Field(description="records in the quarantine")


class RfmSummary(AsOfInfo):
    levels: int
    source: Literal["table", "computed"] = Field(description="read from the rfm table, or scored now")
    buyers: int
    contacts: int
    cells: list[dict[str, Any]] = Field(description="per cell: r, f, m, contacts, share_of_buyers, revenue, ...")
    names: list[dict[str, Any]] = Field(description="per named segment: contacts, share_of_contacts, ...")
    chart: dict[str, Any] | None = Field(default=None, description="Vega-Lite spec of the grid")


class RfmCell(AsOfInfo):
    cell: str
    summary: dict[str, Any] | None
    drilldown: list[dict[str, Any]] = Field(description="what the cell buys vs. the base (lift)")


class RfmCompute(Model):
    as_of: str | None = None
    levels: Literal[3, 5] = 3
    monetary: Literal["sum", "mean"] = "sum"
    name: str = Field(default="rfm", pattern=r"^[a-z][a-z0-9_]{0,40}$")
    replace: bool = False


class Cohorts(AsOfInfo):
    by: str
    period: str
    metric: str
    sizes: dict[str, int]
    rows: list[dict[str, Any]]
    notes: list[str]
    chart: dict[str, Any] | None = None


class ClvSummary(Loose):
    name: str
    as_of: _dt.datetime | None
    contacts: int
    horizon_days: float | None
    mean_p_alive: float | None
    expected_value: float | None
    by_buyer_type: list[dict[str, Any]]
    models: list[dict[str, Any]]


class ClvFit(Model):
    as_of: str | None = None
    horizon_days: float = Field(default=365, gt=0, le=3650)
    model: Literal["bgnbd", "mbgnbd"] = "bgnbd"
    name: str = Field(default="clv", pattern=r"^[a-z][a-z0-9_]{0,40}$")
    replace: bool = False


class FunnelReport(Loose):
    as_of: _dt.datetime
    order: list[str]
    totals: dict[str, Any]
    stages: list[dict[str, Any]]


class Drilldown(Loose):
    segment: str
    segment_source: str | None = None
    rows: list[dict[str, Any]]


class Lifestage(AsOfInfo):
    bands: list[dict[str, Any]]


class Migration(Loose):
    groups: list[str]
    matrix: list[list[int]]
    flows: list[dict[str, Any]]


class ModelInfo(Loose):
    name: str
    kind: str
    table: str
    as_of: _dt.datetime | None
    meaning: dict[str, Any] | None = Field(description="the settings that decide what its values mean")
    description: str = Field(description="the meaning in words")
    readers: list[str] = Field(description="saved segments whose rules read it")
