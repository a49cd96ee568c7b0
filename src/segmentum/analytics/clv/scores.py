"""CLV scores per contact, stored in the workspace for segments, the contact card and the UI.

:func:`compute_clv` summarises the workspace's completed orders as of a date (in the
warehouse), fits a repeat-purchase model (BG/NBD, or MBG/NBD with ``model="mbgnbd"``) and
the Gamma-Gamma on that summary, and writes two tables:

``clv`` (replaced on every run; one row per contact with a completed order before as_of)
    contact_id, as_of, frequency, recency, T (weeks), monetary_value (mean repeat order day
    value; NULL when frequency = 0), p_alive, expected_purchases and expected_value over the
    next ``horizon_days``, horizon_days.
    Contacts with no completed order before as_of are **absent** (a join from contacts gives
    NULL): the models say nothing about people who never bought. Contacts with a single
    purchase day (frequency 0) get the population's mean spend as expected spend, and under
    the BG/NBD p_alive = 1 by its definition (nobody drops out before a repeat purchase);
    the MBG/NBD lets them drop out at the first purchase, so their p_alive falls with time.

``clv_models`` (one row per model and as_of; a rerun for the same as_of replaces its rows)
    as_of, model ("bgnbd" or "mbgnbd", and "gamma_gamma"), params (JSON), log_likelihood,
    n, fitted_at.

    >>> result = compute_clv(ws, as_of="2024-06-30", horizon_days=365)
    >>> result.purchases.params_, result.scores.head()
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import ibis.expr.datatypes as dt
import numpy as np
import pandas as pd

from segmentum.analytics.clv._common import compress
from segmentum.analytics.clv.bgnbd import BGNBD
from segmentum.analytics.clv.gamma_gamma import GammaGamma, discounted_expected_purchases
from segmentum.analytics.clv.purchase_models import DEFAULT_MODEL, purchase_model
from segmentum.analytics.clv.summary import summary_from_orders, to_utc_timestamp
from segmentum.errors import UsageError, WorkspaceError
from segmentum.segments.models import ModelRegistry, ModelSpec, ModelWrite, writing

__all__ = [
    "ClvResult",
    "by_buyer_type",
    "compute_clv",
    "CLV_TABLE",
    "CLV_MODELS_TABLE",
    "CLV_MODELS_SCHEMA",
]

CLV_TABLE = "clv"
CLV_MODELS_TABLE = "clv_models"
CLV_MODELS_SCHEMA = {
    "as_of": dt.Timestamp(timezone="UTC"),
    "model": dt.String(),
    "params": dt.String(),  # a JSON object, e.g. {"r": 0.243, "alpha": 4.41, ...}
    "log_likelihood": dt.Float64(),
    "n": dt.Int64(),
    "fitted_at": dt.Timestamp(timezone="UTC"),
}


@dataclass
class ClvResult:
    """What :func:`compute_clv` fitted and wrote."""

    as_of: pd.Timestamp
    horizon_days: float
    unit_days: float
    purchases: BGNBD  # the repeat-purchase model: a BGNBD or an MBGNBD
    gamma_gamma: GammaGamma
    scores: pd.DataFrame = field(repr=False)
    table: str = CLV_TABLE  # the model the scores were written as (rules read table.*)
    written: ModelWrite | None = field(default=None, repr=False)  # what the registry did

    def overview(self) -> dict[str, Any]:
        """Headline numbers: contacts, repeat and one-time buyers apart, totals over the
        horizon, both models."""
        s = self.scores
        m = self.purchases
        return {
            "as_of": self.as_of,
            "horizon_days": self.horizon_days,
            "model": m.key,
            "contacts": int(len(s)),
            "repeat_buyers": int((s["frequency"] > 0).sum()),
            "mean_p_alive": float(s["p_alive"].mean()),
            "expected_purchases": float(s["expected_purchases"].sum()),
            "expected_value": float(s["expected_value"].sum()),
            "by_buyer_type": by_buyer_type(s),
            "notes": self.notes(),
            "models": {
                m.key: {
                    "params": m.params_,
                    "log_likelihood": m.log_likelihood_,
                    "n": int(m.n_),
                },
                "gamma_gamma": {
                    "params": self.gamma_gamma.params_,
                    "log_likelihood": self.gamma_gamma.log_likelihood_,
                    "n": int(self.gamma_gamma.n_),
                },
            },
        }


    def notes(self) -> list[str]:
        """Plain sentences on how to read P(alive) for the one-time buyers."""
        one_time = int((self.scores["frequency"] == 0).sum())
        if not one_time:
            return []
        if self.purchases.start_dropout == 0:
            return [
                f"The {one_time:,} one-time buyers all have P(alive) = 1: the BG/NBD lets a "
                "contact drop out only after a repeat purchase, so for them P(alive) says "
                "nothing (their expected purchases still fall with the time since they "
                'bought). The MBG/NBD (model "mbgnbd") gives them a P(alive) that falls '
                "with time too."
            ]
        return [
            f"The {one_time:,} one-time buyers' P(alive) comes from the MBG/NBD's chance of "
            "dropping out right after the first purchase: it falls with the time since then."
        ]


def by_buyer_type(scores: pd.DataFrame) -> pd.DataFrame:
    """One-time buyers (frequency 0) and repeat buyers apart: contacts, mean P(alive), how
    many have P(alive) < 0.5, expected purchases and value. Under the BG/NBD every one-time
    buyer has P(alive) = 1, which says nothing about them: this keeps that 1 out of the
    repeat buyers' figures."""
    rows = []
    for group, part in (
        ("one-time buyers", scores[scores["frequency"] == 0]),
        ("repeat buyers", scores[scores["frequency"] > 0]),
    ):
        rows.append(
            {
                "group": group,
                "contacts": int(len(part)),
                "mean_p_alive": float(part["p_alive"].mean()) if len(part) else float("nan"),
                "p_alive_below_half": int((part["p_alive"] < 0.5).sum()),
                "expected_purchases": float(part["expected_purchases"].sum()),
                "expected_value": float(part["expected_value"].sum()),
            }
        )
    return pd.DataFrame(rows)


def compute_clv(
    ws,
    as_of: Any = None,
    horizon_days: float | None = None,
    *,
    unit_days: float | None = None,
    annual_discount_rate: float | None = None,
    penalizer: float | None = None,
    write: bool = True,
    model: str | None = None,
    name: str = CLV_TABLE,
    replace: bool = False,
) -> ClvResult:
    """Fit a repeat-purchase model (``model``: "bgnbd" or "mbgnbd") + Gamma-Gamma on orders
    before ``as_of`` and write ``clv`` / ``clv_models``.

    ``as_of`` defaults to now (UTC). ``horizon_days`` is the forecast window for
    expected_purchases and expected_value; ``annual_discount_rate`` discounts
    expected_value week by week (0 = undiscounted: expected purchases x expected spend).
    ``write=False`` computes without touching the workspace. ``name`` is the model written
    (table ``name`` and ``name_models``); a model, horizon, time unit or discount rate other
    than the model ``name`` has is refused while saved segments read it, unless ``replace``
    (:func:`segmentum.segments.models.writing`). With none of ``horizon_days``,
    ``unit_days``, ``annual_discount_rate``, ``penalizer`` and ``model`` given, the model
    ``name`` is refreshed with the settings it was fitted with (for a new one: 365 days,
    weeks, no discount, no penalizer, the BG/NBD); otherwise the others take those defaults.
    """
    given = {"horizon_days": horizon_days, "unit_days": unit_days, "model": model,
             "annual_discount_rate": annual_discount_rate, "penalizer": penalizer}
    settings = _settings(ws, name, given)
    horizon_days, unit_days, annual_discount_rate, penalizer, model = (
        settings[k] for k in ("horizon_days", "unit_days", "annual_discount_rate", "penalizer",
                              "model")
    )
    if not (isinstance(horizon_days, int | float) and horizon_days > 0):
        raise UsageError(
            f"horizon_days must be a number of days above 0. Got {horizon_days!r} instead."
        )
    if not (isinstance(annual_discount_rate, int | float) and annual_discount_rate >= 0):
        raise UsageError(
            "annual_discount_rate must be 0 or more (0.1 = 10% a year). "
            f"Got {annual_discount_rate!r} instead."
        )
    fitted = purchase_model(model, penalizer)
    as_of_ts = (
        pd.Timestamp.now(tz="UTC").floor("s") if as_of is None else to_utc_timestamp(as_of, "as_of")
    )
    spec = ModelSpec(
        "clv",
        name,
        {"model": model, "horizon_days": float(horizon_days), "unit_days": float(unit_days),
         "annual_discount_rate": float(annual_discount_rate)},
        {"penalizer": float(penalizer)},
    )
    with writing(ws, spec, as_of_ts, replace=replace) if write else nullcontext() as written:
        result = _fit(ws, fitted, as_of_ts, horizon_days, unit_days, annual_discount_rate,
                      penalizer)
        if write:
            _write(ws, result, name)
    result.table, result.written = name, written
    return result


_DEFAULTS = {"horizon_days": 365, "unit_days": 7, "annual_discount_rate": 0.0,
             "penalizer": 0.0, "model": DEFAULT_MODEL}


def _settings(ws, name: str, given: dict) -> dict:
    """The settings given, the others by default; none given: the model's recorded ones."""
    recorded = ModelRegistry(ws).get(name) if all(v is None for v in given.values()) else None
    if recorded is not None and recorded.kind == "clv" and recorded.meaning is not None:
        given = {**recorded.meaning, "penalizer": recorded.settings.get("penalizer")}
    return {k: default if given.get(k) is None else given[k] for k, default in _DEFAULTS.items()}


def _fit(ws, fitted, as_of_ts, horizon_days, unit_days, annual_discount_rate, penalizer):
    """Summarise the orders before ``as_of_ts``, fit both models and score every buyer."""
    summary = summary_from_orders(ws.table("orders"), observation_end=as_of_ts, unit_days=unit_days)
    df = summary.to_pandas()
    if df.empty:
        raise WorkspaceError(
            f"No completed orders before {as_of_ts:%Y-%m-%d %H:%M} UTC, so there is nothing to "
            "fit CLV on: load orders first, or pick a later --as-of."
        )
    df = df.sort_values("contact_id", kind="stable").reset_index(drop=True)
    x = df["frequency"].to_numpy(dtype=float)
    t_x = df["recency"].to_numpy(dtype=float)
    T = df["T"].to_numpy(dtype=float)
    m = df["monetary_value"].to_numpy(dtype=float)
    if not (x > 0).any():
        raise WorkspaceError(
            f"CLV needs repeat purchases, but none of the {len(df)} contacts with completed "
            f"orders before {as_of_ts:%Y-%m-%d} bought on two different days."
        )
    spenders = (x > 0) & np.isfinite(m) & (m > 0)
    if spenders.sum() < 2:
        raise WorkspaceError(
            "The spend model needs at least 2 repeat buyers with a positive order value; "
            f"this workspace has {int(spenders.sum())} before {as_of_ts:%Y-%m-%d}."
        )
    bg = fitted.fit(x, t_x, T)
    gg = GammaGamma(penalizer=penalizer).fit(x[spenders], m[spenders])

    horizon = horizon_days / unit_days
    (ux, utx, uT), _, inverse = compress([x, t_x, T], np.ones(x.size))
    p_alive = np.atleast_1d(bg.conditional_probability_alive(ux, utx, uT))[inverse]
    purchases = np.atleast_1d(
        bg.conditional_expected_number_of_purchases_up_to_time(horizon, ux, utx, uT)
    )[inverse]
    if annual_discount_rate > 0:
        per_unit = (1 + annual_discount_rate) ** (unit_days / 365.25) - 1
        discounted = discounted_expected_purchases(bg, x, t_x, T, horizon, per_unit)
    else:
        discounted = purchases
    # Repeat buyers whose repeat orders were all free carry no spend information the
    # Gamma-Gamma can use: like frequency-0 contacts they get the population's mean spend.
    spend = np.asarray(
        gg.conditional_expected_average_profit(np.where(spenders, x, 0.0), np.nan_to_num(m))
    )
    value = discounted * spend

    scores = pd.DataFrame(
        {
            "contact_id": df["contact_id"].astype(str),
            "as_of": pd.Series([as_of_ts] * len(df), dtype="datetime64[us, UTC]"),
            "frequency": df["frequency"].astype("int64"),
            "recency": t_x,
            "T": T,
            "monetary_value": df["monetary_value"].astype("float64"),
            "p_alive": p_alive,
            "expected_purchases": purchases,
            "expected_value": value,
            "horizon_days": float(horizon_days),
        }
    )
    return ClvResult(as_of_ts, float(horizon_days), float(unit_days), bg, gg, scores)


def _write(ws, result: ClvResult, name: str = CLV_TABLE) -> None:
    wh = ws.warehouse
    models_table = models_table_of(name)
    wh.replace_table(name, result.scores)
    wh.create_table(models_table, CLV_MODELS_SCHEMA)
    fitted_at = pd.Timestamp.now(tz="UTC").floor("us")
    rows = pd.DataFrame(
        [
            {
                "as_of": result.as_of,
                "model": name,
                "params": json.dumps(model.params_),
                "log_likelihood": model.log_likelihood_,
                "n": int(model.n_),
                "fitted_at": fitted_at,
            }
            for name, model in (
                (result.purchases.key, result.purchases),
                ("gamma_gamma", result.gamma_gamma),
            )
        ]
    )
    for col in ("as_of", "fitted_at"):
        rows[col] = rows[col].astype("datetime64[us, UTC]")
    models = ws.table(models_table)
    kept = models.filter(models.as_of != result.as_of.to_pydatetime()).to_pandas()
    if len(kept) < models.count().to_pandas():
        wh.replace_table(models_table, pd.concat([kept, rows], ignore_index=True))
    else:
        wh.insert(models_table, rows)


def models_table_of(name: str) -> str:
    """The table of fitted parameters of the CLV model ``name`` (``clv_models`` for clv)."""
    return f"{name}_models"

