"""Retargeting exports: a saved segment's members -> a CSV, Meta or Google audience file,
in full or as the changes since the last export, with a snapshot of every export.

    >>> r = export_segment(ws, "apple-fans", "meta", "fans.csv")                 # everyone
    >>> r = export_segment(ws, "apple-fans", "meta", "fans.csv", changes_since_last=True)
    >>> r.audience, r.added, r.removed, r.excluded

Who is exported: the segment's members as recorded by ``segment refresh`` (after the last
refresh, or at ``as_of`` from the membership history), joined to ``contacts`` in the
warehouse. A member is left out - and counted by reason - when it is not in ``contacts``
(``unknown_contact``), has no consent to advertising use (``no_consent``: the contacts
column ``consent_field``, default the custom attribute ``ads_opt_in``; null counts as no),
or has no usable identifier (``no_identifier``: neither a valid e-mail nor a valid phone,
see :mod:`segmentum.activation.formats`). The rest is the *audience*. The same rules hold
for every format, plain CSV included.

Incremental exports (``changes_since_last``) compare the audience with the snapshot of the
previous export of the same segment *in the same format* (each platform holds its own copy
of the audience; the first one has no previous export, so everyone is an addition):

    meta, google   FILE holds the additions; FILE's sibling ``<stem>.removals<suffix>``
                   the removals, with the same header - upload it with the platform's
                   "remove customers" action. A removed contact whose identifiers are
                   gone can't be written there and is counted (``removed_unwritable``).
    csv            one FILE with a first column ``action`` = ``add`` or ``remove``.

An export never overwrites silently a file that another kind of export wrote: FILE (and
the removals file) may be replaced only by an export of the same segment, format and kind
(full or incremental) as the recorded export that wrote it - re-running an export refreshes
its file. A file of another export (a full audience, say, under an incremental export) or
one no export of this workspace wrote is refused with a suggested other name, unless
``force``.

Every export, full or incremental, records the audience it sent as its snapshot:

    exports         export_id, segment, format, at (the membership time), created_at,
                    file, removals_file, incremental, previous_export_id, counts (JSON)
    export_members  export_id, contact_id

The rows stream from the warehouse as Arrow record batches (``to_pyarrow_batches``) and are
normalised, hashed and written batch by batch into a temporary file next to FILE; only the
audience's contact ids are kept until the end. The snapshot is inserted, the removals
written and the files moved into place inside one warehouse transaction: if anything
fails, there is no snapshot and no new file.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses as dc
import datetime as _dt
import json
import os
import shlex
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from segmentum.activation import formats as F
from segmentum.data.mapping import TRUE_WORDS
from segmentum.data.schema import BOOL, I64, STR, TS
from segmentum.errors import UsageError, WorkspaceError, did_you_mean

__all__ = [
    "export_segment",
    "ExportResult",
    "EXPORTS",
    "EXPORT_MEMBERS",
    "EXPORTS_SCHEMA",
    "EXPORT_MEMBERS_SCHEMA",
    "DEFAULT_CONSENT_FIELD",
    "removals_path",
    "consent_flag",
    "classify",
]

EXPORTS = "exports"
EXPORT_MEMBERS = "export_members"
EXPORTS_SCHEMA = {
    "export_id": I64,
    "segment": STR,
    "format": STR,
    "at": TS,
    "created_at": TS,
    "file": STR,
    "removals_file": STR,
    "incremental": BOOL,
    "previous_export_id": I64,
    "counts": STR,
}
EXPORT_MEMBERS_SCHEMA = {"export_id": I64, "contact_id": STR}
DEFAULT_CONSENT_FIELD = "ads_opt_in"
BATCH_ROWS = 20_000
REASONS = ("unknown_contact", "no_consent", "no_identifier")

# internal column names of the export query (contacts columns never start with "_" here)
_KNOWN, _CONSENT, _IN_PREV = "__known", "__consent", "__in_prev"
_CID, _PID = "__contact", "__previous"


@dc.dataclass(frozen=True)
class ExportResult:
    """What one export wrote and whom it left out.

    ``members`` = ``audience`` + the ``excluded`` counts. A full export writes the whole
    audience (``rows`` = ``audience``); an incremental one writes ``added`` rows and
    ``removed`` - ``removed_unwritable`` removal rows.
    """

    export_id: int
    segment: str
    format: str
    as_of: _dt.datetime
    file: str
    removals_file: str | None
    incremental: bool
    previous_export_id: int | None
    members: int
    audience: int
    rows: int
    added: int | None
    removed: int | None
    removed_unwritable: int | None
    excluded: dict[str, int]
    identifiers: dict[str, int]
    consent_field: str
    seconds: float

    def to_dict(self) -> dict:
        return dc.asdict(self)


# -- checks ------------------------------------------------------------------------------------
def removals_path(out: Path) -> Path:
    """Where the removals of an incremental Meta/Google export go: ``fans.removals.csv``."""
    return out.with_name(f"{out.stem}.removals{out.suffix}")


def _check_out(out: str | os.PathLike) -> Path:
    path = Path(out)
    if path.is_dir():
        raise UsageError(f"Cannot write the export to {os.fspath(path)!r}: it is a folder. "
                         "Give a file name, e.g. --out audience.csv.")
    if not path.parent.exists():
        raise UsageError(f"Cannot write the export to {os.fspath(path)!r}: folder "
                         f"{os.fspath(path.parent)!r} does not exist.")
    return path


def _written_by(wh, path: Path) -> dict | None:
    """The latest recorded export that wrote ``path`` (as its file or its removals file),
    with ``removals`` telling which; None when no export of this workspace did."""
    if not wh.has_table(EXPORTS):
        return None
    e = wh.table(EXPORTS)
    rows = e.select("export_id", "segment", "format", "incremental", "file", "removals_file",
                    "created_at").order_by(ibis.desc("export_id")).to_pyarrow().to_pylist()
    target = path.resolve()
    for row in rows:
        for key in ("file", "removals_file"):
            if row[key] and Path(row[key]).resolve() == target:
                return {**row, "removals": key == "removals_file"}
    return None


def _kind(incremental: bool) -> str:
    return "incremental" if incremental else "full"


def _other_name(path: Path, segment: str, fmt: str, incremental: bool) -> Path:
    """A free file name for an export refused at ``path``: fans.csv -> fans.changes.csv."""
    from segmentum.segments.store import slugify

    tag = "changes" if incremental else "full"
    base = path.stem.removesuffix(".changes").removesuffix(".full")
    other = path.with_name(f"{base}.{tag}{path.suffix}")
    if other == path or other.exists():
        other = path.with_name(f"{base}.{slugify(segment)}.{fmt}.{tag}{path.suffix}")
    return other


def _check_overwrite(wh, path: Path, segment: str, fmt: str, incremental: bool) -> None:
    """Refuse to replace an existing file that another kind of export (or none) wrote."""
    if not path.exists():
        return
    owner = _written_by(wh, path)
    if owner and (owner["segment"], owner["format"], bool(owner["incremental"])) == (
        segment, fmt, incremental
    ):
        return
    if owner:
        part = "removals of the" if owner["removals"] else "the"
        what = (f"{part} {_kind(owner['incremental'])} {owner['format']} export "
                f"#{owner['export_id']} of segment {owner['segment']!r} "
                f"({owner['created_at']:%Y-%m-%d %H:%M} UTC)")
    else:
        what = "a file no export of this workspace wrote"
    other = _other_name(path, segment, fmt, incremental)
    raise UsageError(
        f"Not overwriting {os.fspath(path)}: it holds {what}; this {_kind(incremental)} "
        f"{fmt} export of segment {segment!r} would replace it.",
        hint=f"Write it to another file, e.g. --out {os.fspath(other)}, or pass --force to "
        "replace the file.",
        path=os.fspath(path), export_id=owner["export_id"] if owner else None,
    )


def _check_format(fmt: str) -> str:
    if fmt not in F.FORMATS:
        raise UsageError(f"Unknown export format {fmt!r}.{did_you_mean(fmt, F.FORMATS)} "
                         f"Formats: {', '.join(F.FORMATS)}.")
    return fmt


def _contact_columns(contacts: ir.Table) -> list[str]:
    return [c for c in contacts.columns if not c.startswith("_")]


def _check_fields(fmt: str, fields: Sequence[str] | None, contacts: ir.Table) -> tuple[str, ...]:
    if fields is None:
        return F.CSV_DEFAULT_FIELDS if fmt == "csv" else ()
    if fmt != "csv":
        raise UsageError(f"--fields applies to the csv format only: the {fmt} file has the "
                         "columns the platform documents.")
    chosen = tuple(dict.fromkeys(f.strip() for f in fields if f.strip()))
    if not chosen:
        raise UsageError("--fields is empty: name contacts columns, e.g. "
                         "--fields contact_id,email,city.")
    known = _contact_columns(contacts)
    for f in chosen:
        if f not in known:
            raise UsageError(f"--fields: {f!r} is not a contacts column.{did_you_mean(f, known)} "
                             f"Columns: {', '.join(known)}.")
    return chosen


def consent_flag(column: ir.Column) -> ir.BooleanValue:
    """True where a consent column says yes; null and anything unreadable count as no.

    Booleans as they are, numbers non-zero, text one of the yes words ingestion accepts
    (true, yes, 1, tak, ...)."""
    t = column.type()
    if t.is_boolean():
        flag = column
    elif t.is_numeric():
        flag = column != 0
    elif t.is_string():
        flag = column.strip().lower().isin(list(TRUE_WORDS))
    else:
        raise WorkspaceError(f"contacts column {column.get_name()!r} is of type {t}, not a "
                             "yes/no value: pass a boolean column with --consent-field.")
    return flag.fill_null(False)


def _check_consent(contacts: ir.Table, consent_field: str) -> None:
    if consent_field in contacts.columns and not consent_field.startswith("_"):
        return
    hint = did_you_mean(consent_field, _contact_columns(contacts))
    raise WorkspaceError(
        f"The contacts table has no column {consent_field!r} saying who agreed to advertising "
        f"use, so nobody can be exported for retargeting.{hint} Load a contacts file with "
        f"that column (e.g. `segmentum load contacts contacts.csv` with a column "
        f"{consent_field}, true/false), or name another yes/no column explicitly, e.g. "
        "--consent-field email_opt_in."
    )


# -- queries -------------------------------------------------------------------------------------
def _members(ws, segment: str, as_of) -> tuple[ir.Table, _dt.datetime]:
    """The segment's recorded members (after the last refresh, or at ``as_of``) and their time."""
    from segmentum.segments import SegmentEngine
    from segmentum.segments.engine import to_utc
    from segmentum.segments.errors import SegmentError

    eng = SegmentEngine(ws)
    eng.store.require(segment)  # unknown name: did-you-mean
    last = eng.store.last_refresh(segment)
    if last is None:
        raise SegmentError(
            f'segment "{segment}" has never been refreshed, so it has no members to export',
            hint=f"run `segmentum segment refresh {shlex.quote(segment)}` first",
        )
    if as_of is None:
        return eng.current_members(segment), last
    T = to_utc(as_of)
    first = eng.store.first_refresh(segment)
    if T < first:
        raise SegmentError(
            f'segment "{segment}" was first refreshed as of {first:%Y-%m-%d %H:%M:%S} UTC, so '
            f"its members as of {T:%Y-%m-%d %H:%M:%S} are not recorded",
            hint="pick --as-of at or after the first refresh, or leave it out to export the "
            "members after the last refresh",
        )
    return eng.current_members(segment, T), T


def _source_columns(fmt: str, fields: Sequence[str], contacts: ir.Table) -> list[str]:
    cols = list(F.IDENTIFIER_COLUMNS)
    if fmt != "csv" and F.ZIP_COLUMN in contacts.columns:
        cols.append(F.ZIP_COLUMN)
    cols += [f for f in fields if f not in cols]
    return [c for c in cols if c != "contact_id"]


def _export_query(
    contacts: ir.Table,
    ids: ir.Table,
    columns: Sequence[str],
    consent_field: str | None,
    previous: ir.Table | None = None,
) -> ir.Table:
    """contact_id + the contact's columns + known / consent (/ in previous snapshot) flags,
    for the contact ids of ``ids``, in contact_id order."""
    c = contacts.select(
        **{_CID: contacts.contact_id},
        **{col: contacts[col] for col in columns},
        **({_CONSENT: consent_flag(contacts[consent_field])} if consent_field else {}),
    )
    m = ids.select("contact_id")
    joined = m.left_join(c, m.contact_id == c[_CID])
    out = {"contact_id": m.contact_id, **{col: c[col] for col in columns},
           _KNOWN: c[_CID].notnull()}
    if consent_field:
        out[_CONSENT] = c[_CONSENT].fill_null(False)
    if previous is not None:
        p = previous.select(**{_PID: previous.contact_id})
        joined = joined.left_join(p, m.contact_id == p[_PID])
        out[_IN_PREV] = p[_PID].notnull()
    return joined.select(**out).order_by("contact_id")


def _batches(con, expr: ir.Table, batch_rows: int) -> Iterable[pa.RecordBatch]:
    reader = con.to_pyarrow_batches(expr, chunk_size=batch_rows)
    try:
        yield from reader
    finally:
        reader.close()


# -- the snapshot tables -------------------------------------------------------------------------
def _ensure_tables(wh) -> None:
    wh.create_table(EXPORTS, EXPORTS_SCHEMA)
    wh.create_table(EXPORT_MEMBERS, EXPORT_MEMBERS_SCHEMA)


def _previous_export(wh, segment: str, fmt: str) -> int | None:
    if not wh.has_table(EXPORTS):
        return None
    e = wh.table(EXPORTS)
    e = e.filter((e.segment == ibis.literal(segment, type="string"))
                 & (e.format == ibis.literal(fmt, type="string")))
    value = e.export_id.max().to_pyarrow().as_py()
    return None if value is None else int(value)


def _next_export_id(wh) -> int:
    value = wh.table(EXPORTS).export_id.max().to_pyarrow().as_py()
    return 1 if value is None else int(value) + 1


def _snapshot(wh, export_id: int) -> ir.Table:
    m = wh.table(EXPORT_MEMBERS)
    return m.filter(m.export_id == ibis.literal(export_id, type="int64"))


# -- writing -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _temp_file(final: Path):
    """A text file next to ``final`` to write into; removed unless the caller moved it."""
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            yield path, fh
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _writer(fh):
    return csv.writer(fh, lineterminator="\n")


def classify(record: dict) -> tuple[str | None, F.Identifiers | None]:
    """(reason to leave a member out or None, its identifiers) for one row of the export
    query: unknown_contact, no_consent or no_identifier - the first that applies."""
    if not record[_KNOWN]:
        return "unknown_contact", None
    if not record[_CONSENT]:
        return "no_consent", None
    ids = F.identifiers(record)
    return (None if ids.usable else "no_identifier"), ids


@dc.dataclass
class _Tally:
    """Counts of one export, and the audience's contact ids (Arrow chunks) for the snapshot."""

    members: int = 0
    rows: int = 0
    removed: int = 0
    unwritable: int = 0
    excluded: dict[str, int] = dc.field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    found: dict[str, int] = dc.field(default_factory=lambda: {"email": 0, "phone": 0})
    audience: list[pa.Array] = dc.field(default_factory=list)

    @property
    def audience_size(self) -> int:
        return sum(len(a) for a in self.audience)

    def snapshot(self, export_id: int) -> pa.Table:
        ids = (pa.chunked_array(self.audience, pa.string()).combine_chunks()
               if self.audience else pa.array([], pa.string()))
        return pa.table({
            "export_id": pa.array(np.full(len(ids), export_id, dtype=np.int64)),
            "contact_id": ids,
        })


def _write_audience(batches, w, fmt, fields, tally: _Tally, *, action: bool, progress) -> None:
    """Classify every member; write the audience (only the additions when the rows carry
    an in-previous-snapshot flag) and keep its contact ids."""
    for batch in batches:
        keep = []
        for rec in batch.to_pylist():
            reason, ids = classify(rec)
            keep.append(reason is None)
            if reason is not None:
                tally.excluded[reason] += 1
                continue
            tally.found["email"] += ids.email is not None
            tally.found["phone"] += ids.phone is not None
            if rec.get(_IN_PREV):
                continue  # already on the platform
            w.writerow(F.row(fmt, rec, ids, fields, action="add" if action else None))
            tally.rows += 1
        tally.members += batch.num_rows
        tally.audience.append(batch.column("contact_id").filter(pa.array(keep, pa.bool_())))
        if progress is not None:
            progress(tally.members)


def _write_removals(batches, w, fmt, fields, tally: _Tally, *, action: bool, progress) -> None:
    """Write the contacts that left the audience; on Meta/Google only those that still have
    a usable identifier (the others are counted as unwritable)."""
    for batch in batches:
        for rec in batch.to_pylist():
            tally.removed += 1
            ids = F.identifiers(rec)
            if fmt != "csv" and not ids.usable:
                tally.unwritable += 1
                continue
            w.writerow(F.row(fmt, rec, ids, fields, action="remove" if action else None))
            tally.rows += fmt == "csv"
        if progress is not None:
            progress(tally.members + tally.removed)


def _log_row(result: ExportResult) -> pa.Table:
    counts = {k: v for k, v in result.to_dict().items() if k in (
        "members", "audience", "rows", "added", "removed", "removed_unwritable", "excluded",
        "identifiers", "consent_field")}
    ts = pa.timestamp("us", tz="UTC")
    return pa.table({
        "export_id": pa.array([result.export_id], pa.int64()),
        "segment": pa.array([result.segment], pa.string()),
        "format": pa.array([result.format], pa.string()),
        "at": pa.array([result.as_of], ts),
        "created_at": pa.array([_dt.datetime.now(_dt.UTC)], ts),
        "file": pa.array([result.file], pa.string()),
        "removals_file": pa.array([result.removals_file], pa.string()),
        "incremental": pa.array([result.incremental], pa.bool_()),
        "previous_export_id": pa.array([result.previous_export_id], pa.int64()),
        "counts": pa.array([json.dumps(counts, sort_keys=True)], pa.string()),
    })


def export_segment(
    ws,
    segment: str,
    fmt: str,
    out: str | os.PathLike,
    *,
    as_of=None,
    changes_since_last: bool = False,
    fields: Sequence[str] | None = None,
    consent_field: str = DEFAULT_CONSENT_FIELD,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
    force: bool = False,
) -> ExportResult:
    """Write the audience of a saved segment to ``out`` in format ``fmt`` (csv, meta,
    google), in full or, with ``changes_since_last``, only what changed since the previous
    export of that segment in that format; record the export and its audience.

    ``as_of``: the members at that time, from the membership history (default: after the
    last refresh). ``fields``: the contacts columns of a csv export. ``progress`` is called
    after each batch with the number of members (then removed contacts) read so far.
    ``force``: replace ``out`` even when another kind of export wrote it (module doc).
    """
    started = time.perf_counter()
    fmt = _check_format(fmt)
    path = _check_out(out)
    wh = ws.warehouse
    contacts = ws.table("contacts")
    fields = _check_fields(fmt, fields, contacts)
    _check_consent(contacts, consent_field)
    members, at = _members(ws, segment, as_of)
    columns = _source_columns(fmt, fields, contacts)
    incremental = bool(changes_since_last)
    action = incremental and fmt == "csv"  # csv: add/remove rows in one file
    removals = removals_path(path) if incremental and fmt != "csv" else None
    if removals is not None:
        _check_out(removals)
    if not force:
        for target in (path, removals):
            if target is not None:
                _check_overwrite(wh, target, segment, fmt, incremental)

    _ensure_tables(wh)
    previous_id = _previous_export(wh, segment, fmt) if incremental else None
    previous = _snapshot(wh, previous_id) if previous_id is not None else None
    tally = _Tally()
    with contextlib.ExitStack() as files:
        tmp, fh = files.enter_context(_temp_file(path))
        w = _writer(fh)
        w.writerow(F.header(fmt, fields, action=action))
        query = _export_query(contacts, members, columns, consent_field, previous)
        _write_audience(_batches(ws.con, query, batch_rows), w, fmt, fields, tally,
                        action=action, progress=progress)
        added = tally.rows
        with wh.transaction():
            export_id = _next_export_id(wh)
            if tally.audience_size:
                wh.insert(EXPORT_MEMBERS, ibis.memtable(tally.snapshot(export_id)))
            removals_tmp = None
            if removals is not None:
                removals_tmp, rfh = files.enter_context(_temp_file(removals))
                rw = _writer(rfh)
                rw.writerow(F.header(fmt, fields))
            if previous is not None:  # who left since the previous export, from its snapshot
                gone = previous.select("contact_id").anti_join(_snapshot(wh, export_id),
                                                               "contact_id")
                _write_removals(
                    _batches(ws.con, _export_query(contacts, gone, columns, None), batch_rows),
                    rw if removals is not None else w, fmt, fields, tally,
                    action=action, progress=progress,
                )
            if removals_tmp is not None:
                rfh.close()
            fh.close()
            result = ExportResult(
                export_id=export_id,
                segment=segment,
                format=fmt,
                as_of=at,
                file=os.fspath(path),
                removals_file=os.fspath(removals) if removals is not None else None,
                incremental=incremental,
                previous_export_id=previous_id,
                members=tally.members,
                audience=tally.audience_size,
                rows=tally.rows,
                added=added if incremental else None,
                removed=tally.removed if incremental else None,
                removed_unwritable=tally.unwritable if removals is not None else None,
                excluded=tally.excluded,
                identifiers=tally.found,
                consent_field=consent_field,
                seconds=round(time.perf_counter() - started, 3),
            )
            wh.insert(EXPORTS, ibis.memtable(_log_row(result)))
            # last: the files take their names only when everything else has been written
            if removals_tmp is not None:
                os.replace(removals_tmp, removals)
            os.replace(tmp, path)
    return result
