"""The MBG/NBD model (Batislam, Denizel & Filiztekin 2007): a BG/NBD whose contacts can also
drop out right after their first purchase.

"Empirical validation and comparison of models for customer base analysis", International
Journal of Research in Marketing 24(3), 201-209. While alive, a contact buys at rate
lambda ~ Gamma(r, alpha); at the first purchase *and* after each repeat purchase it drops out
with probability p ~ Beta(a, b). The BG/NBD (:mod:`.bgnbd`) has no chance at the first
purchase, so it gives every one-time buyer P(alive) = 1, however long ago they bought; here
a one-time buyer's P(alive) falls with the time since that purchase::

    P(alive | x, t_x, T) = 1 / (1 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x))

A contact with x repeat purchases has passed x + 1 chances to drop out instead of x: the
likelihood (BDF 2007 eq. 6), E[X(t)] and E[Y(t) | x, t_x, T] are the BG/NBD's with that
count, so both models share one implementation (``start_dropout``). The same summary
(frequency, recency, T) and the same fit (maximum likelihood, BFGS on log-parameters)::

    >>> model = MBGNBD().fit(summary.frequency, summary.recency, summary.T)
    >>> model.conditional_probability_alive(0, 0, 52)   # a one-time buyer a year ago: < 1
"""

from __future__ import annotations

from segmentum.analytics.clv.bgnbd import BGNBD

__all__ = ["MBGNBD"]


class MBGNBD(BGNBD):
    """Modified BG/NBD: the dropout chance also comes at the first purchase.

    Same parameters, attributes and methods as :class:`~segmentum.analytics.clv.BGNBD`.
    """

    start_dropout = 1
    label, key = "MBG/NBD", "mbgnbd"
