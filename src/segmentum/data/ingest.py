"""Ingestion: a file (or records in memory) → validated rows upserted into a canonical table,
the rest quarantined.

The pipeline of one load, all of it vectorised inside the warehouse (no Python loop per row).
:func:`load_file` and :func:`load_records` (an Arrow table or JSON objects, e.g. from the
tracking service or a CRM sync) differ only in step 1:

1. read the file (or the records) into a staging table, numbering records and lines
   (:mod:`.readers`);
2. resolve the file's columns onto the kind's canonical fields (:mod:`.mapping`);
3. build one Ibis expression that parses every field (types, formats, decimal commas, value
   maps, allowed values) and collects every problem of a row into a readable reason;
4. find duplicate keys inside the file, fill fields only new rows need (a contact's
   ``created_at``) from the stored rows, find unknown foreign keys, and derive stable ids for
   files that have none (a hash of the row's content and its ordinal among identical rows,
   so same-day repeats are kept and a re-load yields the same ids);
5. upsert accepted rows on the natural key (re-loading a file changes nothing), create
   missing contacts if asked, and write every rejected record to ``_quarantine`` with its
   file, line, raw values and reason; records of erased people are dropped before any of
   this and stored nowhere (``suppressed``, :mod:`segmentum.privacy.tombstones`).
   ``accepted + quarantined + suppressed = input`` always holds;
6. a load of orders or contacts (or one that created contacts) rebuilds the per-contact
   purchase totals RFM reads (:mod:`.order_totals`), in the same transaction.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from segmentum.data.checks import Check, Context, checks_for
from segmentum.data.mapping import FALSE_WORDS, TRUE_WORDS, Mapping, load_mapping, normalise_name
from segmentum.data.order_totals import refresh_order_totals
from segmentum.data.readers import ReadResult, Restart, read_chunks, records_to_stage
from segmentum.data.schema import (
    EVENT_PROPERTY_COLUMNS,
    LOAD_WARNINGS_SCHEMA,
    LOADS_SCHEMA,
    ORDER_LINE_COLUMNS,
    Column,
    TableSpec,
    spec,
)
from segmentum.errors import InputFileError, MappingError, UsageError, WorkspaceError, did_you_mean
from segmentum.privacy.tombstones import drop_erased
from segmentum.warehouse.base import UpsertResult
from segmentum.warehouse.duckdb import quote

__all__ = ["LoadReport", "load_file", "load_records"]

# Common spellings of the canonical values, matched case-insensitively before validation.
SYNONYMS: dict[str, dict[str, str]] = {
    "gender": {
        "f": "F", "female": "F", "woman": "F", "w": "F", "k": "F", "kobieta": "F", "ж": "F",
        "m": "M", "male": "M", "man": "M", "mężczyzna": "M", "м": "M",
        "x": "X", "other": "X", "diverse": "X", "nonbinary": "X", "non-binary": "X",
    },
    "channel": {
        "online": "online", "web": "online", "www": "online", "internet": "online",
        "e-commerce": "online", "ecommerce": "online", "app": "online", "mobile": "online",
        "offline": "offline", "store": "offline", "shop": "offline", "pos": "offline",
        "retail": "offline",
    },
    "status": {
        "completed": "completed", "complete": "completed", "paid": "completed",
        "delivered": "completed", "done": "completed", "fulfilled": "completed",
        "returned": "returned", "return": "returned", "refunded": "returned",
        "cancelled": "cancelled", "canceled": "cancelled", "void": "cancelled",
    },
}
# Fields filled with a default when the file has no such column at all.
ABSENT_DEFAULTS = {("orders", "status"): "completed", ("deals", "pipeline"): "default"}
DERIVED_IDS = {"orders": ("order_id", "o"), "events": ("event_id", "e")}
MAX_SHOWN = 40  # characters of a bad value quoted in a reason
# records validated and written at a time: a chunk's checked rows stay in DuckDB's memory
# (2.5 GB by default) instead of the whole file's spilling to disk
CHUNK_ROWS = 2_000_000


@ibis.udf.scalar.builtin
def try_strptime(value: str, fmt: str) -> dt.Timestamp():  # noqa: D103 - DuckDB builtin
    ...


@ibis.udf.scalar.builtin(name="timezone")
def local_to_utc(tz: str, ts: dt.Timestamp()) -> dt.Timestamp(timezone="UTC"):  # noqa: D103
    ...


@ibis.udf.scalar.builtin
def json_merge_patch(a: dt.JSON(), b: dt.JSON()) -> dt.JSON():  # noqa: D103
    ...


@dataclass
class LoadReport:
    """What one load did. ``accepted + quarantined + suppressed == input`` always."""

    load_id: str
    kind: str
    file: str
    format: str
    input: int
    accepted: int
    quarantined: int
    suppressed: int = 0  # records of erased people (segmentum.privacy): stored nowhere
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    contacts_created: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    columns: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # data-quality warnings of accepted records (segmentum.data.checks): count, first example
    quality: list[dict] = field(default_factory=list)
    # when most records were quarantined: mapping lines inferred from the file that would fix it
    mapping_fixes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


# -- entry points -----------------------------------------------------------------------------
def load_file(
    ws,
    kind: str,
    path,
    *,
    mapping=None,
    create_contacts: bool = False,
    progress=None,
) -> LoadReport:
    """Load one file as ``kind`` into the workspace ``ws``; see the module docstring."""
    return _load(ws, kind, _FileInput(Path(path)), mapping, create_contacts, progress)


def load_records(
    ws,
    kind: str,
    records: pa.Table | list[dict],
    *,
    source: str,
    create_contacts: bool = False,
    mapping=None,
) -> LoadReport:
    """Load records handed over in memory (an Arrow table, or JSON objects as dicts) as
    ``kind``: validated, upserted and quarantined by the same pipeline as a file. ``source``
    names where they came from: rows written carry it as ``_source``, quarantined ones as
    ``file``, with ``row`` = the record's 1-based index in ``records``."""
    if not isinstance(source, str) or not source.strip():
        raise UsageError("load_records needs a source: a name for where the records came from.")
    if not isinstance(records, (pa.Table, list, tuple)):
        raise UsageError(
            f"records must be a pyarrow Table or a list of dicts, not {type(records).__name__}."
        )
    return _load(ws, kind, _RecordsInput(records, source), mapping, create_contacts, None)


class _FileInput:
    """A file: staged by :func:`read_chunks`, hashed in a thread while it loads."""

    def __init__(self, path: Path):
        self.path = path
        self.name = path.name  # what written rows carry as _source
        self.shown = str(path)  # LoadReport.file

    @property
    def label(self) -> str:  # the quarantine's and the load log's `file`
        return str(self.path.resolve())

    def chunks(self, raw_con, m: Mapping, stage: str, chunk_rows: int | None):
        self._sha = _Sha256(self.path)
        return read_chunks(raw_con, self.path, m, stage, chunk_rows)

    def digest(self) -> str:
        return self._sha.value()


def _fixes(src, kind: str, m: Mapping) -> list[str]:
    """Mapping lines the file suggests beyond ``m`` (delimited text only)."""
    from segmentum.data.suggest import suggest_mapping

    if src.path.suffix.lower() not in (".csv", ".tsv", ".txt", ".dat"):
        return []
    return suggest_mapping(src.path, kind, m).fixes(m)


def _with_fixes(exc: InputFileError, src, kind: str, m: Mapping) -> InputFileError:
    fixes = _fixes(src, kind, m) if isinstance(src, _FileInput) else []
    if not fixes:
        return exc
    message = f"{exc.message} Inferred from the file: {'; '.join(fixes)}."
    return InputFileError(message, hint=f"`segmentum mapping suggest {src.name} --kind {kind} --out "
                          f"mapping.yaml` writes them to a file to review; then --mapping mapping.yaml.",
                          **exc.details)


class _RecordsInput:
    """Records in memory: staged like a JSON Lines file; their digest is that of their content."""

    def __init__(self, records, source: str):
        self.records = records if isinstance(records, pa.Table) else list(records)
        self.name = self.shown = self.label = source

    def chunks(self, raw_con, m: Mapping, stage: str, chunk_rows: int | None):
        try:
            yield records_to_stage(raw_con, self.records, m, stage)
        finally:
            raw_con.execute(f"DROP TABLE IF EXISTS {stage}")

    def digest(self) -> str:
        h = hashlib.sha256()
        if isinstance(self.records, pa.Table):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, self.records.schema) as writer:
                writer.write_table(self.records)
            h.update(sink.getvalue())
        else:
            try:
                h.update(json.dumps(self.records, sort_keys=True, default=str).encode())
            except (TypeError, ValueError):  # keys of several types (refused records): unsortable
                h.update(ascii(self.records).encode())
        return h.hexdigest()


def _load(ws, kind: str, src, mapping, create_contacts: bool, progress, chunk_rows: int | None | str = "default") -> LoadReport:
    """Stage ``src``, validate it and write it: the one pipeline of files and records. A large
    file goes chunk by chunk (see :class:`_Load`); one that needs the whole file at once after
    all (:class:`Restart`) is rolled back and loaded again in one chunk."""
    started = time.perf_counter()
    chunk_rows = CHUNK_ROWS if chunk_rows == "default" else chunk_rows
    tspec = spec(kind)
    m, mapping_text = load_mapping(mapping)
    m.check_against(tspec, str(mapping) if mapping is not None and not isinstance(mapping, dict) else "mapping")
    if create_contacts and "contact_id" not in tspec.foreign_keys:
        raise UsageError(f"--create-contacts applies to orders, events and deals, not {kind}.")
    wh = ws.warehouse
    if not wh.supports_ingest:
        raise WorkspaceError(
            f"Loading files needs the embedded DuckDB warehouse; this workspace is on {wh.name}. "
            "Write the canonical tables with your Spark jobs (README: Workspaces on Spark)."
        )
    step = _Progress(progress)
    load = _Load(wh, tspec, src, m, create_contacts)
    step("reading", 0)
    try:
        with wh.transaction():  # everything a load writes lands together or not at all
            for n, read in enumerate(src.chunks(wh.raw, m, f"_stage_{kind}", chunk_rows), start=1):
                step("validating" if n == 1 else f"chunk {n}", 1)
                load.chunk(read)
            step("writing", 2)
            report = load.finish(mapping_text)
    except Restart:
        if chunk_rows is None:  # pragma: no cover - a one-chunk read never restarts
            raise
        return _load(ws, kind, src, mapping, create_contacts, progress, chunk_rows=None)
    finally:
        load.drop_temps()
    step("done", 3)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


class _Load:
    """One load's running totals over its chunks (a file that fits, or records: one chunk).

    Each chunk is validated and written on its own: its checked rows stay in memory instead
    of the whole file's spilling to disk. Keys repeated *within* a chunk are decided by
    :func:`_flag_duplicates`; a key repeated *across* chunks is found from 64-bit hashes of
    the accepted keys of the earlier chunks and makes the load start again in one chunk
    (:class:`Restart`), so every decision is the one a one-shot load makes. Contacts created
    by an earlier chunk take an earlier first activity of a later one as ``created_at``.
    """

    def __init__(self, wh, tspec: TableSpec, src, m: Mapping, create_contacts: bool):
        self.wh, self.tspec, self.src, self.m, self.create_contacts = wh, tspec, src, m, create_contacts
        self.started_at = _dt.datetime.now(_dt.UTC)
        self.now = ibis.literal(self.started_at, type=dt.Timestamp(timezone="UTC"))
        self.load_id = uuid.uuid4().hex[:12]
        self.plan: _Plan | None = None
        self.first: ReadResult | None = None
        self.totals = dict.fromkeys(("input", "accepted", "quarantined", "suppressed", "inserted", "updated", "unchanged", "created"), 0)
        self.quality: dict[tuple, dict] = {}
        self.keys: list[np.ndarray] = []  # sorted key hashes of the earlier chunks
        self.open: list[_Temps] = []  # tables of the chunk being written (dropped if it fails)
        self.was_empty = not _has_rows(wh, tspec.kind)

    def chunk(self, read: ReadResult) -> None:
        wh, tspec, src = self.wh, self.tspec, self.src
        staged = wh.con.table(f"_stage_{tspec.kind}")
        if self.plan is None:
            self.first = read
            try:
                self.plan = _resolve_columns(tspec, read, self.m, src.name)
            except InputFileError as exc:  # say which mapping lines the file itself suggests
                raise _with_fixes(exc, src, tspec.kind, self.m) from None
        checked = _validate(wh, tspec, staged, self.plan, self.m, self.create_contacts, read)
        self.open.append(checked.temp_tables)
        v, gone = drop_erased(wh, tspec.kind, checked.table)  # erased people's records
        self.totals["suppressed"] += gone
        ok = v.filter(v._reason.isnull())
        if read.chunked:
            self._check_keys_are_new(ok)
        data_cols = [c for c in self.plan.output_columns if c in ok.columns]
        to_write = ok.select(*data_cols, _source=ibis.literal(src.name), _line=ok._line, _loaded_at=self.now)
        if tspec.kind == "order_items":
            to_write = _with_order_fields(to_write, wh.table("orders"))
        if self.totals["created"] and self.create_contacts:
            self._earlier_first_activity(ok)
        if checked.new_contacts is not None:
            self.totals["created"] += _create_contacts(wh, tspec, ok, checked.new_contacts, src.name, self.now)
        if read.chunked and self.was_empty:
            # every key is new: the table had no rows and no key repeats across chunks
            result = _insert_new(wh, tspec, to_write)
        else:
            result = wh.upsert(tspec.kind, to_write, tspec.key, tspec.cluster_by)
        t = self.totals
        t["input"] += read.records
        t["accepted"] += int(ok.count().execute())
        t["inserted"], t["updated"], t["unchanged"] = (
            t["inserted"] + result.inserted, t["updated"] + result.updated, t["unchanged"] + result.unchanged)
        t["quarantined"] += _write_quarantine(wh, tspec.kind, src.label, self.load_id, v, staged, read, self.plan,
                                              self.started_at)
        for q in _quality(ok, checked.counted):
            key = (q["field"], q["check"])
            if key in self.quality:
                self.quality[key]["count"] += q["count"]
            else:
                self.quality[key] = q
        self.drop_temps()

    def _check_keys_are_new(self, ok: ir.Table) -> None:
        """Restart unless every accepted key of this chunk is new to the load."""
        key = ibis.literal("\x1f").join([ok[k].cast("string") for k in self.tspec.key]).hash()
        hashes = np.sort(ok.select(h=key).to_pyarrow().column("h").to_numpy(zero_copy_only=False))
        for earlier in self.keys:
            at = np.searchsorted(earlier, hashes).clip(max=len(earlier) - 1)
            if len(earlier) and bool((earlier[at] == hashes).any()):
                raise Restart("a key repeated across chunks")
        self.keys.append(hashes)

    def _earlier_first_activity(self, ok: ir.Table) -> None:
        """Contacts an earlier chunk created take this chunk's earlier first activity."""
        first = ok.group_by("contact_id").agg(_first=ok[self.tspec.time_column].min())
        name = f"_first_{self.tspec.kind}"
        temps = _Temps(self.wh, in_arrow=True)
        self.open.append(temps)
        temps.keep(name, first)
        self.wh.raw.execute(
            f"UPDATE contacts SET created_at = f._first FROM {name} f WHERE contacts.contact_id = f.contact_id "
            "AND contacts._loaded_at = $1 AND contacts._source = $2 AND f._first < contacts.created_at",
            [self.started_at, self.src.name],
        )

    def finish(self, mapping_text: str | None) -> LoadReport:
        wh, kind, src, t, read = self.wh, self.tspec.kind, self.src, self.totals, self.first
        if kind == "orders" and t["updated"]:
            sync_order_lines(wh, loaded_at=self.started_at)
        if kind in ("orders", "contacts") or t["created"]:
            refresh_order_totals(wh)  # RFM reads these per-contact totals
        digest = src.digest()  # a file is hashed while it was read, checked and written
        # this file's earlier quarantine records give way to this load's
        wh.raw.execute("DELETE FROM _quarantine WHERE kind = $1 AND file_sha256 = $2", [kind, digest])
        wh.raw.execute("UPDATE _quarantine SET file_sha256 = $1 WHERE load_id = $2", [digest, self.load_id])
        plan = self.plan
        report = LoadReport(
            load_id=self.load_id, kind=kind, file=src.shown, format=read.format,
            input=t["input"], accepted=t["accepted"], quarantined=t["quarantined"],
            inserted=t["inserted"], updated=t["updated"], unchanged=t["unchanged"], contacts_created=t["created"], suppressed=t["suppressed"],
            reasons=_reason_counts(wh.table("_quarantine"), self.load_id),
            columns={"mapped": plan.mapped, "custom": plan.custom, "ignored": plan.ignored,
                     "derived": plan.derived, "delimiter": read.delimiter},
            quality=[_quality_message(q) for q in self.quality.values()],
        )
        report.warnings = read.warnings + [q["message"] for q in report.quality]
        if report.input and report.quarantined >= report.input / 2 and isinstance(src, _FileInput):
            report.mapping_fixes = _fixes(src, kind, self.m)
            if report.mapping_fixes:
                report.warnings.append(
                    f"{report.quarantined:,} of {report.input:,} records were quarantined; inferred "
                    f"from the file, these mapping lines would fix it: {'; '.join(report.mapping_fixes)} "
                    f"(`segmentum mapping suggest {src.name} --kind {kind}` writes a mapping to review)"
                )
        _record_quality(wh, self.load_id, src.label, report.quality)
        if report.accepted + report.quarantined + report.suppressed != report.input:  # the ledger must close
            raise AssertionError(f"load of {src.label} does not reconcile: {report}")
        log = {
            "load_id": self.load_id, "kind": kind, "file": src.label, "file_sha256": digest,
            "started_at": self.started_at, "finished_at": _dt.datetime.now(_dt.UTC),
            "input": report.input, "accepted": report.accepted, "quarantined": report.quarantined,
            "inserted": report.inserted, "updated": report.updated, "unchanged": report.unchanged,
            "contacts_created": report.contacts_created, "mapping": mapping_text,
        }
        wh.insert("_loads", pa.Table.from_pylist([log], schema=ibis.schema(LOADS_SCHEMA).to_pyarrow()))
        return report

    def drop_temps(self) -> None:
        for temps in self.open:
            temps.drop()
        self.open.clear()


class _Progress:
    STEPS = 3

    def __init__(self, callback):
        self.callback = callback

    def __call__(self, stage: str, done: int) -> None:
        if self.callback:
            self.callback(stage, done, self.STEPS)


class _Sha256:
    """The file's SHA-256 for the load log, computed in a thread while the load reads and
    checks the file: hashlib releases the GIL on large chunks, and hashing a 5 GB CSV alone
    takes about 25 s on this machine. ``value()`` waits for it."""

    def __init__(self, path: Path):
        if not path.exists():
            raise InputFileError(f"File {path} does not exist.")
        self._path, self._digest, self._error = path, None, None
        self._thread = threading.Thread(target=self._run, name="segmentum-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            h = hashlib.sha256()
            with open(self._path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    h.update(chunk)
            self._digest = h.hexdigest()
        except OSError as exc:
            self._error = exc

    def value(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise InputFileError(f"Cannot read {self._path}: {self._error}.")
        return self._digest


# -- column resolution ------------------------------------------------------------------------
@dataclass
class _Plan:
    source_of: dict[str, str]  # canonical/custom field -> staged column
    constants: dict[str, object]
    mapped: dict[str, str]  # file column -> field, for the report
    custom: list[str]
    ignored: list[str]
    derived: list[str]
    output_columns: list[str]  # fields written to the table, in order


def _resolve_columns(tspec: TableSpec, read: ReadResult, m: Mapping, what: str) -> _Plan:
    file_cols = read.columns
    ignored = set()
    for name in m.ignore:
        hits = [c for c in file_cols if c == name or normalise_name(c) == normalise_name(name)]
        if not hits:
            raise MappingError(
                f"ignore: {name!r} is not a column of {what}.{did_you_mean(name, file_cols)}"
            )
        ignored.update(hits)
    source_of: dict[str, str] = {}
    mapped: dict[str, str] = {}
    for src, target in m.columns.items():
        hits = [c for c in file_cols if c == src] or [
            c for c in file_cols if normalise_name(c) == normalise_name(src)
        ]
        if not hits:
            raise MappingError(
                f"columns: {src!r} is not a column of {what}.{did_you_mean(src, file_cols)} "
                f"Its columns are: {', '.join(file_cols)}."
            )
        if target in source_of:
            raise MappingError(f"columns: both {source_of[target]!r} and {src!r} map to {target!r}.")
        source_of[target] = hits[0]
        mapped[hits[0]] = target
    for col in file_cols:
        if col in mapped or col in ignored:
            continue
        target = normalise_name(col)
        if target.startswith("_"):
            target = "x" + target
        if target in source_of:
            raise MappingError(
                f"{what}: column {col!r} and column {source_of[target]!r} both mean "
                f"{target!r}; map one of them elsewhere or list it under ignore:."
            )
        source_of[target] = col
        mapped[col] = target
    constants = dict(m.constants)
    for name in constants:
        if name in source_of:
            raise MappingError(
                f"constants: {name!r} is also a column of {what}; drop one of them."
            )
    for (kind, name), value in ABSENT_DEFAULTS.items():
        if kind == tspec.kind and name not in source_of and name not in constants:
            constants[name] = value
    derived = []
    missing = []
    for col in tspec.required:
        if col in source_of or col in constants or col in tspec.new_rows_need:
            continue
        if DERIVED_IDS.get(tspec.kind, (None,))[0] == col:
            derived.append(col)
            continue
        missing.append(col)
    if missing and (read.format == "records" or read.format == "jsonl" and not read.staged):
        # records have no header: a field none of them has is missing from each of them (and
        # a JSON Lines file none of whose lines could be staged says nothing of its columns)
        constants.update(dict.fromkeys(missing))
        missing = []
    if missing:
        hints = "".join(
            f" For {col!r}:{did_you_mean(col, file_cols) or ' no similar column.'}" for col in missing
        )
        raise InputFileError(
            f"{what} has no column for required field(s) {', '.join(missing)} of {tspec.kind}. "
            f"Its columns are: {', '.join(file_cols)}.{hints} Map them with `columns:` in a "
            f"mapping file (--mapping), e.g. columns: {{'<file column>': {missing[0]!r}}}."
        )
    canonical = set(tspec.names)
    custom = [c for c in list(source_of) + list(constants) if c not in canonical]
    output = [c for c in tspec.names if c in source_of or c in constants or c in derived]
    if tspec.extras == "properties":
        output = [c for c in tspec.names if c in output or c in EVENT_PROPERTY_COLUMNS or c == "properties"]
    else:
        output += custom
    return _Plan(source_of, constants, mapped, custom, sorted(ignored), derived, output)


# -- validation -------------------------------------------------------------------------------
def _shown(value: ir.StringValue) -> ir.StringValue:
    v = value.cast("string")
    short = ibis.ifelse(v.length() > MAX_SHOWN, v.substr(0, MAX_SHOWN) + "…", v)
    return "'" + short + "'"


def _text(value: ir.Value, clean: bool) -> ir.StringValue:
    """A staged text value with empty text as null. Text from CSV / JSON Lines arrives trimmed
    with null markers already nulled by the reader (``clean``); Parquet text is taken as is."""
    return value if clean else value.nullif("")


def _lookup(table: dict[str, str | None], key: ir.StringValue, default: ir.Value) -> ir.Value:
    """``table[key]`` if the key is there, else ``default`` (a map lookup, not a CASE chain,
    so nested value maps stay linear in size)."""
    keys = list(table)
    mapped = ibis.map(keys, [table[k] for k in keys])
    found = ibis.literal(keys, type=dt.Array(dt.string)).contains(key)
    return ibis.ifelse(found, mapped.get(key), default)


def _parse_value(
    col: Column, raw: ir.Value, m: Mapping, clean: bool
) -> tuple[ir.Value, ir.BooleanValue, ir.Value]:
    """Phase 1 of a field: its normalised text (for messages), whether it is present, and its
    parsed value (null if bad).

    Presence is tested before the value becomes text: a typed (Parquet) value's text is only
    built for the messages of bad rows (casting every time-zone aware timestamp to text just
    to test it for null cost a quarter of an events load)."""
    name, target = col.name, col.dtype
    is_text = raw.type().is_string()
    text = _text(raw, clean) if is_text else raw
    if name in m.values:
        vmap = {str(k): (None if v is None else str(v)) for k, v in m.values[name].items()}
        text = _lookup(vmap, text.cast("string"), text.cast("string"))
        is_text = True
    shown = text.cast("string")
    present = text.notnull()
    fmt = m.formats.get(name)

    if target.is_string():
        value = text.cast("string")
        if col.allowed:
            syn = dict(SYNONYMS.get(name, {}))
            syn.update({a.lower(): a for a in col.allowed})
            value = _lookup(syn, value.lower(), value)
        return shown, present, value
    if target.is_timestamp():
        if not is_text and raw.type().is_timestamp():
            if raw.type().timezone is None and m.timezone:
                return shown, present, local_to_utc(m.timezone, raw)
            return shown, present, raw.cast(target)
        if not is_text and raw.type().is_date():
            return shown, present, raw.cast(target)
        s = text.cast("string")
        if fmt:
            return shown, present, local_to_utc(m.timezone or "UTC", try_strptime(s, fmt))
        if m.timezone:
            has_offset = s.re_search(r"(Z|[+-]\d\d(:?\d\d)?)$")
            local = local_to_utc(m.timezone, s.try_cast(dt.Timestamp()))
            return shown, present, ibis.ifelse(has_offset, s.try_cast(target), local)
        return shown, present, s.try_cast(target)
    if target.is_date():
        if not is_text:
            return shown, present, raw.try_cast(target)
        if fmt:
            return shown, present, try_strptime(text.cast("string"), fmt).date()
        return shown, present, text.cast("string").try_cast(target)
    if target.is_boolean():
        if not is_text and raw.type().is_boolean():
            return shown, present, raw
        if not is_text and raw.type().is_numeric():
            return shown, present, raw != 0
        low = text.cast("string").lower()
        return shown, present, ibis.cases(
            (low.isin(list(TRUE_WORDS)), True),
            (low.isin(list(FALSE_WORDS)), False),
            else_=ibis.null(dt.boolean),
        )
    if target.is_numeric():
        if not is_text and raw.type().is_numeric():
            return shown, present, raw.try_cast(target)
        s = text.cast("string").replace(" ", "").replace("\u00a0", "")
        if m.decimal == ",":
            s = s.replace(".", "").replace(",", ".")
        elif m.thousands:
            s = s.replace(m.thousands, "")
        if target.is_integer():
            d = s.try_cast(dt.float64)
            return shown, present, ibis.ifelse(d == d.floor(), d.try_cast(target), ibis.null(target))
        return shown, present, s.try_cast(target)
    if target.is_json():
        s = text.cast("string")
        return shown, present, ibis.ifelse(s.startswith("{"), s.try_cast(dt.JSON()), ibis.null(dt.JSON()))
    raise AssertionError(f"no parser for {target}")  # every canonical type is handled above


def _problem(col: Column, shown: ir.StringValue, present: ir.BooleanValue, value: ir.Value, m: Mapping):
    """Phase 2 of a field: (problem texts or nulls, the value with values not allowed nulled)."""
    name, target = col.name, col.dtype
    none = ibis.null(dt.string)
    fmt = m.formats.get(name)
    missing = (
        ibis.ifelse(~present, f"missing {name} (required)", none) if col.required and not col.new_only else None
    )
    bad = present & value.isnull()
    problem = None
    if target.is_string() and col.allowed:
        bad = present & ~value.isin(list(col.allowed))
        problem = ibis.ifelse(
            bad,
            f"{name} " + _shown(shown) + f" is not one of {', '.join(col.allowed)}"
            f" (map it with `values: {{{name}: {{...}}}}` in a mapping)",
            none,
        )
        value = ibis.ifelse(bad, ibis.null(dt.string), value)
    elif target.is_timestamp():
        hint = (
            f"does not match the format {fmt!r}"
            if fmt
            else "is not a date-time: use ISO 8601 (2024-05-31T14:30:00Z) or set "
            f"`formats: {{{name}: '%d.%m.%Y'}}` in a mapping"
        )
        problem = ibis.ifelse(bad, f"{name} " + _shown(shown) + f" {hint}", none)
    elif target.is_date():
        problem = ibis.ifelse(
            bad,
            f"{name} " + _shown(shown) + " is not a date: use ISO 8601 (1990-05-31) or set "
            f"`formats: {{{name}: '%d.%m.%Y'}}` in a mapping",
            none,
        )
    elif target.is_boolean():
        problem = ibis.ifelse(
            bad, f"{name} " + _shown(shown) + " is not a yes/no value (true/false, 1/0, yes/no)", none
        )
    elif target.is_numeric():
        word = "a whole number" if target.is_integer() else "a number"
        hint = "" if m.decimal == "," else " (for decimal commas set `decimal: \",\"` in a mapping)"
        problem = ibis.ifelse(bad, f"{name} " + _shown(shown) + f" is not {word}{hint}", none)
    elif target.is_json():
        problem = ibis.ifelse(bad, f"{name} " + _shown(shown) + " is not a JSON object", none)
    return [p for p in (missing, problem) if p is not None], value


@dataclass
class _Checked:
    table: ir.Table  # every staged record with its parsed fields and _reason (null = accepted)
    new_contacts: ir.Table | None  # contact ids to create (--create-contacts)
    temp_tables: _Temps
    counted: list[Check]  # warn / clear checks; column _w_<name> holds each failing value


def _constant(value) -> ir.Value:
    """A mapping's constant (or a field no record has) as the text a file would hold."""
    return ibis.null(dt.string) if value is None else ibis.literal(str(value))


def _validate(wh, tspec: TableSpec, staged: ir.Table, plan: _Plan, m: Mapping, create_contacts: bool,
              read: ReadResult) -> _Checked:
    """Parse every field and collect each row's problems into _reason, in one pass over the
    file, materialised once; then key checks that aggregate first and touch rows only if
    something is wrong."""
    clean = read.format != "parquet"
    phase1: dict[str, ir.Value] = {}
    cols: list[Column] = []
    for col in tspec.columns:
        if col.name in plan.source_of:
            raw = staged[plan.source_of[col.name]]
        elif col.name in plan.constants:
            raw = _constant(plan.constants[col.name])
        else:
            continue
        shown, present, value = _parse_value(col, raw, m, clean)
        phase1[f"__t_{col.name}"] = shown
        phase1[f"__n_{col.name}"] = present
        phase1[col.name] = value
        cols.append(col)
    custom_values = {}
    for name in plan.custom:
        raw = staged[plan.source_of[name]] if name in plan.source_of else _constant(plan.constants[name])
        value = _text(raw, clean) if raw.type().is_string() else raw
        if tspec.extras == "properties" and plan.source_of.get(name) in read.json_columns:
            value = value.cast(dt.JSON())  # a nested object stays an object in `properties`
        custom_values[name] = value
    if tspec.extras == "properties":
        props = _properties(phase1.get("properties"), custom_values, staged)
        if "properties" in phase1:
            phase1["properties"] = props
        else:
            phase1["properties"] = props
            phase1["__t_properties"] = ibis.null(dt.string)
            phase1["__n_properties"] = ibis.literal(False)
    else:
        phase1.update(custom_values)
    p1 = staged.select(_row=staged._row, _line=staged._line, **phase1)

    ctx = Context(now=_dt.datetime.now(_dt.UTC), table=wh.table)
    problems: list[ir.StringValue] = []
    values: dict[str, ir.Value] = {}
    flags: dict[str, ir.Value] = {}
    counted: list[Check] = []
    for col in cols:
        shown = p1[f"__t_{col.name}"]
        found, value = _problem(col, shown, p1[f"__n_{col.name}"], p1[col.name], m)
        for check in checks_for(tspec.kind, col.name):
            if check.needs and not _has_rows(wh, check.needs):
                continue
            fails = value.notnull() & check.fails(value, ctx).fill_null(False)
            if check.action == "reject":
                found.append(ibis.ifelse(fails, f"{col.name} " + _shown(shown) + f" {check.says}", ibis.null(dt.string)))
                continue
            flags[f"_w_{check.name}"] = ibis.ifelse(fails, shown, ibis.null(dt.string))  # as written
            if check.action == "clear":
                value = ibis.ifelse(fails, ibis.null(value.type()), value)
            counted.append(check)
        problems += found
        values[col.name] = value
    if problems:
        # CONCAT_WS skips the nulls: no list per row (a list per row cost a third of the check)
        reason = ibis.literal("; ").join(problems).nullif("")
    else:
        reason = ibis.null(dt.string)
    if tspec.extras == "properties":
        # promoted event properties also come out of the `properties` object (JSON Lines)
        # (only for properties the file has no column for: a column wins, and looking into
        # the JSON of every row for a key the file already gives would cost a parse per row)
        for prop in EVENT_PROPERTY_COLUMNS:
            if prop not in values:
                values[prop] = p1.properties[prop].str
    keep = [c for c in p1.columns if not c.startswith(("__t_", "__n_")) and c not in values]
    t = p1.select(*keep, **values, **flags, _reason=reason)
    derived = DERIVED_IDS.get(tspec.kind)
    if derived and derived[0] in plan.derived:
        t = _derive_id(t, tspec, derived)
    name = f"_checked_{tspec.kind}"
    temps = _Temps(wh, in_arrow=read.chunked)
    t = temps.keep(name, t)
    t = _flag_duplicates(wh, t, tspec, temps)
    t = _fill_from_stored(wh, t, tspec, temps)
    t, new_contacts = _flag_unknown_keys(wh, t, tspec, create_contacts, temps)
    return _Checked(t, new_contacts, temps, counted)


def _insert_new(wh, tspec: TableSpec, rows: ir.Table) -> UpsertResult:
    """Insert rows whose keys are all new to the table, in ``cluster_by`` order (the
    warehouse's upsert without its comparison with the stored rows)."""
    wh.add_columns(tspec.kind, {c: t for c, t in rows.schema().items() if c not in wh.table(tspec.kind).columns})
    cols = ", ".join(quote(c) for c in rows.columns)
    order = f" ORDER BY {', '.join(quote(c) for c in tspec.cluster_by)}" if tspec.cluster_by else ""
    (n,) = wh.raw.execute(
        f"INSERT INTO {quote(tspec.kind)} ({cols}) SELECT {cols} FROM ({wh.con.compile(rows)}){order}"
    ).fetchone()
    return UpsertResult(inserted=int(n), updated=0, unchanged=0)


def _has_rows(wh, table: str) -> bool:
    return bool(int(wh.table(table).limit(1).count().execute()))


def _properties(explicit: ir.Value | None, custom: dict[str, ir.Value], staged: ir.Table) -> ir.Value:
    """Event properties: the file's `properties` JSON merged with every extra column."""
    if custom:
        extras = ibis.struct({k: v for k, v in custom.items()}).cast(dt.JSON())
        if explicit is not None:
            return ibis.ifelse(explicit.isnull(), extras, json_merge_patch(explicit, extras))
        return extras
    return explicit if explicit is not None else ibis.null(dt.JSON())


def _derive_id(t: ir.Table, tspec: TableSpec, derived: tuple[str, str]) -> ir.Table:
    """A stable id from the row's content and its ordinal among identical rows of the file."""
    col, prefix = derived
    parts = [c for c in tspec.names if c != col and c in t.columns]
    w = ibis.window(group_by=[t[c] for c in parts], order_by=t._row)
    t = t.mutate(_ordinal=ibis.row_number().over(w))
    key = ibis.literal("|").join(
        [t[c].cast("string").fill_null("\u2205") for c in parts] + [t._ordinal.cast("string")]
    )
    return t.mutate(**{col: ibis.ifelse(t._reason.isnull(), prefix + key.hexdigest("md5").substr(0, 20), ibis.null(dt.string))}).drop("_ordinal")


class _Temps(list):
    """The tables one chunk's checks materialise, by name. Inside a load's transaction a
    dropped DuckDB temporary table keeps its memory until the commit (a rollback could need
    it), so a chunk of a file read in several keeps its tables as Arrow tables the warehouse
    reads in place, freed when the chunk is done."""

    def __init__(self, wh, in_arrow: bool):
        super().__init__()
        self.wh, self.in_arrow = wh, in_arrow

    def keep(self, name: str, t: ir.Table) -> ir.Table:
        self.append(name)
        if not self.in_arrow:
            return self.wh.temp_table(name, t)
        table = t.to_pyarrow()
        self.wh.raw.register(name, table)
        return self.wh.con.table(name)

    def drop(self) -> None:
        for name in self:
            if self.in_arrow:
                self.wh.raw.unregister(name)
            else:
                self.wh.raw.execute(f"DROP TABLE IF EXISTS {name}")
        self.clear()


def _materialise(wh, t: ir.Table, name: str, temps: _Temps) -> ir.Table:
    return temps.keep(name, t)


def _flag_duplicates(wh, t: ir.Table, tspec: TableSpec, temps: list[str]) -> ir.Table:
    """Two accepted rows of one file with the same key: the later one wins, the earlier one is
    quarantined. Duplicate keys are found by aggregation; rows are rewritten only if any exist."""
    keys = list(tspec.key)
    ok = t.filter(t._reason.isnull())
    dups = ok.group_by(keys).agg(_dup_n=ok.count(), _dup_last=ok._row.max()).filter(lambda d: d._dup_n > 1)
    if not int(dups.count().execute()):
        return t
    j = t.left_join(dups, keys)
    reason = (
        f"duplicate {', '.join(keys)}: a later record of this file (row "
        + j._dup_last.cast("string")
        + ") has the same key and replaces this one"
    )
    superseded = j._reason.isnull() & j._dup_last.notnull() & (j._row != j._dup_last)
    marked = j.select(*[c for c in t.columns if c != "_reason"], _reason=ibis.ifelse(superseded, reason, j._reason))
    return _materialise(wh, marked, f"_dedup_{tspec.kind}", temps)


def _fill_from_stored(wh, t: ir.Table, tspec: TableSpec, temps: list[str]) -> ir.Table:
    """Fields only a new row needs (a contact's created_at): a row that updates a stored one
    and leaves them empty keeps the stored values; a new row without them is quarantined.
    Rows are rewritten only if some accepted row lacks such a field."""
    need = tspec.new_rows_need
    if not need:
        return t

    def lacks(table: ir.Table) -> ir.BooleanValue:
        return ibis.or_(*[table[c].isnull() if c in t.columns else ibis.literal(True) for c in need])

    ok = t.filter(t._reason.isnull())
    if not int(ok.filter(lacks(ok)).count().execute()):
        return t
    keys = list(tspec.key)
    stored = wh.table(tspec.kind)
    old = stored.select(*keys, _known=ibis.literal(True), **{f"_old_{c}": stored[c] for c in need})
    j = t.left_join(old, keys)
    reason = (
        f"missing {' and '.join(need)} (required of a new row): {', '.join(keys)} "
        + _shown(j[keys[0]]) + f" is not in {tspec.kind} yet"
    )
    new_and_lacking = j._reason.isnull() & j._known.isnull() & lacks(j)
    filled = {c: j[c].coalesce(j[f"_old_{c}"]) for c in need if c in t.columns}
    marked = j.select(
        *[filled.get(c, j[c]).name(c) for c in t.columns if c != "_reason"],
        _reason=ibis.ifelse(new_and_lacking, reason, j._reason),
    )
    return _materialise(wh, marked, f"_filled_{tspec.kind}", temps)


def _flag_unknown_keys(wh, t: ir.Table, tspec: TableSpec, create_contacts: bool, temps: list[str]):
    """Foreign keys that name nothing: quarantined, or (contacts, if asked) created."""
    new_contacts = None
    for col, (ref_table, ref_col) in tspec.foreign_keys.items():
        ref = wh.table(ref_table)
        ok = t.filter(t._reason.isnull())
        unknown = ok.select(col).distinct()
        unknown = unknown.filter(~unknown[col].isin(ref[ref_col]))
        unknown = _materialise(wh, unknown, f"_unknown_{tspec.kind}_{col}", temps)
        if not int(unknown.count().execute()):
            continue
        if col == "contact_id" and create_contacts:
            new_contacts = unknown
            continue
        hint = (
            "load contacts first, or pass --create-contacts"
            if ref_table == "contacts"
            else f"load {ref_table} first"
        )
        flagged = unknown.mutate(_unknown=True)
        j = t.left_join(flagged, col)
        bad = j._reason.isnull() & j._unknown.notnull()
        reason = f"unknown {col} " + _shown(j[col]) + f": no such {ref_col} in {ref_table} ({hint})"
        marked = j.select(*[c for c in t.columns if c != "_reason"], _reason=ibis.ifelse(bad, reason, j._reason))
        t = _materialise(wh, marked, f"_fk_{tspec.kind}_{col}", temps)
    return t, new_contacts


# -- writes -----------------------------------------------------------------------------------
def _create_contacts(wh, tspec: TableSpec, ok: ir.Table, new_ids: ir.Table, source: str, now) -> int:
    """Contacts for ids the workspace lacks, created_at = their first activity in this file."""
    new = ok.join(new_ids, "contact_id")
    contacts = new.group_by("contact_id").agg(created_at=new[tspec.time_column].min(), _line=new._line.min())
    n = int(contacts.count().execute())
    if n:
        wh.upsert(
            "contacts",
            contacts.select("contact_id", "created_at", _source=ibis.literal(source), _line="_line", _loaded_at=now),
            ("contact_id",),
        )
    return n


def _with_order_fields(lines: ir.Table, orders: ir.Table) -> ir.Table:
    """Order lines with their order's contact, time and status (``ORDER_LINE_COLUMNS``).
    Every accepted line's order exists: an unknown order_id was quarantined."""
    o = orders.select(
        _oid=orders.order_id, _contact_id=orders.contact_id,
        _ordered_at=orders.ordered_at, _status=orders.status,
    )
    j = lines.left_join(o, lines.order_id == o._oid)
    return j.select(*lines.columns, *ORDER_LINE_COLUMNS)


def sync_order_lines(wh, loaded_at: _dt.datetime | None = None) -> int:
    """Bring the order fields kept on order lines in step with the orders table: the orders
    one load wrote (``loaded_at``: its rows' ``_loaded_at``; the upsert stamps the rows it
    inserts or changes and leaves the rest), or every order (a workspace made before lines
    carried them)."""
    differs = " OR ".join(f"order_items.{c} IS DISTINCT FROM o.{c[1:]}" for c in ORDER_LINE_COLUMNS)
    sets = ", ".join(f"{c} = o.{c[1:]}" for c in ORDER_LINE_COLUMNS)
    orders, params = ("orders", [])
    if loaded_at is not None:
        orders, params = ("(SELECT * FROM orders WHERE _loaded_at = $1)", [loaded_at])
    return wh.raw.execute(
        f"UPDATE order_items SET {sets} FROM {orders} o "
        f"WHERE order_items.order_id = o.order_id AND ({differs})",
        params,
    ).fetchone()[0]


def _write_quarantine(wh, kind, label: str, load_id, v, staged, read, plan, started_at) -> int:
    """Record every rejected record of a chunk (its file's digest is set when the load ends)."""
    bad = v.filter(v._reason.notnull())
    orig = [c for c in staged.columns if c not in ("_row", "_line")]
    raw_json = ibis.struct({c: staged[c] for c in orig}).cast(dt.JSON()).cast("string") if orig else ibis.literal("{}")
    raws = staged.select(_row=staged._row, _raw=raw_json)
    q = bad.join(raws, bad._row == raws._row).select(
        load_id=ibis.literal(load_id),
        kind=ibis.literal(kind),
        file=ibis.literal(label),
        file_sha256=ibis.null(dt.string),
        line=bad._line,
        row=bad._row,
        column=_first_column(bad._reason, plan),
        reason=bad._reason,
        raw=raws._raw,
        quarantined_at=ibis.literal(started_at, type=dt.Timestamp(timezone="UTC")),
    )
    n = int(q.count().execute())
    if n:
        wh.con.insert("_quarantine", q)
    if read.unreadable:
        wh.insert(
            "_quarantine",
            pa.table(
                {
                    "load_id": [load_id] * len(read.unreadable),
                    "kind": [kind] * len(read.unreadable),
                    "file": [label] * len(read.unreadable),
                    "file_sha256": pa.nulls(len(read.unreadable), pa.string()),
                    "line": pa.array([u.line for u in read.unreadable], pa.int64()),
                    "row": pa.array([u.row for u in read.unreadable], pa.int64()),
                    "column": pa.array([None] * len(read.unreadable), pa.string()),
                    "reason": [u.reason for u in read.unreadable],
                    "raw": [json.dumps({"text": u.raw}, ensure_ascii=False) for u in read.unreadable],
                    "quarantined_at": pa.array([started_at] * len(read.unreadable), pa.timestamp("us", "UTC")),
                }
            ),
        )
    return n + len(read.unreadable)


def _first_column(reason: ir.StringValue, plan: _Plan) -> ir.StringValue:
    """The field a reason is about: its first word, or the word after 'missing'/'unknown'."""
    first = reason.split(" ")[0]
    second = reason.split(" ")[1]
    return ibis.cases(
        (first.isin(["missing", "unknown"]), second),
        (first == "duplicate", ibis.null(dt.string)),
        else_=first,
    )


def _reason_counts(quarantine: ir.Table, load_id: str) -> dict[str, int]:
    """The load's most common problems, grouped by their kind (the reason without the bad value)."""
    bad = quarantine.filter(quarantine.load_id == load_id)
    kind_of = bad.reason.re_replace(r"'[^']*'", "…").re_replace(r"(row|record) \d+", r"\1 …")
    top = (
        bad.select(k=kind_of).group_by("k").agg(n=ibis._.count()).order_by([ibis.desc("n"), "k"]).limit(10)
    ).to_pyarrow().to_pylist()
    return {r["k"]: int(r["n"]) for r in top}


def _quality(ok: ir.Table, counted: list[Check]) -> list[dict]:
    """Per warn / clear check: how many accepted records failed it, and the first of them
    (line, record, value as written)."""
    if not counted:
        return []
    aggs = {}
    for i, check in enumerate(counted):
        flag = ok[f"_w_{check.name}"]
        hit = flag.notnull()
        aggs[f"n{i}"] = hit.sum()
        aggs[f"r{i}"] = ok._row.min(where=hit)
        aggs[f"l{i}"] = ok._line.argmin(ok._row, where=hit)
        aggs[f"v{i}"] = flag.argmin(ok._row, where=hit)
    (row,) = ok.aggregate(**aggs).to_pyarrow().to_pylist()
    out = []
    for i, check in enumerate(counted):
        n = int(row[f"n{i}"] or 0)
        if not n:
            continue
        out.append({
            "kind": check.kind, "field": check.field, "check": check.name, "action": check.action,
            "count": n, "line": row[f"l{i}"], "row": row[f"r{i}"], "value": row[f"v{i}"],
            "says": check.says, "why": check.why,
        })
    return out


def _quality_message(q: dict) -> dict:
    """A counted check with the sentence the load summary shows."""
    where = f"line {q['line']}" if q["line"] is not None else f"record {q['row']}"
    value = q["value"] if len(q["value"]) <= MAX_SHOWN else q["value"][:MAX_SHOWN] + "…"
    verb = "left empty" if q["action"] == "clear" else "accepted"
    out = {k: v for k, v in q.items() if k not in ("says", "why")}
    out["message"] = f"{q['field']} {q['says']}: {q['count']:,} record(s) {verb}, e.g. {where} '{value}' ({q['why']})"
    return out


def _record_quality(wh, load_id: str, label: str, quality: list[dict]) -> None:
    """The load's warnings in ``_load_warnings``, which ``segmentum info`` reads."""
    wh.create_table("_load_warnings", LOAD_WARNINGS_SCHEMA)
    if quality:
        rows = [{"load_id": load_id, "file": label, **{k: q[k] for k in LOAD_WARNINGS_SCHEMA if k in q}} for q in quality]
        wh.insert("_load_warnings", pa.Table.from_pylist(rows, schema=ibis.schema(LOAD_WARNINGS_SCHEMA).to_pyarrow()))
