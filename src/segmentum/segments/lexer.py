"""Rule text → tokens: names, `backquoted names`, strings, numbers, operators.

Keywords are not a token kind: they are names, matched case-insensitively by the parser
(``AND`` = ``and``), so most of them stay usable as field names (backquote the reserved
ones). ``#`` starts a comment that runs to the end of the line. Whitespace is any Unicode
space.

Strings are written "..." or '...' on one line, with escapes \\" \\' \\\\ \\n \\r \\t \\`
and \\uXXXX. Numbers are ``12``, ``0.5``, ``1e6``, ``2.5E-3`` (a leading ``-`` is the
parser's business). Names start with a letter or ``_`` and go on with letters, digits and
``_`` (Unicode letters included); anything else is written in backquotes, with the same
escapes: ```loyalty tier```.

``{name}`` is a parameter placeholder (segment templates): given ``params``, the lexer
replaces it by the value's own tokens — a string, a number, true / false / null, or a
parenthesised list — so a parameter value can never inject syntax. Inside a string
literal, ``{name}`` is replaced by the value's text when ``name`` is a given parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segmentum.segments.ast import MAX_NUMBER_DIGITS
from segmentum.segments.errors import SegmentSyntaxError, suggest

__all__ = [
    "Token",
    "tokenize",
    "is_plain_name",
    "quote_string",
    "quote_name",
    "MAX_NUMBER_DIGITS",
]

OPERATORS = ("==", "!=", "<>", "<=", ">=", "(", ")", ",", ".", "=", "<", ">", "+", "-", "*", "/")
_NORMALISED = {"==": "=", "<>": "!="}
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "`": "`", "n": "\n", "r": "\r", "t": "\t"}
_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NUMBER_RE = re.compile(r"[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?")

_BAD_CHAR_HINTS = {
    ";": "a rule is one expression: remove the ;",
    "&": 'write "and"',
    "|": 'write "or"',
    "!": 'write "not" (or != for "not equal")',
    "[": 'lists are written in parentheses: city in ("London", "Paris")',
    "]": 'lists are written in parentheses: city in ("London", "Paris")',
    "\u201c": 'use straight quotes: "..."',
    "\u201d": 'use straight quotes: "..."',
    "\u2018": "use straight quotes: '...'",
    "\u2019": "use straight quotes: '...'",
    "\u2260": "write !=",
    "\u2264": "write <=",
    "\u2265": "write >=",
}


@dataclass(frozen=True, slots=True)
class Token:
    """One token. ``kind``: name, qname (backquoted name), string, number, op, eof.

    ``value`` is the decoded text (name, string), the number, or the operator;
    ``start``/``end`` are offsets into the rule text, ``line``/``column`` 1-based.
    """

    kind: str
    value: Any
    start: int
    end: int
    line: int
    column: int

    @property
    def lower(self) -> str | None:
        """The lower-cased name for keyword tests (None for non-names)."""
        return self.value.lower() if self.kind == "name" else None

    def describe(self) -> str:
        """How to name this token in a message."""
        if self.kind == "eof":
            return "the end of the rule"
        if self.kind == "string":
            return "a string"
        if self.kind == "number":
            return "a number"
        if self.kind == "qname":
            return f"`{self.value}`"
        return f'"{self.value}"'


def is_name_start(ch: str) -> bool:
    return ch.isalpha() or ch == "_"


def is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def is_plain_name(name: str) -> bool:
    """True when ``name`` can be written without backquotes (ignoring keywords)."""
    return bool(name) and is_name_start(name[0]) and all(is_name_char(c) for c in name[1:])


def quote_string(value: str, quote: str = '"') -> str:
    """A string literal (or, with quote="`", a backquoted name) that lexes back to ``value``."""
    out = [quote]
    for ch in value:
        if ch == quote or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif (
            ord(ch) < 0x20
            or 0x7F <= ord(ch) < 0xA0
            or 0xD800 <= ord(ch) < 0xE000
            or ch in "\u2028\u2029"
        ):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append(quote)
    return "".join(out)


def quote_name(name: str, keywords: frozenset[str] = frozenset()) -> str:
    """A name as written in rule text: bare when possible, else in backquotes."""
    if is_plain_name(name) and name.lower() not in keywords:
        return name
    return quote_string(name, "`")


class _Lexer:
    def __init__(self, text: str, params: Mapping[str, Any] | None) -> None:
        self.text = text
        self.params = params
        self.tokens: list[Token] = []
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def pos(self, offset: int) -> tuple[int, int]:
        lo, hi = 0, len(self.line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - self.line_starts[lo] + 1

    def emit(self, kind: str, value: Any, start: int, end: int) -> None:
        line, column = self.pos(start)
        self.tokens.append(Token(kind, value, start, end, line, column))

    def error(self, message: str, start: int, end: int | None = None, hint: str | None = None):
        return SegmentSyntaxError(message, text=self.text, start=start, end=end, hint=hint)

    def run(self) -> list[Token]:
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            ch = text[i]
            if ch.isspace():
                i += 1
            elif ch == "#":
                j = text.find("\n", i)
                i = n if j == -1 else j
            elif ch in "\"'":
                i = self.string(i, ch)
            elif ch == "`":
                i = self.qname(i)
            elif "0" <= ch <= "9":
                i = self.number(i)
            elif is_name_start(ch):
                j = i + 1
                while j < n and is_name_char(text[j]):
                    j += 1
                self.emit("name", text[i:j], i, j)
                i = j
            elif ch == "{":
                i = self.placeholder(i)
            else:
                for op in OPERATORS:
                    if text.startswith(op, i):
                        self.emit("op", _NORMALISED.get(op, op), i, i + len(op))
                        i += len(op)
                        break
                else:
                    hint = _BAD_CHAR_HINTS.get(ch)
                    shown = ch if ch.isprintable() else f"\\u{ord(ch):04x}"
                    raise self.error(f'unexpected character "{shown}"', i, i + 1, hint)
        self.emit("eof", None, n, n)
        return self.tokens

    def decode(self, start: int, quote: str) -> tuple[str, int]:
        """Decode a quoted run starting at the opening quote; returns (value, end offset)."""
        text, i, n = self.text, start + 1, len(self.text)
        out: list[str] = []
        what = "name" if quote == "`" else "string"
        while True:
            if i >= n or text[i] == "\n":
                line_end = text.find("\n", start)
                raise self.error(
                    f"unterminated {what}: this {quote} is never closed",
                    start,
                    line_end if line_end != -1 else n,
                    f"close it with {quote} on the same line"
                    + (" (write \\n for a line break)" if what == "string" else ""),
                )
            ch = text[i]
            if ch == quote:
                return "".join(out), i + 1
            if ch == "\\":
                nxt = text[i + 1] if i + 1 < n else ""
                if nxt in _ESCAPES:
                    out.append(_ESCAPES[nxt])
                    i += 2
                    continue
                if nxt == "u":
                    digits = text[i + 2 : i + 6]
                    if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
                        out.append(chr(int(digits, 16)))
                        i += 6
                        continue
                    raise self.error(
                        "bad \\u escape: it takes four hex digits",
                        i,
                        min(i + 6, n),
                        "write e.g. \\u00e9",
                    )
                raise self.error(
                    f"unknown escape \\{nxt}"
                    if nxt and nxt != "\n"
                    else "a \\ must escape something",
                    i,
                    i + 2,
                    "escapes are \\\" \\' \\\\ \\n \\r \\t \\` \\uXXXX; write \\\\ for a backslash",
                )
            out.append(ch)
            i += 1

    def string(self, start: int, quote: str) -> int:
        value, end = self.decode(start, quote)
        if self.params:
            value = _PARAM_RE.sub(
                lambda m: (
                    _param_text(self.params[m.group(1)])
                    if m.group(1) in self.params
                    else m.group(0)
                ),
                value,
            )
        self.emit("string", value, start, end)
        return end

    def qname(self, start: int) -> int:
        value, end = self.decode(start, "`")
        if not value:
            raise self.error(
                "empty backquoted name", start, end, "write a name between the backquotes"
            )
        self.emit("qname", value, start, end)
        return end

    def number(self, start: int) -> int:
        m = _NUMBER_RE.match(self.text, start)
        assert m is not None
        end = m.end()
        raw = m.group(0)
        if m.group(1) == ".":
            raise self.error("a digit must follow the decimal point", start, end, f"write {raw}0")
        digits = sum(c.isdigit() for c in raw.split("e")[0].split("E")[0])
        if digits > MAX_NUMBER_DIGITS:
            raise self.error(f"number too long (more than {MAX_NUMBER_DIGITS} digits)", start, end)
        if m.group(1) or m.group(2):
            value: int | float = float(raw)
            if not math.isfinite(value):
                raise self.error("number out of range", start, end)
        else:
            value = int(raw)
        self.emit("number", value, start, end)
        return end

    def placeholder(self, start: int) -> int:
        m = _PARAM_RE.match(self.text, start)
        if not m:
            raise self.error(
                'unexpected character "{"',
                start,
                start + 1,
                "parameters are written {name} (letters, digits, _)",
            )
        name, end = m.group(1), m.end()
        if not self.params or name not in self.params:
            hint = suggest(name, self.params or ()) or (
                "declare it under params: in the segment file, or pass its value"
            )
            raise self.error(f"parameter {{{name}}} has no value", start, end, hint)
        self.emit_value(self.params[name], start, end, name)
        return end

    def emit_value(self, value: Any, start: int, end: int, name: str, nested: bool = False) -> None:
        if value is None or isinstance(value, bool):
            self.emit("name", "null" if value is None else str(value).lower(), start, end)
        elif isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                raise self.error(f"parameter {{{name}}} is not a finite number", start, end)
            if value < 0 or (isinstance(value, float) and math.copysign(1, value) < 0):
                self.emit("op", "-", start, end)
                value = -value
            self.emit("number", value, start, end)
        elif isinstance(value, str):
            self.emit("string", value, start, end)
        elif isinstance(value, (list, tuple)) and not nested and value:
            self.emit("op", "(", start, end)
            for k, item in enumerate(value):
                if k:
                    self.emit("op", ",", start, end)
                self.emit_value(item, start, end, name, nested=True)
            self.emit("op", ")", start, end)
        else:
            raise self.error(
                f"parameter {{{name}}} has a value of a kind a rule can't hold: {value!r}",
                start,
                end,
                "use a string, number, true/false, null or a list of those",
            )


def _param_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ", ".join(_param_text(v) for v in value)
    return str(value)


def tokenize(text: str, params: Mapping[str, Any] | None = None) -> list[Token]:
    """The tokens of ``text`` (ending with an ``eof`` token), placeholders substituted.

    Raises SegmentSyntaxError for unterminated strings, bad escapes, unknown characters,
    malformed numbers and placeholders without a value.
    """
    if not isinstance(text, str):
        raise TypeError(f"a rule is a str, not {type(text).__name__}")
    return _Lexer(text, params).run()
