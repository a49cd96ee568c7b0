"""Erasure: a contact removed from everything the workspace holds, with an audit record.

:func:`erase_contact` (``segmentum contact erase ID``, ``DELETE /api/contacts/{id}``):

1. **Rows**, in one transaction. Every base table with a ``contact_id`` (or ``_contact_id``)
   column loses the contact's rows: the profile, events, orders, deals, segment
   memberships, scores and models' tables (``_rfm_rows``, ``clv``, ``personas``, ...),
   export member lists, consent events, identity links and merges, trigger occurrences,
   control-group assignments, the CRM webhook queue. Order lines go by the contact's order
   ids; held tracking messages by its anonymous ids; quarantined records and load warnings
   whose raw values hold its id, e-mail or phone go too. The delivery log keeps its rows
   for the campaign reports, with the contact id replaced by a pseudonym
   (``erased:<erasure id>``) and the provider id and error text cleared; the rendered
   messages (address, subject, body) are deleted.
2. **Tombstones**: salted hashes of the id, e-mail, phone, anonymous ids and order ids
   (:mod:`.tombstones`), so a later load or tracking call is suppressed.
3. **Files** the workspace owns (:mod:`.files`): the intake log's records about the contact
   become tombstone records, the export files it recorded and the outbox files of its
   channels lose the contact's rows, the Sender's journals their lines.
4. **Leftovers**: every text column of every table is scanned once more for the id, the
   e-mail and the phone; what is found (say a segment rule naming the id) is reported in
   ``warnings``, not deleted.
5. **Compaction** (:mod:`.compact`, unless ``compact=False``): the DuckDB file is copied
   afresh, so no freed page still holds the erased values.

The audit table ``erasures`` (erasure_id, action, at, by, subject_hash, tables, files,
tombstones, compacted, warnings, reason) gets one row per erasure or readmission: who,
when, what was removed where (counts), never the identifiers; ``subject_hash`` is the
salted hash of the contact id, so "was C0000042 erased?" can be answered by whoever knows
the id. Exports already uploaded to an ad platform are out of reach: ``exports_affected``
lists the export ids whose audience held the contact, to remove it there.
"""

from __future__ import annotations

import datetime as _dt
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa

from segmentum.data.schema import BOOL, I64, STR, TS
from segmentum.errors import NotFoundError, UsageError, WorkspaceError
from segmentum.privacy.files import Needles, redact_csv, redact_jsonl, redact_log
from segmentum.privacy.tombstones import ERASED, SALT, hashes_of, identifier_values, salt, tombstone

__all__ = ["AUDIT", "AUDIT_SCHEMA", "erase_contact", "record_audit", "audit_rows"]

AUDIT = "erasures"
AUDIT_SCHEMA = {
    "erasure_id": STR, "action": STR, "at": TS, "by": STR, "subject_hash": STR, "tables": STR,
    "files": STR, "tombstones": I64, "compacted": BOOL, "warnings": STR, "reason": STR,
}
_OWN = {AUDIT, ERASED, SALT}
_DELIVERIES, _MESSAGES = "deliveries", "delivery_messages"


@dataclass
class Person:
    """What identifies the contact being erased, read before anything is deleted."""

    contact_id: str
    email: str | None = None
    phone: str | None = None
    country: str | None = None
    anonymous: set[str] = field(default_factory=set)
    orders: list[str] = field(default_factory=list)
    exports: list[int] = field(default_factory=list)

    @property
    def needles(self) -> Needles:
        return Needles.of(self.contact_id, self.email, self.phone, self.country, self.anonymous)

    def texts(self) -> list[str]:
        """The raw forms searched for in text columns (lower case)."""
        forms = [self.contact_id, self.email, self.phone, *self.anonymous]
        return sorted({str(f).strip().lower() for f in forms if f and str(f).strip()})

    def spellings(self) -> list[str]:
        """Each identifier as written, in lower and in upper case."""
        forms = [self.contact_id, self.email, self.phone, *self.anonymous]
        out = {f2 for f in forms if f and str(f).strip()
               for f2 in (str(f).strip(), str(f).strip().lower(), str(f).strip().upper())}
        return sorted(out)

    def phrases(self) -> list[str]:
        """The forms distinctive enough to look for inside longer text: the e-mail, the
        phone as written (ids are matched as whole values only: "42" is inside "142")."""
        forms = [self.email, self.phone]
        return sorted({str(f).strip().lower() for f in forms if f and len(str(f).strip()) >= 7})


# -- the tables ----------------------------------------------------------------------------
def _base_tables(wh) -> dict[str, dict[str, str]]:
    """Base table -> column -> DuckDB type, of the workspace's own schema (views left out)."""
    rows = wh.raw.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_name = c.table_name "
        "AND t.table_schema = c.table_schema AND t.table_catalog = c.table_catalog "
        "WHERE t.table_type = 'BASE TABLE' AND c.table_catalog = current_database() "
        "AND c.table_schema = current_schema() ORDER BY c.table_name, c.ordinal_position"
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for table, column, dtype in rows:
        out.setdefault(table, {})[column] = dtype
    return out


def _q(name: str) -> str:
    from segmentum.warehouse.duckdb import quote

    return quote(name)


def _person(wh, tables: dict[str, dict[str, str]], contact_id: str) -> Person:
    p = Person(contact_id)
    c = wh.table("contacts")
    cols = [x for x in ("email", "phone", "country") if x in c.columns]
    row = c.filter(c.contact_id == contact_id).select(*cols).limit(1).to_pyarrow().to_pylist()
    if row:
        p.email, p.phone, p.country = (row[0].get(x) for x in ("email", "phone", "country"))
    if "_identities" in tables:
        t = wh.table("_identities")
        p.anonymous = set(t.filter(t.contact_id == contact_id).anonymous_id.to_pyarrow().to_pylist())
    o = wh.table("orders")
    p.orders = sorted(o.filter(o.contact_id == contact_id).order_id.to_pyarrow().to_pylist())
    if "export_members" in tables:
        m = wh.table("export_members")
        p.exports = sorted(set(m.filter(m.contact_id == contact_id).export_id.to_pyarrow().to_pylist()))
    if not row and not _anywhere(wh, tables, contact_id):
        _already_erased(wh, contact_id)
        raise NotFoundError(f"No contact {contact_id!r} in this workspace (no row names it).",
                            hint="Check the id: `segmentum contact ID` finds contacts by id or e-mail.")
    return p


def _already_erased(wh, contact_id: str) -> None:
    """A NotFoundError naming the erasure, when this id was erased before."""
    s = salt(wh)
    if s is None or AUDIT not in wh.list_tables():
        return
    subject = next(iter(hashes_of(s, {"id": [contact_id]})))[0]
    a = wh.table(AUDIT)
    rows = a.filter((a.subject_hash == subject) & (a.action == "erase")).order_by(ibis.desc("at"))
    found = rows.limit(1).to_pyarrow().to_pylist()
    if found:
        raise NotFoundError(f"{contact_id} was erased on {found[0]['at']:%Y-%m-%d %H:%M} UTC "
                            f"(erasure {found[0]['erasure_id']}); nothing of it is left.")


def _anywhere(wh, tables: dict[str, dict[str, str]], contact_id: str) -> bool:
    for table, cols in tables.items():
        for col in ("contact_id", "_contact_id"):
            if col in cols and table not in _OWN:
                n = wh.raw.execute(f"SELECT count(*) FROM (SELECT 1 FROM {_q(table)} "
                                   f"WHERE {_q(col)} = $1 LIMIT 1)", [contact_id]).fetchone()[0]
                if n:
                    return True
    return False


_TOKENS = "'[\\s\",:{}\\[\\]]+'"  # what separates values inside a JSON document


def _mentions(column_sql: str, p: Person) -> str:
    """SQL: the text of ``column_sql`` holds one of $1 (a JSON-separated token, or the whole
    value) or contains one of $2 (the e-mail, a phone as written); ``contains`` on each of
    them ($3, $4, ...) rules out nearly every row first, cheaply."""
    low = f"lower({column_sql}::VARCHAR)"
    n = len(p.texts()) + len(p.phrases())
    first = " OR ".join(f"contains({low}, ${i})" for i in range(3, 3 + n))
    return (f"(({first}) AND (list_contains($1, lower(trim({column_sql}::VARCHAR))) OR "
            f"list_has_any(regexp_split_to_array({low}, {_TOKENS}), $1) OR "
            f"len(list_filter($2, lambda x: contains({low}, x))) > 0))")


def _any_mention(wh, table: str, columns: list[str], p: Person) -> bool:
    """Whether a text column of some row contains one of the contact's forms as written, in
    lower or in upper case: a cheap first pass (nearly always false after an erasure)."""
    needles = p.spellings()
    cond = " OR ".join(f"contains({_q(c)}::VARCHAR, ${i})" for c in columns
                       for i in range(1, len(needles) + 1))
    sql = f"SELECT count(*) FROM (SELECT 1 FROM {_q(table)} WHERE {cond} LIMIT 1)"
    return bool(wh.raw.execute(sql, needles).fetchone()[0])


def _mention_params(p: Person) -> list:
    texts, phrases = p.texts(), p.phrases()
    return [texts, phrases, *texts, *phrases]


def _delete(wh, table: str, where: str, params: list) -> int:
    return int(wh.raw.execute(f"DELETE FROM {_q(table)} WHERE {where}", params).fetchone()[0])


def _erase_rows(wh, tables: dict[str, dict[str, str]], p: Person, pseudonym: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    cid = p.contact_id
    if _DELIVERIES in tables:
        if _MESSAGES in tables:
            counts[_MESSAGES] = _delete(wh, _MESSAGES, f"key IN (SELECT key FROM {_q(_DELIVERIES)} "
                                        "WHERE contact_id = $1)", [cid])
        counts[_DELIVERIES] = int(wh.raw.execute(
            f"UPDATE {_q(_DELIVERIES)} SET contact_id = $2, provider_id = NULL, error = NULL "
            "WHERE contact_id = $1", [cid, pseudonym]).fetchone()[0])
    if "order_items" in tables:
        counts["order_items"] = _delete(
            wh, "order_items", "order_id IN (SELECT unnest($1)) OR _contact_id = $2", [p.orders, cid]
        ) if "_contact_id" in tables["order_items"] else _delete(
            wh, "order_items", "order_id IN (SELECT unnest($1))", [p.orders])
    if "_identity_held" in tables and p.anonymous:
        counts["_identity_held"] = _delete(wh, "_identity_held", "anonymous_id IN (SELECT unnest($1))",
                                           [sorted(p.anonymous)])
    for table, cols in tables.items():
        if table in _OWN or table in (_DELIVERIES, _MESSAGES, "order_items"):
            continue
        for col in ("contact_id", "_contact_id"):
            if col in cols:
                counts[table] = counts.get(table, 0) + _delete(wh, table, f"{_q(col)} = $1", [cid])
    params = _mention_params(p)
    for table, column in (("_quarantine", "raw"), ("_identity_held", "record")):
        if table in tables:
            counts[table] = counts.get(table, 0) + _delete(wh, table, _mentions(_q(column), p), params)
    if "_load_warnings" in tables:
        counts["_load_warnings"] = int(wh.raw.execute(
            "UPDATE _load_warnings SET message = replace(message, value, '(erased)'), value = NULL "
            f"WHERE {_mentions('value', p)}", params).fetchone()[0])
    return {k: v for k, v in counts.items() if v}


def _leftovers(wh, tables: dict[str, dict[str, str]], p: Person) -> list[str]:
    """Text columns still holding one of the contact's identifiers (as a value, or as a
    quoted string inside a JSON document)."""
    params = _mention_params(p)
    found = []
    for table, cols in tables.items():
        if table in _OWN:
            continue
        text_cols = [c for c, t in cols.items() if t.upper() in ("VARCHAR", "JSON") or t.upper().startswith("VARCHAR")]
        if not text_cols:
            continue
        if not _any_mention(wh, table, text_cols, p):
            continue
        parts = [f"count(*) FILTER (WHERE {_mentions(_q(c), p)})" for c in text_cols]
        counts = wh.raw.execute(f"SELECT {', '.join(parts)} FROM {_q(table)}", params).fetchone()
        found += [f"{table}.{c} still holds the contact's id, e-mail or phone in {n:,} row(s)"
                  for c, n in zip(text_cols, counts, strict=True) if n]
    return found


# -- the files -----------------------------------------------------------------------------
def _workspace_files(ws) -> tuple[list[Path], list[Path]]:
    """(CSV export files, JSON Lines files: outboxes and the Sender's journals)."""
    wh = ws.warehouse
    csvs: list[Path] = []
    if wh.has_table("exports"):
        e = wh.table("exports").select("file", "removals_file").to_pyarrow().to_pylist()
        csvs = sorted({Path(f) for r in e for f in (r["file"], r["removals_file"]) if f})
    jsonl: list[Path] = []
    try:
        from segmentum.activation.channels import load_settings

        settings = load_settings(ws)
        jsonl += [settings.folder / spec.path for spec in settings.channels.values()
                  if getattr(spec, "type", None) == "outbox"]
    except Exception:  # noqa: BLE001 - no channels configured (or a broken file): no outbox
        pass
    path = Path(ws.config.path).resolve()
    sending = path.with_name(path.name + ".sending")
    if sending.is_dir():
        jsonl += sorted(sending.glob("*.log"))
    return [p for p in csvs if p.is_file()], [p for p in jsonl if p.is_file()]


def _erase_files(ws, p: Person, log, intake_dir: Path | None) -> dict[str, int]:
    needles = p.needles
    out: dict[str, int] = {}
    csvs, jsonl = _workspace_files(ws)
    for f in csvs:
        out[str(f)] = redact_csv(f, needles)
    for f in jsonl:
        out[str(f)] = redact_jsonl(f, needles)
    if log is not None:
        out["intake log"] = redact_log(log, needles)
    elif intake_dir is not None and (intake_dir / "log").is_dir():
        from segmentum.live.segment_log import SegmentLog

        with SegmentLog(intake_dir / "log", retention_seconds=float("inf")) as own:
            out["intake log"] = redact_log(own, needles)
    return {k: v for k, v in out.items() if v}


# -- the audit -----------------------------------------------------------------------------
def record_audit(ws, *, action: str, by: str, at: _dt.datetime, subject_hash: str | None,
                 tables: dict, files: dict, tombstones: int, compacted: bool,
                 warnings: list[str], reason: str | None = None,
                 erasure_id: str | None = None) -> dict:
    """Append one row to the audit table; the row as a dict."""
    wh = ws.warehouse
    row = {"erasure_id": erasure_id or uuid.uuid4().hex[:16], "action": action, "at": at,
           "by": by, "subject_hash": subject_hash, "tables": json.dumps(tables, sort_keys=True),
           "files": json.dumps(files, sort_keys=True), "tombstones": tombstones,
           "compacted": compacted, "warnings": json.dumps(warnings), "reason": reason}
    wh.create_table(AUDIT, AUDIT_SCHEMA)
    wh.insert(AUDIT, pa.Table.from_pylist([row], schema=ibis.schema(AUDIT_SCHEMA).to_pyarrow()))
    return _decoded(row)


def _decoded(row: dict) -> dict:
    return {**row, **{k: json.loads(row[k]) for k in ("tables", "files", "warnings")}}


def audit_rows(ws) -> list[dict]:
    """Every erasure and readmission, newest first."""
    wh = ws.warehouse
    if not wh.has_table(AUDIT):
        return []
    t = wh.table(AUDIT).order_by(ibis.desc("at"))
    return [_decoded(r) for r in t.to_pyarrow().to_pylist()]


# -- erasure -------------------------------------------------------------------------------
def erase_contact(ws, contact_id: str, *, by: str, log=None, intake_dir: str | Path | None = None,
                  compact: bool = True) -> dict:
    """Erase one contact everywhere (see the module doc); the audit record, with
    ``exports_affected``. ``log``: the running service's intake log; without one, the log
    in ``intake_dir`` (default ``<workspace>.intake``) is opened, if there is one."""
    from segmentum.privacy.compact import compact_workspace

    if not isinstance(contact_id, str) or not contact_id.strip() or "\x00" in contact_id:
        raise UsageError("Name the contact to erase by its contact_id.", field="contact_id")
    wh = ws.warehouse
    if not wh.supports_ingest:
        raise WorkspaceError(f"Erasure rewrites the embedded DuckDB workspace; this one is on {wh.name}.")
    contact_id = contact_id.strip()
    tables = _base_tables(wh)
    person = _person(wh, tables, contact_id)
    erasure_id, at = uuid.uuid4().hex[:16], _dt.datetime.now(_dt.UTC)
    with wh.transaction():
        removed = _erase_rows(wh, tables, person, f"erased:{erasure_id}")
        kept = tombstone(wh, _tombstone_values(person), erasure_id, at)
    if intake_dir is None and ws.config.backend == "duckdb":
        intake_dir = Path(f"{Path(ws.config.path).resolve()}.intake")
    files = _erase_files(ws, person, log, Path(intake_dir) if intake_dir else None)
    warnings = _leftovers(wh, _base_tables(wh), person)
    subject = next(iter(hashes_of(salt(wh), {"id": [contact_id]})))[0]
    audit = record_audit(ws, action="erase", by=by, at=at, subject_hash=subject, tables=removed,
                         files=files, tombstones=kept, compacted=False, warnings=warnings,
                         erasure_id=erasure_id)
    if compact:
        compact_workspace(ws)
        ws.warehouse.raw.execute(f"UPDATE {AUDIT} SET compacted = true WHERE erasure_id = $1",
                                 [erasure_id])
        audit["compacted"] = True
    return {**audit, "exports_affected": person.exports}


def _tombstone_values(p: Person) -> dict[str, set[str]]:
    values = identifier_values(p.contact_id, p.email, p.phone, p.country)
    values["anonymous"] = set(p.anonymous)
    values["order"] = set(p.orders)
    return values
