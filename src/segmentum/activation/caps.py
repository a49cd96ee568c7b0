"""Frequency caps over rolling windows, reserved in the delivery log so they are never exceeded.

A :class:`CapRule` allows at most ``limit`` messages per contact on ``channel`` (a
configured name, or ``"*"`` for any) carrying ``tag`` (None: any tag) in any ``window``
of time. Several rules are AND-combined; the workspace's own (``caps:`` in
``segmentum.yaml``) always apply on top of a campaign's. Transactional messages are
neither capped nor counted.

What counts: the contact's messages in the delivery log that are sent, maybe sent
(``unknown``) or waiting to go (pending), at their send time (``sent_at``, else
``send_at``), and the messages admitted earlier in the same call. A new message at time t
fits a rule when every window of length ``window`` that contains t holds fewer than
``limit`` counted messages: future reservations count too, so a deferred message can't
push a later window over. One query counts, per contact and rule, the counted messages
within the rule's window of the call's earliest and latest times; a contact with one
decision and fewer than the limit there fits every window, and only the others are
checked message by message against their rows.

:meth:`CapLedger.reserve` checks and records in one step under the workspace's delivery
lock and one transaction: the admitted (and deferred) messages are written to the delivery log before the
lock is released, so two plans made at the same time (threads of one process; DuckDB lets
one process write a workspace at a time) can never both take the last slot. A message over
a cap is dropped (``capped``) or, with ``on_cap="defer"``, moved to the earliest time it
fits within ``defer_hours`` (``capped_deferred``, expiring at the end of that delay), and
dropped if there is none.
"""

from __future__ import annotations

import bisect
import dataclasses as dc
import datetime as _dt
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from segmentum.activation.delivery import COUNTED, DELIVERIES, PENDING, DeliveryLog, _locked
from segmentum.activation.message import Decision
from segmentum.clock import to_utc
from segmentum.errors import UsageError

__all__ = ["CapRule", "CapLedger", "workspace_rules"]

_OPEN = ("scheduled", "quiet_hours_deferred")  # decisions a cap applies to


@dc.dataclass(frozen=True)
class CapRule:
    """At most ``limit`` messages on ``channel`` ("*" = any) with ``tag`` per ``window``."""

    channel: str
    tag: str | None
    limit: int
    window: _dt.timedelta

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or self.limit < 1:
            raise UsageError(f"A cap's limit is a whole number of at least 1. Got {self.limit!r} instead.")
        if not isinstance(self.window, _dt.timedelta):
            from segmentum.activation.channels.config import parse_window

            try:
                object.__setattr__(self, "window", parse_window(self.window))
            except ValueError as exc:
                raise UsageError(f"A cap's window: {exc}.") from None
        if self.window <= _dt.timedelta(0):
            raise UsageError("A cap's window is a positive duration, e.g. 7d.")

    def applies(self, channel: str, tags: Sequence[str]) -> bool:
        """True when a message on ``channel`` with ``tags`` counts toward this rule."""
        return self.channel in ("*", channel) and (self.tag is None or self.tag in tags)

    def __str__(self) -> str:
        tag = f" tagged {self.tag}" if self.tag else ""
        where = "any channel" if self.channel == "*" else self.channel
        return f"at most {self.limit} on {where}{tag} per {_span(self.window)}"


def _span(window: _dt.timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def workspace_rules(ws) -> list[CapRule]:
    """The workspace-wide caps of ``segmentum.yaml`` (``caps:``)."""
    from segmentum.activation.channels.config import load_settings

    return [CapRule(c.channel, c.tag, c.limit, c.window) for c in load_settings(ws).caps]


@dc.dataclass
class _Counted:
    """One contact's counted messages: (time, channel, tags), sorted by time."""

    times: list[_dt.datetime] = dc.field(default_factory=list)
    items: list[tuple[str, tuple[str, ...]]] = dc.field(default_factory=list)

    def add(self, at: _dt.datetime, channel: str, tags: Sequence[str]) -> None:
        i = bisect.bisect_right(self.times, at)
        self.times.insert(i, at)
        self.items.insert(i, (channel, tuple(tags)))

    def times_for(self, rule: CapRule) -> list[_dt.datetime]:
        return [t for t, (ch, tags) in zip(self.times, self.items, strict=True) if rule.applies(ch, tags)]


def fits(times: list[_dt.datetime], at: _dt.datetime, rule: CapRule) -> bool:
    """True when one more message at ``at`` keeps every window containing it under the
    limit. ``times`` are the rule's counted times, sorted."""
    w = rule.window
    lo = bisect.bisect_right(times, at - w)  # times inside (at - w, at + w)
    hi = bisect.bisect_left(times, at + w)
    near = times[lo:hi]
    if len(near) < rule.limit:
        return True
    # a window [s, s + w) holding ``at`` has s in (at - w, at]; sliding s to the right,
    # its count only grows when a later time t enters (s just past t - w): try those starts
    tick = _dt.timedelta(microseconds=1)
    for start in [at - w + tick, *[t - w + tick for t in near if t > at]]:
        inside = bisect.bisect_left(near, start + w) - bisect.bisect_left(near, start)
        if inside >= rule.limit:
            return False
    return True


def _earliest(counted: _Counted, at: _dt.datetime, until: _dt.datetime,
              rules: Sequence[CapRule]) -> _dt.datetime | None:
    """The earliest time in [at, until] at which a message fits every rule, or None."""
    candidates = {at}
    for rule in rules:
        for t in counted.times_for(rule):
            edge = t + rule.window
            if at < edge <= until:
                candidates.add(edge)
    for t in sorted(candidates):
        if all(fits(counted.times_for(r), t, r) for r in rules):
            return t
    return None


class CapLedger:
    """Checks and reserves frequency caps in a workspace's delivery log (see the module doc)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.wh = ws.warehouse

    def reserve(self, decisions: Iterable[Decision], rules: Sequence[CapRule], at: Any = None, *,
                on_cap: Literal["drop", "defer"] = "drop", defer_hours: float = 24,
                record: bool = True) -> list[Decision]:
        """The decisions with those over a cap changed to ``capped`` / ``capped_deferred``.

        With ``record`` (the default) the admitted and deferred messages are written to the
        delivery log in the same locked transaction as the check (other decisions are not;
        record the plan as a whole afterwards, which adds nothing twice). Without it
        nothing is written (a dry run). ``at`` is the time of a decision without a send time.
        """
        decisions = list(decisions)
        if on_cap not in ("drop", "defer"):
            raise UsageError(f'on_cap is "drop" or "defer", not {on_cap!r}.')
        rules = [*rules, *workspace_rules(self.ws)]
        T = to_utc(at)
        with _locked(self.ws):
            out = self._check(decisions, rules, T, on_cap, _dt.timedelta(hours=defer_hours))
            if record:
                DeliveryLog(self.ws).record_plan([d for d in out if d.outcome in PENDING])
        return out

    def _check(self, decisions: list[Decision], rules: list[CapRule], T: _dt.datetime,
               on_cap: str, delay: _dt.timedelta) -> list[Decision]:
        capped = [i for i, d in enumerate(decisions) if _cappable(d)]
        if not rules or not capped:
            return decisions
        times = [_when(decisions[i], T) for i in capped]
        exact = self._not_clear(decisions, capped, times, rules)
        if not exact:
            return decisions
        reach = max(r.window for r in rules)
        history = self._history([decisions[i].contact_id for i, _ in exact],
                                min(times) - reach, max(times) + reach + delay)
        out = list(decisions)
        for i, at in exact:
            d = decisions[i]
            counted = history.setdefault(d.contact_id, _Counted())
            own = [r for r in rules if r.applies(d.message.channel, d.message.tags)]
            if all(fits(counted.times_for(r), at, r) for r in own):
                counted.add(at, d.message.channel, d.message.tags)
                continue
            over = next(r for r in own if not fits(counted.times_for(r), at, r))
            later = _earliest(counted, at, at + delay, own) if on_cap == "defer" else None
            if later is None:
                out[i] = d.with_outcome("capped", f"cap: {over}")
                continue
            counted.add(later, d.message.channel, d.message.tags)
            msg = dc.replace(d.message, send_at=later, expires_at=at + delay)
            out[i] = d.with_outcome("capped_deferred", f"cap: {over}; deferred", message=msg,
                                    send_at=later)
        return out

    def _not_clear(self, decisions: list[Decision], capped: list[int], times: list[_dt.datetime],
                   rules: list[CapRule]) -> list[tuple[int, _dt.datetime]]:
        """(index, time) of the decisions that need the exact check: those of a contact
        with more than one decision here, or with, for one of its rules, as many counted
        messages as the limit within the rule's window of the earliest or latest time
        here. The others fit: a window around any of the times holds fewer than that."""
        ids = [decisions[i].contact_id for i in capped]
        repeated = {c for c, n in Counter(ids).items() if n > 1}
        near = self._near_counts(ids, rules, min(times), max(times))
        exact = []
        for i, cid, at in zip(capped, ids, times, strict=True):
            counts = near.get(cid)
            if cid in repeated or (counts is not None and _may_be_over(decisions[i], rules, counts)):
                exact.append((i, at))
        return exact

    def _counted_rows(self, contact_ids: list[str], start: _dt.datetime,
                      end: _dt.datetime) -> ir.Table | None:
        """contact_id, channel, tags, at of the counted messages of these contacts strictly
        between ``start`` and ``end`` (None: no delivery log yet)."""
        if not self.wh.has_table(DELIVERIES):
            return None
        # the stored rows: a message being sent is still pending there, so it counts
        d = self.wh.table(DELIVERIES)
        ids = ibis.memtable(pa.table({"contact_id": pa.array(sorted(set(contact_ids)), pa.string())}))
        when = d.sent_at.coalesce(d.send_at)
        return (
            d.filter(d.outcome.isin(list(COUNTED)) & ~d.transactional.fill_null(False)
                     & (when > start) & (when < end))
            .semi_join(ids, "contact_id")
            .select("contact_id", "channel", "tags", at=when)
        )

    def _near_counts(self, contact_ids: list[str], rules: list[CapRule], lo: _dt.datetime,
                     hi: _dt.datetime) -> dict[str, tuple[int, ...]]:
        """Per contact with counted messages: how many each rule counts between
        ``lo - window`` and ``hi + window`` (one query)."""
        reach = max(r.window for r in rules)
        t = self._counted_rows(contact_ids, lo - reach, hi + reach)
        if t is None:
            return {}
        counts = {f"n{j}": _applies(t, r, lo, hi).cast("int64").sum() for j, r in enumerate(rules)}
        rows = t.group_by("contact_id").agg(**counts).to_pyarrow()
        columns = [rows.column(f"n{j}").to_pylist() for j in range(len(rules))]
        return dict(zip(rows.column("contact_id").to_pylist(), zip(*columns), strict=True))

    def _history(self, contact_ids: list[str], start: _dt.datetime,
                 end: _dt.datetime) -> dict[str, _Counted]:
        """Each contact's counted messages between ``start`` and ``end``."""
        t = self._counted_rows(contact_ids, start, end)
        if t is None:
            return {}
        rows = t.order_by("at").to_pyarrow().to_pylist()
        out: dict[str, _Counted] = {}
        for r in rows:
            c = out.setdefault(r["contact_id"], _Counted())
            c.times.append(to_utc(r["at"]))
            c.items.append((r["channel"], tuple(r["tags"] or ())))
        return out


def _applies(t: ir.Table, rule: CapRule, lo: _dt.datetime, hi: _dt.datetime) -> ir.BooleanValue:
    """Rows of ``t`` the rule counts, within its window of ``lo`` or ``hi`` or between."""
    ts = "timestamp('UTC')"
    inside = (t.at > ibis.literal(lo - rule.window, type=ts)) & (t.at < ibis.literal(hi + rule.window, type=ts))
    if rule.channel != "*":
        inside = inside & (t.channel == rule.channel)
    if rule.tag is not None:
        inside = inside & t.tags.contains(rule.tag).fill_null(False)
    return inside


def _may_be_over(d: Decision, rules: list[CapRule], counts: tuple[int, ...]) -> bool:
    m = d.message
    return any(n >= r.limit for r, n in zip(rules, counts, strict=True) if r.applies(m.channel, m.tags))


def _cappable(d: Decision) -> bool:
    return d.message is not None and d.outcome in _OPEN and not d.message.transactional


def _when(d: Decision, T: _dt.datetime) -> _dt.datetime:
    at = d.send_at or d.message.send_at or T
    return at if at.tzinfo is _dt.UTC else to_utc(at)
