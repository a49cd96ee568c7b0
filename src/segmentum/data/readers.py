"""Read a CSV / whitespace / Parquet / JSON Lines file (or records in memory) into a DuckDB
staging table, losing nothing.

The staging table holds the file's own columns (CSV and whitespace files: all text, so a bad
value is kept as written) plus ``_row`` (1-based data record number) and ``_line`` (the
file line the record starts on, 1 = first line of the file; null for Parquet). Records the
parser cannot split into the header's columns are returned as :class:`Unreadable` so that
ingestion can quarantine them: every record of the file is either staged or unreadable.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import queue
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from segmentum.data.encoding import HEAD, locate_undecodable, text_encoding, undecodable_error, utf8_warning
from segmentum.data.mapping import Mapping
from segmentum.errors import InputFileError, UsageError

__all__ = ["Unreadable", "ReadResult", "Restart", "read_to_stage", "read_chunks", "records_to_stage", "detect_format"]

BLOCK_SIZE = 1 << 24  # bytes of delimited text Arrow parses at a time
PARQUET_BATCH = 1 << 16  # Parquet rows decoded at a time when a file is read in chunks

_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".dat": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


@dataclass
class Unreadable:
    """A record that could not be split into the file's columns."""

    row: int | None
    line: int | None
    raw: str
    reason: str


@dataclass
class ReadResult:
    format: str
    columns: list[str]  # the file's column names, as written (BOM and outer spaces removed)
    staged: int  # records in the staging table
    unreadable: list[Unreadable] = field(default_factory=list)
    delimiter: str | None = None
    json_columns: list[str] = field(default_factory=list)  # columns of JSON text (nested values)
    warnings: list[str] = field(default_factory=list)  # about the file as a whole
    chunked: bool = False  # one chunk of a file read in several (see read_chunks)

    @property
    def records(self) -> int:
        return self.staged + len(self.unreadable)


def detect_format(path: Path) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}. "
            "Use .csv/.tsv/.txt (delimited text), .parquet, or .jsonl/.ndjson (JSON Lines)."
        )
    return fmt


def read_to_stage(
    con: duckdb.DuckDBPyConnection, path: Path, mapping: Mapping, stage: str
) -> ReadResult:
    """Create TEMP table (Parquet: view) ``stage`` from the file; return its columns and
    unreadable records. Text from CSV / JSON Lines arrives trimmed, null markers as nulls."""
    if not path.exists():
        raise InputFileError(f"File {path} does not exist.")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder: give one file.")
    fmt = detect_format(path)
    if fmt == "parquet":
        return _read_parquet(con, path, stage)
    if fmt == "jsonl":
        return _read_jsonl(con, path, mapping, stage)
    return _read_delimited(con, path, mapping, stage)


# -- Parquet --------------------------------------------------------------------------------
def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path, stage: str) -> ReadResult:
    """A view over the file (no copy): DuckDB scans it in parallel when validating."""
    import pyarrow.parquet as pq
    import sqlglot

    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        with open(path, "rb") as fh:
            head = fh.read(HEAD)
        hint = "Write it again as Parquet, or give a CSV or JSON Lines file."
        if head and b"\x00" not in head:
            first = head.split(b"\n", 1)[0][:80].decode("utf-8", errors="replace")
            hint = f"It looks like text (first line: \"{first}\"): give it a .csv or .jsonl name."
        raise InputFileError(f"{path}: not a readable Parquet file ({exc}).", hint=hint, file=str(path)) from None
    # a view cannot take a bound parameter: the path goes in as a properly quoted literal
    literal = sqlglot.exp.Literal.string(str(path.resolve())).sql("duckdb")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {stage} AS SELECT * EXCLUDE (file_row_number), "
        "file_row_number + 1 AS _row, CAST(NULL AS BIGINT) AS _line "
        f"FROM read_parquet({literal}, file_row_number = true)"
    )
    cols = [c for c in _columns(con, stage) if c not in ("_row", "_line")]
    return ReadResult("parquet", cols, rows)


# -- JSON Lines and records in memory -------------------------------------------------------
def _read_jsonl(con: duckdb.DuckDBPyConnection, path: Path, mapping: Mapping, stage: str) -> ReadResult:
    data = path.read_bytes()
    if not data:
        raise InputFileError(f"{path}: the file is empty.")
    encoding = text_encoding(path, data[:HEAD], mapping.encoding)
    text = _decode(data, encoding, path)
    lines = text.splitlines()
    table: pa.Table | None = None
    bad: list[Unreadable] = []
    nonblank = [i for i, ln in enumerate(lines) if ln.strip()]
    try:
        table = pajson.read_json(io.BytesIO(text.encode("utf-8")))
        if table.num_rows != len(nonblank) or any(map(_bad_name, table.column_names)):
            table = None
    except pa.ArrowInvalid:
        table = None
    if table is None:  # some line is not JSON (or not an object): sort them out one by one
        good, rows = [], []
        for n, i in enumerate(nonblank, start=1):
            try:
                obj = json.loads(lines[i])
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                bad.append(Unreadable(n, i + 1, lines[i][:2000], f"not a JSON object: {exc}"))
                continue
            good.append(obj)
            rows.append(n)
        table, row_arr, line_arr = _stageable(good, rows, [nonblank[r - 1] + 1 for r in rows], bad)
    else:
        row_arr = pa.array(range(1, table.num_rows + 1), pa.int64())
        line_arr = pa.array([nonblank[r - 1] + 1 for r in row_arr.to_pylist()], pa.int64())
    read = _stage_arrow(con, "jsonl", table, row_arr, line_arr, mapping, stage, bad)
    read.warnings = [w for w in [utf8_warning(path, data[:HEAD], encoding)] if w]
    return read


def records_to_stage(
    con: duckdb.DuckDBPyConnection, records: pa.Table | list, mapping: Mapping, stage: str
) -> ReadResult:
    """Stage records handed over in memory (an Arrow table, or a list of JSON objects as
    dicts) exactly as a JSON Lines file is staged: ``_row`` is the record's 1-based index,
    ``_line`` null; an element of the list that is not an object is unreadable."""
    if isinstance(records, pa.Table):
        if (named := next((n for n in records.column_names if _bad_name(n)), None)) is not None:
            raise UsageError(f"records have the column name {named[:40]!r}: {_NAME_RULE}.", field=named[:40])
        table, bad = records, []
        rows = pa.array(range(1, table.num_rows + 1), pa.int64())
        lines = pa.nulls(len(rows), pa.int64())
    else:
        good, numbers, bad = [], [], []
        for n, rec in enumerate(records, start=1):
            if isinstance(rec, dict):
                good.append(rec)
                numbers.append(n)
            else:
                bad.append(Unreadable(n, None, _raw(rec), f"record {n} is not a JSON object"))
        table, rows, lines = _stageable(good, numbers, [None] * len(numbers), bad)
    return _stage_arrow(con, "records", table, rows, lines, mapping, stage, bad)


_NAME_RULE = "a field name is non-empty text without control characters"
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _bad_name(key) -> bool:
    """Whether ``key`` can name no column: not text, blank, or with control characters."""
    return not isinstance(key, str) or not key.strip() or _CONTROL.search(key) is not None


def _unencodable(value) -> bool:
    """Whether ``value`` (or text nested in it) is no Unicode text (a lone surrogate)."""
    try:
        json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (TypeError, ValueError):  # keys JSON cannot hold: refused by their name
        return False
    return False


def _raw(rec) -> str:
    """A record as text that can be stored, whatever it holds."""
    try:
        return json.dumps(rec, default=str)[:2000]
    except (TypeError, ValueError):
        return ascii(rec)[:2000]


def _stageable(good: list[dict], rows: list[int], lines: list[int | None], bad: list[Unreadable]):
    """The Arrow table of the JSON objects ``good`` (numbered ``rows``, starting on
    ``lines``) and those two as arrays, without the records no table can hold: a field name
    that is blank, not text or has control characters, or text that is no Unicode (a lone
    surrogate). Those are added to ``bad`` with their reason. Without such a record the
    checks cost one pass over the keys."""
    refused: dict[int, str] = {}
    if any(map(_bad_name, {k: None for rec in good for k in rec})):
        for i, rec in enumerate(good):
            if names := [k for k in rec if _bad_name(k)]:
                refused[i] = f"the field name {str(names[0])[:40]!r}: {_NAME_RULE}"
    try:
        table = _table_from_records([r for i, r in enumerate(good) if i not in refused])
    except UnicodeEncodeError:
        for i, rec in enumerate(good):
            if i not in refused and (key := next((k for k, v in rec.items() if _unencodable([k, v])), None)):
                refused[i] = f"field {key.encode('utf-8', 'backslashreplace').decode()[:40]!r}: text that is not Unicode (a lone surrogate)"
        table = _table_from_records([r for i, r in enumerate(good) if i not in refused])
    for i, reason in refused.items():
        bad.append(Unreadable(rows[i], lines[i], _raw(good[i]), f"record {rows[i]} has {reason}"))
    kept = [i for i in range(len(good)) if i not in refused]
    return (table, pa.array([rows[i] for i in kept], pa.int64()),
            pa.array([lines[i] for i in kept], pa.int64()))


def _stage_arrow(con, fmt: str, table: pa.Table, rows: pa.Array, lines: pa.Array, mapping: Mapping,
                 stage: str, bad: list[Unreadable]) -> ReadResult:
    """The temp table ``stage`` from Arrow records: nested values as JSON text (their columns
    listed in ``json_columns``), text trimmed with the mapping's null markers as nulls."""
    table, nested = _nested_to_json(table)
    nulls = pa.array(mapping.null_values, pa.string())
    for i, name in enumerate(table.column_names):
        if pa.types.is_string(table.schema.field(i).type):
            table = table.set_column(i, name, clean_text(table.column(i), nulls))
    table = pa.Table.from_arrays([*table.columns, rows, lines], names=[*table.column_names, "_row", "_line"])
    con.register("_records_src", table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT * FROM _records_src")
    finally:
        con.unregister("_records_src")
    cols = [c for c in table.column_names if c not in ("_row", "_line")]
    return ReadResult(fmt, cols, table.num_rows, bad, json_columns=nested)


def clean_text(arr: pa.Array, null_values: pa.Array) -> pa.Array:
    """Trim a text column and turn the mapping's null markers ('', NULL, N/A, ...) into nulls.

    Done here, in Arrow's vectorised kernels while the file streams in, so the warehouse
    validates already-clean text."""
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.is_in(trimmed, value_set=null_values), pa.scalar(None, pa.string()), trimmed)


def _table_from_records(records: list[dict]) -> pa.Table:
    """An Arrow table with every key of every record; a column of mixed types becomes text."""
    keys: dict[str, None] = {}
    for rec in records:
        keys.update(dict.fromkeys(rec))
    columns = {}
    for key in keys:
        values = [rec.get(key) for rec in records]
        try:
            columns[key] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed types; a number past 64 bits
            columns[key] = pa.array(
                [None if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
                 for v in values],
                pa.string(),
            )
    return pa.table(columns)


def _nested_to_json(table: pa.Table) -> tuple[pa.Table, list[str]]:
    """Struct / list columns (e.g. a nested `properties` object) become JSON text columns;
    also returns their names."""
    nested = []
    for i, name in enumerate(table.column_names):
        typ = table.schema.field(i).type
        if pa.types.is_struct(typ) or pa.types.is_list(typ) or pa.types.is_map(typ):
            values = [None if v is None else json.dumps(v, ensure_ascii=False, default=str)
                      for v in table.column(i).to_pylist()]
            table = table.set_column(i, name, pa.array(values, pa.string()))
            nested.append(name)
        elif pa.types.is_null(typ):
            table = table.set_column(i, name, table.column(i).cast(pa.string()))
    return table, nested


# -- delimited text -------------------------------------------------------------------------
def _decode(data: bytes, encoding: str, path: Path) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise undecodable_error(path, encoding, exc.start, data) from None
    return text.lstrip("\ufeff")


def _head_lines(head: bytes, mapping: Mapping, n: int) -> list[str]:
    text = codecs.getincrementaldecoder(mapping.encoding)(errors="replace").decode(head)
    return text.lstrip("\ufeff").splitlines()[: n + mapping.skip_rows][mapping.skip_rows :]


def _text_mapping(path: Path, mapping: Mapping) -> tuple[Mapping, bytes]:
    """The mapping with the encoding the file is read in (see :func:`text_encoding`), and
    the file's first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD)
    encoding = text_encoding(path, head, mapping.encoding)
    if encoding != mapping.encoding:
        mapping = mapping.model_copy(update={"encoding": encoding})
    return mapping, head


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (";", ",", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    if counts[best] > 0:
        return best
    if len(first_line.split()) > 1:
        return "whitespace"
    return ","


def _header(first_line: str, delimiter: str) -> list[str]:
    if delimiter == "whitespace":
        return first_line.split()
    return next(csv.reader([first_line], delimiter=delimiter))


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, raw in enumerate(names):
        name = raw.strip().lstrip("\ufeff") or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


def _open_delimited(path: Path, mapping: Mapping):
    """The scan of a delimited file, its column names and the mapping it is read with."""
    mapping, head_bytes = _text_mapping(path, mapping)
    head = _head_lines(head_bytes, mapping, 1)
    if not head:
        raise InputFileError(f"{path}: the file is empty.")
    delimiter = mapping.delimiter or _sniff_delimiter(head[0])
    if mapping.names:
        names = _dedupe(mapping.names)
    elif mapping.header:
        names = _dedupe(_header(head[0], delimiter))
    else:
        names = [f"column_{i + 1}" for i in range(len(_header(head[0], delimiter)))]
    skip = mapping.skip_rows + (1 if mapping.header else 0)
    scan = _Scan(path, mapping, names, delimiter, skip, 1 + skip)
    schema = pa.schema([*(pa.field(n, pa.string()) for n in names),
                        pa.field("_row", pa.int64()), pa.field("_line", pa.int64())])
    warnings = [w for w in [utf8_warning(path, head_bytes, mapping.encoding)] if w]
    return scan, schema, warnings


def _read_delimited(
    con: duckdb.DuckDBPyConnection, path: Path, mapping: Mapping, stage: str
) -> ReadResult:
    scan, schema, warnings = _open_delimited(path, mapping)
    batches = scan.whitespace_batches() if scan.delimiter == "whitespace" else scan.csv_batches()
    reader = pa.RecordBatchReader.from_batches(schema, _prefetched(batches))
    con.register("_csv_src", reader)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT * FROM _csv_src")
    except duckdb.Error as exc:
        if scan.error is not None:  # the reader's own error, wrapped by DuckDB's scan
            raise scan.error from None
        cause = exc.__cause__ or exc
        raise InputFileError(
            f"{path}: cannot read as delimited text with delimiter {scan.delimiter!r} and encoding "
            f"{scan.mapping.encoding} ({cause}). Set `delimiter:` / `encoding:` in a mapping."
        ) from None
    finally:
        con.unregister("_csv_src")
    return _staged_delimited(con, stage, scan, warnings)


def _staged_delimited(con, stage: str, scan, warnings: list[str]) -> ReadResult:
    """The ReadResult of a whole delimited file in ``stage``, positions fixed if need be."""
    bad = scan.bad
    if scan.ragged or scan.multiline:
        bad = _fix_positions(con, stage, scan)
    staged = con.execute(f"SELECT count(*) FROM {stage}").fetchone()[0]
    return ReadResult("csv", scan.names, staged, bad, scan.delimiter, warnings=warnings)


# -- in chunks ------------------------------------------------------------------------------
class Restart(Exception):
    """A file read in chunks needs the one-shot read after all: records of the wrong width,
    values over several lines or blank lines (their true positions are known only after the
    whole file), or a key repeated across chunks (see ``segmentum.data.ingest``)."""


def read_chunks(con: duckdb.DuckDBPyConnection, path: Path, mapping: Mapping, stage: str,
                chunk_rows: int | None):
    """The file staged as ``stage`` a chunk of about ``chunk_rows`` records at a time: each
    ReadResult describes the chunk staged when it is yielded (``chunked`` when the file takes
    more than one). With ``chunk_rows`` None, for JSON Lines and for a file that fits in one
    chunk, one chunk. A chunk is an Arrow table the warehouse reads in place (not copied)."""
    if not path.exists():
        raise InputFileError(f"File {path} does not exist.")
    fmt = detect_format(path) if not path.is_dir() else None
    if chunk_rows is None or fmt in ("jsonl", None):
        read = read_to_stage(con, path, mapping, stage)
        try:
            yield read
        finally:
            con.execute(f"DROP {'VIEW' if read.format == 'parquet' else 'TABLE'} IF EXISTS {stage}")
        return
    if fmt == "parquet":
        yield from _parquet_chunks(con, path, mapping, stage, chunk_rows)
    else:
        yield from _delimited_chunks(con, path, mapping, stage, chunk_rows)


def _registered(con, stage: str, table: pa.Table, read: ReadResult):
    con.register(stage, table)
    try:
        yield read
    finally:
        con.unregister(stage)


def _delimited_chunks(con, path: Path, mapping: Mapping, stage: str, chunk_rows: int):
    scan, schema, warnings = _open_delimited(path, mapping)
    parsed = scan.whitespace_batches() if scan.delimiter == "whitespace" else scan.csv_batches()
    buf: list[pa.RecordBatch] = []
    rows, given_bad, chunked = 0, 0, False

    def chunk() -> tuple[pa.Table, ReadResult]:
        nonlocal buf, rows, given_bad
        table = pa.Table.from_batches(buf, schema)
        bad, given_bad = scan.bad[given_bad:], len(scan.bad)
        buf, rows = [], 0
        return table, ReadResult("csv", scan.names, table.num_rows, bad, scan.delimiter, warnings=warnings,
                                 chunked=True)

    # the next chunk is parsed and cleaned in a thread while the warehouse checks this one
    for batch in _prefetched(parsed, depth=16):
        buf.append(batch)
        rows += batch.num_rows
        if rows >= chunk_rows:
            if scan.ragged:
                raise Restart("records of the wrong width")
            chunked = True
            yield from _registered(con, stage, *chunk())
    if chunked:
        if scan.ragged or scan.multiline:
            raise Restart("record positions need the whole file")
        if rows:
            yield from _registered(con, stage, *chunk())
        return
    con.register("_csv_src", pa.Table.from_batches(buf, schema))  # one chunk: the file as before
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT * FROM _csv_src")
    finally:
        con.unregister("_csv_src")
    buf = []
    try:
        yield _staged_delimited(con, stage, scan, warnings)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {stage}")


def _parquet_chunks(con, path: Path, mapping: Mapping, stage: str, chunk_rows: int):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError):
        pf = None
    if pf is None or pf.metadata.num_rows <= chunk_rows:
        yield from read_chunks(con, path, mapping, stage, None)
        return
    buf: list[pa.RecordBatch] = []
    rows = done = 0
    batches = _prefetched(pf.iter_batches(batch_size=PARQUET_BATCH), depth=16)
    for batch in batches:
        buf.append(batch)
        rows += batch.num_rows
        if rows >= chunk_rows or done + rows == pf.metadata.num_rows:
            table = pa.Table.from_batches(buf)
            table = table.append_column("_row", pa.array(range(done + 1, done + rows + 1), pa.int64()))
            table = table.append_column("_line", pa.nulls(rows, pa.int64()))
            cols = [c for c in table.column_names if c not in ("_row", "_line")]
            yield from _registered(con, stage, table, ReadResult("parquet", cols, rows, chunked=True))
            buf, done, rows = [], done + rows, 0


class _Scan:
    """Streams a delimited file as Arrow batches of text columns plus provisional _row/_line.

    While streaming it notes records of the wrong width (``ragged``) and values spanning
    lines (``multiline``); in either case the provisional numbers are corrected afterwards
    by :func:`_fix_positions`, which walks the records once with the csv module.
    """

    def __init__(self, path, mapping, names, delimiter, skip, first_data_line):
        self.path, self.mapping, self.names = path, mapping, names
        self.delimiter, self.skip, self.first_data_line = delimiter, skip, first_data_line
        self.ragged: list[str] = []
        self.bad: list[Unreadable] = []
        self.multiline = False
        self.count = 0
        self.nulls = pa.array(mapping.null_values, pa.string())
        self.error: InputFileError | None = None  # what stopped the scan, for the consumer

    def _failed(self, exc: Exception) -> InputFileError:
        """The error a person can act on for a failure of Arrow's reader: the first byte the
        encoding cannot read, located in the file, or the reader's own message."""
        if isinstance(exc, UnicodeDecodeError) or "UTF8" in str(exc) or "decode" in str(exc):
            offset = locate_undecodable(self.path, self.mapping.encoding)
            if offset is not None:
                self.error = undecodable_error(self.path, self.mapping.encoding, offset)
                return self.error
        self.error = InputFileError(
            f"{self.path}: cannot read as delimited text with delimiter {self.delimiter!r} "
            f"and encoding {self.mapping.encoding} ({exc}). Set `delimiter:` / `encoding:` in a mapping.",
            file=str(self.path),
        )
        return self.error

    def _batches(self, reader):
        """The reader's batches, its failures turned into :meth:`_failed`'s errors."""
        it = iter(reader)
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                raise self._failed(exc) from None
            yield batch

    def _number(self, batch_cols: list[pa.Array], n: int) -> pa.RecordBatch:
        batch_cols = [clean_text(c, self.nulls) for c in batch_cols]
        rows = pa.array(np.arange(self.count + 1, self.count + n + 1, dtype=np.int64))
        lines = pc.add(rows, self.first_data_line - 1)
        self.count += n
        return pa.RecordBatch.from_arrays([*batch_cols, rows, lines], names=[*self.names, "_row", "_line"])

    def csv_batches(self):
        """Cleaned, numbered batches of text columns; the file is parsed in a thread of its
        own, a few batches ahead of the cleaning."""
        for cols, n in _prefetched(self._parsed()):
            yield self._number(cols, n)

    def _parsed(self):
        def on_invalid(row) -> str:
            self.ragged.append(row.text)
            return "skip"

        try:
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(
                    column_names=self.names, skip_rows=self.skip,
                    encoding=self.mapping.encoding, block_size=BLOCK_SIZE,
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=self.delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in self.names},
                    strings_can_be_null=False, quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise self._failed(exc) from None
        count_lines = _newline_byte(self.mapping.encoding)
        records = 0
        for batch in self._batches(reader):
            cols = [batch.column(i) for i in range(batch.num_columns)]
            if not count_lines and not self.multiline:
                self.multiline = any(pc.any(pc.match_substring(c, "\n")).as_py() for c in cols)
            records += batch.num_rows
            yield cols, batch.num_rows
        if count_lines:
            # one record per line unless a value spans lines (or blank lines were skipped):
            # counting the file's lines is ~10x cheaper than searching every value for "\n"
            self.multiline = _line_count(self.path) != self.skip + records + len(self.ragged)

    def whitespace_batches(self):
        """Whitespace-separated files (e.g. CDNOW's log): each line split in one vectorised pass."""
        try:
            reader = self._batches(pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(
                    column_names=["line"], skip_rows=self.skip,
                    encoding=self.mapping.encoding, block_size=BLOCK_SIZE,
                ),
                parse_options=pacsv.ParseOptions(delimiter="\x1f", quote_char=False, ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(column_types={"line": pa.string()}, strings_can_be_null=False),
            ))
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise self._failed(exc) from None
        line_offset = self.first_data_line
        rec = 0
        width_expected = len(self.names)
        for batch in reader:
            lines = batch.column(0)
            line_no = pc.add(pa.array(range(len(lines)), pa.int64()), line_offset)
            line_offset += len(lines)
            trimmed = pc.utf8_trim_whitespace(lines)
            keep = pc.not_equal(trimmed, "")
            trimmed, line_no = trimmed.filter(keep), line_no.filter(keep)
            rows = pa.array(range(rec + 1, rec + len(trimmed) + 1), pa.int64())
            rec += len(trimmed)
            parts = pc.split_pattern_regex(trimmed, r"\s+")
            width = pc.list_value_length(parts)
            ok = pc.equal(width, width_expected)
            good = parts.filter(ok)
            cols = [clean_text(pc.list_element(good, i), self.nulls) if len(good) else pa.array([], pa.string())
                    for i in range(width_expected)]
            bad_mask = pc.invert(ok)
            for r, ln, txt, w in zip(rows.filter(bad_mask).to_pylist(), line_no.filter(bad_mask).to_pylist(),
                                     trimmed.filter(bad_mask).to_pylist(), width.filter(bad_mask).to_pylist(),
                                     strict=True):
                self.bad.append(Unreadable(r, ln, txt[:2000],
                                           f"record has {w} fields but the header has {width_expected}"))
            yield pa.RecordBatch.from_arrays(
                [*cols, rows.filter(ok), line_no.filter(ok)], names=[*self.names, "_row", "_line"]
            )


def _prefetched(batches, depth: int = 2):
    """The same batches, parsed and cleaned in a thread ``depth`` batches ahead of the
    consumer: Arrow's kernels release the GIL, so parsing the file and DuckDB writing the
    staging table run on two cores instead of taking turns. An error is raised in the
    consumer, where the batch it belongs to would have been."""
    done = object()
    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the consumer has gone

    def produce() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer  # noqa: BLE001
            put(exc)

    worker = threading.Thread(target=produce, name="segmentum-csv", daemon=True)
    worker.start()
    try:
        while (item := ahead.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


def _newline_byte(encoding: str) -> bool:
    """Whether every 0x0A byte of text in this encoding is a line feed (UTF-8 with or without
    a BOM, the single-byte code pages, the East Asian multi-byte ones; not UTF-16/32)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return not name.startswith(("utf-16", "utf-32")) and "\n".encode(encoding).endswith(b"\n")


def _line_count(path: Path) -> int:
    """Lines in a file: its line feeds, plus one for a last line without one."""
    lines, last = 0, b"\n"
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def _fix_positions(con: duckdb.DuckDBPyConnection, stage: str, scan: _Scan) -> list[Unreadable]:
    """Give staged records their true record number and first line; place the ragged ones."""
    starts, widths = _record_positions(scan.path, scan.mapping, scan.delimiter, scan.skip)
    expected = len(scan.names)
    good_idx = [i for i, w in enumerate(widths) if w == expected]
    bad_idx = [i for i, w in enumerate(widths) if w != expected]
    if len(good_idx) != scan.count or len(bad_idx) != len(scan.ragged):
        # the two parsers disagree on where records end: keep numbers, admit lines are unknown
        con.execute(f"UPDATE {stage} SET _line = NULL")
        return [Unreadable(None, None, t[:2000], f"record has the wrong number of fields (expected {expected})")
                for t in scan.ragged]
    fix = pa.table({
        "_seq": pa.array(range(1, scan.count + 1), pa.int64()),
        "_true_row": pa.array([i + 1 for i in good_idx], pa.int64()),
        "_true_line": pa.array([starts[i] for i in good_idx], pa.int64()),
    })
    con.register("_fix_src", fix)
    try:
        con.execute(f"UPDATE {stage} SET _row = f._true_row, _line = f._true_line "
                    f"FROM _fix_src f WHERE {stage}._row = f._seq")
    finally:
        con.unregister("_fix_src")
    return [
        Unreadable(i + 1, starts[i], text[:2000],
                   f"record has {widths[i]} fields but the header has {expected} "
                   "(check the delimiter and quoting on this line)")
        for i, text in zip(bad_idx, scan.ragged, strict=True)
    ]


def _record_positions(path: Path, mapping: Mapping, delimiter: str, skip: int) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    widths: list[int] = []
    with open(path, encoding=mapping.encoding, newline="") as fh:
        if fh.read(1) != "\ufeff":
            fh.seek(0)
        reader = csv.reader(fh, delimiter=delimiter)
        line = 1
        for _ in range(skip):
            next(reader, None)
            line = reader.line_num + 1
        for rec in reader:
            if rec:  # Arrow skips blank lines too
                starts.append(line)
                widths.append(len(rec))
            line = reader.line_num + 1
    return starts, widths


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
