"""From purchases to the (frequency, recency, T, monetary_value) summary the CLV models fit on.

Two implementations of one definition:

* :func:`summary_from_transactions` - pure pandas, for a small DataFrame of transactions
  (a notebook, a test);
* :func:`summary_from_orders` - an Ibis expression over the workspace's ``orders`` table,
  run by the warehouse (DuckDB, Spark); only the one-row-per-contact result is fetched.

The definition (Fader, Hardie & Lee 2005, and the conventions of their CDNOW summary and of
lifetimes' ``summary_data_from_transaction_data``):

* only purchases strictly before ``observation_end`` count; ``calibration_end`` splits them
  (by their exact time) into a calibration part and a holdout part; without it everything
  is calibration;
* with ``same_day_as_one`` (the papers' counting) a contact's purchases on one UTC calendar
  day are one transaction valued at their sum, and time runs in whole days: a purchase is
  dated by its day, and a period ending at ``calibration_end`` is observed up to its *last
  day* (the day before, when the end is a midnight). So a contact who first bought on
  1997-01-01 has T = 272 days = 38.86 weeks in a calibration period ending 1997-10-01,
  exactly as in the published CDNOW summary;
* without it every order is a transaction at its exact time and T runs to the exact end;
* ``frequency`` (x) = calibration transactions - 1 (repeat transactions);
* ``recency`` (t_x) = time from the first to the last calibration transaction;
* ``T`` = time from the first transaction to the end of the calibration period;
* ``monetary_value`` = mean value of the repeat transactions (the first one excluded),
  missing (NaN / NULL) when frequency is 0;
* with ``calibration_end``: ``frequency_holdout`` = transactions in
  [calibration_end, observation_end), ``monetary_value_holdout`` = their mean value,
  ``duration_holdout`` = the holdout length (in days: from the calibration's last day to
  the holdout's last day);
* times are in units of ``unit_days`` days (7 = weeks, the papers' unit; 1 = days). The
  unit only scales time: it does not bucket purchases (same-day merging is the only one).

Contacts appear only if they have a transaction before the calibration end. In the
warehouse version only ``completed`` orders count (a null status counts as completed):
returned and cancelled orders are not purchases. Period boundaries are best given as
dates (midnight UTC); a boundary inside a day splits that day's orders between the two
periods.
"""

from __future__ import annotations

from typing import Any, Literal

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandas as pd

from segmentum.data.schema import is_purchase
from segmentum.errors import UsageError

__all__ = ["summary_from_transactions", "summary_from_orders", "to_utc_timestamp"]

SECONDS_PER_DAY = 86_400.0
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_FREQS = {"D": 1.0, "W": 7.0}


def to_utc_timestamp(value: Any, name: str = "date") -> pd.Timestamp:
    """A date / datetime / ISO string as a UTC pandas Timestamp (naive input is taken as UTC)."""
    if value is None:
        raise UsageError(f"{name} is required.")
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise UsageError(
            f"Cannot read {value!r} as {name}: use ISO 8601, e.g. 2024-06-30."
        ) from None
    if pd.isna(ts):
        raise UsageError(f"{name} is missing.")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _bounds(
    observation_end: Any, calibration_end: Any
) -> tuple[pd.Timestamp, pd.Timestamp, bool]:
    obs = to_utc_timestamp(observation_end, "observation_end")
    if calibration_end is None:
        return obs, obs, False
    cal = to_utc_timestamp(calibration_end, "calibration_end")
    if cal > obs:
        raise UsageError(
            f"calibration_end ({cal.date()}) must not be after observation_end ({obs.date()})."
        )
    return obs, cal, True


def _epoch(ts: pd.Timestamp) -> float:
    """Seconds since 1970-01-01 UTC."""
    return (ts - EPOCH).total_seconds()


def _period_end(end: pd.Timestamp, by_day: bool) -> float:
    """Where a period ending (exclusively) at ``end`` ends on the models' clock, in epoch seconds.

    By day: the start of its last day (the day of end - 1 microsecond), so that day-dated
    purchases and the period's end are on the same whole-day clock. Otherwise: ``end``.
    """
    return _epoch(_last_day(end)) if by_day else _epoch(end)


def _unit(freq: Literal["D", "W"] | float | int) -> float:
    if isinstance(freq, str):
        if freq not in _FREQS:
            raise UsageError(
                "The 'freq' parameter must be 'D' or 'W' or a number of days. "
                f"Got {freq!r} instead."
            )
        return _FREQS[freq]
    if isinstance(freq, bool) or not isinstance(freq, int | float) or not freq > 0:
        raise UsageError(
            f"The unit of time must be a number of days above 0. Got {freq!r} instead."
        )
    return float(freq)


# -- pandas ------------------------------------------------------------------------------
def summary_from_transactions(
    df: pd.DataFrame,
    customer_col: str,
    datetime_col: str,
    monetary_col: str | None = None,
    *,
    observation_end: Any,
    calibration_end: Any = None,
    freq: Literal["D", "W"] | float = "W",
    same_day_as_one: bool = True,
) -> pd.DataFrame:
    """Per-customer summary of a transactions DataFrame (pandas; for small frames).

    Returns a DataFrame indexed by ``customer_col`` with columns frequency, recency, T
    (and monetary_value when ``monetary_col`` is given; plus frequency_holdout,
    monetary_value_holdout and duration_holdout when ``calibration_end`` is given), sorted
    by customer. ``freq`` is the unit of time: "W" = 7 days, "D" = 1 day, or a number of days.
    """
    for col in (customer_col, datetime_col, monetary_col):
        if col is not None and col not in df.columns:
            raise UsageError(
                f"Column {col!r} is not in the transactions; "
                f"columns are: {', '.join(map(str, df.columns))}."
            )
    unit = _unit(freq) * SECONDS_PER_DAY
    obs, cal, holdout = _bounds(observation_end, calibration_end)
    ts = pd.to_datetime(df[datetime_col], utc=True)
    if ts.isna().any():
        raise UsageError(f"Column {datetime_col!r} has missing dates.")
    if df[customer_col].isna().any():
        raise UsageError(f"Column {customer_col!r} has missing customer ids.")
    value = (
        pd.to_numeric(df[monetary_col]).astype(float)
        if monetary_col
        else pd.Series(0.0, index=df.index)
    )
    tx = pd.DataFrame({"customer": df[customer_col], "ts": ts, "value": value})
    tx = tx[tx["ts"] < obs]
    tx = tx.assign(in_cal=tx["ts"] < cal)
    if same_day_as_one:
        tx = tx.assign(ts=tx["ts"].dt.floor("D"))
        tx = tx.groupby(["customer", "in_cal", "ts"], as_index=False, sort=False)["value"].sum()
    tx["t"] = (tx["ts"] - EPOCH).dt.total_seconds()
    tx = tx.sort_values(["customer", "t"], kind="stable")
    cal_ref = _period_end(cal, same_day_as_one)
    c = tx[tx["in_cal"]]
    g = c.groupby("customer", sort=True)
    n = g.size()
    first = g["t"].min()
    last = g["t"].max()
    first_value = g["value"].first()  # sorted by time: the first transaction's value
    total = g["value"].sum()
    out = pd.DataFrame(
        {
            "frequency": (n - 1).astype("int64"),
            "recency": (last - first) / unit,
            "T": (cal_ref - first) / unit,
        }
    )
    if monetary_col:
        out["monetary_value"] = ((total - first_value) / (n - 1)).where(n > 1)
    if holdout:
        h = tx[~tx["in_cal"] & tx["customer"].isin(out.index)]
        hg = h.groupby("customer")
        out["frequency_holdout"] = hg.size().reindex(out.index, fill_value=0).astype("int64")
        if monetary_col:
            out["monetary_value_holdout"] = hg["value"].mean().reindex(out.index)
        out["duration_holdout"] = (_period_end(obs, same_day_as_one) - cal_ref) / unit
    out.index.name = customer_col
    return out


# -- warehouse (Ibis) ----------------------------------------------------------------------
def _ts_literal(ts: pd.Timestamp) -> ir.TimestampScalar:
    return ibis.literal(ts.to_pydatetime(), type="timestamp('UTC')")


def summary_from_orders(
    orders: ir.Table,
    observation_end: Any,
    calibration_end: Any = None,
    *,
    unit_days: float = 7.0,
    same_day_as_one: bool = True,
    first_purchase_from: Any = None,
    completed_only: bool = True,
) -> ir.Table:
    """The per-contact summary of an ``orders`` table, as a lazy Ibis expression.

    Columns: contact_id, frequency (int64), recency, T, monetary_value (float64, NULL when
    frequency is 0), first_purchase_at (start of the first purchase day), and with
    ``calibration_end`` also frequency_holdout, monetary_value_holdout, duration_holdout.
    ``first_purchase_from`` keeps only contacts whose first purchase is on or after that
    date (a cohort, as in the papers' "first purchase in Q1 1997"). Execute it with
    ``.to_pandas()``; nothing runs until then.
    """
    unit_days = _unit(unit_days)
    obs, cal, holdout = _bounds(observation_end, calibration_end)
    missing = {"contact_id", "ordered_at", "total"} - set(orders.columns)
    if missing:
        raise UsageError(f"The orders table lacks column(s) {', '.join(sorted(missing))}.")
    unit = unit_days * SECONDS_PER_DAY
    o = orders
    conds = [o.ordered_at < _ts_literal(obs), o.contact_id.notnull(), o.ordered_at.notnull()]
    if completed_only and "status" in o.columns:
        conds.append(is_purchase(o.status))
    o = o.filter(*conds)
    o = o.mutate(
        in_cal=o.ordered_at < _ts_literal(cal), value=o.total.cast("float64").fill_null(0.0)
    )
    if same_day_as_one:
        per, c_first, c_last, ref_cal = _per_contact_by_day(o, cal)
        recency = c_last.delta(c_first, unit="day").cast("float64") / unit_days
        T_expr = ibis.literal(ref_cal).delta(c_first, unit="day").cast("float64") / unit_days
        first_at = c_first.cast(dt.Timestamp(timezone="UTC"))
        first_floor = None
        if first_purchase_from is not None:
            start_day = to_utc_timestamp(first_purchase_from, "first_purchase_from").floor("D")
            first_floor = c_first >= ibis.literal(start_day.date())
        duration = (_last_day(obs) - _last_day(cal)).days / unit_days
    else:
        per, c_first, c_last = _per_contact_exact(o)
        recency = (c_last - c_first) / unit
        T_expr = (ibis.literal(_epoch(cal)) - c_first) / unit
        first_at = per.first_at
        first_floor = None
        if first_purchase_from is not None:
            start = to_utc_timestamp(first_purchase_from, "first_purchase_from")
            first_floor = c_first >= _epoch(start)
        duration = (_epoch(obs) - _epoch(cal)) / unit
    if first_floor is not None:
        per = per.filter(first_floor)
    repeat = per.n - 1
    out = per.select(
        contact_id=per.contact_id,
        frequency=repeat.cast("int64"),
        recency=recency,
        T=T_expr,
        monetary_value=ibis.ifelse(
            per.n > 1, (per.total - per.first_value) / repeat.cast("float64"), ibis.null("float64")
        ),
        first_purchase_at=first_at,
    )
    if holdout:
        h = o.filter(~o.in_cal)
        if same_day_as_one:
            h = h.group_by(contact_id=h.contact_id, day=h.ordered_at.date()).aggregate(
                value=h.value.sum()
            )
        hs = h.group_by("contact_id").aggregate(fh=h.count(), mh=h.value.mean())
        j = out.left_join(hs, "contact_id")
        out = j.select(
            *[j[col] for col in out.columns],
            frequency_holdout=j.fh.fill_null(0).cast("int64"),
            monetary_value_holdout=j.mh.cast("float64"),
            duration_holdout=ibis.literal(float(duration)),
        )
    return out


def _last_day(end: pd.Timestamp) -> pd.Timestamp:
    """The last (UTC) day a period ending exclusively at ``end`` observes."""
    return (end - pd.Timedelta(microseconds=1)).floor("D")


def _per_contact_by_day(o: ir.Table, cal: pd.Timestamp):
    """Calibration purchase days per contact: count, first/last day, total, first day's value.

    Days are DATE values (a cast of the UTC timestamp), which DuckDB groups far faster than
    truncated time-zone-aware timestamps; day counts are taken on the per-contact result.
    """
    c = o.filter(o.in_cal)
    days = c.group_by(contact_id=c.contact_id, day=c.ordered_at.date()).aggregate(
        value=c.value.sum()
    )
    per = days.group_by("contact_id").aggregate(
        n=days.count(),
        first_day=days.day.min(),
        last_day=days.day.max(),
        total=days.value.sum(),
        first_value=days.value.argmin(days.day),
    )
    return per, per.first_day, per.last_day, _last_day(cal).date()


def _per_contact_exact(o: ir.Table):
    """Calibration orders per contact at their exact times (epoch seconds)."""
    c = o.filter(o.in_cal)
    c = c.mutate(t=c.ordered_at.epoch_seconds().cast("float64"))
    per = c.group_by("contact_id").aggregate(
        n=c.count(),
        first_t=c.t.min(),
        last_t=c.t.max(),
        first_at=c.ordered_at.min(),
        total=c.value.sum(),
        first_value=c.value.argmin(c.t),
    )
    return per, per.first_t, per.last_t
