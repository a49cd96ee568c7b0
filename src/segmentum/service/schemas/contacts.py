"""Contacts: search results, the 360-degree card, erasure reports."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from pydantic import Field

from segmentum.service.schemas.analytics import Loose
from segmentum.service.schemas.common import Model

__all__ = ["ContactSummary", "ContactCard", "ErasureReport", "Readmit", "Readmitted"]


class ContactSummary(Model):
    contact_id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    city: str | None = None
    country: str | None = None
    created_at: _dt.datetime | None = None


class ContactCard(Loose):
    """What :func:`segmentum.analytics.contact_card.contact_card` gives (see its docstring)."""

    contact_id: str
    as_of: _dt.datetime
    matched_by: str
    profile: dict[str, Any]
    consents: dict[str, bool | None]
    attributes: dict[str, Any]
    rfm: dict[str, Any] | None
    clv: dict[str, Any] | None
    segments_now: list[dict[str, Any]]
    segments_past: list[dict[str, Any]]
    personas: dict[str, Any]
    deals: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    order_summary: dict[str, Any]
    timeline: list[dict[str, Any]]
    notes: dict[str, str]


class ErasureReport(Loose):
    erasure_id: str
    at: _dt.datetime
    by: str
    tables: dict[str, int] = Field(description="rows removed (or made anonymous) per table")
    files: dict[str, int] = Field(description="records removed per file the workspace owns")
    tombstones: int = Field(description="salted hashes kept to suppress the identifiers")
    compacted: bool = Field(description="the workspace file rewritten, so no freed page keeps the data")
    warnings: list[str]


class Readmit(Model):
    """Identifiers of a person who gave consent again after an erasure."""

    contact_id: str | None = Field(default=None, max_length=500)
    email: str | None = Field(default=None, max_length=500)
    phone: str | None = Field(default=None, max_length=100)
    reason: str = Field(min_length=1, max_length=500, description="how consent was given, e.g. signed up again on 2026-12-01")


class Readmitted(Loose):
    lifted: int = Field(description="tombstone hashes removed")
    at: _dt.datetime
