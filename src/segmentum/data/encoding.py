"""What a text file's bytes are: another format's signature, a byte-order mark, the first byte
its encoding cannot read, and the single-byte encoding the text most likely is.

The likely encoding is scored, not guessed from byte statistics: each candidate decodes a
sample of the file's non-ASCII lines, and the reading with letters of real alphabets, no
control or stray symbol characters, no Cyrillic or Greek inside a Latin word and no capital
letter in the middle of a lower-case word wins (Western European text read as cp1250 turns
"Lefèvre" into "Lefčvre": a letter too, which is why the letters are weighted by how common
they are). Ties go to the earlier candidate in :data:`CANDIDATES`.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import Path

from segmentum.errors import EncodingError, InputFileError

__all__ = [
    "CANDIDATES", "text_encoding", "utf8_warning", "locate_undecodable", "undecodable_error",
    "likely_encodings",
]

HEAD = 1 << 16  # bytes looked at before a file is read
SAMPLE = 1 << 20  # bytes of non-ASCII lines scored per candidate

# single-byte encodings of real-world CRM exports, most common first (ties go to the first)
CANDIDATES = (
    "cp1252", "latin-1", "iso-8859-15", "cp1250", "iso-8859-2", "cp1251", "koi8-r",
    "iso-8859-5", "cp1253", "cp1254", "cp1257", "mac-roman", "cp850",
)

# (bytes, offset, what the file is, what to do)
SIGNATURES = (
    (b"PAR1", 0, "a Parquet file", "give it a .parquet name"),
    (b"\x1f\x8b", 0, "gzip-compressed", "decompress it first (gunzip)"),
    (b"PK\x03\x04", 0, "a ZIP archive (an Excel .xlsx workbook is one)", "save the sheet as CSV UTF-8"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "an old Excel .xls (OLE) file", "save the sheet as CSV UTF-8"),
    (b"BZh", 0, "bzip2-compressed", "decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", 0, "xz-compressed", "decompress it first (unxz)"),
    (b"\x28\xb5\x2f\xfd", 0, "zstd-compressed", "decompress it first (unzstd)"),
    (b"%PDF", 0, "a PDF document", "export the data as CSV"),
    (b"SQLite format 3\x00", 0, "an SQLite database", "export the table as CSV or Parquet"),
    (b"ARROW1", 0, "an Arrow IPC file", "write it as Parquet"),
    (b"DUCK", 8, "a DuckDB database", "export the table as Parquet (COPY ... TO 'x.parquet')"),
)
BOMS = (  # UTF-32's little-endian mark begins with UTF-16's: test it first
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)

# how much a decoded non-ASCII character speaks for the encoding that produced it
_COMMON = set(
    "éèàçêüöäßñáíóúłąęśżćńčřěšžýůåøæãõâôîőűșțăğşıİÄÖÜÉÇÑŁŚŻŹĆŃŠŽČŘ"
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяєіїґαβγδεζηθικλμνξοπρστυφχψωάέήίόύώ"
)
_TYPOGRAPHY = set("–—„“”‘’«»€…•·°§£¢¥©®™№")
_LETTER, _RARE, _GOOD_SYMBOL, _BAD = 3.0, 1.0, 0.5, -3.0


def text_encoding(path: Path, head: bytes, encoding: str) -> str:
    """The encoding to read a text file with: ``encoding``, or the UTF-16 / UTF-32 a
    byte-order mark declares when UTF-8 was asked for (a mark cannot be mistaken). Raises
    InputFileError for a file of another format or a binary one, EncodingError when the
    first bytes do not decode."""
    for magic, at, what, fix in SIGNATURES:
        if head[at:at + len(magic)] == magic:
            raise InputFileError(f"{path.name} is {what}, not delimited text or JSON Lines: {fix}.",
                                 file=str(path), detected=what)
    declared = next((enc for bom, enc in BOMS if head.startswith(bom)), None)
    if declared and _utf8(encoding):
        return declared
    if declared is None and b"\x00" in head and not codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        at = head.index(b"\x00")
        odd, even = head[1:400:2].count(0), head[0:400:2].count(0)
        if max(odd, even) >= 0.4 * len(head[:400]) / 2:  # ASCII text in UTF-16: every other byte
            order = "le" if odd > even else "be"
            raise EncodingError(
                f"{path.name} looks like UTF-16 without a byte-order mark (every other byte is 0).",
                hint=f"Set `encoding: utf-16-{order}` in a mapping file (--mapping).",
                file=str(path), byte_offset=at, encoding=encoding, likely=[f"utf-16-{order}"],
            )
        raise InputFileError(
            f"{path.name} is a binary file, not text: byte offset {at} is a NUL byte (0x00).",
            hint="Give a CSV, TSV, JSON Lines or Parquet file.", file=str(path), byte_offset=at,
        )
    try:
        codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise undecodable_error(path, encoding, exc.start, head) from None
    except LookupError:
        raise InputFileError(f"Unknown encoding {encoding!r} in the mapping.",
                             hint="Use a name Python knows: utf-8, cp1252, cp1250, latin-1, ...") from None
    return encoding


def utf8_warning(path: Path, head: bytes, encoding: str) -> str | None:
    """A warning when a file read as a single-byte encoding is valid UTF-8 with non-ASCII
    text in it: each of its accented letters would be stored as two wrong ones."""
    if _utf8(encoding) or max(head, default=0) < 0x80 or codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        return None
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    at = next(i for i, ch in enumerate(text) if ch > "\x7f")
    word = next((w for w in re.findall(r"\w+", text) if max(w) > "\x7f"), " ".join(text[max(0, at - 10):at + 10].split()))[:40]
    garbled = word.encode("utf-8").decode(encoding, errors="replace")
    return (
        f"{path.name} reads as UTF-8 (\"{word}\") but is loaded as {encoding}, where that is "
        f"\"{garbled}\": if stored text looks garbled, drop `encoding: {encoding}` from the mapping"
    )


def _utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return False


def locate_undecodable(path: Path, encoding: str) -> int | None:
    """Byte offset of the first byte of ``path`` that ``encoding`` cannot decode, or None."""
    decoder = codecs.getincrementaldecoder(encoding)()
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                # the decoder may hold back a few bytes of the previous chunk
                pending = len(decoder.getstate()[0]) if exc.start == 0 else 0
                return done + exc.start - pending
            done += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return done - len(decoder.getstate()[0])
    return None


def undecodable_error(path: Path, encoding: str, offset: int, data: bytes | None = None) -> EncodingError:
    """The error for the byte at ``offset`` that ``encoding`` cannot read: its line, the
    line's text, the likely encoding and the mapping line that fixes it. ``data`` is the
    file's content if already in memory (else the file is read around the offset)."""
    line_no, raw_line, line_start, sample = _context(path, offset, data)
    byte = raw_line[offset - line_start:][:1]
    shown = raw_line.decode(encoding, errors="backslashreplace").rstrip("\r\n")[:120]
    likely = likely_encodings(sample + b"\n" + raw_line)
    name = "UTF-8" if _utf8(encoding) else encoding
    message = (
        f"{path.name} is not {name}: line {line_no} (byte offset {offset}) has the byte "
        f"0x{byte.hex().upper()}, which {name} cannot read: \"{shown}\"."
    )
    details = {"file": str(path), "line": line_no, "byte_offset": offset, "encoding": encoding,
               "likely": [enc for enc, _ in likely[:3]]}
    if likely:
        best, reading = likely[0]
        message += f" It reads as {best}: \"{reading}\"."
        others = [f"{enc} (\"{text}\")" for enc, text in likely[1:3] if text != reading]
        if others:
            message += f" Other readings: {', '.join(others)}."
        hint = f"Add `encoding: {best}` to a mapping file (--mapping), or save the file as UTF-8."
    else:
        hint = "Name the file's encoding with `encoding:` in a mapping file (--mapping), or save it as UTF-8."
    return EncodingError(message, hint=hint, **details)


def _context(path: Path, offset: int, data: bytes | None) -> tuple[int, bytes, int, bytes]:
    """The line number of ``offset``, that line and the offset it starts at, and a sample of
    the non-ASCII lines before it."""
    lines_before = 0
    if data is None:
        with open(path, "rb") as fh:
            done = 0
            while done < offset:
                chunk = fh.read(min(1 << 22, offset - done))
                if not chunk:
                    break
                lines_before += chunk.count(b"\n")
                done += len(chunk)
            start = max(0, offset - SAMPLE)
            fh.seek(start)
            window = fh.read(offset - start + 4096)
    else:
        lines_before = data.count(b"\n", 0, offset)
        start = max(0, offset - SAMPLE)
        window = data[start:offset + 4096]
    rel = offset - start
    line_start = window.rfind(b"\n", 0, rel) + 1
    line_end = window.find(b"\n", rel)
    raw = window[line_start:None if line_end < 0 else line_end]
    sample = b"\n".join(ln for ln in window[:line_start].split(b"\n") if max(ln, default=0) > 0x7F)
    return lines_before + 1, raw, start + line_start, sample[-SAMPLE:]


def likely_encodings(sample: bytes) -> list[tuple[str, str]]:
    """Candidates that decode ``sample``, best first, each with its reading of the sample's
    last line (the one with the undecodable byte)."""
    last = sample.rsplit(b"\n", 1)[-1]
    scored = []
    for rank, enc in enumerate(CANDIDATES):
        try:
            text = sample.decode(enc)
        except UnicodeDecodeError:
            continue
        score = _score(text)
        if score > 0:
            scored.append((-score, rank, enc, last.decode(enc).rstrip("\r")[:120]))
    scored.sort()
    # readings far worse than the best one are noise, not alternatives
    return [(enc, reading) for score, _, enc, reading in scored if score <= scored[0][0] / 2]


def _score(text: str) -> float:
    """How much ``text`` reads as real writing: per non-ASCII character, see the module doc."""
    total, n, prev = 0.0, 0, " "
    for ch in text:
        if ch < "\x80":
            prev = ch
            continue
        n += 1
        if ch.isalpha():
            total += _LETTER if ch in _COMMON else _RARE
            if ch.isupper() and prev.isalpha() and prev.islower():
                total += _BAD  # a capital inside a lower-case word
            if prev.isalpha() and _script(prev) != _script(ch):
                total += _BAD  # Latin and Cyrillic / Greek letters in one word
        elif ch in _TYPOGRAPHY:
            total += _GOOD_SYMBOL
        else:
            total += _BAD
        prev = ch
    return total / n if n else 0.0


def _script(ch: str) -> str:
    if ch < "\x80":
        return "LATIN"
    return unicodedata.name(ch, "UNKNOWN").split(" ")[0]
