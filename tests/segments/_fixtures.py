"""A tiny reader for the rule fixture files (tests/segments/fixtures/).

A fixture file holds cases separated by a line ``====``. A case is the input, then
optionally a line ``----`` and the expectation:
- in ``valid/*.txt`` the canonical printed form (absent: the input is already canonical);
- in ``invalid/*.txt`` lines ``key: value`` (line, column, end_column, message, hint),
  the message and hint being fragments the error must contain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class Case:
    file: str
    number: int
    text: str
    expected: str | None

    @property
    def id(self) -> str:
        return f"{self.file}#{self.number}"


def cases(folder: str) -> list[Case]:
    out = []
    for path in sorted((FIXTURES / folder).glob("*.txt")):
        raw = path.read_text(encoding="utf-8")
        for number, block in enumerate(raw.split("\n====\n"), start=1):
            text, sep, expected = block.partition("\n----\n")
            out.append(
                Case(path.name, number, text.strip("\n"), expected.strip("\n") if sep else None)
            )
    return out


def expectation(case: Case) -> dict[str, str]:
    out = {}
    for line in (case.expected or "").splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out
