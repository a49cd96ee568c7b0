"""Errors of the segment language, one subclass per face / stage.

    SegmentumError                      (segmentum.errors)
    └── SegmentError                    anything wrong with a segment definition
        ├── RuleError                   located in rule text: line, column, excerpt with carets
        │   └── SegmentSyntaxError      the text does not parse (lexer / parser)
        ├── SegmentJSONError            a bad JSON structure, located by a JSON path ($.rule.left)
        └── SegmentFileError            a bad segment YAML file, located by file and key

Later stages (name resolution, type checking in the compiler) subclass ``RuleError`` so
their errors also carry a line, a column and an excerpt a web editor can underline.

Every error is also data: ``to_dict()`` gives ``{message, line, column, end_column, hint,
path}`` (keys that do not apply are ``None``), the shape the JSON API returns.
Lines and columns are 1-based and count characters (code points); ``end_column`` is
exclusive (the column just past the last highlighted character).
"""

from __future__ import annotations

from typing import Any

from segmentum.errors import SegmentumError, did_you_mean

__all__ = [
    "SegmentError",
    "RuleError",
    "SegmentSyntaxError",
    "SegmentJSONError",
    "SegmentFileError",
    "suggest",
]


def suggest(name: str, choices) -> str | None:
    """'Did you mean "x"?' for the closest of ``choices`` (case-insensitively), or None.

    Close means difflib-close, or the same letters with two neighbours swapped ("ro" → "or").
    """
    choices = list(choices)
    hint = did_you_mean(name.lower(), choices).strip()
    if hint:
        return hint
    low = name.lower()
    for choice in choices:
        if len(choice) == len(low) and sorted(choice) == sorted(low):
            diff = [i for i, (a, b) in enumerate(zip(low, choice, strict=True)) if a != b]
            if len(diff) == 2 and diff[1] == diff[0] + 1:
                return f'Did you mean "{choice}"?'
    return None


class SegmentError(SegmentumError):
    """Anything wrong with a segment definition, in whichever face it was written."""

    code = "segment"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint[:1].upper() + hint[1:] if hint else None)

    def to_dict(self) -> dict[str, Any]:
        """The error as data for the API: message, line, column, end_column, hint, path."""
        return {
            "code": self.code,
            "message": self.message,
            "line": None,
            "column": None,
            "end_column": None,
            "hint": self.hint,
            "path": None,
        }

    def __str__(self) -> str:
        return _join(self.message, self.hint)


class RuleError(SegmentError):
    """An error located in the text of a rule.

    ``line``/``column`` are where the offending text starts, ``end_line``/``end_column``
    where it ends (exclusive); ``source_line`` is the whole line, shown with carets
    under the offending part.
    """

    code = "rule"

    def __init__(
        self,
        message: str,
        *,
        text: str,
        start: int,
        end: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.text = text
        self.start = max(0, min(start, len(text)))
        self.end = max(self.start, min(end if end is not None else self.start + 1, len(text) + 1))
        self.line, self.column = _line_col(text, self.start)
        self.end_line, self.end_column = _line_col(text, self.end)
        if self.end_line == self.line and self.end_column <= self.column:
            self.end_column = self.column + 1
        line_start = text.rfind("\n", 0, self.start) + 1
        line_end = text.find("\n", self.start)
        self.source_line = text[line_start : line_end if line_end != -1 else len(text)]

    @classmethod
    def at(cls, text: str, span, message: str, hint: str | None = None) -> RuleError:
        """The error for a node or token ``span`` (anything with ``start`` and ``end``)."""
        return cls(message, text=text, start=span.start, end=span.end, hint=hint)

    @property
    def excerpt(self) -> str:
        """The source line and a row of carets under the offending part."""
        line = self.source_line.rstrip("\r")
        prefix = "".join(c if c == "\t" else " " for c in line[: self.column - 1])
        if self.end_line == self.line:
            width = max(1, self.end_column - self.column)
        else:
            width = max(1, len(line) - (self.column - 1))
        return f"{line}\n{prefix}{'^' * width}"

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(line=self.line, column=self.column, end_column=self.end_column)
        return data

    def __str__(self) -> str:
        head = f"line {self.line}, column {self.column}: {_join(self.message, self.hint)}"
        return f"{head}\n{_indent(self.excerpt)}"


class SegmentSyntaxError(RuleError):
    """The rule text does not parse: what was expected, where, and a likely fix."""

    code = "rule_syntax"


class SegmentJSONError(SegmentError):
    """A JSON rule structure that is not valid; ``path`` says where ($.rule.conditions[1])."""

    code = "segment_json"

    def __init__(self, message: str, *, path: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["path"] = self.path
        return data

    def __str__(self) -> str:
        return f"{self.path}: {super().__str__()}"


class SegmentFileError(SegmentError):
    """A bad segment YAML file, naming the file and the key at fault.

    ``cause`` is the underlying syntax or JSON error when the rule itself is bad;
    ``line``/``column`` are positions in the file when known.
    """

    code = "segment_file"

    def __init__(
        self,
        message: str,
        *,
        file: str,
        key: str | None = None,
        hint: str | None = None,
        cause: SegmentError | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.key = key
        self.cause = cause
        self.line = line
        self.column = column

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if isinstance(self.cause, SegmentError):
            data.update(self.cause.to_dict())
            data["message"] = self.message
        data.update(file=self.file, key=self.key)
        if self.line is not None:
            data["file_line"] = self.line
            data["file_column"] = self.column
        return data

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        if self.key:
            where += f": key '{self.key}'"
        text = f"{where}: {super().__str__()}"
        if isinstance(self.cause, RuleError):
            text += f"\n{_indent(self.cause.excerpt)}"
        return text


def _join(message: str, hint: str | None) -> str:
    if not hint:
        return message
    stop = "" if message.endswith((".", "?", "!", ":")) else "."
    return f"{message}{stop} {hint}"


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _indent(block: str) -> str:
    return "\n".join("    " + row for row in block.split("\n"))
