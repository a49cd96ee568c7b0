"""Send-time optimisation: the local hour each contact habitually opens or clicks.

For a channel, the engagement events of that channel (e-mail: ``email_open``,
``email_click``) in the year before the as-of time are counted per contact and local hour
of the contact's time zone (``contacts.timezone``; the fallback zone when it has none or an
unknown one), each weighted by ``0.5 ** (age_days / half_life_days)`` so recent habits count
more, and smoothed over the neighbouring hours (opens scatter around the habitual minute).
Opens that a machine made are left out: an event whose property ``is_machine_open`` is
true (Apple Mail Privacy Protection and similar proxies fetch every message on delivery,
so their "opens" only repeat the send time).

:func:`best_hours` gives per contact ``hour_local``, ``timezone`` and ``source``:

* ``contact`` - the contact's own best hour, when it has at least ``min_events`` counted
  events;
* ``population`` - the population's best hour (every contact with history contributes
  its own hour shares, so heavy openers do not outvote the rest) for the others;
* ``explore`` - a share of contacts (``explore_share``, 10% by default) gets a random
  waking hour instead, so the model keeps seeing opens at hours it did not choose. Who
  explores and at which hour is a hash of (salt, contact, as-of date): the same plan run
  twice gives the same hours, and the explorers change from day to day.

:func:`next_send_time` turns a local hour into the next UTC moment the contact's clock
shows it. :func:`evaluate` measures, against known habitual hours (the generator's
``traits.parquet``), how often a message sent at the chosen hour is opened within N hours
compared with random hours.

    >>> hours = best_hours(ws, "email", "2026-11-01", ["C0000001", "C0000002"])
    >>> hours.to_pyarrow()            # contact_id, hour_local, timezone, source
    >>> next_send_time(20, "Europe/Warsaw", datetime(2026, 11, 1, 9, tzinfo=UTC))
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import hashlib
import math
import uuid
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from segmentum.clock import to_utc
from segmentum.errors import UsageError

__all__ = [
    "SendTimeConfig",
    "ENGAGEMENT_EVENTS",
    "best_hours",
    "hour_scores",
    "choose_hours",
    "explore_draw",
    "next_send_time",
    "next_send_times",
    "evaluate",
]

# the events that show a contact paying attention to a channel of this kind
ENGAGEMENT_EVENTS = {
    "email": ("email_open", "email_click"),
    "sms": ("sms_click", "sms_reply"),
    "push": ("push_open", "push_click"),
}
MACHINE_OPEN = "is_machine_open"
RESULT_SCHEMA = pa.schema(
    [("contact_id", pa.string()), ("hour_local", pa.int64()), ("timezone", pa.string()),
     ("source", pa.string())]
)


@dc.dataclass(frozen=True)
class SendTimeConfig:
    """How best hours are chosen (see the module doc)."""

    lookback_days: int = 365
    half_life_days: float = 90.0
    min_events: int = 3
    explore_share: float = 0.10
    explore_hours: tuple[int, ...] = tuple(range(8, 22))  # waking hours, before quiet hours
    salt: str = "send-time"
    fallback_timezone: str = "UTC"
    event_types: tuple[str, ...] | None = None  # None: by the channel's kind
    exclude_machine_opens: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.explore_share <= 1.0:
            raise UsageError(f"explore_share is a share between 0 and 1, not {self.explore_share}.")
        if not self.explore_hours or any(not 0 <= h < 24 for h in self.explore_hours):
            raise UsageError("explore_hours are local hours 0 to 23.")
        if self.half_life_days <= 0 or self.lookback_days <= 0:
            raise UsageError("half_life_days and lookback_days are positive.")
        _zone(self.fallback_timezone, strict=True)


def _zone(name: str | None, *, strict: bool = False) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        if strict:
            raise UsageError(f"Unknown time zone {name!r}: use an IANA name, e.g. Europe/London.")
        return None


def _event_types(channel: Any, config: SendTimeConfig) -> tuple[str, ...]:
    """The engagement event types of a channel: a kind ("email"), or an object with .kind."""
    if config.event_types:
        return tuple(config.event_types)
    kind = getattr(channel, "kind", channel)
    if kind in ENGAGEMENT_EVENTS:
        return ENGAGEMENT_EVENTS[kind]
    # a webhook or outbox channel carries anything: any open or click shows attention
    return tuple(sorted({t for types in ENGAGEMENT_EVENTS.values() for t in types}))


# -- in the warehouse ------------------------------------------------------------------------
_EPOCH_DAY = _dt.date(1970, 1, 1).toordinal()


@ibis.udf.scalar.builtin(name="epoch")
def _epoch(ts: dt.Timestamp(timezone="UTC")) -> dt.float64:  # type: ignore[valid-type]
    """DuckDB's epoch() of an instant: seconds since 1970-01-01 UTC."""


def _seconds(wh, ts: ir.TimestampValue) -> ir.NumericValue:
    """Seconds since 1970-01-01 UTC. Ibis' ``epoch_seconds`` casts the instant to a local
    timestamp first, which on DuckDB goes through the ICU calendar and costs ten times
    as much as ``epoch()`` (half the CPU time of the whole best-hours query)."""
    return _epoch(ts) if wh.has_epoch_functions else ts.epoch_seconds()


def _offsets(wh, T: _dt.datetime, config: SendTimeConfig) -> tuple[ir.Table, dict[str, str]]:
    """UTC offset (seconds) per time zone and UTC day (days since 1970-01-01) over the
    lookback, and the zone each contacts.timezone value is read as (unknown ones: the
    fallback)."""
    c = wh.table("contacts")
    names = [n for n in c.select("timezone").distinct().to_pyarrow().column(0).to_pylist() if n]
    zones = {n: n if _zone(n) else config.fallback_timezone for n in names}
    used = sorted({*zones.values(), config.fallback_timezone})
    first = (T - _dt.timedelta(days=config.lookback_days + 1)).date()
    days = [first + _dt.timedelta(days=i) for i in range(config.lookback_days + 3)]
    rows = {"tz": [], "day": [], "offset_s": []}
    for name in used:
        zone = ZoneInfo(name)
        for day in days:
            noon = _dt.datetime(day.year, day.month, day.day, 12, tzinfo=_dt.UTC)
            rows["tz"].append(name)
            rows["day"].append(day.toordinal() - _EPOCH_DAY)
            rows["offset_s"].append(int(noon.astimezone(zone).utcoffset().total_seconds()))
    return ibis.memtable(pa.table(rows)), zones


def _zone_column(c: ir.Table, zones: dict[str, str], fallback: str) -> ir.Value:
    """contacts.timezone as the zone it is read as (known names as they are, else fallback)."""
    bad = [n for n, z in zones.items() if z != n]
    tz = c.timezone
    if bad:
        tz = tz.isin(bad).ifelse(ibis.literal(fallback), tz)
    return tz.fill_null(fallback)


def _weights(ws, channel: Any, T: _dt.datetime, config: SendTimeConfig,
             zones: tuple[ir.Table, dict[str, str]], *, counts: bool = False) -> ir.Table:
    """One row per contact with counted events: ``n`` (how many), ``w0`` .. ``w23`` (the
    decayed weight of its events in each local hour) and with ``counts`` ``n0`` .. ``n23``
    (events per hour). One group-by over the events: a row per contact and hour, then
    regrouped, costs three times as much."""
    offsets, names = zones
    wh = ws.warehouse
    e = wh.table("events")
    since = T - _dt.timedelta(days=config.lookback_days)
    e = e.filter(
        e.type.isin(list(_event_types(channel, config)))
        & (e.occurred_at < ibis.literal(T, type="timestamp('UTC')"))
        & (e.occurred_at >= ibis.literal(since, type="timestamp('UTC')"))
    )
    if config.exclude_machine_opens:
        machine = wh.json_value(e.properties, MACHINE_OPEN, "boolean")
        e = e.filter(machine.isnull() | ~machine)
    c = wh.table("contacts")
    c = c.select("contact_id", tz=_zone_column(c, names, config.fallback_timezone))
    # the time as seconds once per event, its UTC day as a number of days (no calendar)
    e = e.select("contact_id", secs=_seconds(wh, e.occurred_at)).join(c, "contact_id")
    e = e.mutate(day=(e.secs / 86_400).floor().cast("int64")).join(offsets, ["tz", "day"])
    age_days = (ibis.literal(int(T.timestamp())) - e.secs) / 86_400
    e = e.select(
        "contact_id",
        hour=((e.secs + e.offset_s) % 86_400 / 3600).floor().cast("int64"),
        w=(age_days * -math.log(2) / config.half_life_days).exp(),
    )
    aggs = {f"w{h}": (e.hour == h).ifelse(e.w, 0.0).sum() for h in range(24)}
    if counts:
        aggs |= {f"n{h}": (e.hour == h).cast("int64").sum() for h in range(24)}
    return e.group_by("contact_id").agg(n=e.count(), **aggs)


def _smoothed(t: ir.Table) -> list[ir.FloatingValue]:
    """Each local hour's score: its weight and half the weight of its two neighbours
    (hours wrap round midnight; opens scatter around the habitual minute)."""
    return [t[f"w{h}"] + (t[f"w{(h - 1) % 24}"] + t[f"w{(h + 1) % 24}"]) * 0.5 for h in range(24)]


def hour_scores(ws, channel: Any, as_of: Any = None, config: SendTimeConfig | None = None) -> ir.Table:
    """Per contact and local hour: ``score`` (decayed, smoothed weight) and ``n`` (events
    counted in that hour), an Ibis expression over the events (nothing is read yet)."""
    config = config or SendTimeConfig()
    T = to_utc(as_of)
    w = _weights(ws, channel, T, config, _offsets(ws.warehouse, T, config), counts=True)
    hours = [
        w.select("contact_id", hour=ibis.literal(h, type="int64"), score=score, n=w[f"n{h}"])
        for h, score in enumerate(_smoothed(w))
    ]
    s = ibis.union(*hours, distinct=False)
    return s.filter(s.score > 0)


def _best_hour(scores: Sequence[ir.FloatingValue]) -> ir.IntegerValue:
    """The hour with the highest score (ties: the earlier hour)."""
    top = ibis.greatest(*scores)
    return ibis.cases(*[(score == top, h) for h, score in enumerate(scores)])


def _population_best(weights: ir.Table) -> int | None:
    """The hour with the largest sum of per-contact hour shares (ties: the earlier hour)."""
    scores = _smoothed(weights)
    total = sum(scores[1:], scores[0])
    shares = weights.filter(total > 0).aggregate(
        **{f"s{h}": (score / total).sum() for h, score in enumerate(scores)}
    ).to_pyarrow().to_pylist()[0]
    values = [shares[f"s{h}"] for h in range(24)]
    if values[0] is None:
        return None
    return max(range(24), key=lambda h: (values[h], -h))


# -- pure decisions --------------------------------------------------------------------------
def explore_draw(salt: str, contact_id: str, day: _dt.date) -> tuple[float, int]:
    """(u in [0, 1), k >= 0) from sha256(salt, contact, day): the contact explores when
    u < the exploration share, at the k-th explore hour (mod their number)."""
    digest = hashlib.sha256(f"{salt}\x1f{contact_id}\x1f{day.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32, int.from_bytes(digest[4:8], "big")


def choose_hours(
    contact_ids: Sequence[str],
    own_hours: Sequence[int | None],
    own_events: Sequence[int],
    population_hour: int | None,
    day: _dt.date,
    config: SendTimeConfig,
) -> tuple[list[int | None], list[str]]:
    """Hour and source per contact from its own best hour and event count (see the module doc).
    With no history anywhere the population hour is None (the caller decides)."""
    hours: list[int | None] = []
    sources: list[str] = []
    explore = config.explore_hours
    for cid, own, n in zip(contact_ids, own_hours, own_events, strict=True):
        u, k = explore_draw(config.salt, cid, day)
        if u < config.explore_share:
            hours.append(explore[k % len(explore)])
            sources.append("explore")
        elif own is not None and n >= config.min_events:
            hours.append(int(own))
            sources.append("contact")
        else:
            hours.append(population_hour)
            sources.append("population")
    return hours, sources


def best_hours(
    ws,
    channel: Any,
    as_of: Any = None,
    contact_ids=None,
    *,
    config: SendTimeConfig | None = None,
) -> ir.Table:
    """contact_id, hour_local, timezone, source for each contact (all contacts when
    ``contact_ids`` is None; a list of ids or an Ibis table with a contact_id column).

    ``channel``: a channel kind ("email", "sms", "push") or a channel object with ``kind``.
    With no engagement history in the workspace at all, the population hour is the first
    explore hour. Two warehouse queries (the population's hour, then every contact's hour
    with :func:`choose_hours`' rule as an expression); returns an in-memory Ibis table
    (join it with warehouse tables or read it with ``to_pyarrow()``).
    """
    config = config or SendTimeConfig()
    T = to_utc(as_of)
    wh = ws.warehouse
    c = wh.table("contacts")
    if contact_ids is None:
        ids = c.select("contact_id")
    elif isinstance(contact_ids, ir.Table):
        ids = contact_ids.select("contact_id").distinct()
    else:
        ids = ibis.memtable(pa.table({"contact_id": pa.array(list(dict.fromkeys(contact_ids)), pa.string())}))
    zones = _offsets(wh, T, config)
    name = f"_send_time_weights_{uuid.uuid4().hex[:12]}"  # plans may run in threads
    weights = wh.temp_table(name, _weights(ws, channel, T, config, zones))
    try:
        population = _population_best(weights)
        if population is None:
            population = config.explore_hours[0]
        known = c.semi_join(ids, "contact_id")
        known = known.select("contact_id", tz=_zone_column(known, zones[1], config.fallback_timezone))
        own = weights.select("contact_id", "n", own=_best_hour(_smoothed(weights)))
        rows = known.left_join(own, "contact_id")
        hour, source = _choose_expr(rows.contact_id, rows.own, rows.n, population, T.date(), config)
        table = rows.select(
            "contact_id", hour_local=hour, timezone=rows.tz, source=source
        ).order_by("contact_id").to_pyarrow()
    finally:
        wh.drop_temp(name)
    return ibis.memtable(table.cast(RESULT_SCHEMA))


def _choose_expr(contact_id: ir.StringValue, own: ir.IntegerValue, n: ir.IntegerValue,
                 population: int, day: _dt.date, config: SendTimeConfig) -> tuple[ir.Value, ir.Value]:
    """:func:`choose_hours` as warehouse expressions: (hour, source)."""
    text = ibis.literal(f"{config.salt}\x1f") + contact_id + ibis.literal(f"\x1f{day.isoformat()}")
    digest = text.hexdigest("sha256")
    u = (ibis.literal("0x") + digest.substr(0, 8)).cast("int64")
    k = (ibis.literal("0x") + digest.substr(8, 8)).cast("int64")
    explore = u < ibis.literal(config.explore_share * 2**32, type="float64")
    hours = config.explore_hours
    explore_hour = ibis.cases(*[(k % len(hours) == i, h) for i, h in enumerate(hours)])
    mine = own.notnull() & (n.fill_null(0) >= config.min_events)
    hour = ibis.cases((explore, explore_hour), (mine, own), else_=ibis.literal(population, "int64"))
    source = ibis.cases((explore, "explore"), (mine, "contact"), else_="population")
    return hour.cast("int64"), source


# -- local hour -> UTC -----------------------------------------------------------------------
def next_send_time(hour_local: int, tz: str | None, after_utc: Any) -> _dt.datetime:
    """The first moment at or after ``after_utc`` when the clock in ``tz`` shows
    ``hour_local``:00 (an hour skipped by a DST change: the moment the clocks jump)."""
    if not 0 <= int(hour_local) < 24:
        raise UsageError(f"A local hour is 0 to 23, not {hour_local}.")
    after = to_utc(after_utc)
    zone = _zone(tz) or _dt.UTC
    local = after.astimezone(zone)
    for days in (0, 1, 2):
        day = local.date() + _dt.timedelta(days=days)
        wall = _dt.datetime(day.year, day.month, day.day, int(hour_local), tzinfo=zone)
        moment = wall.astimezone(_dt.UTC)
        back = moment.astimezone(zone)
        if back.hour != int(hour_local):  # a wall time the DST change skips
            moment = (wall + _dt.timedelta(hours=1)).replace(minute=0).astimezone(_dt.UTC)
            moment = moment - _dt.timedelta(seconds=moment.minute * 60 + moment.second)
        if moment >= after:
            return moment
    raise AssertionError("a local hour recurs within two days")  # pragma: no cover


def next_send_times(
    hours: Iterable[int | None], timezones: Iterable[str | None], after_utc: Any
) -> list[_dt.datetime | None]:
    """:func:`next_send_time` for many contacts (one computation per zone and hour);
    None where the hour is None."""
    after = to_utc(after_utc)
    memo: dict[tuple[int, str | None], _dt.datetime] = {}
    out: list[_dt.datetime | None] = []
    for h, tz in zip(hours, timezones, strict=True):
        if h is None:
            out.append(None)
            continue
        key = (int(h), tz)
        if key not in memo:
            memo[key] = next_send_time(int(h), tz, after)
        out.append(memo[key])
    return out


# -- measurement -----------------------------------------------------------------------------
def _rates(opt: float, rnd: float, pop: float) -> dict[str, float | None]:
    return {"optimised": opt, "random": rnd, "population": pop,
            "lift_vs_random": opt / rnd if rnd else None,
            "lift_vs_population": opt / pop if pop else None}


def evaluate(
    ws,
    truth: pa.Table | Any,
    as_of: Any = None,
    *,
    channel: Any = "email",
    windows: Sequence[int] = (1, 2, 3),
    config: SendTimeConfig | None = None,
    seed: int = 0,
    hour_column: str = "open_hour_local",
) -> dict[str, Any]:
    """How often a message sent at the chosen hour is opened within N hours, for contacts
    whose habitual open hour is known (``truth``: contact_id and ``hour_column``, as in
    the generator's traits.parquet), against random
    hours (drawn from the explore hours) and against everyone at the population's hour.

    An open "within N hours" of a send at local hour h means the habitual hour is one of
    h .. h+N-1 (the generator's opens land in the habitual hour, give or take 35 minutes).
    Exploration is off for the optimised arm (it is the random arm). Returns per N, for all
    the contacts and for those with enough history of their own, the three rates and the
    lifts optimised / random and optimised / population, with counts.
    """
    base = config or SendTimeConfig()
    chosen_cfg = dc.replace(base, explore_share=0.0)
    truth = truth if isinstance(truth, pa.Table) else pa.Table.from_pandas(truth, preserve_index=False)
    habit = dict(zip(truth.column("contact_id").to_pylist(), truth.column(hour_column).to_pylist(), strict=True))
    chosen = best_hours(ws, channel, as_of, list(habit), config=chosen_cfg).to_pyarrow()
    cids = chosen.column("contact_id").to_pylist()
    hours = np.array(chosen.column("hour_local").to_pylist())
    sources = chosen.column("source").to_pylist()
    actual = np.array([habit[c] for c in cids])
    own = np.array([s == "contact" for s in sources])
    rng = np.random.default_rng(seed)
    random_hours = rng.choice(np.array(base.explore_hours), len(cids))
    T = to_utc(as_of)
    zones = _offsets(ws.warehouse, T, chosen_cfg)
    population = _population_best(_weights(ws, channel, T, chosen_cfg, zones))
    out: dict[str, Any] = {
        "contacts": len(cids),
        "with_own_history": int(own.sum()),
        "population_hour": None if population is None else int(population),
        "exact_hour_share": float((hours[own] == actual[own]).mean()) if own.any() else None,
        "windows": {},
    }
    pop_hours = np.full(len(cids), population if population is not None else 0)
    for n in windows:
        def rate(sent: np.ndarray, mask: np.ndarray) -> float:
            hit = ((actual[mask] - sent[mask]) % 24) < n
            return float(hit.mean()) if mask.any() else float("nan")

        out["windows"][str(n)] = {
            group: _rates(rate(hours, mask), rate(random_hours, mask), rate(pop_hours, mask))
            for group, mask in (("all", np.ones(len(cids), bool)), ("with_own_history", own))
        }
    return out
