"""Life stage: each contact's child's estimated current age, and demand vs. assortment by age.

    >>> res = lifestage(ws, as_of=datetime(2024, 7, 1, tzinfo=UTC))
    >>> res.bands        # demand (contacts) per age band next to the SKUs in stock for it
    >>> res.contacts     # Ibis table: contact_id, as_of, child_age_months, age_band, ...

Seed 000: a baby-goods chain found that its lapsed high-value customers (R1F3M3) had mostly
bought baby food, that their children had grown up since, and that the assortment for older
children was thin. This module makes that analysis repeatable.

**Estimate per contact.** A product is *age-targeted* when it has
``target_age_min_months`` or ``target_age_max_months`` (a missing bound takes the other
one's value). Its midpoint ``(min + max) / 2`` is the child's assumed age when it was bought.
For each contact we take the **most recent completed order(s) before ``as_of`` that contain
an age-targeted product** (several orders at the same latest instant are taken together)
and average the midpoints of their age-targeted lines (each line once, whatever its
quantity). The child's age now is that average plus the months elapsed since the order
(days / 30.4375). Using the most recent purchase follows the child as it grows; averaging
within one order copes with a basket spanning adjacent ranges. A gift for another child, or
siblings, can still mislead the estimate - it is an estimate. Returned and cancelled orders
are ignored (only ``completed`` orders, or a null status, count).

**Age bands** are half-open month ranges ``[low, high)``: 0-12, 12-36, 36-72, 72-144 and
>144 (ages below 0 - a prenatal product bought shortly before ``as_of`` - fall in 0-12).

**Demand and assortment per band.** ``contacts`` = contacts whose child is in the band now;
``demand_share`` = that / all contacts with an estimate. ``skus_in_stock`` = age-targeted
SKUs with ``in_stock = true`` whose target range ``[min, max]`` overlaps the band
(``min < high`` and ``max >= low``; a SKU with a wide range serves several bands);
``sku_share`` = that / the sum of ``skus_in_stock`` over all bands, so that, like the demand
shares, the SKU shares add up to 1 (a SKU serving three bands counts a third in each share);
``skus_total`` counts regardless of stock. ``coverage = sku_share / demand_share``: below 1,
the band gets less of the assortment than of the demand. ``LifeStageResult.assortment``
lists those in-stock SKUs band by band (for picking the SKUs of a win-back promo).

**Thin assortment rule.** A band is flagged ``thin`` when ``demand_share >=
min_demand_share`` (default 5%) and ``sku_share < thin_ratio * demand_share`` (default 0.7),
i.e. ``coverage < 0.7``: at least a twentieth of the estimated children are in the band, but
the band's share of the in-stock age-targeted assortment is under 70% of its share of demand.

The per-contact estimates are written to the workspace table ``lifestage`` (``contact_id,
as_of, child_age_months, age_band, last_age_targeted_purchase_at``; replaced on every run)
so segments can use them. Everything runs in the warehouse; only the band table comes out.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import pandas as pd

from segmentum.analytics.cohorts import _completed
from segmentum.clock import to_utc
from segmentum.errors import UsageError

__all__ = [
    "AGE_BANDS",
    "DAYS_PER_MONTH",
    "LIFESTAGE_TABLE",
    "LifeStageResult",
    "lifestage",
    "estimate_child_ages",
    "band_assortment",
    "age_band_of",
]

# (label, low months inclusive, high months exclusive or None)
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-12", 0, 12),
    ("12-36", 12, 36),
    ("36-72", 36, 72),
    ("72-144", 72, 144),
    (">144", 144, None),
)
DAYS_PER_MONTH = 30.4375  # 365.25 / 12
LIFESTAGE_TABLE = "lifestage"


def age_band_of(months: float) -> str:
    """The band label of an age in months (plain Python, same rule as the warehouse)."""
    for label, _low, high in AGE_BANDS:
        if high is None or months < high:
            return label
    return AGE_BANDS[-1][0]  # pragma: no cover


def _band_expr(age: ir.FloatingValue) -> ir.StringValue:
    branches = [(age < high, label) for label, _low, high in AGE_BANDS if high is not None]
    return ibis.cases(*branches, else_=AGE_BANDS[-1][0])


def _age_targeted(products: ir.Table, *extra: str) -> ir.Table:
    lo = products.target_age_min_months.fill_null(products.target_age_max_months)
    hi = products.target_age_max_months.fill_null(products.target_age_min_months)
    p = products.select(
        "sku", "in_stock", *extra, lo=lo.cast("float64"), hi=hi.cast("float64")
    )
    return p.filter(p.lo.notnull())


def _overlaps(p: ir.Table, low: int, high: int | None) -> ir.BooleanValue:
    overlap = p.hi >= low
    return overlap & (p.lo < high) if high is not None else overlap


def band_assortment(ws) -> pd.DataFrame:
    """In-stock age-targeted SKUs per band (a SKU appears in every band its range overlaps)."""
    extra = ("name", "category", "brand", "target_age_min_months", "target_age_max_months")
    p = _age_targeted(ws.table("products"), *extra)
    stocked = p.filter(p.in_stock.fill_null(False))
    parts = [
        stocked.filter(_overlaps(stocked, low, high)).select(
            ibis.literal(i).name("_band"), ibis.literal(label).name("age_band"), "sku", *extra
        )
        for i, (label, low, high) in enumerate(AGE_BANDS)
    ]
    out = ibis.union(*parts).order_by(["_band", "sku"]).drop("_band").to_pandas()
    return out.reset_index(drop=True)


def estimate_child_ages(ws, as_of: _dt.datetime) -> ir.Table:
    """Per contact with an age-targeted purchase: the lifestage table's rows (lazy)."""
    as_of = to_utc(as_of)
    lit = ibis.literal(as_of)
    orders = ws.table("orders")
    o = orders.filter(_completed(orders), orders.ordered_at < lit).select(
        "order_id", "contact_id", "ordered_at"
    )
    items = ws.table("order_items").select("order_id", "sku")
    p = _age_targeted(ws.table("products"))
    p = p.select("sku", mid=(p.lo + p.hi) / 2.0)
    lines = o.join(items, "order_id").join(p, "sku")
    latest = lines.group_by("contact_id").agg(_last_at=lines.ordered_at.max())
    last_lines = lines.join(
        latest,
        [lines.contact_id == latest.contact_id, lines.ordered_at == latest._last_at],
    )
    per = last_lines.group_by("contact_id").agg(
        age_at_purchase=last_lines.mid.mean(),
        last_at=last_lines.ordered_at.max(),
    )
    elapsed_days = (as_of.timestamp() - per.last_at.epoch_seconds().cast("float64")) / 86400.0
    age = (per.age_at_purchase + elapsed_days / DAYS_PER_MONTH).cast("float64")
    est = per.select(
        contact_id=per.contact_id,
        as_of=lit,
        child_age_months=age,
        last_age_targeted_purchase_at=per.last_at,
    )
    return est.select(
        "contact_id",
        "as_of",
        "child_age_months",
        age_band=_band_expr(est.child_age_months),
        last_age_targeted_purchase_at=est.last_age_targeted_purchase_at,
    )


@dataclass
class LifeStageResult:
    """Per-contact estimates (``contacts``, lazy Ibis table), the band table (``bands``) and
    the in-stock age-targeted SKUs of each band (``assortment``: one row per band and SKU)."""

    as_of: _dt.datetime
    contacts: ir.Table
    bands: pd.DataFrame
    assortment: pd.DataFrame
    n_contacts: int
    skus_in_stock: int
    rule: str
    written: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def thin_bands(self) -> list[str]:
        return list(self.bands.loc[self.bands["thin"], "age_band"])

    def to_dict(self) -> dict:
        return {
            "as_of": self.as_of,
            "contacts_with_estimate": self.n_contacts,
            "age_targeted_skus_in_stock": self.skus_in_stock,
            "rule": self.rule,
            "table": LIFESTAGE_TABLE if self.written else None,
            "bands": self.bands,
            "assortment": self.assortment,
            "notes": self.notes,
        }


def lifestage(
    ws,
    as_of: _dt.datetime | None = None,
    *,
    min_demand_share: float = 0.05,
    thin_ratio: float = 0.7,
    write: bool = True,
) -> LifeStageResult:
    """Estimate children's ages, write table ``lifestage``, compare demand with assortment."""
    if not 0 <= min_demand_share <= 1 or thin_ratio < 0:
        raise UsageError("min_demand_share must be between 0 and 1 and thin_ratio >= 0.")
    as_of = to_utc(as_of)
    est = estimate_child_ages(ws, as_of)
    written = False
    if write:
        ws.warehouse.replace_table(LIFESTAGE_TABLE, est)
        est = ws.table(LIFESTAGE_TABLE)
        written = True

    demand = est.group_by("age_band").agg(contacts=est.count()).to_pandas()
    demand_map = {str(r.age_band): int(r.contacts) for r in demand.itertuples(index=False)}
    n_contacts = sum(demand_map.values())

    p = _age_targeted(ws.table("products"))
    stocked = p.in_stock.fill_null(False)
    metrics = {"_stock_all": p.sku.nunique(where=stocked)}
    for i, (_label, low, high) in enumerate(AGE_BANDS):
        overlap = _overlaps(p, low, high)
        metrics[f"in_{i}"] = p.sku.nunique(where=overlap & stocked)
        metrics[f"all_{i}"] = p.sku.nunique(where=overlap)
    stock = p.aggregate(**metrics).to_pandas().iloc[0]
    stock_all = int(stock["_stock_all"] or 0)

    slots = sum(int(stock[f"in_{i}"] or 0) for i in range(len(AGE_BANDS)))
    rows = []
    for i, (label, low, high) in enumerate(AGE_BANDS):
        contacts = demand_map.get(label, 0)
        in_stock = int(stock[f"in_{i}"] or 0)
        demand_share = contacts / n_contacts if n_contacts else 0.0
        sku_share = in_stock / slots if slots else 0.0
        coverage = sku_share / demand_share if demand_share else float("nan")
        thin = bool(
            contacts > 0
            and demand_share >= min_demand_share
            and sku_share < thin_ratio * demand_share
        )
        rows.append(
            {
                "age_band": label,
                "min_months": low,
                "max_months": high,
                "contacts": contacts,
                "demand_share": demand_share,
                "skus_in_stock": in_stock,
                "sku_share": sku_share,
                "skus_total": int(stock[f"all_{i}"] or 0),
                "coverage": coverage,
                "thin": thin,
            }
        )
    bands = pd.DataFrame(rows)
    bands["max_months"] = bands["max_months"].astype("Int64")
    rule = (
        f"thin = demand_share >= {min_demand_share:g} and "
        f"sku_share < {thin_ratio:g} x demand_share"
    )
    notes = []
    if n_contacts == 0:
        notes.append("No contact has a completed purchase of an age-targeted product yet.")
    if stock_all == 0:
        notes.append("No age-targeted product is in stock.")
    return LifeStageResult(
        as_of=as_of,
        contacts=est,
        bands=bands,
        assortment=band_assortment(ws),
        n_contacts=n_contacts,
        skus_in_stock=stock_all,
        rule=rule,
        written=written,
        notes=notes,
    )
