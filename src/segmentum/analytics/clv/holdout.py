"""Calibration / holdout validation of a repeat-purchase model (BG/NBD or MBG/NBD).

The papers' check (Fader, Hardie & Lee 2005, section 4): fit on a calibration period, then
compare with what happened in the holdout period that follows -

* ``overall`` (the headline, :attr:`HoldoutReport.holdout_error`): repeat transactions *in
  the holdout period only*, actual vs. the sum of the conditional expectations
  E[Y(holdout) | x, t_x, T], each given the contact's own calibration history (the paper's
  Figure 4 summed);
* ``by_frequency``: the same, averaged per contact and grouped by calibration frequency
  0, 1, ..., 7+ (the paper's Figure 4);
* ``activity``: who buys at all in the holdout, predicted (P(any purchase), which rests on
  P(alive)) vs. actual, for one-time buyers, repeat buyers and everyone, with the Brier
  score (mean squared error of those probabilities; lower is better);
* ``tracking``: cumulative repeat transactions week by week *from the start of the
  calibration period to the end of the holdout*, actual vs. the unconditional forecast
  sum_i E[X(t - s_i)] where s_i is contact i's first purchase (the paper's Figure 3; a
  chart is drawn from this frame). Its last row gives :attr:`HoldoutReport.cumulative_error`,
  a different figure from the headline: it counts the calibration period's purchases too
  and does not use the contacts' histories.

The cohort is the contacts whose first purchase lies in [calibration_start, calibration_end)
(``calibration_start=None``: every contact who bought before calibration_end). Everything
per order runs in the warehouse; only per-contact and per-week rows come back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from segmentum.data.schema import is_purchase
from segmentum.analytics.clv._common import compress
from segmentum.analytics.clv.bgnbd import BGNBD
from segmentum.analytics.clv.purchase_models import DEFAULT_MODEL, purchase_model
from segmentum.analytics.clv.summary import (
    EPOCH,
    SECONDS_PER_DAY,
    _epoch,
    _last_day,
    _period_end,
    _ts_literal,
    summary_from_orders,
    to_utc_timestamp,
)
from segmentum.errors import UsageError, WorkspaceError

__all__ = ["HoldoutReport", "calibration_holdout"]


def _error(predicted: float, actual: float) -> float:
    return (predicted - actual) / actual if actual else math.nan


def _signed(error: float) -> str:
    return "no actual purchases to compare with" if math.isnan(error) else f"{error:+.1%}"


@dataclass
class HoldoutReport:
    """The result of :func:`calibration_holdout`: four DataFrames and the fitted model."""

    calibration_start: pd.Timestamp | None
    calibration_end: pd.Timestamp
    holdout_end: pd.Timestamp
    unit_days: float
    model: BGNBD
    overall: pd.DataFrame = field(repr=False)
    by_frequency: pd.DataFrame = field(repr=False)
    tracking: pd.DataFrame = field(repr=False)
    activity: pd.DataFrame = field(repr=False)

    @property
    def holdout_error(self) -> float:
        """The headline: (predicted - actual) / actual repeat transactions in the holdout
        period, predicted from each contact's calibration history."""
        return float(self.overall.iloc[0]["error"])

    @property
    def cumulative_error(self) -> float:
        """(predicted - actual) / actual cumulative repeat transactions from the start of the
        calibration period to the end of the holdout, by the unconditional forecast."""
        last = self.tracking.iloc[-1]
        return _error(float(last["predicted_cumulative"]), float(last["actual_cumulative"]))

    def headline(self) -> str:
        """The holdout error in one plain sentence (the figure to quote)."""
        o = self.overall.iloc[0]
        return (
            f"Holdout {self.calibration_end:%Y-%m-%d} .. {_last_day(self.holdout_end):%Y-%m-%d}: "
            f"{int(o['contacts']):,} buyers made {o['actual']:,.0f} repeat purchases; from each "
            f"buyer's calibration history the {self.model.label} predicted "
            f"{o['predicted']:,.0f} ({_signed(self.holdout_error)})."
        )

    def cumulative_note(self) -> str:
        """What the tracking curve's end says, and why it differs from the headline."""
        last = self.tracking.iloc[-1]
        return (
            "Tracking, from the start of the calibration period to the end of the holdout: "
            f"{last['actual_cumulative']:,.0f} repeat purchases, the unconditional forecast "
            f"(from each buyer's first purchase, not their history) "
            f"{last['predicted_cumulative']:,.0f} ({_signed(self.cumulative_error)}). "
            "It counts the calibration period's purchases too, so it is not the holdout error."
        )

    def to_dict(self) -> dict[str, Any]:
        o = self.overall.iloc[0]
        last = self.tracking.iloc[-1]
        return {
            "calibration_start": self.calibration_start,
            "calibration_end": self.calibration_end,
            "holdout_end": self.holdout_end,
            "unit_days": self.unit_days,
            "model": {
                "name": self.model.key,
                "params": self.model.params_,
                "log_likelihood": self.model.log_likelihood_,
                "n": int(self.model.n_),
            },
            "headline": self.headline(),
            "holdout_error": {
                "what": "repeat purchases in the holdout period only, predicted from each "
                "contact's calibration history",
                "from": self.calibration_end,
                "to": self.holdout_end,
                "actual": o["actual"],
                "predicted": o["predicted"],
                "error": self.holdout_error,
            },
            "cumulative_error": {
                "what": "cumulative repeat purchases from the start of the calibration period "
                "to the end of the holdout, unconditional forecast (the tracking curve)",
                "to": self.holdout_end,
                "actual": last["actual_cumulative"],
                "predicted": last["predicted_cumulative"],
                "error": self.cumulative_error,
                "note": self.cumulative_note(),
            },
            "overall": self.overall,
            "by_frequency": self.by_frequency,
            "activity": self.activity,
            "tracking": self.tracking,
        }


def calibration_holdout(
    orders: ir.Table,
    calibration_start: Any,
    calibration_end: Any,
    holdout_end: Any,
    *,
    unit_days: float = 7,
    max_frequency: int = 7,
    same_day_as_one: bool = True,
    penalizer: float = 0.0,
    model: str = DEFAULT_MODEL,
) -> HoldoutReport:
    """Fit a model (``bgnbd`` / ``mbgnbd``) on [calibration_start, calibration_end), check it
    on [calibration_end, holdout_end)."""
    fitted = purchase_model(model, penalizer)
    start = (
        None
        if calibration_start is None
        else to_utc_timestamp(calibration_start, "calibration_start")
    )
    cal = to_utc_timestamp(calibration_end, "calibration_end")
    end = to_utc_timestamp(holdout_end, "holdout_end")
    if start is not None and not start < cal:
        raise UsageError(
            f"calibration_start ({start.date()}) must be before calibration_end ({cal.date()})."
        )
    if not cal < end:
        raise UsageError(
            f"calibration_end ({cal.date()}) must be before holdout_end ({end.date()})."
        )
    if not (isinstance(max_frequency, int) and max_frequency >= 1):
        raise UsageError(
            f"max_frequency must be a whole number of 1 or more. Got {max_frequency!r} instead."
        )

    summary = summary_from_orders(
        orders,
        observation_end=end,
        calibration_end=cal,
        unit_days=unit_days,
        same_day_as_one=same_day_as_one,
        first_purchase_from=start,
    )
    df = summary.drop("monetary_value", "monetary_value_holdout").to_pandas()
    if df.empty:
        raise WorkspaceError(
            "No contact made a first completed purchase in the calibration period "
            f"[{'the beginning' if start is None else start.date()}, {cal.date()})."
        )
    x = df["frequency"].to_numpy(dtype=float)
    t_x = df["recency"].to_numpy(dtype=float)
    T = df["T"].to_numpy(dtype=float)
    if not (x > 0).any():
        raise WorkspaceError(
            f"None of the {len(df)} contacts in the calibration period made a repeat purchase, "
            f"so the {fitted.label} cannot be fitted; choose a longer calibration period."
        )
    fitted.fit(x, t_x, T)
    duration = float(df["duration_holdout"].iloc[0])
    (ux, utx, uT), _, inverse = compress([x, t_x, T], np.ones(x.size))
    predicted = np.atleast_1d(
        fitted.conditional_expected_number_of_purchases_up_to_time(duration, ux, utx, uT)
    )[inverse]
    buys = np.atleast_1d(
        fitted.conditional_probability_of_purchase(duration, ux, utx, uT)
    )[inverse]
    actual = df["frequency_holdout"].to_numpy(dtype=float)

    overall = pd.DataFrame(
        [
            {
                "contacts": len(df),
                "repeat_buyers": int((x > 0).sum()),
                "calibration_repeat_transactions": float(x.sum()),
                "actual": float(actual.sum()),
                "predicted": float(predicted.sum()),
                "error": _error(float(predicted.sum()), float(actual.sum())),
            }
        ]
    )

    group = np.minimum(x, max_frequency).astype(int)
    labels = [str(k) for k in range(max_frequency)] + [f"{max_frequency}+"]
    per = pd.DataFrame({"group": group, "actual": actual, "predicted": predicted})
    agg = per.groupby("group").agg(
        contacts=("actual", "size"),
        actual_total=("actual", "sum"),
        predicted_total=("predicted", "sum"),
    )
    agg = agg.reindex(range(max_frequency + 1), fill_value=0)
    n_group = agg["contacts"].where(agg["contacts"] > 0)
    by_frequency = pd.DataFrame(
        {
            "calibration_frequency": labels,
            "contacts": agg["contacts"].to_numpy(dtype="int64"),
            "actual_mean": (agg["actual_total"] / n_group).to_numpy(),
            "predicted_mean": (agg["predicted_total"] / n_group).to_numpy(),
            "actual_total": agg["actual_total"].to_numpy(dtype=float),
            "predicted_total": agg["predicted_total"].to_numpy(dtype=float),
        }
    )

    tracking = _tracking(orders, df, fitted, start, cal, end, unit_days, same_day_as_one)
    activity = _activity(x, buys, actual > 0)
    return HoldoutReport(
        start, cal, end, float(unit_days), fitted, overall, by_frequency, tracking, activity
    )


def _activity(x: np.ndarray, predicted: np.ndarray, bought: np.ndarray) -> pd.DataFrame:
    """Who buys in the holdout: predicted vs. actual share, and the Brier score, per group."""
    rows = []
    for group, mask in (
        ("one-time buyers", x == 0),
        ("repeat buyers", x > 0),
        ("all", np.ones(x.size, dtype=bool)),
    ):
        n = int(mask.sum())
        p, y = predicted[mask], bought[mask].astype(float)
        rows.append(
            {
                "group": group,
                "contacts": n,
                "predicted_share": float(p.mean()) if n else math.nan,
                "actual_share": float(y.mean()) if n else math.nan,
                "brier": float(np.mean((p - y) ** 2)) if n else math.nan,
            }
        )
    return pd.DataFrame(rows)


def _tracking(
    orders: ir.Table,
    df: pd.DataFrame,
    model: BGNBD,
    start: pd.Timestamp | None,
    cal: pd.Timestamp,
    end: pd.Timestamp,
    unit_days: float,
    by_day: bool,
) -> pd.DataFrame:
    """Cumulative repeat transactions per period (week), actual and predicted.

    The clock is the summary's: by day (purchases dated by their day, a period observed up
    to its last day) or exact. Period k covers [origin + (k-1) units, origin + k units);
    its predicted cumulative count is sum_i E[X(t_k - s_i)], t_k being where the period
    ends on the clock and s_i contact i's first purchase.
    """
    unit = unit_days * SECONDS_PER_DAY
    first_at = pd.to_datetime(df["first_purchase_at"], utc=True)  # naive = UTC (DuckDB session)
    first_t = (first_at - EPOCH).dt.total_seconds().to_numpy(dtype=float)
    if start is not None:
        origin = _epoch(start.floor("D") if by_day else start)
    else:
        origin = float(np.floor(first_t.min() / SECONDS_PER_DAY) * SECONDS_PER_DAY)
    cal_t, end_t = _epoch(cal), _epoch(end)
    n_periods = int(math.ceil((end_t - origin) / unit - 1e-9))
    bounds = origin + np.arange(1, n_periods + 1) * unit  # exclusive period ends, in time
    bounds[-1] = min(bounds[-1], end_t)
    # the same ends on the model's clock (by day: the start of each period's last day)
    clock_ends = np.array(
        [_period_end(pd.Timestamp(b, unit="s", tz="UTC"), by_day) for b in bounds]
    )

    # actual: repeat transactions of the cohort per period, counted in the warehouse
    o = orders
    conds = [o.ordered_at < _ts_literal(end), o.contact_id.notnull()]
    if "status" in o.columns:
        conds.append(is_purchase(o.status))
    o = o.filter(*conds)
    if by_day:  # DATE values: far cheaper than truncating time-zone-aware timestamps
        tx = o.select(contact_id=o.contact_id, day=o.ordered_at.date()).distinct()
        firsts = tx.group_by("contact_id").aggregate(first=tx.day.min())
        origin_day = pd.Timestamp(origin, unit="s").date()
        cal_day = _last_day(cal).date()
        firsts = firsts.filter(
            (firsts.first >= ibis.literal(origin_day)) & (firsts.first <= ibis.literal(cal_day))
        )
        j = tx.inner_join(firsts, "contact_id")
        repeat = j.filter(j.day > j.first)
        days = repeat.day.delta(ibis.literal(origin_day), unit="day").cast("float64")
        offset = days * SECONDS_PER_DAY
    else:
        tx = o.select(contact_id=o.contact_id, t=o.ordered_at.epoch_seconds().cast("float64"))
        firsts = tx.group_by("contact_id").aggregate(first=tx.t.min())
        firsts = firsts.filter((firsts.first >= origin) & (firsts.first < cal_t))
        j = tx.inner_join(firsts, "contact_id")
        repeat = j.filter(j.t > j.first)
        offset = repeat.t - origin
    repeat = repeat.mutate(period=(offset / unit).floor().cast("int64"))
    counts = repeat.group_by("period").aggregate(n=repeat.count()).to_pandas()
    per_period_actual = np.zeros(n_periods)
    idx = counts["period"].to_numpy(dtype=int)
    ok = (idx >= 0) & (idx < n_periods)
    np.add.at(per_period_actual, idx[ok], counts["n"].to_numpy(dtype=float)[ok])

    # predicted: sum over contacts of E[X(t - s_i)], grouped by unique first-purchase time
    us, counts_s = np.unique(first_t, return_counts=True)
    cumulative_predicted = np.zeros(n_periods)
    for k, t_k in enumerate(clock_ends):
        age = (t_k - us) / unit
        alive = age > 0
        if alive.any():
            ex = np.atleast_1d(model.expected_number_of_purchases_up_to_time(age[alive]))
            cumulative_predicted[k] = float(ex @ counts_s[alive])
    return pd.DataFrame(
        {
            "period": np.arange(1, n_periods + 1),
            "period_end": pd.to_datetime(bounds, unit="s", utc=True),
            "holdout": bounds > cal_t + 1e-6,
            "actual": per_period_actual,
            "predicted": np.diff(cumulative_predicted, prepend=0.0),
            "actual_cumulative": np.cumsum(per_period_actual),
            "predicted_cumulative": cumulative_predicted,
        }
    )
