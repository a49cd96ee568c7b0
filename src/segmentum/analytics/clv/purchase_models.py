"""The repeat-purchase models by name: what ``--model`` chooses (``bgnbd``, ``mbgnbd``).

``DEFAULT_MODEL`` stays the BG/NBD: on the CDNOW calibration / holdout check (first
purchases 1997-01-01 .. 1997-09-30, holdout to 1998-06-30, 23,570 customers; measured
2026-12-03) the MBG/NBD fits the calibration period a little better (log-likelihood
-95,337.0 vs. -95,368.4) but is not better on the holdout: repeat purchases in the holdout
-19.1% vs. -14.3%, and who buys again there (Brier score) 0.1661 vs. 0.1654, one-time buyers
0.1254 vs. 0.1251 (predicted share buying 12.0% and 16.5%, actual 14.6%). Choose the
MBG/NBD (``model="mbgnbd"``) when one-time buyers' P(alive) matters: the BG/NBD gives them
all 1. On the demo workspace it is the better of the two (Brier 0.111 vs. 0.116; calibration
2023-11-01 .. 2025-10-31). ``tests/analytics/test_clv.py`` pins these CDNOW figures.
"""

from __future__ import annotations

from segmentum.analytics.clv.bgnbd import BGNBD
from segmentum.analytics.clv.mbgnbd import MBGNBD
from segmentum.errors import UsageError, did_you_mean

__all__ = ["PURCHASE_MODELS", "DEFAULT_MODEL", "purchase_model"]

PURCHASE_MODELS: dict[str, type[BGNBD]] = {"bgnbd": BGNBD, "mbgnbd": MBGNBD}
DEFAULT_MODEL = "bgnbd"


def purchase_model(name: str, penalizer: float = 0.0) -> BGNBD:
    """A new (unfitted) repeat-purchase model by its name."""
    cls = PURCHASE_MODELS.get(name)
    if cls is None:
        raise UsageError(
            f"Unknown model {name!r}.{did_you_mean(name, PURCHASE_MODELS)} "
            f"Choose one of: {', '.join(PURCHASE_MODELS)}."
        )
    return cls(penalizer=penalizer)
