"""Data-quality decisions per field, as data: what rejects a record and what is only counted.

Every check runs on the parsed value of one field during a load (a missing or unparsable
value is the parser's business, not a check's). Its ``action`` decides what happens to a
record whose value fails it:

- ``reject``: the record is quarantined with the check's reason;
- ``warn``: the record is accepted with the value as written, and counted;
- ``clear``: the record is accepted with the field left empty, and counted.

Warnings are counted per load and shown in the load summary (count, an example line and
value) and in ``segmentum info``. The table below is the one place these decisions live; the
README's "Data quality" table is written from it (a test keeps the two alike).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.types as ir

__all__ = ["Check", "CHECKS", "Context", "checks_for"]

Action = Literal["reject", "warn", "clear"]

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$"
EARLIEST = _dt.datetime(1900, 1, 1, tzinfo=_dt.UTC)


@dataclass(frozen=True)
class Context:
    """What a check may look at besides the value: the load's time and the workspace."""

    now: _dt.datetime
    table: Callable[[str], ir.Table]  # a workspace table by name


@dataclass(frozen=True)
class Check:
    kind: str
    field: str
    name: str  # short id, unique per kind: counted under it
    action: Action
    fails: Callable[[ir.Value, Context], ir.BooleanValue]  # on the parsed, non-null value
    says: str  # what is wrong, after "<field> '<value>'"
    why: str  # the decision's reason, for the README and the warning text
    needs: str | None = None  # a table that must have rows for the check to mean anything


def _implausible_time(v: ir.Value, ctx: Context) -> ir.BooleanValue:
    latest = ctx.now + _dt.timedelta(days=2)  # a clock a little ahead is not an error
    return (v < ibis.literal(EARLIEST, type=v.type())) | (v > ibis.literal(latest, type=v.type()))


def _implausible_birth(v: ir.Value, ctx: Context) -> ir.BooleanValue:
    return (v < ibis.date(1900, 1, 1)) | (v > ibis.literal(ctx.now.date()))


def _phone_digits(v: ir.Value) -> ir.IntegerValue:
    return v.re_replace(r"[^0-9]", "").length()


_TIME = "is implausible (before 1900 or in the future)"
_TIME_WHY = "every figure is dated by it; a clock a few hours fast is allowed (two days)"

CHECKS: tuple[Check, ...] = (
    Check("contacts", "created_at", "time", "reject", _implausible_time, _TIME, _TIME_WHY),
    Check("contacts", "email", "email", "warn", lambda v, ctx: ~v.re_search(EMAIL),
          "is not an e-mail address", "kept as written; ad exports leave it out"),
    Check("contacts", "phone", "phone", "warn",
          lambda v, ctx: (_phone_digits(v) < 7) | (_phone_digits(v) > 15),
          "is not a phone number (7 to 15 digits)", "kept as written; ad exports leave it out"),
    Check("contacts", "birth_date", "birth", "clear", _implausible_birth,
          "is in the future or before 1900", "a wrong age would mislead age rules"),
    Check("contacts", "country", "country", "warn", lambda v, ctx: ~v.re_search(r"^[A-Z]{2}$"),
          "is not an ISO 3166-1 alpha-2 code such as GB",
          "kept as written; map names to codes with `values: {country: {Poland: PL}}`"),
    Check("orders", "ordered_at", "time", "reject", _implausible_time, _TIME, _TIME_WHY),
    Check("orders", "total", "negative", "reject", lambda v, ctx: v < 0, "is negative",
          "RFM and CLV would count it as negative spend; a return is an order with status "
          "returned and its positive total"),
    Check("orders", "total", "zero", "warn", lambda v, ctx: v == 0, "is zero",
          "kept: a free order is a purchase of no value"),
    Check("orders", "currency", "currency", "warn", lambda v, ctx: ~v.re_search(r"^[A-Z]{3}$"),
          "is not an ISO 4217 code such as EUR", "kept as written"),
    Check("order_items", "quantity", "quantity", "reject", lambda v, ctx: v <= 0, "is not a positive quantity",
          "a line of nothing (or a negative one) is no purchase; a returned line belongs to an "
          "order with status returned"),
    Check("order_items", "unit_price", "negative", "reject", lambda v, ctx: v < 0, "is negative",
          "spend per category and brand would go negative"),
    Check("order_items", "sku", "unknown_sku", "warn", lambda v, ctx: ~v.isin(ctx.table("products").sku),
          "is not in products", "kept; rules on category or brand cannot see it until the catalogue "
          "has it", needs="products"),
    Check("products", "price", "negative", "reject", lambda v, ctx: v < 0, "is negative",
          "a price is never below zero"),
    Check("events", "occurred_at", "time", "reject", _implausible_time, _TIME, _TIME_WHY),
    Check("deals", "updated_at", "time", "reject", _implausible_time, _TIME, _TIME_WHY),
    Check("deals", "amount", "negative", "warn", lambda v, ctx: v < 0, "is negative",
          "kept as written (a credit note); funnel amounts include it"),
)


def checks_for(kind: str, field: str) -> list[Check]:
    return [c for c in CHECKS if c.kind == kind and c.field == field]
