"""RFM for a workspace: write the `rfm` table, summarise it per cell and per name, migrations.

``compute_rfm`` fits an :class:`RFM` and writes its per-contact table into the warehouse
(on DuckDB a view joining a narrow table of scores and cell codes with the map's cells,
see ``Warehouse.rewrite_view``), optionally to a CSV / Parquet file straight from the
warehouse, and summarises the written table (:func:`summarise`): only the totals per cell
come out.
``rfm_migration`` scores two dates and counts contacts per (from, to) pair.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import pandas as pd

from segmentum.analytics.rfm._model import RFM, RFM_COLUMNS, load_thresholds, to_utc
from segmentum.analytics.rfm._segment_map import NO_ORDERS, OTHER, SegmentMap
from segmentum.errors import UsageError, WorkspaceError
from segmentum.segments.models import ModelRegistry, ModelSpec, ModelWrite, writing

__all__ = [
    "NOT_YET_A_CONTACT",
    "OUTPUT_FORMATS",
    "RFMMigration",
    "RFMResult",
    "compute_rfm",
    "rfm_migration",
    "summarise",
]

NOT_YET_A_CONTACT = "Not yet a contact"
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class RFMResult:
    """What ``compute_rfm`` did: the edges used and the summaries per cell and per name."""

    as_of: _dt.datetime
    levels: int
    monetary: str
    edges: dict[str, list]
    edges_source: dict[str, str]
    bins: pd.DataFrame
    cells: pd.DataFrame
    names: pd.DataFrame
    contacts: int
    contacts_with_orders: int
    table: str = "rfm"
    out: str | None = None
    metrics_from: str = "orders"  # or "order totals": the per-contact totals loads keep
    model: RFM | None = field(default=None, repr=False)
    written: ModelWrite | None = field(default=None, repr=False)  # what the registry did

    def to_dict(self) -> dict:
        """Plain data for JSON: the keys ``segmentum rfm --json`` prints."""
        return {
            "as_of": self.as_of,
            "levels": self.levels,
            "monetary": self.monetary,
            "edges": self.edges,
            "edges_source": self.edges_source,
            "bins": self.bins,
            "contacts": self.contacts,
            "contacts_with_orders": self.contacts_with_orders,
            "no_orders": self.contacts - self.contacts_with_orders,
            "cells": self.cells,
            "names": self.names,
            "table": self.table,
            "out": self.out,
            "metrics_from": self.metrics_from,
            "model": None if self.written is None else self.written.to_dict(),
        }


def _check_out(out: str | os.PathLike | None) -> str | None:
    if out is None:
        return None
    fmt = OUTPUT_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        raise UsageError(
            f"Cannot tell the format of {os.fspath(out)!r} from its extension: "
            "use .csv or .parquet."
        )
    parent = Path(out).parent
    if not parent.exists():
        raise UsageError(f"Cannot write {os.fspath(out)!r}: folder {parent} does not exist.")
    return fmt


def compute_rfm(
    ws,
    as_of=None,
    levels: int | None = None,
    monetary: str | None = None,
    thresholds=None,
    segment_map=None,
    *,
    name: str = "rfm",
    replace: bool = False,
    out: str | os.PathLike | None = None,
) -> RFMResult:
    """Score every contact as of ``as_of`` and write the model ``name`` (table ``rfm`` by
    default); return the summaries.

    With none of ``levels``, ``monetary``, ``thresholds``, ``segment_map`` given, the model
    ``name`` is refreshed with the settings it was computed with (the defaults for a new
    one: 3 levels, sum, quantiles, the default map); otherwise the settings given count,
    the others taking their defaults (``levels=None``: the thresholds file's, else 3).
    Other levels, monetary, thresholds or segment map than the model ``name`` has are
    refused while saved segments read it, unless ``replace`` (see
    :func:`segmentum.segments.models.writing`). ``out`` also writes the per-contact table
    to a ``.csv`` or ``.parquet`` file.
    """
    fmt = _check_out(out)
    if all(v is None for v in (levels, monetary, thresholds, segment_map)):
        levels, monetary, thresholds, segment_map = recorded_settings(ws, name)
    monetary = "sum" if monetary is None else monetary
    if levels is None:
        levels = load_thresholds(thresholds)[0] if thresholds is not None else 3
    model = RFM(levels=levels, monetary=monetary, thresholds=thresholds, segment_map=segment_map)
    when = to_utc(as_of)
    spec = ModelSpec("rfm", name, model.meaning(), _settings(model))
    with writing(ws, spec, when, replace=replace) as written:
        model.fit(ws, as_of=when)
        if model.n_with_orders_ == 0:
            model.release()
            raise WorkspaceError(
                f"No contact has a completed order before {model.as_of_:%Y-%m-%d %H:%M} UTC: "
                "nothing to score. Load orders first, or pick a later --as-of date."
            )
        try:
            ws.warehouse.rewrite_view(name, *model.stored_parts())
        finally:
            model.release()
    scored = ws.table(name)
    if fmt == "csv":
        scored.to_csv(os.fspath(out))
    elif fmt == "parquet":
        scored.to_parquet(os.fspath(out))
    cells, names = summarise(scored, model.segment_map_)
    return RFMResult(
        as_of=model.as_of_,
        levels=model.levels_,
        monetary=monetary,
        edges=model.edges_,
        edges_source=model.edges_source_,
        bins=model.bins_,
        cells=cells,
        names=names,
        contacts=model.n_contacts_,
        contacts_with_orders=model.n_with_orders_,
        table=name,
        out=os.fspath(out) if out is not None else None,
        metrics_from=model.metrics_source_,
        model=model,
        written=written,
    )


def _settings(model: RFM) -> dict:
    """What a run records beside its meaning: where the thresholds and the map came from
    (a map given as data is kept whole, so that a refresh can use it again)."""
    def source(value):
        if value is None or isinstance(value, dict):
            return None
        return os.path.abspath(os.fspath(value))

    return {**model.meaning(), "thresholds_file": source(model.thresholds),
            "segment_map_file": source(model.segment_map),
            "segment_map_data": model.segment_map if isinstance(model.segment_map, dict) else None}


def recorded_settings(ws, name: str = "rfm") -> tuple:
    """(levels, monetary, thresholds, segment_map) the RFM model ``name`` was computed with,
    as :func:`compute_rfm` takes them (all None for a model the registry has not recorded)."""
    model = ModelRegistry(ws).get(name)
    if model is None or model.meaning is None or model.kind != "rfm":
        return None, None, None, None
    meaning, settings = model.meaning, model.settings
    fixed = meaning.get("thresholds")
    thresholds = {"levels": meaning["levels"], **fixed} if isinstance(fixed, dict) else None
    segment_map = settings.get("segment_map_data") or settings.get("segment_map_file")
    return meaning["levels"], meaning["monetary"], thresholds, segment_map


def summarise(scored, segmap: SegmentMap) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-cell and per-name summaries of a scored table (an Ibis table with RFM_COLUMNS).

    ``share`` is of all contacts (those without orders included), ``revenue_share`` of all
    counted revenue. Means are over the contacts of the group; ``mean_monetary`` is the
    mean of the contacts' monetary values (sums or means, as scored).
    """
    missing = [c for c in RFM_COLUMNS if c not in scored.columns]
    if missing:
        raise UsageError(f"The table to summarise has no column {missing[0]!r}.")
    per = (
        scored.group_by(["cell", "name"])  # a cell fixes r, f, m: two keys group 3x faster
        .agg(
            r=lambda t: t.r.min(),
            f=lambda t: t.f.min(),
            m=lambda t: t.m.min(),
            contacts=lambda t: t.count(),
            revenue=lambda t: t.revenue.sum(),
            _sum_recency=lambda t: t.recency_days.sum(),
            _n_recency=lambda t: t.recency_days.count(),
            _sum_frequency=lambda t: t.frequency.sum(),
            _sum_monetary=lambda t: t.monetary.sum(),
            _n_monetary=lambda t: t.monetary.count(),
        )
        .to_pandas()
    )
    return _summaries(per, segmap)


def _summaries(per: pd.DataFrame, segmap: SegmentMap) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-cell and per-name tables from totals per (cell, r, f, m, name) (pure pandas)."""
    per = per.copy()
    total = int(per["contacts"].sum())
    revenue = float(per["revenue"].fillna(0).sum())
    for col in (
        "_sum_recency",
        "_n_recency",
        "_sum_frequency",
        "_sum_monetary",
        "_n_monetary",
        "revenue",
    ):
        per[col] = per[col].fillna(0).astype(float)

    def finish(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        df["contacts"] = df["contacts"].fillna(0).astype("int64")
        df["revenue"] = df["revenue"].round(2)  # sums of whole cents
        df["share"] = df["contacts"] / total if total else float("nan")
        df["revenue_share"] = df["revenue"] / revenue if revenue else float("nan")
        df["mean_recency_days"] = df["_sum_recency"] / df["_n_recency"].where(df["_n_recency"] > 0)
        df["mean_frequency"] = df["_sum_frequency"] / df["contacts"].where(df["contacts"] > 0)
        df["mean_monetary"] = df["_sum_monetary"] / df["_n_monetary"].where(df["_n_monetary"] > 0)
        return df

    # -- per cell: every cell of the grid, best first, empty ones with zero contacts
    grid = pd.DataFrame(segmap.cells())
    in_cells = per[per["cell"].notna()].drop(columns=["r", "f", "m", "name"])
    cells = grid.merge(in_cells, on="cell", how="left")
    for col in (
        "revenue",
        "_sum_recency",
        "_n_recency",
        "_sum_frequency",
        "_sum_monetary",
        "_n_monetary",
    ):
        cells[col] = cells[col].fillna(0.0)
    cells = finish(cells)
    cells = cells[
        [
            "cell",
            "r",
            "f",
            "m",
            "name",
            "r_label",
            "f_label",
            "m_label",
            "contacts",
            "share",
            "revenue",
            "revenue_share",
            "mean_recency_days",
            "mean_frequency",
            "mean_monetary",
        ]
    ].reset_index(drop=True)

    # -- per name: map order, then Other (if anyone) and No orders; mean scores too
    per["_sum_r"] = per["r"].astype(float) * per["contacts"]
    per["_sum_f"] = per["f"].astype(float) * per["contacts"]
    per["_sum_m"] = per["m"].astype(float) * per["contacts"]
    sums = per.groupby("name", dropna=False)[
        [
            "contacts",
            "revenue",
            "_sum_recency",
            "_n_recency",
            "_sum_frequency",
            "_sum_monetary",
            "_n_monetary",
            "_sum_r",
            "_sum_f",
            "_sum_m",
        ]
    ].sum(min_count=1)
    order = [n for n in segmap.names() if n != OTHER or n in sums.index]
    extra = [n for n in sums.index if n not in order]  # names from another map: keep them
    names = sums.reindex(order + sorted(extra)).rename_axis("name").reset_index()
    for col in (
        "revenue",
        "_sum_recency",
        "_n_recency",
        "_sum_frequency",
        "_sum_monetary",
        "_n_monetary",
    ):
        names[col] = names[col].fillna(0.0)
    names = finish(names)
    scored_n = names["contacts"].where(names["name"] != NO_ORDERS)
    for axis in ("r", "f", "m"):
        names[f"mean_{axis}"] = names[f"_sum_{axis}"] / scored_n.where(scored_n > 0)
    descriptions = {s.name: s.description for s in segmap.segments}
    descriptions[OTHER] = "Cells no segment of the map matches."
    descriptions[NO_ORDERS] = "No completed order before the as-of date."
    names["description"] = names["name"].map(descriptions).fillna("")
    names = names[
        [
            "name",
            "description",
            "contacts",
            "share",
            "revenue",
            "revenue_share",
            "mean_recency_days",
            "mean_frequency",
            "mean_monetary",
            "mean_r",
            "mean_f",
            "mean_m",
        ]
    ].reset_index(drop=True)
    return cells, names


@dataclass
class RFMMigration:
    """Contacts per (group at ``date_from``, group at ``date_to``): a square matrix."""

    date_from: _dt.datetime
    date_to: _dt.datetime
    by: str
    levels: int
    groups: list[str]
    matrix: pd.DataFrame  # index: group at date_from, columns: group at date_to
    flows: pd.DataFrame  # from, to, contacts (non-zero pairs), largest first
    edges: dict[str, dict[str, list]]  # "from" / "to" -> axis -> cut points

    @property
    def contacts(self) -> int:
        return int(self.flows["contacts"].sum())

    @property
    def stayed(self) -> int:
        same = self.flows[self.flows["from"] == self.flows["to"]]
        return int(same["contacts"].sum())

    def to_dict(self) -> dict:
        return {
            "from": self.date_from,
            "to": self.date_to,
            "by": self.by,
            "levels": self.levels,
            "groups": self.groups,
            "matrix": [[int(v) for v in row] for row in self.matrix.to_numpy()],
            "flows": self.flows,
            "contacts": self.contacts,
            "stayed": self.stayed,
            "moved": self.contacts - self.stayed,
            "edges": self.edges,
        }


def rfm_migration(
    ws,
    date_from,
    date_to,
    *,
    by: str = "cell",
    levels: int | None = 3,
    monetary: str = "sum",
    thresholds=None,
    segment_map=None,
) -> RFMMigration:
    """How contacts moved between cells (or names) from one date to another.

    Each date is scored on its own: quantile edges are learned from the contacts as of that
    date (fixed thresholds, if given, apply to both). A contact that did not exist yet at
    ``date_from`` is counted in the row "Not yet a contact"; one without a completed order is
    in "No orders".
    """
    if by not in ("cell", "name"):
        raise UsageError(f"The 'by' parameter must be 'cell' or 'name'. Got {by!r} instead.")
    start, end = to_utc(date_from), to_utc(date_to)
    if start >= end:
        raise UsageError(
            f"The 'from' date ({start:%Y-%m-%d}) must be before the 'to' date ({end:%Y-%m-%d})."
        )
    if levels is None:
        levels = load_thresholds(thresholds)[0] if thresholds is not None else 3
    sides, models = [], []
    for when, suffix in ((start, "from"), (end, "to")):
        model = RFM(
            levels=levels, monetary=monetary, thresholds=thresholds, segment_map=segment_map
        )
        t = model.fit(ws, as_of=when).transform()
        group = ibis.coalesce(t.cell, t.name) if by == "cell" else t.name
        sides.append(t.select(contact_id=t.contact_id, **{suffix: group}))
        models.append(model)
    a, b = sides
    j = a.outer_join(b, a.contact_id == b.contact_id)
    counted = (
        j.select(
            **{
                "from": j["from"].fill_null(NOT_YET_A_CONTACT),
                "to": j["to"].fill_null(NOT_YET_A_CONTACT),
            }
        )
        .group_by(["from", "to"])
        .agg(contacts=lambda t: t.count())
        .to_pandas()
    )
    for model in models:
        model.release()
    segmap = models[1].segment_map_
    if by == "cell":
        known = [c["cell"] for c in segmap.cells()]
    else:
        known = [n for n in segmap.names() if n != NO_ORDERS]
    known += [NO_ORDERS, NOT_YET_A_CONTACT]
    present = set(counted["from"]) | set(counted["to"])
    groups = [g for g in known if g in present] + sorted(present - set(known))
    matrix = (
        counted.pivot_table(
            index="from", columns="to", values="contacts", aggfunc="sum", fill_value=0
        )
        .reindex(index=groups, columns=groups, fill_value=0)
        .astype("int64")
    )
    matrix.index.name, matrix.columns.name = "from", "to"
    flows = counted.sort_values(
        ["contacts", "from", "to"], ascending=[False, True, True]
    ).reset_index(drop=True)
    flows["contacts"] = flows["contacts"].astype("int64")
    return RFMMigration(
        date_from=start,
        date_to=end,
        by=by,
        levels=models[1].levels_,
        groups=groups,
        matrix=matrix,
        flows=flows,
        edges={"from": models[0].edges_, "to": models[1].edges_},
    )
