"""Tombstones: what is kept of an erased contact, so that it stays erased.

An erasure keeps no identifier in clear. It keeps, in the table ``_erased`` (hash, kind,
erasure_id, erased_at), a salted SHA-256 of each of the contact's identifiers:

    id        the contact_id as written
    email     trimmed and lower-cased
    phone     its digits without leading zeros, and when it parses (the contact's country
              as the default region) its E.164 digits and its national number, so
              "+44 7123 456789", "07123 456789" and "0044 7123 456789" all match
    anonymous the tracking SDKs' anonymous ids linked to the contact
    order     the ids of the contact's orders (their lines carry no contact id)

``hash = sha256(salt + US + kind + US + value)`` (US = the unit separator, 0x1f), with a
random salt made at the first erasure (table ``_erasure_salt``), computed the same way in
Python and in the warehouse. Without the salt and a guess of the value a hash says
nothing; with them, a load can tell it meets an erased person again.

**Suppression.** Every load (:func:`segmentum.data.ingest.load_file` and ``load_records``:
files, CRM sync, tracked events) drops the records whose identifiers are tombstoned
(:func:`drop_erased`): a contact whose id, e-mail or phone is erased; an order, event or
deal of an erased contact id; a line of an erased order. They are counted as
``suppressed`` and stored nowhere, not even in the quarantine. The tracking consumer drops
messages naming an erased user id, anonymous id, e-mail or phone before identity resolution
(:func:`erased_message`).

**Readmission.** When the person comes back and gives consent again (signs up anew, asks
to be contacted), :func:`readmit` lifts the hashes of the identifiers given, with the
reason, and records it in the audit (``segmentum contact readmit``, ``POST
/api/privacy/readmit``); loads then accept them again.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from segmentum.data.schema import STR, TS
from segmentum.errors import NotFoundError, UsageError

__all__ = ["ERASED", "SALT", "identifier_values", "hashes_of", "salt", "tombstone",
           "drop_erased", "erased_message", "readmit", "has_tombstones", "erased_hashes"]

ERASED = "_erased"
SALT = "_erasure_salt"
ERASED_SCHEMA = {"hash": STR, "kind": STR, "erasure_id": STR, "erased_at": TS}
_US = "\x1f"
_NOT_DIGIT = re.compile(r"\D+")
MIN_PHONE_DIGITS = 7


# -- values and hashes -------------------------------------------------------------------
def _phone_forms(phone: Any, country: Any = None) -> set[str]:
    text = str(phone or "").strip()
    digits = _NOT_DIGIT.sub("", text).lstrip("0")
    forms = {digits} if len(digits) >= MIN_PHONE_DIGITS else set()
    try:
        import phonenumbers

        region = str(country).upper() if country and len(str(country)) == 2 else None
        number = phonenumbers.parse(text, region)
        if phonenumbers.is_possible_number(number):
            forms.add(f"{number.country_code}{number.national_number}")
            forms.add(str(number.national_number))
    except Exception:  # noqa: BLE001 - phonenumbers raises its own parse errors; unparseable is fine
        pass
    return {f for f in forms if len(f) >= MIN_PHONE_DIGITS}


def identifier_values(contact_id: Any = None, email: Any = None, phone: Any = None,
                      country: Any = None) -> dict[str, set[str]]:
    """kind -> the normalised values a tombstone is made of (module doc)."""
    out: dict[str, set[str]] = {"id": set(), "email": set(), "phone": set()}
    if contact_id is not None and str(contact_id).strip():
        out["id"].add(str(contact_id).strip())
    if email is not None and str(email).strip():
        out["email"].add(str(email).strip().lower())
    if phone is not None:
        out["phone"] |= _phone_forms(phone, country)
    return out


def _digest(salt_value: str, kind: str, value: str) -> str:
    return hashlib.sha256(f"{salt_value}{_US}{kind}{_US}{value}".encode()).hexdigest()


def hashes_of(salt_value: str, values: Mapping[str, Iterable[str]]) -> set[tuple[str, str]]:
    """(hash, kind) for every value."""
    return {(_digest(salt_value, kind, v), kind) for kind, vs in values.items() for v in vs}


def has_tombstones(wh) -> bool:
    return wh.has_table(ERASED) and wh.has_table(SALT)


def salt(wh, *, create: bool = False) -> str | None:
    """The workspace's salt (made on first use when ``create``)."""
    if wh.has_table(SALT):
        rows = wh.table(SALT).to_pyarrow().column("salt").to_pylist()
        if rows:
            return rows[0]
    if not create:
        return None
    wh.create_table(SALT, {"salt": STR})
    value = secrets.token_hex(32)
    wh.insert(SALT, pa.table({"salt": [value]}))
    return value


def tombstone(wh, values: Mapping[str, Iterable[str]], erasure_id: str, at: _dt.datetime) -> int:
    """Record the hashes of ``values`` (kinds as in the module doc); how many are new."""
    s = salt(wh, create=True)
    wh.create_table(ERASED, ERASED_SCHEMA)
    have = set(wh.table(ERASED).hash.to_pyarrow().to_pylist())
    rows = [{"hash": h, "kind": k, "erasure_id": erasure_id, "erased_at": at}
            for h, k in sorted(hashes_of(s, values)) if h not in have]
    if rows:
        wh.insert(ERASED, pa.Table.from_pylist(rows, schema=ibis.schema(ERASED_SCHEMA).to_pyarrow()))
    return len(rows)


def erased_hashes(wh) -> set[str]:
    return set(wh.table(ERASED).hash.to_pyarrow().to_pylist()) if has_tombstones(wh) else set()


# -- suppression in loads ------------------------------------------------------------------
def _hashed(s: str, kind: str, value: ir.StringValue) -> ir.StringValue:
    return (ibis.literal(f"{s}{_US}{kind}{_US}") + value).hexdigest("sha256")


def _erased_values(wh, s: str, values: ir.StringValue, kinds: tuple[str, ...],
                   normalise) -> ir.Table:
    """The distinct raw values (column ``v``) whose normalised form is tombstoned."""
    tomb = wh.table(ERASED)
    raw = values.name("v").as_table().distinct()
    raw = raw.filter(raw.v.notnull())
    norm = normalise(raw.v)
    hits = None
    for kind in kinds:
        cond = _hashed(s, kind, norm).isin(tomb.filter(tomb.kind == kind).hash)
        hits = cond if hits is None else hits | cond
    return raw.filter(hits).select("v")


def _digits(v: ir.StringValue) -> ir.StringValue:
    return v.re_replace(r"\D+", "").re_replace(r"^0+", "")


def drop_erased(wh, kind: str, rows: ir.Table) -> tuple[ir.Table, int]:
    """``rows`` (a load's checked rows) without those of erased identifiers, and how many
    were dropped (0 and ``rows`` itself while nothing was ever erased)."""
    if not has_tombstones(wh):
        return rows, 0
    s = salt(wh)
    keep = None
    checks: list[tuple[str, tuple[str, ...], Any]] = []
    if kind == "contacts":
        checks = [("contact_id", ("id",), lambda v: v.strip()),
                  ("email", ("email",), lambda v: v.strip().lower()),
                  ("phone", ("phone",), _digits)]
    elif kind in ("orders", "events", "deals"):
        checks = [("contact_id", ("id",), lambda v: v.strip())]
    elif kind == "order_items":
        checks = [("order_id", ("order",), lambda v: v.strip())]
    for column, kinds, normalise in checks:
        if column not in rows.columns:
            continue
        col = rows[column].cast("string")
        gone = _erased_values(wh, s, col, kinds, normalise)
        here = col.isin(gone.v).fill_null(False)
        keep = ~here if keep is None else keep & ~here
    if keep is None:
        return rows, 0
    dropped = int(rows.filter(~keep).count().execute())
    return (rows.filter(keep), dropped) if dropped else (rows, 0)


def erased_message(message: Mapping[str, Any], hashes: set[str], salt_value: str | None) -> bool:
    """Whether a tracked message names an erased person (its userId, anonymousId,
    previousId, e-mail or phone trait), or is the redacted remnant of one."""
    if message.get("type") == "erased":
        return True
    if not hashes or salt_value is None:
        return False
    traits = message.get("traits") if isinstance(message.get("traits"), Mapping) else {}
    context = message.get("context") if isinstance(message.get("context"), Mapping) else {}
    ctx_traits = context.get("traits") if isinstance(context.get("traits"), Mapping) else {}
    values = identifier_values(message.get("userId"), traits.get("email") or ctx_traits.get("email"),
                               traits.get("phone") or ctx_traits.get("phone"))
    values["anonymous"] = {str(v) for v in (message.get("anonymousId"), message.get("previousId"))
                           if v is not None and str(v).strip()}
    values["id"] |= values["anonymous"]  # an alias's previousId may be a user id
    return any(h in hashes for h, _ in hashes_of(salt_value, values))


# -- readmission ---------------------------------------------------------------------------
def readmit(ws, *, contact_id: str | None = None, email: str | None = None,
            phone: str | None = None, country: str | None = None, reason: str, by: str) -> dict:
    """Lift the tombstones of these identifiers (consent given again); the audit row."""
    from segmentum.privacy.erase import record_audit

    if not reason or not str(reason).strip():
        raise UsageError("Say how the person gave consent again (reason), e.g. "
                         "'signed up again on 2026-12-01'.", field="reason")
    values = identifier_values(contact_id, email, phone, country)
    if not any(values.values()):
        raise UsageError("Give the contact_id, e-mail or phone to readmit.")
    wh = ws.warehouse
    s = salt(wh)
    wanted = {h for h, _ in hashes_of(s, values)} if s else set()
    have = erased_hashes(wh) & wanted
    if not have:
        raise NotFoundError("None of these identifiers is erased in this workspace.",
                            hint="Loads accept them already: nothing to readmit.")
    at = _dt.datetime.now(_dt.UTC)
    with wh.transaction():
        wh.delete_where(ERASED, "hash", sorted(have))
        audit = record_audit(ws, action="readmit", by=by, at=at, subject_hash=None,
                             tables={ERASED: len(have)}, files={}, tombstones=-len(have),
                             compacted=False, warnings=[], reason=str(reason).strip())
    return {**audit, "lifted": len(have)}
