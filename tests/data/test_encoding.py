"""Files that are not the text they claim to be: one clear error naming the line and byte of
the first undecodable byte, the likely encoding and the mapping line that fixes it; other
formats and binary files say what they are. Never a traceback."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmentum.data.encoding import likely_encodings
from segmentum.errors import EncodingError, InputFileError

HEADER = "contact_id,created_at,city\n"


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("cp1252", "Jürgen;Müller;Köln\nFrançois;Lefèvre;Orléans – centre\n"),
        ("cp1250", "Łukasz;Żółć;Łódź\nGrażyna;Świątek;Gdańsk\n"),
        ("cp1250", "Dvořák;Plzeň\nČapek;Brno\nŠťastný;Ústí\n"),
        ("iso-8859-2", "Łukasz;Żółć;Łódź\nGrażyna;Świątek;Gdańsk\n"),
        ("cp1251", "Иван;Петров;Москва\nМария;Смирнова;Санкт-Петербург\n"),
        ("koi8-r", "Иван;Петров;Москва\nМария;Смирнова;Санкт-Петербург\n"),
        ("cp1253", "Γιώργος;Παπαδόπουλος;Αθήνα\n"),
        ("cp1254", "Ayşe;Güneş;İstanbul\nMehmet;Yılmaz;Muğla\n"),
    ],
)
def test_the_likely_single_byte_encoding_is_found(encoding, text):
    ((best, reading), *_) = likely_encodings(text.encode(encoding).rstrip(b"\n"))
    assert best == encoding
    assert reading == text.rstrip("\n").rsplit("\n", 1)[-1]


def test_a_cp1252_file_read_as_utf8_names_line_byte_and_fix(ws, tmp_path):
    path = tmp_path / "kontakte.csv"
    path.write_bytes((HEADER + "c1,2024-01-01,Paris\nc2,2024-01-02,Köln\nc3,2024-01-03,Orléans\n").encode("cp1252"))
    with pytest.raises(EncodingError) as e:
        ws.load("contacts", path)
    err = e.value
    assert err.details["line"] == 3
    assert err.details["byte_offset"] == len((HEADER + "c1,2024-01-01,Paris\nc2,2024-01-02,K").encode())
    assert err.details["likely"][0] == "cp1252"
    assert "line 3 (byte offset 62) has the byte 0xF6" in str(err)
    assert 'It reads as cp1252: "c2,2024-01-02,Köln"' in str(err)
    assert err.hint.startswith("Add `encoding: cp1252` to a mapping file")
    assert err.to_dict()["code"] == "encoding"
    # and the fix it names works
    r = ws.load("contacts", path, mapping={"encoding": "cp1252"})
    assert r.accepted == 3
    assert ws.to_pandas(ws.table("contacts").order_by("contact_id")).city.tolist() == ["Paris", "Köln", "Orléans"]


def test_an_undecodable_byte_far_into_a_large_file_is_located(ws, tmp_path):
    """Past the first block Arrow's reader fails mid-stream; the error still names the line."""
    good = "".join(f"c{i},2024-01-01,Gdynia\n" for i in range(800_000))  # > one 16 MB block
    path = tmp_path / "big.csv"
    path.write_bytes((HEADER + good).encode() + "c_x,2024-01-01,Łódź\n".encode("cp1250"))
    with pytest.raises(EncodingError) as e:
        ws.load("contacts", path)
    assert e.value.details["line"] == 800_002
    assert e.value.details["byte_offset"] == len((HEADER + good + "c_x,2024-01-01,").encode())
    assert e.value.details["likely"][0] == "cp1250"
    assert ws.table("contacts").count().execute() == 0  # nothing half-loaded


def test_json_lines_in_latin1(ws, tmp_path):
    path = tmp_path / "c.jsonl"
    lines = [{"contact_id": "c1", "created_at": "2024-01-01", "city": "Paris"},
             {"contact_id": "c2", "created_at": "2024-01-01", "city": "São Paulo"}]
    path.write_bytes("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode("latin-1"))
    with pytest.raises(EncodingError, match=r"line 2 \(byte offset \d+\) has the byte 0xE3") as e:
        ws.load("contacts", path)
    assert e.value.details["likely"][0] == "cp1252"


def test_utf16_with_a_byte_order_mark_just_loads(ws, tmp_path):
    path = tmp_path / "excel-unicode.txt"
    path.write_bytes(("contact_id\tcreated_at\tcity\nc1\t2024-01-01\tZürich\n").encode("utf-16"))
    r = ws.load("contacts", path)
    assert r.accepted == 1 and ws.to_pandas("contacts").city.tolist() == ["Zürich"]


def _xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


def _parquet() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"contact_id": ["c1"]}), buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("content", "error", "says"),
    [
        (lambda: gzip.compress((HEADER + "c1,2024-01-01,Oslo\n").encode()), InputFileError, "is gzip-compressed"),
        (_parquet, InputFileError, "is a Parquet file, not delimited text or JSON Lines: give it a .parquet name"),
        (_xlsx, InputFileError, r"is a ZIP archive \(an Excel .xlsx workbook is one\)"),
        (lambda: b"contact_id,created_at\n\x00\x01\x02\x03binary", InputFileError, "binary file, not text: byte offset 22"),
        (lambda: (HEADER + "c1,2024-01-01,Oslo\n").encode("utf-16-le"), EncodingError, "UTF-16 without a byte-order mark"),
    ],
    ids=["gzip", "parquet", "xlsx", "nul-bytes", "utf16-no-bom"],
)
def test_other_formats_under_a_text_name_say_what_they_are(ws, tmp_path, content, error, says):
    path = tmp_path / "contacts.csv"
    path.write_bytes(content())
    with pytest.raises(error, match=says):
        ws.load("contacts", path)


def test_text_under_a_parquet_name(ws, tmp_path):
    path = tmp_path / "contacts.parquet"
    path.write_text(HEADER + "c1,2024-01-01,Oslo\n")
    with pytest.raises(InputFileError) as e:
        ws.load("contacts", path)
    assert "not a readable Parquet file" in str(e.value)
    assert 'It looks like text (first line: "contact_id,created_at,city"): give it a .csv' in str(e.value)


def test_a_utf8_file_loaded_as_a_single_byte_encoding_warns(ws, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "c1,2024-01-01,Kraków\n", encoding="utf-8")
    r = ws.load("contacts", path, mapping={"encoding": "cp1250"})
    assert r.accepted == 1
    assert any('reads as UTF-8 ("Kraków") but is loaded as cp1250' in w for w in r.warnings)


def test_the_cli_prints_one_error_line_and_no_traceback(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes((HEADER + "c1,2024-01-01,Köln\n").encode("latin-1"))
    segmentum = Path(sys.executable).with_name("segmentum")
    cli = [str(segmentum), "-w", str(tmp_path / "ws.duckdb"), "load", "contacts", str(path)]
    proc = subprocess.run(cli, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "line 2 (byte offset 42) has the byte 0xF6" in proc.stdout + proc.stderr
