"""CLV and churn: BG/NBD or MBG/NBD + Gamma-Gamma fitted by maximum likelihood on SciPy.

    summary    purchases -> (frequency, recency, T, monetary_value) per contact
               (pandas for a DataFrame, Ibis for the warehouse's orders table)
    bgnbd      BGNBD: P(alive), expected purchases (Fader, Hardie & Lee 2005)
    mbgnbd     MBGNBD: the same with a dropout chance at the first purchase, so one-time
               buyers' P(alive) is below 1 (Batislam, Denizel & Filiztekin 2007)
    purchase_models  the two by name ("bgnbd", "mbgnbd") and the default
    gamma_gamma GammaGamma: expected spend per purchase, CLV (Fader & Hardie 2013)
    scores     compute_clv: fit on a workspace as of a date, write tables clv / clv_models
    holdout    calibration_holdout: predicted vs. actual repeat purchases in a holdout

    >>> from segmentum.analytics.clv import BGNBD, GammaGamma, compute_clv
    >>> result = compute_clv(ws, as_of="2024-06-30", horizon_days=365)
"""

from segmentum.analytics.clv.bgnbd import BGNBD
from segmentum.analytics.clv.gamma_gamma import GammaGamma, discounted_expected_purchases
from segmentum.analytics.clv.holdout import HoldoutReport, calibration_holdout
from segmentum.analytics.clv.mbgnbd import MBGNBD
from segmentum.analytics.clv.purchase_models import DEFAULT_MODEL, PURCHASE_MODELS, purchase_model
from segmentum.analytics.clv.scores import (
    CLV_MODELS_TABLE,
    CLV_TABLE,
    ClvResult,
    by_buyer_type,
    compute_clv,
)
from segmentum.analytics.clv.summary import summary_from_orders, summary_from_transactions

__all__ = [
    "BGNBD",
    "MBGNBD",
    "PURCHASE_MODELS",
    "DEFAULT_MODEL",
    "purchase_model",
    "by_buyer_type",
    "GammaGamma",
    "discounted_expected_purchases",
    "summary_from_transactions",
    "summary_from_orders",
    "compute_clv",
    "ClvResult",
    "CLV_TABLE",
    "CLV_MODELS_TABLE",
    "calibration_holdout",
    "HoldoutReport",
]
