"""One send run of a campaign: plan it, record it in the delivery log, deliver it.

:func:`send_campaign` is what ``segmentum campaign send`` does:

1. the run due at the as-of time is planned (:func:`segmentum.activation.plan.plan_send`)
   unless the delivery log already holds it: a run is planned once, so running the same
   send again changes nothing and sends nothing twice - it only resumes delivery;
2. the decisions are recorded batch by batch (:class:`~segmentum.activation.delivery.
   DeliveryLog`), each batch's caps checked against the log, and the control assignments
   are recorded (:class:`~segmentum.activation.control_groups.ControlGroups`), all in one
   transaction under the delivery lock: the log holds the whole run or nothing of it;
3. the Sender delivers the run's due messages (those whose send time has come by the
   as-of time; later ones go on a later ``send`` or ``segmentum deliveries send``).

A dry run plans, renders and checks the caps without writing anything. Either way a
channel that would fail every message (a secret missing from the environment, marketing
e-mail without an unsubscribe link) stops the run before anything is planned.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
from typing import Any

from segmentum.activation.campaigns import Campaign, run_id
from segmentum.activation.plan import plan_send
from segmentum.clock import to_utc

__all__ = ["RunResult", "send_campaign", "run_outcomes"]


@dc.dataclass(frozen=True)
class RunResult:
    """What a send did: the run, its audience, the outcomes, what was delivered now."""

    campaign: str
    run: str
    as_of: _dt.datetime
    dry_run: bool
    planned_now: bool  # False: the run was in the delivery log already
    audience: int
    outcomes: dict[str, int]
    delivered: dict[str, Any] | None = None

    def to_dict(self) -> dict:
        return dc.asdict(self)


def run_outcomes(ws, origin) -> dict[str, int]:
    """Outcome -> count of one run, as the delivery log has it now."""
    from segmentum.activation.delivery import DeliveryLog

    return dict(sorted(DeliveryLog(ws).outcomes(origin).items()))


def send_campaign(
    ws,
    campaign: Campaign,
    as_of: Any = None,
    *,
    run: str | None = None,
    dry_run: bool = False,
    deliver: bool = True,
    channels: dict | None = None,
    retry_unknown: bool = False,
) -> RunResult:
    """Plan, record and deliver the run of ``campaign`` due at ``as_of`` (see the module doc)."""
    from segmentum.activation.channels import load_channels
    from segmentum.activation.delivery import DeliveryLog, Sender

    T = to_utc(as_of)
    run_at = to_utc(run) if run is not None else campaign.schedule.run_at(T)
    channels = channels if channels is not None else load_channels(ws)
    if campaign.channel in channels:
        _check_channel(channels[campaign.channel], campaign)
    log = DeliveryLog(ws)
    plan = plan_send(ws, campaign, as_of=T, run=run_id(run_at), channels=channels)
    planned_before = log.has_origin(plan.origin)
    if dry_run:
        outcomes = run_outcomes(ws, plan.origin) if planned_before else plan.counts()
        return RunResult(
            campaign.name, plan.origin.occurrence, T, True, False, sum(outcomes.values()), outcomes
        )
    if not planned_before:
        _record(ws, plan)
    delivered = None
    if deliver:
        sender = Sender(ws, channels)
        summary = sender.deliver(origin=plan.origin, now=T, retry_unknown=retry_unknown)
        delivered = summary.to_dict() if hasattr(summary, "to_dict") else dc.asdict(summary)
    outcomes = run_outcomes(ws, plan.origin)
    return RunResult(
        campaign.name,
        plan.origin.occurrence,
        T,
        False,
        not planned_before,
        sum(outcomes.values()),
        outcomes,
        delivered,
    )


def _check_channel(channel, campaign: Campaign) -> None:
    """Refuse a run its channel would fail message by message: missing secrets, or
    marketing e-mail without an unsubscribe link."""
    from segmentum.activation.channels import prepare
    from segmentum.errors import ConfigError

    prepare(channel)  # reads the channel's secrets: ConfigError naming a missing one
    spec = getattr(channel, "spec", None)
    if getattr(spec, "type", None) == "smtp" and not campaign.transactional:
        if spec.unsubscribe is None:
            raise ConfigError(
                f"Channel {channel.name!r} has no unsubscribe link, which marketing e-mail "
                f"needs (List-Unsubscribe); campaign {campaign.name!r} is marketing.",
                hint=f"configure channels.{channel.name}.unsubscribe (url, secret_env) in "
                "segmentum.yaml, or make the campaign transactional",
                key=f"channels.{channel.name}.unsubscribe",
            )


def _record(ws, plan) -> None:
    """Every decision into the delivery log and the control assignments, in one
    transaction: a run killed while it is recorded leaves nothing, and is planned again."""
    import ibis
    import pyarrow as pa

    from segmentum.activation.control_groups import ControlGroups
    from segmentum.activation.delivery import _locked

    with _locked(ws):
        plan.record()
        arms = plan.rows.select(["contact_id", "arm"])
        ControlGroups(ws).record(
            plan.campaign.name,
            plan.origin.occurrence,
            ibis.memtable(pa.table(arms)),
            plan.epoch,
            plan.run_at,
        )
