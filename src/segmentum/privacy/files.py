"""The files a workspace owns, rewritten without one person.

:class:`Needles` holds what identifies the person in a file: the contact id, the e-mail,
the phone in its written forms, the anonymous ids, and the SHA-256 forms the ad exports
write (the normalised e-mail; the phone's E.164 digits for Meta, with "+" for Google).
A value matches when it equals one of them (e-mails and hashes case-insensitively).

* :func:`redact_csv` - an export file: the rows with a matching cell go;
* :func:`redact_jsonl` - an outbox file: the lines with a matching value anywhere go;
* :func:`redact_log` - the intake log: each matching record's value becomes a tombstone
  ``{"type": "erased", "source", "messageId"}`` at the same position (the consumer skips
  it, and its messageId stays known, so a retry of it is not stored again).

Every rewrite goes to a temporary file, fsync'd, then renamed over the original.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Needles", "redact_csv", "redact_jsonl", "redact_log"]


@dataclass
class Needles:
    """What identifies one person in a file (module doc)."""

    values: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, contact_id: str, email: str | None, phone: str | None, country: str | None,
           anonymous: Iterable[str] = ()) -> Needles:
        from segmentum.privacy.tombstones import _phone_forms

        values = {str(contact_id)} | {str(a) for a in anonymous if a}
        if email and str(email).strip():
            e = str(email).strip().lower()
            values |= {e, hashlib.sha256(e.encode()).hexdigest()}
        if phone and str(phone).strip():
            values.add(str(phone).strip())
            for digits in _phone_forms(phone, country):
                values |= {digits, "+" + digits, hashlib.sha256(digits.encode()).hexdigest(),
                           hashlib.sha256(("+" + digits).encode()).hexdigest()}
        return cls({v.lower() for v in values if v})

    def match(self, value: Any) -> bool:
        return isinstance(value, str) and value.strip().lower() in self.values

    def anywhere(self, doc: Any) -> bool:
        """Whether any string inside a JSON document matches."""
        if isinstance(doc, dict):
            return any(self.anywhere(k) or self.anywhere(v) for k, v in doc.items())
        if isinstance(doc, list):
            return any(self.anywhere(v) for v in doc)
        return self.match(doc)


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".erasing")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def redact_csv(path: Path, needles: Needles) -> int:
    """Drop the rows of a CSV file with a matching cell; how many."""
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    kept = [r for r in rows if not any(needles.match(c) for c in r)]
    if len(kept) == len(rows):
        return 0
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(kept)
    _replace(path, out.getvalue().encode("utf-8"))
    return len(rows) - len(kept)


def redact_jsonl(path: Path, needles: Needles) -> int:
    """Drop the lines of a JSON Lines file with a matching value; how many."""
    lines = path.read_bytes().splitlines(keepends=True)
    kept = []
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            doc = line.decode("utf-8", errors="replace")
        if not needles.anywhere(doc):
            kept.append(line)
    if len(kept) == len(lines):
        return 0
    _replace(path, b"".join(kept))
    return len(lines) - len(kept)


def redact_log(log, needles: Needles) -> int:
    """Tombstone the intake log's records about the person; how many (see the module doc)."""

    def replace(key: bytes, value: bytes) -> tuple[bytes, bytes] | None:
        try:
            doc = json.loads(value)
        except ValueError:
            return None
        if not isinstance(doc, dict) or doc.get("type") == "erased" or not needles.anywhere(doc):
            return None
        stub = {"type": "erased", "source": doc.get("source"), "messageId": doc.get("messageId")}
        return b"erased", json.dumps(stub, separators=(",", ":")).encode()

    return log.redact(replace)
