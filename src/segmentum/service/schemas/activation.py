"""Activation: campaigns, triggers, exports, template previews, the delivery log.

Campaigns and triggers are created from the same documents as their YAML files (README:
Campaigns with a control group; ``activation/campaigns.py``, ``activation/triggers.py``),
sent as JSON or YAML: errors name the key, and the line and column in the body as sent.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Literal

from pydantic import Field

from segmentum.service.schemas.analytics import Loose
from segmentum.service.schemas.common import Model

__all__ = ["CampaignSummary", "CampaignPublic", "Saved", "SendRequest", "RunResult", "Report",
           "TriggerSummary", "TriggerPublic", "FireRequest", "ExportRequest", "ExportPublic",
           "PreviewFor", "RenderedMessage", "GlobalControl", "Epochs"]


class CampaignSummary(Loose):
    name: str
    audience: str
    channel: str
    schedule: str
    control_pct: float
    runs: list[str]
    source: str | None
    updated_at: _dt.datetime | None


class CampaignPublic(Loose):
    campaign: dict[str, Any] = Field(description="the campaign as its file would say it")
    source: str | None
    runs: dict[str, dict[str, int]] = Field(description="run id -> outcome -> contacts")


class Saved(Model):
    name: str
    action: Literal["created", "updated", "unchanged", "deleted"]


class SendRequest(Model):
    as_of: str | None = Field(default=None, description="send the run due at this time (default: now)")
    run: str | None = Field(default=None, max_length=64, description="a run id, e.g. 2026-11-01T09:00:00Z")
    dry_run: bool = False
    retry_unknown: bool = False


class RunResult(Loose):
    campaign: str
    run: str
    as_of: _dt.datetime
    dry_run: bool
    planned_now: bool
    audience: int
    outcomes: dict[str, int]


class Report(Loose):
    campaign: str
    run: str
    arms: dict[str, Any]


class TriggerSummary(Loose):
    name: str
    on: str
    action: str
    enabled: bool
    active_from: _dt.datetime | None


class TriggerPublic(Loose):
    name: str
    occurrences: dict[str, int]


class FireRequest(Model):
    as_of: str | None = None
    names: list[str] | None = Field(default=None, description="triggers (default: all)")


class ExportRequest(Model):
    segment: str = Field(min_length=1, max_length=200)
    format: Literal["csv", "meta", "google"] = "csv"
    changes_since_last: bool = False
    fields: list[str] | None = Field(default=None, description="csv: the contact columns (default: id, e-mail, ...)")
    consent_field: str = Field(default="ads_opt_in", max_length=200)
    as_of: str | None = Field(default=None, description="members at this time, from the history")


class ExportPublic(Loose):
    export_id: int
    segment: str
    format: str
    file: str
    removals_file: str | None
    incremental: bool


class PreviewFor(Model):
    contact_id: str = Field(min_length=1, max_length=500)
    as_of: str | None = None


class RenderedMessage(Model):
    template: str
    contact_id: str
    as_of: _dt.datetime
    variant: str | None
    subject: str | None
    text: str | None
    html: str | None


class GlobalControl(Model):
    pct: float = Field(ge=0, le=50)
    salt: str | None = Field(default=None, max_length=200)
    start: str | None = None


class Epochs(Model):
    epochs: list[dict[str, Any]]
