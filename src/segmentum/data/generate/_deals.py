"""Draw one chunk's CRM deals: one row per stage change, stages in funnel order.

Background deals end open (lead, qualified, negotiation) or closed (won, lost), never
sitting in proposal_sent; the planted ``proposal_sent`` contacts have a deal whose latest
stage is proposal_sent (and sometimes an older closed deal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segmentum.data.generate._context import DAY, Context
from segmentum.data.generate._people import People
from segmentum.data.generate._util import expand

LEAD, QUALIFIED, PROPOSAL, NEGOTIATION, WON, LOST = range(6)
_PATHS = (
    ((LEAD,), 0.12),
    ((LEAD, QUALIFIED), 0.12),
    ((LEAD, QUALIFIED, PROPOSAL, NEGOTIATION), 0.08),
    ((LEAD, QUALIFIED, PROPOSAL, NEGOTIATION, WON), 0.22),
    ((LEAD, QUALIFIED, PROPOSAL, WON), 0.10),
    ((LEAD, LOST), 0.10),
    ((LEAD, QUALIFIED, LOST), 0.10),
    ((LEAD, QUALIFIED, PROPOSAL, LOST), 0.08),
    ((LEAD, QUALIFIED, PROPOSAL, NEGOTIATION, LOST), 0.08),
    ((LEAD, QUALIFIED, PROPOSAL), 0.0),  # planted only
)
_PLANTED = len(_PATHS) - 1
_CLOSED = np.array([3, 4, 5, 6, 7, 8])
_LEN = np.array([len(p) for p, _ in _PATHS], dtype=np.int64)
_OFF = np.cumsum(_LEN) - _LEN
_STAGES = np.concatenate([np.array(p, dtype=np.int64) for p, _ in _PATHS])
_P = np.array([w for _, w in _PATHS])
BACKGROUND_SHARE = 0.035


@dataclass
class Deals:
    contact: np.ndarray
    deal: np.ndarray  # chunk-local deal number (0..)
    stage: np.ndarray
    t: np.ndarray
    pipeline: np.ndarray
    amount: np.ndarray  # cents


def draw_deals(ctx: Context, rng: np.random.Generator, P: People) -> Deals:
    as_of, u = ctx.as_of, rng.random
    planted = np.flatnonzero(P.proposal)
    holders = np.flatnonzero(~P.proposal & (u(P.n) < BACKGROUND_SHARE))
    second = holders[u(len(holders)) < 0.15]
    prior = planted[u(len(planted)) < 0.3]

    # background deals anywhere in the contact's life; planted: proposal sent in the last 60 days
    bg_c = np.concatenate([holders, second])
    bg_path = np.searchsorted(np.cumsum(_P[:-1]) / _P[:-1].sum(), u(len(bg_c)), side="right")
    pl_end = np.maximum(
        as_of - (DAY * rng.uniform(1, 60, len(planted))).astype(np.int64),
        P.created[planted] + 3 * 3600,
    )
    pr_path = _CLOSED[(u(len(prior)) * len(_CLOSED)).astype(np.int64)]

    contact = np.concatenate([bg_c, planted, prior])
    path = np.concatenate([bg_path, np.full(len(planted), _PLANTED), pr_path])
    k = len(contact)
    row_deal, step = expand(_LEN[path])
    gaps = np.where(step == 0, 0, (DAY * (rng.exponential(6.0, len(step)) + 0.05)).astype(np.int64))
    dur = np.bincount(row_deal, weights=gaps, minlength=k).astype(np.int64)
    # latest allowed end per deal and earliest start
    lo = P.created[contact] + 60
    hi = np.full(k, as_of - 3600, dtype=np.int64)
    nb, npl = len(bg_c), len(planted)
    hi[nb : nb + npl] = pl_end
    # a planted contact's older deal closes before the proposal deal starts
    pl_index = np.searchsorted(planted, prior)
    room = hi - lo
    scale = np.minimum(1.0, 0.9 * np.maximum(room, 0) / np.maximum(dur, 1))
    gaps = (gaps * scale[row_deal]).astype(np.int64)
    dur = np.bincount(row_deal, weights=gaps, minlength=k).astype(np.int64)
    start = lo + (u(k) * np.maximum(room - dur, 0)).astype(np.int64)
    start[nb : nb + npl] = hi[nb : nb + npl] - dur[nb : nb + npl]  # ends exactly at pl_end
    # prior deals: squeeze before the planted deal's start
    pl_start = start[nb + pl_index]
    pri = slice(nb + npl, k)
    room_p = pl_start - 3600 - lo[pri]
    scale_p = np.minimum(1.0, 0.9 * np.maximum(room_p, 0) / np.maximum(dur[pri], 1))
    rows_p = row_deal >= nb + npl
    gaps[rows_p] = (gaps[rows_p] * scale_p[row_deal[rows_p] - nb - npl]).astype(np.int64)
    gaps = np.where(step == 0, 0, np.maximum(gaps, 60))  # stages stay strictly ordered in time
    dur = np.bincount(row_deal, weights=gaps, minlength=k).astype(np.int64)
    start[pri] = lo[pri] + (u(k - nb - npl) * np.maximum(room_p - dur[pri], 0)).astype(np.int64)
    keep_deal = np.ones(k, dtype=bool)
    keep_deal[pri] = room_p > 3 * 3600

    cum = np.cumsum(gaps)
    first = np.cumsum(_LEN[path]) - _LEN[path]
    t = start[row_deal] + cum - cum[first][row_deal]
    stage = _STAGES[_OFF[path][row_deal] + step]
    pipeline = (u(k) < 0.35).astype(np.int64)
    base = np.round(np.exp(rng.normal(np.log(4_000), 0.8, k)), -1).astype(np.int64) * 100
    discount = rng.uniform(0.85, 0.97, k)
    after_neg = np.maximum.accumulate(np.where(stage == NEGOTIATION, 1, 0) * (row_deal + 1))
    negotiated = after_neg == row_deal + 1
    amount = np.where(negotiated, np.round(base[row_deal] * discount[row_deal], -2), base[row_deal])

    keep = keep_deal[row_deal]
    order = np.lexsort((t[keep], row_deal[keep], start[row_deal][keep], contact[row_deal][keep]))
    rd = row_deal[keep][order]
    # renumber deals in (contact, start time) order
    d_first = np.ones(len(rd), dtype=bool)
    d_first[1:] = rd[1:] != rd[:-1]
    deal = np.cumsum(d_first) - 1
    return Deals(
        contact=contact[rd],
        deal=deal,
        stage=stage[keep][order],
        t=t[keep][order],
        pipeline=pipeline[rd],
        amount=amount.astype(np.int64)[keep][order],
    )
