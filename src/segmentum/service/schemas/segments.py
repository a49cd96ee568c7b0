"""Segments: definitions, previews, refreshes, history, members, changes, explanations.

A rule is text in the segment language or its JSON face (``{"version": 1, "rule": {...}}``
or a bare node), as in :mod:`segmentum.segments.json_face`. A bad rule answers 400 with
the error's position: ``line``, ``column``, ``end_column`` in the rule text, the
``excerpt`` with carets, and for JSON the ``path`` of the node at fault.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Literal

from pydantic import Field

from segmentum.service.schemas.common import Model

__all__ = [
    "Rule", "SegmentCreate", "SegmentUpdate", "SegmentPublic", "SegmentSummary", "RuleCheck",
    "RuleChecked", "PreviewRequest", "Preview", "RefreshRequest", "RefreshResult", "Refreshed",
    "HistoryRow", "History", "Member", "Change", "ChangesPage", "ExplainRequest", "Explanation",
]

Rule = str | dict[str, Any]
RULE = Field(description='rule text, e.g. `count(email_open, last 90 days) > 2`, or its JSON face')
AS_OF = Field(default=None, description="ISO 8601 (UTC if no offset), a date, or `now` (default)")


class SegmentCreate(Model):
    name: str = Field(min_length=1, max_length=200, description="e.g. apple-fans")
    rule: Rule = RULE
    description: str | None = Field(default=None, max_length=2000)


class SegmentUpdate(Model):
    rule: Rule = RULE
    description: str | None = Field(default=None, max_length=2000)


class SegmentSummary(Model):
    name: str
    description: str | None
    rule: str
    size: int | None = Field(description="members at the last refresh; null before the first")
    last_refresh: _dt.datetime | None = Field(description="as-of time of the last refresh")
    updated_at: _dt.datetime | None


class SegmentPublic(SegmentSummary):
    rule_json: dict[str, Any] | None
    created_at: _dt.datetime | None
    models: dict[str, str | None] | None = Field(description="models the rule was checked against")
    depends_on: list[str] = Field(description="segments this rule names (in_segment)")
    used_by: list[str] = Field(description="segments whose rules name this one")
    refreshes: int
    warnings: list[str] = Field(default_factory=list)


class RuleCheck(Model):
    rule: Rule = RULE


class RuleChecked(Model):
    ok: bool
    rule: str = Field(description="the rule in canonical text")
    rule_json: dict[str, Any]
    warnings: list[str]


class PreviewRequest(Model):
    rule: Rule = RULE
    as_of: str | None = AS_OF
    sample: int = Field(default=10, ge=0, le=1000, description="members to return")


class Preview(Model):
    rule: str
    as_of: _dt.datetime
    count: int
    total: int = Field(description="contacts in the workspace")
    share: float
    sample: list[dict[str, Any]]
    sql: str
    warnings: list[str]
    seconds: float


class RefreshRequest(Model):
    names: list[str] | None = Field(default=None, description="segments to refresh (default: all)")
    as_of: str | None = AS_OF


class RefreshResult(Model):
    segment: str
    as_of: _dt.datetime
    size: int
    entered: int
    exited: int
    seconds: float
    skipped: str | None
    warnings: list[str]


class Refreshed(Model):
    refreshed: list[RefreshResult]
    triggers: list[dict[str, Any]] = Field(description="what the triggers on these segments did")
    seconds: float


class HistoryRow(Model):
    as_of: _dt.datetime
    refreshed_at: _dt.datetime
    size: int
    entered: int
    exited: int
    seconds: float


class History(Model):
    segment: str
    refreshes: list[HistoryRow]


class Member(Model):
    contact_id: str
    entered_at: _dt.datetime | None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class Change(Model):
    id: str = Field(description="the change's stable id (also a webhook's event id)")
    at: _dt.datetime = Field(description="as-of time of the refresh that recorded it")
    change: Literal["entered", "exited"]
    contact_id: str
    email: str | None


class ChangesPage(Model):
    """Entries and exits of a segment after a cursor, in the order they were recorded."""

    segment: str
    items: list[Change]
    next: str = Field(description="pass as `since` to get what follows; also at the end, to poll")
    has_more: bool = Field(description="true when more changes are waiting now")


class ExplainRequest(Model):
    rule: Rule = RULE
    contact_id: str = Field(min_length=1, max_length=500)
    as_of: str | None = AS_OF


class Explanation(Model):
    contact_id: str
    as_of: _dt.datetime
    segment: str | None
    rule: str
    is_contact: bool
    member: bool
    note: str | None
    conditions: list[dict[str, Any]] = Field(description="each condition's truth and values")
