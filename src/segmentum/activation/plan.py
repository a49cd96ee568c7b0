"""Planning a send: one decision per audience contact, computed in the warehouse.

:func:`plan_send` takes a campaign (or a trigger's campaign-like spec) and a run time and
decides, for every contact of the audience, exactly one outcome:

    audience (segment or rule as of the run, or the ids a trigger gives)
      -> global control removed        "global_control"   (not for transactional sends)
      -> campaign control drawn        "control"          (the same checks run for them:
                                                           ``reason`` says what would
                                                           have stopped the message)
      -> consent, unsubscribes         "no_consent" / "unsubscribed" / "suppressed"
      -> an address on the channel     "no_address"
      -> send time (optimised or a fixed local hour), then quiet hours in the contact's
         time zone                     "scheduled" / "quiet_hours_deferred"
      -> rendered                      "render_error" (the field and line in ``reason``)
      -> frequency caps (the campaign's and the workspace's)
                                       "capped" / "capped_deferred"

The first five steps are one query over the whole audience (1M contacts in seconds), and
the best hours one more; the rest runs in batches of :data:`BATCH` contacts: send times
(once per local hour and zone), rendering (the contact columns the template names, read
per batch; one render per distinct set of values), and the caps, checked last, after the
messages that will really go out are known. Control contacts get the send time they
would have had, so both arms' conversion windows start alike. :meth:`Plan.record` writes
the whole plan in one transaction.

    >>> plan = plan_send(ws, campaign, as_of="2026-11-01T09:00:00Z")
    >>> plan.counts()            # {"scheduled": ..., "control": ..., ...}; sums to plan.audience
    >>> plan.record()            # every decision into the delivery log, or none
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from segmentum.activation.campaigns import Campaign, run_id
from segmentum.activation.control_groups import ControlGroups, arm_expr
from segmentum.activation.message import Decision, Origin, OutboundMessage, message_key
from segmentum.clock import to_utc
from segmentum.errors import RenderError, UsageError

__all__ = ["BATCH", "Plan", "plan_send", "audience_table"]

BATCH = 50_000
_BLOCKED = ("no_consent", "unsubscribed", "suppressed", "no_address")


def audience_table(ws, campaign: Campaign, at: _dt.datetime, contact_ids=None) -> ir.Table:
    """The audience's contact ids: the given ids (a list or a table with contact_id), or
    the campaign's segment or rule evaluated as of ``at``."""
    if contact_ids is None:
        from segmentum.segments import SegmentEngine

        return SegmentEngine(ws).members(campaign.audience.rule_text(), at).select("contact_id")
    if isinstance(contact_ids, ir.Table):
        return contact_ids.select("contact_id").distinct()
    ids = list(dict.fromkeys(str(c) for c in contact_ids))
    return ibis.memtable(pa.table({"contact_id": pa.array(ids, pa.string())}))


@dc.dataclass
class Plan:
    """The decisions of one send run (see the module doc). ``rows`` holds every audience
    contact's first-stage outcome; :meth:`batches` finishes the outcomes batch by batch."""

    ws: Any
    campaign: Campaign
    origin: Origin
    run_at: _dt.datetime
    rows: pa.Table  # contact_id, arm, outcome, reason, to, tz
    channel: Any
    epoch: int
    trigger_data: Mapping[str, Mapping[str, Any]] = dc.field(default_factory=dict)
    _final: Counter | None = None
    _decisions: list[Decision] | None = None

    @property
    def audience(self) -> int:
        return self.rows.num_rows

    @property
    def decisions(self) -> list[Decision]:
        """Every decision at once, caps reserved (for the small plans of triggers; a
        campaign's run goes through :meth:`batches`)."""
        if self._decisions is None:
            self._decisions = [d for batch in self.batches(reserve=True) for d in batch]
        return self._decisions

    def record(self) -> dict[str, int]:
        """Put every decision in the delivery log and return the outcome counts: a key
        already in the log adds nothing. One transaction under the delivery lock, so the
        log holds the whole plan or none of it, and the caps each batch is checked against
        include the batches before it. What a campaign's run and a trigger's send do."""
        from segmentum.activation.delivery import DeliveryLog, _locked

        log = DeliveryLog(self.ws)
        with _locked(self.ws):
            for batch in self.batches(reserve=False, size=BATCH):
                log.record_plan(batch, origin=self.origin, channel=self.campaign.channel,
                                at=self.run_at)
        return self.counts()

    def first_counts(self) -> Counter:
        """Outcomes after the warehouse stage (before send times, rendering and caps)."""
        return Counter(self.rows.column("outcome").to_pylist())

    def counts(self) -> dict[str, int]:
        """Every outcome and how many contacts have it (runs :meth:`batches` with
        ``reserve=False`` if they have not been run yet). Sums to :attr:`audience`."""
        if self._final is None:
            for _ in self.batches(reserve=False):
                pass
        return dict(sorted(self._final.items()))

    def batches(self, *, reserve: bool = True, size: int = BATCH) -> Iterator[list[Decision]]:
        """The decisions, ``size`` contacts at a time; with ``reserve`` the frequency caps
        are reserved in the delivery log (a write: for a campaign that is not
        transactional, the messages admitted or deferred are then in the log already),
        otherwise only checked."""
        final: Counter = Counter()
        template = _template(self.ws, self.campaign) if self._sends() else None
        for start in range(0, self.rows.num_rows, size):
            chunk = self.rows.slice(start, size)
            decisions = self._finish({n: chunk.column(n).to_pylist() for n in chunk.column_names},
                                     template, reserve)
            final.update(d.outcome for d in decisions)
            yield decisions
        assert sum(final.values()) == self.audience, "planned = sum of outcomes"
        self._final = final

    def _sends(self) -> bool:
        return self.first_counts().get("scheduled", 0) > 0

    def _finish(self, cols: dict[str, list], template, reserve: bool) -> list[Decision]:
        """One batch's decisions (``cols``: the plan's rows, column by column)."""
        times = _send_times(self.campaign, self.run_at, cols)
        out: list[Decision | None] = []
        todo: list[int] = []  # rows that get a message, once rendered
        for i, (cid, outcome, arm, reason) in enumerate(
            zip(cols["contact_id"], cols["outcome"], cols["arm"], cols["reason"], strict=True)
        ):
            if outcome == "scheduled":
                out.append(None)
                todo.append(i)
            else:
                out.append(Decision(cid, outcome, arm, reason, None, times[i][0]))
        if todo:
            self._messages(todo, cols, times, out, template)
        scheduled = [i for i in todo if out[i].message is not None]
        if scheduled and not self.campaign.transactional:
            checked = _caps(self.ws, self.campaign, [out[i] for i in scheduled], self.run_at, reserve)
            for i, d in zip(scheduled, checked, strict=True):
                out[i] = d
        return out

    def _messages(self, todo: list[int], cols: dict[str, list], times: list[tuple],
                  out: list, template) -> None:
        """Render the rows ``todo`` and put their decisions in ``out``: a message, or the
        render error."""
        from segmentum.activation.content import contact_context, render_batch

        ids = [cols["contact_id"][i] for i in todo]
        extra = {c: self.trigger_data[c] for c in ids if c in self.trigger_data}
        skus = {c: [d["sku"]] for c, d in extra.items() if d.get("sku")}
        contexts = contact_context(
            self.ws,
            ids,
            self.run_at,
            fields=template.fields,
            columns=template.fields,
            recommendations=template.recommendations,
            exclude_skus=skus or None,
        )
        for c, data in extra.items():
            if c in contexts:
                contexts[c]["trigger"] = dict(data)
        rendered = render_batch(template, contexts)
        for i, cid in zip(todo, ids, strict=True):
            arm, (send_at, moved) = cols["arm"][i], times[i]
            got = rendered.get(cid)
            if got is None or isinstance(got, RenderError):
                reason = str(got) if got is not None else "the contact has no profile to render from"
                out[i] = Decision(cid, "render_error", arm, reason, None, None)
                continue
            outcome = "quiet_hours_deferred" if moved else "scheduled"
            message = self._message(cid, cols["to"][i], got, send_at)
            out[i] = Decision(cid, outcome, arm, None, message, send_at)

    def _message(self, contact_id: str, to: str, rendered, send_at: _dt.datetime) -> OutboundMessage:
        c = self.campaign
        expires = send_at + _dt.timedelta(hours=c.expires_hours) if c.expires_hours else None
        return OutboundMessage(
            key=message_key(self.origin, contact_id, c.channel),
            origin=self.origin,
            contact_id=contact_id,
            channel=c.channel,
            to=to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            tags=c.effective_tags,
            send_at=send_at,
            expires_at=expires,
            data={"variant": rendered.variant} if rendered.variant else {},
        )


def plan_send(
    ws,
    campaign: Campaign,
    contact_ids=None,
    as_of: Any = None,
    run: str | None = None,
    *,
    origin: Origin | None = None,
    channels: dict | None = None,
    trigger_data: Mapping[str, Mapping[str, Any]] | None = None,
) -> Plan:
    """Plan one run of ``campaign`` (see the module doc).

    The run is the campaign schedule's run due at ``as_of`` (default now), or the run
    named ``run`` (its time). Triggers pass ``contact_ids`` and an ``origin`` of kind
    "trigger"; the plan is then made as of ``as_of``, and ``trigger_data`` (per contact:
    what fired, e.g. the restocked product's ``sku``) is the templates' ``trigger``
    field; its ``sku`` is never recommended to that contact.
    """
    T = to_utc(as_of)
    if origin is not None:
        run_at = T
    elif run is not None:
        run_at = to_utc(run)
    else:
        run_at = campaign.schedule.run_at(T)
    origin = origin or Origin("campaign", campaign.name, run_id(run_at))
    channel = _channel(ws, campaign, channels)
    epoch = None if campaign.transactional else ControlGroups(ws).current(run_at)
    audience = audience_table(ws, campaign, run_at, contact_ids)
    first = _first_stage(ws, campaign, channel, audience, epoch, run_at)
    rows = _with_hours(ws, campaign, channel, run_at, first)
    return Plan(
        ws,
        campaign,
        origin,
        run_at,
        rows,
        channel,
        epoch.epoch if epoch else 0,
        dict(trigger_data or {}),
    )


def _channel(ws, campaign: Campaign, channels: dict | None):
    from segmentum.activation.channels import load_channels

    channels = channels if channels is not None else load_channels(ws)
    if campaign.channel not in channels:
        from segmentum.errors import did_you_mean

        names = sorted(channels)
        raise UsageError(
            f"Campaign {campaign.name!r} sends on channel {campaign.channel!r}, which is not "
            f"configured.{did_you_mean(campaign.channel, names)}",
            hint=f"configured channels: {', '.join(names)}"
            if names
            else "configure one in segmentum.yaml (channels:)",
        )
    return channels[campaign.channel]


def _first_stage(ws, campaign: Campaign, channel, audience: ir.Table, epoch, at) -> pa.Table:
    """contact_id, arm, outcome, reason, to, tz for every audience contact, in one query
    (tz: the contact's time zone, else the send settings' one)."""
    from segmentum.activation.channels.config import load_settings
    from segmentum.activation.consent import ConsentPolicy

    c = ws.warehouse.table("contacts")
    address = (
        c[channel.address_field].cast("string")
        if channel.address_field in c.columns
        else ibis.null("string")
    )
    fallback = ibis.literal(load_settings(ws).timezone, type="string")
    tz = c.timezone.nullif("").fill_null(fallback) if "timezone" in c.columns else fallback
    known = c.select(contact_id=c.contact_id, to=address, tz=tz, _known=ibis.literal(True))
    base = audience.left_join(known, "contact_id").select(audience.contact_id, "to", "tz", "_known")
    consent = ConsentPolicy(ws).filter(
        base.select("contact_id"), channel, campaign.transactional, at
    )
    base = base.left_join(consent, "contact_id").select(base, consent.allowed, consent.reason)
    arm = arm_expr(
        base.contact_id,
        epoch,
        campaign.salt,
        campaign.control_pct,
        transactional=campaign.transactional,
    )
    no_address = base._known.isnull() | base.to.isnull() | (base.to.strip() == "")
    blocked = ibis.cases(
        (base._known.isnull(), "no_address"),
        (~base.allowed.fill_null(False), base.reason.fill_null("no_consent")),
        (no_address, "no_address"),
        else_=ibis.null("string"),
    )
    t = base.mutate(arm=arm, blocked=blocked)
    outcome = ibis.cases(
        (t.arm == "global_control", "global_control"),
        (t.arm == "control", "control"),
        (t.blocked.notnull(), t.blocked),
        else_="scheduled",
    )
    reason = ibis.cases((t.arm == "control", t.blocked), else_=ibis.null("string"))
    return (
        t.select("contact_id", "arm", outcome=outcome, reason=reason, to=t.to, tz=t.tz)
        .order_by("contact_id")
        .to_pyarrow()
    )


def _template(ws, campaign: Campaign):
    from segmentum.activation.content import Template, find_template, template_dirs

    if isinstance(campaign.content, str):
        return find_template(campaign.content, template_dirs(ws, campaign.templates_dir))
    return Template.from_mapping(campaign.name, campaign.content.model_dump(exclude_none=True))


def _wants_time(outcome: str, reason: str | None) -> bool:
    """Rows that get a send time: messages, and controls that would have had one."""
    return outcome == "scheduled" or (outcome == "control" and reason is None)


def _with_hours(ws, campaign: Campaign, channel, run_at, rows: pa.Table) -> pa.Table:
    """``rows`` with ``hour``: the local hour to send at (optimised: each contact's best
    hour, read once for the whole audience; fixed: ``send_hour``; else null)."""
    import pyarrow.compute as pc

    if campaign.send_time != "optimised":
        hour = campaign.send_hour if campaign.send_time == "fixed" else None
        return rows.append_column("hour", pa.array([hour] * rows.num_rows, pa.int64()))
    from segmentum.activation.send_time import best_hours

    wanted = pc.or_(
        pc.equal(rows["outcome"], "scheduled"),
        pc.and_(pc.equal(rows["outcome"], "control"), pc.is_null(rows["reason"])),
    )
    ids = rows.filter(wanted).select(["contact_id"])
    if ids.num_rows == 0:
        return rows.append_column("hour", pa.nulls(rows.num_rows, pa.int64()))
    best = best_hours(ws, channel.kind, run_at, ibis.memtable(ids)).to_pyarrow()
    best = best.select(["contact_id", "hour_local"]).rename_columns(["contact_id", "hour"])
    return rows.join(best, "contact_id", join_type="left outer").sort_by("contact_id")


def _send_times(campaign: Campaign, run_at, cols: dict[str, list]) -> list[tuple]:
    """(send time, moved by quiet hours) per row: (None, False) for rows without one.
    Computed once per local hour and time zone."""
    from segmentum.activation.quiet_hours import QuietHours
    from segmentum.activation.send_time import next_send_time

    q = campaign.quiet_hours
    quiet = QuietHours(q.start, q.end) if q is not None else None
    memo: dict[tuple, tuple] = {}

    def when(hour: int | None, tz: str) -> tuple:
        at = run_at if campaign.send_time is None or hour is None else next_send_time(hour, tz, run_at)
        allowed = quiet.next_allowed(at, tz) if quiet is not None else at
        return allowed, allowed != at

    out = []
    for outcome, reason, hour, tz in zip(cols["outcome"], cols["reason"], cols["hour"], cols["tz"],
                                         strict=True):
        if not _wants_time(outcome, reason):
            out.append((None, False))
            continue
        key = (hour, tz)
        if key not in memo:
            memo[key] = when(hour, tz)
        out.append(memo[key])
    return out


def _caps(ws, campaign: Campaign, decisions: list[Decision], at, reserve: bool) -> list[Decision]:
    """The campaign's caps and the workspace's, checked (and with ``reserve`` the admitted
    messages recorded in the same locked transaction)."""
    from segmentum.activation.caps import CapLedger, CapRule

    rules = [CapRule(r.channel, r.tag, r.limit, r.window) for r in campaign.caps]
    return CapLedger(ws).reserve(
        decisions,
        rules,
        at,
        on_cap=campaign.on_cap,
        defer_hours=campaign.defer_hours,
        record=reserve,
    )
