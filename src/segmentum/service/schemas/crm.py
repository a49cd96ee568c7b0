"""CRM sync: records in, answers per record; consent changes out; webhook subscriptions."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Literal

from pydantic import Field

from segmentum.service.schemas.analytics import Loose
from segmentum.service.schemas.common import Model

__all__ = ["RecordsIn", "RecordAnswer", "SyncReport", "ConsentChange", "ConsentChanges",
           "WebhookCreate", "WebhookPublic", "WebhookCreated", "QueuedChange"]


class RecordsIn(Model):
    records: list[dict[str, Any]] = Field(min_length=1, max_length=10_000, description=(
        "one JSON object per record, with the kind's canonical fields (README: Input files); "
        "other keys are custom attributes"))
    create_contacts: bool = Field(default=False, description=(
        "deals / orders / events: create the contacts they name that the workspace lacks"))


class RecordAnswer(Model):
    index: int = Field(description="the record's position in `records`, from 0")
    status: Literal["accepted", "quarantined", "suppressed"]
    reason: str | None = None
    field: str | None = Field(default=None, description="the field at fault")


class SyncReport(Loose):
    kind: str
    source: str
    input: int
    accepted: int
    quarantined: int
    suppressed: int = Field(description="records of erased people: stored nowhere")
    records: list[RecordAnswer]


class ConsentChange(Model):
    id: str
    contact_id: str
    email: str | None
    channel: str
    scope: str
    action: Literal["unsubscribe", "resubscribe", "suppress", "unsuppress"] | str
    source: str
    at: _dt.datetime
    recorded_at: _dt.datetime


class ConsentChanges(Model):
    items: list[ConsentChange]
    next: str = Field(description="pass as `since` to get what follows")
    has_more: bool


class WebhookCreate(Model):
    url: str = Field(min_length=8, max_length=2000, description="http(s) endpoint of the CRM")
    segments: list[str] | None = Field(default=None, max_length=1000, description=(
        "segments to follow; default: every saved segment, later ones included"))
    events: list[Literal["entered", "exited"]] = Field(default=["entered", "exited"], min_length=1)
    description: str | None = Field(default=None, max_length=500)


class WebhookPublic(Model):
    webhook_id: str
    url: str
    segments: list[str] | None
    events: list[str]
    description: str | None
    created_by: str
    created_at: _dt.datetime
    pending: int = 0
    delivered: int = 0
    failed: int = 0


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="signs every delivery (X-Segmentum-Signature); shown once")


class QueuedChange(Loose):
    batch_id: str
    event_id: str
    segment: str
    change: str
    contact_id: str
    at: _dt.datetime
    status: Literal["pending", "delivered", "failed"]
    attempts: int
