"""Rule text → syntax tree: a hand-written recursive-descent parser.

    rule        = or_expr EOF
    or_expr     = and_expr { "or" and_expr }
    and_expr    = not_expr { "and" not_expr }
    not_expr    = "not" not_expr | comparison
    comparison  = additive [ tail ]
    additive    = term { ("+" | "-") term }
    term        = unary { ("*" | "/") unary }
    unary       = "-" NUMBER | primary
    primary     = literal | call | field | "(" or_expr ")"

(the full grammar, with the function calls and windows, is in docs/segment-language.md).

Values and conditions share one expression grammar; node constructors (``ast``) then say
which may stand where, and every ``InvalidNode`` they raise becomes a SegmentSyntaxError
pointing at the part at fault. Keywords are case-insensitive. Errors carry the line, the
column, the source line with carets, what was expected and, for misspelled keywords and
function names, "Did you mean ...?".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from segmentum.segments import ast as A
from segmentum.segments.errors import SegmentSyntaxError, suggest
from segmentum.segments.lexer import Token, tokenize

__all__ = [
    "parse",
    "FUNCTIONS",
    "RESERVED",
    "KEYWORDS",
    "UNIT_WORDS",
    "MAX_NESTING",
    "MAX_DEPTH",
]

# functions, by what their arguments are
SOURCE_FUNCTIONS = ("count", "exists", "no", "first", "last")
FIELD_AGGREGATES = ("sum", "avg", "min", "max")
FUNCTIONS = (
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "exists",
    "no",
    "first",
    "last",
    "days_since",
    "purchased",
    "trend",
    "in_segment",
)
# words that can never be a bare field name (backquote them: `in`)
RESERVED = frozenset(
    {
        "and",
        "or",
        "not",
        "in",
        "is",
        "null",
        "true",
        "false",
        "between",
        "where",
        "within",
        "contains",
    }
)
UNIT_WORDS = {
    "hour": "hours",
    "hours": "hours",
    "day": "days",
    "days": "days",
    "week": "weeks",
    "weeks": "weeks",
    "month": "months",
    "months": "months",
    "year": "years",
    "years": "years",
}
WINDOW_WORDS = ("last", "between", "since", "before")
TAIL_WORDS = ("in", "between", "contains", "starts", "ends", "within")
# every word with a meaning somewhere: printed names that match one get backquoted
KEYWORDS = frozenset(
    RESERVED
    | set(FUNCTIONS)
    | set(UNIT_WORDS)
    | set(WINDOW_WORDS)
    | set(TAIL_WORDS)
    | {"ago", "with", "since", "before", "difference", "ratio"}
)
COMPARE_OPS = ("=", "!=", "<", "<=", ">", ">=")
MAX_NESTING = 40  # parentheses, calls and `not`s inside one another
MAX_DEPTH = 120  # levels of the finished tree (long arithmetic chains)

_AFTER_VALUE = ("and", "or", "in", "not", "between", "contains", "starts", "ends", "is", "within")


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.toks = tokens
        self.i = 0
        self.prev: Token = tokens[0]
        self.nesting = 0
        self.in_filter = 0

    # -- tokens ------------------------------------------------------------------------------

    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def advance(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind != "eof":
            self.i += 1
        self.prev = tok
        return tok

    def at_kw(self, *words: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok.kind == "name" and tok.lower in words

    def at_op(self, *ops: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok.kind == "op" and tok.value in ops

    def expect_op(self, op: str, context: str, hint: str | None = None) -> Token:
        if self.at_op(op):
            return self.advance()
        self.fail(self.peek(), f'expected "{op}" {context}, found {self.peek().describe()}', hint)

    def expect_kw(self, word: str, context: str, hint: str | None = None) -> Token:
        if self.at_kw(word):
            return self.advance()
        tok = self.peek()
        if tok.kind == "name":
            hint = suggest(tok.value, [word]) or hint
        self.fail(tok, f'expected "{word}" {context}, found {tok.describe()}', hint)

    # -- errors and spans --------------------------------------------------------------------

    def fail(
        self, where: Token | A.Node | A.Span, message: str, hint: str | None = None
    ) -> NoReturn:
        span = where.span if isinstance(where, A.Node) else where
        if span is None:  # a node built without a span: point at the last token read
            span = self.prev
        start, end = span.start, span.end
        if isinstance(where, Token) and where.kind == "eof" and self.prev.kind != "eof":
            start = end = self.prev.end  # just after the last token, not on a blank last line
        raise SegmentSyntaxError(message, text=self.text, start=start, end=end, hint=hint)

    @staticmethod
    def span(first: Token | A.Node, last: Token | A.Node) -> A.Span:
        a = first.span if isinstance(first, A.Node) else first
        b = last.span if isinstance(last, A.Node) else last
        return A.Span(a.start, b.end, a.line, a.column)

    def build(self, cls: type, first: Token | A.Node, last: Token | A.Node, *args: Any, **kw: Any):
        span = self.span(first, last)
        try:
            return cls(*args, span=span, **kw)
        except A.InvalidNode as exc:
            at = exc.node.span if exc.node is not None and exc.node.span is not None else span
            self.fail(at, exc.message, exc.hint)

    def enter(self, tok: Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            self.fail(
                tok,
                f"the rule is nested too deeply (more than {MAX_NESTING} levels)",
                "split it into smaller segments and combine them with in_segment(...)",
            )

    def leave(self) -> None:
        self.nesting -= 1

    # -- the rule ----------------------------------------------------------------------------

    def rule(self) -> A.Node:
        self.check_parentheses()
        if self.peek().kind == "eof":
            self.fail(
                self.peek(),
                "the rule is empty",
                'write a condition, e.g. count(orders) > 0 or city = "London"',
            )
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "eof":
            self.trailing(tok)
        self.condition(node, "a rule")
        self.check_depth(node)
        return node

    def check_parentheses(self) -> None:
        stack: list[Token] = []
        for tok in self.toks:
            if tok.kind == "op" and tok.value == "(":
                stack.append(tok)
            elif tok.kind == "op" and tok.value == ")":
                if not stack:
                    self.fail(tok, "this ) has no matching (", "remove it, or add the ( it closes")
                stack.pop()
        if stack:
            self.fail(stack[-1], "this ( is never closed", "add a ) to close it")

    def check_depth(self, root: A.Node) -> None:
        stack = [(root, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                self.fail(
                    node,
                    f"the rule is nested too deeply (more than {MAX_DEPTH} levels)",
                    "split it into smaller segments and combine them with in_segment(...)",
                )
            stack.extend((c, depth + 1) for c in A.children(node))

    def trailing(self, tok: Token) -> NoReturn:
        expected = f'expected "and", "or" or the end of the rule, found {tok.describe()}'
        if tok.kind == "name":
            if tok.lower == "where":
                self.fail(
                    tok,
                    "where filters go inside a function",
                    'write count(email_open where device_os = "iOS") > 0 '
                    "or exists(email_open where ...)",
                )
            hint = suggest(tok.value, _AFTER_VALUE)
            if hint is None and (
                tok.lower in ("last", "since", "before") or tok.lower in UNIT_WORDS
            ):
                hint = "time windows go inside a function: count(orders, last 90 days) > 1"
            self.fail(tok, expected, hint)
        if tok.kind in ("string", "number", "qname"):
            self.fail(tok, expected, "is an operator such as = missing before it?")
        if tok.kind == "op" and tok.value == ",":
            self.fail(
                tok, expected, "commas separate a function's arguments or the values of an in list"
            )
        self.fail(tok, expected)

    def condition(self, node: A.Node, where: str) -> None:
        try:
            A.check_condition(node, where)
        except A.InvalidNode as exc:
            self.fail(exc.node or node, exc.message, exc.hint)

    # -- boolean structure -------------------------------------------------------------------

    def or_expr(self) -> A.Node:
        items = [self.and_expr()]
        while self.at_kw("or"):
            self.advance()
            items.append(self.and_expr())
        if len(items) == 1:
            return items[0]
        return self.build(A.Or, items[0], items[-1], tuple(items))

    def and_expr(self) -> A.Node:
        items = [self.not_expr()]
        while self.at_kw("and"):
            self.advance()
            items.append(self.not_expr())
        if len(items) == 1:
            return items[0]
        return self.build(A.And, items[0], items[-1], tuple(items))

    def not_expr(self) -> A.Node:
        if self.at_kw("not"):
            tok = self.advance()
            self.enter(tok)
            operand = self.not_expr()
            self.leave()
            return self.build(A.Not, tok, operand, operand)
        return self.comparison()

    # -- comparisons -------------------------------------------------------------------------

    def comparison(self) -> A.Node:
        left = self.additive()
        tok = self.peek()
        if tok.kind == "op" and tok.value in COMPARE_OPS:
            self.advance()
            right = self.additive()
            node = self.build(A.Compare, left, right, left, tok.value, right)
        else:
            negated = self.at_kw("not") and self.at_kw(*TAIL_WORDS, k=1)
            k = 1 if negated else 0
            word = self.peek(k).lower if self.peek(k).kind == "name" else None
            if word == "in":
                if self.at_op("(", k=k + 1):
                    node = self.in_list(left, negated, k)
                elif self.at_window(k + 1):
                    if self.in_filter:  # the window of the enclosing function
                        return left
                    for _ in range(k + 1):
                        self.advance()
                    window = self.window()
                    node = self.build(A.Within, left, window, left, window, negated)
                else:
                    nxt = self.peek(k + 1)
                    self.fail(
                        nxt,
                        f'expected "(" after in, found {nxt.describe()}',
                        'in takes a list of values: city in ("London", "Paris")',
                    )
            elif word == "between":
                for _ in range(k + 1):
                    self.advance()
                low = self.additive()
                self.expect_kw("and", "between the two ends of between", "write x between 1 and 10")
                high = self.additive()
                node = self.build(A.Between, left, high, left, low, high, negated)
            elif word in ("contains", "starts", "ends"):
                for _ in range(k + 1):
                    self.advance()
                op = word
                if word != "contains":
                    self.expect_kw("with", f'after "{word}"', f'write {word} with "..."')
                    op = f"{word} with"
                right = self.additive()
                op = f"not {op}" if negated else op
                node = self.build(A.Compare, left, right, left, op, right)
            elif word == "within":
                for _ in range(k + 1):
                    self.advance()
                window = self.window()
                node = self.build(A.Within, left, window, left, window, negated)
            elif self.at_kw("is"):
                self.advance()
                neg = False
                if self.at_kw("not"):
                    self.advance()
                    neg = True
                end = self.expect_kw("null", 'after "is"', "write x is null or x is not null")
                node = self.build(A.IsNull, left, end, left, neg)
            else:
                return left
        if self.peek().kind == "op" and self.peek().value in COMPARE_OPS:
            self.fail(
                self.peek(),
                "comparisons can't be chained",
                "join two comparisons with and: 1 < x and x < 5, or use between",
            )
        return node

    def in_list(self, left: A.Node, negated: bool, k: int) -> A.Node:
        for _ in range(k + 1):
            self.advance()
        self.advance()  # (
        values = [self.constant()]
        while self.at_op(","):
            self.advance()
            values.append(self.constant())
        close = self.expect_op(
            ")", "to close the in list", 'separate values with commas: ("London", "Paris")'
        )
        return self.build(A.In, left, close, left, tuple(values), negated)

    def constant(self) -> A.Literal:
        tok = self.peek()
        if tok.kind in ("string", "number"):
            self.advance()
            return self.build(A.Literal, tok, tok, tok.value)
        if tok.kind == "op" and tok.value == "-" and self.peek(1).kind == "number":
            self.advance()
            num = self.advance()
            return self.build(A.Literal, tok, num, -num.value)
        if tok.kind == "name" and tok.lower in ("true", "false"):
            self.advance()
            return self.build(A.Literal, tok, tok, tok.lower == "true")
        if tok.kind == "name" and tok.lower == "null":
            self.fail(tok, "null can't be in an in list", "test for missing values with `is null`")
        self.fail(
            tok,
            f"expected a constant (a string, number, true or false), found {tok.describe()}",
            "an in list holds constants only",
        )

    # -- arithmetic --------------------------------------------------------------------------

    def additive(self) -> A.Node:
        left = self.term()
        while self.at_op("+", "-"):
            op = self.advance().value
            right = self.term()
            left = self.build(A.Arith, left, right, op, left, right)
        return left

    def term(self) -> A.Node:
        left = self.unary()
        while self.at_op("*", "/"):
            op = self.advance().value
            right = self.unary()
            left = self.build(A.Arith, left, right, op, left, right)
        return left

    def unary(self) -> A.Node:
        if self.at_op("-"):
            tok = self.advance()
            if self.peek().kind == "number":
                num = self.advance()
                return self.build(A.Literal, tok, num, -num.value)
            self.fail(
                tok,
                "a minus sign goes right before a number",
                "to negate something else, subtract it: 0 - x",
            )
        return self.primary()

    # -- primaries ---------------------------------------------------------------------------

    def primary(self) -> A.Node:
        tok = self.peek()
        if tok.kind == "op" and tok.value == "(":
            self.advance()
            self.enter(tok)
            inner = self.or_expr()
            self.expect_op(
                ")", "to close the parenthesis", f"the ( is at line {tok.line}, column {tok.column}"
            )
            self.leave()
            return inner
        if tok.kind in ("string", "number"):
            self.advance()
            return self.build(A.Literal, tok, tok, tok.value)
        if tok.kind == "qname":
            return self.field()
        if tok.kind == "name":
            low = tok.lower
            if low in ("true", "false", "null"):
                self.advance()
                return self.build(A.Literal, tok, tok, None if low == "null" else low == "true")
            if self.at_op("(", k=1):
                return self.call()
            if low in RESERVED:
                hint = (
                    f"to use a field named {tok.value}, write it in backquotes: `{tok.value}`"
                    if low not in ("and", "or")
                    else "is a condition missing before it?"
                )
                self.fail(
                    tok, f'expected a condition or a value, found the keyword "{tok.value}"', hint
                )
            if low in ("first", "last") and self.peek(1).kind in ("name", "qname"):
                self.fail(
                    tok,
                    f"{low} is written as a function here",
                    f"write {low}(...), or days_since({low} ...)",
                )
            node = self.field()
            if self.at_kw("where"):
                self.fail(
                    self.peek(),
                    "where filters go inside a function",
                    f"write count({node.name} where ...) > 0, or exists({node.name} where ...)",
                )
            return node
        if tok.kind == "eof":
            self.fail(tok, "the rule ends too early: expected a condition or a value")
        if tok.kind == "op" and tok.value == ")":
            self.fail(tok, 'expected a condition or a value before ")"')
        self.fail(tok, f"expected a condition or a value, found {tok.describe()}")

    def name_part(self, context: str) -> Token:
        tok = self.peek()
        if tok.kind in ("name", "qname"):
            return self.advance()
        self.fail(tok, f"expected {context}, found {tok.describe()}")

    def path(self, context: str) -> tuple[tuple[str, ...], Token, Token]:
        first = self.name_part(context)
        if first.kind == "name" and first.lower in RESERVED:
            self.fail(
                first,
                f'expected {context}, found the keyword "{first.value}"',
                f"to use a name that is a keyword, write it in backquotes: `{first.value}`",
            )
        parts = [first.value]
        last = first
        while self.at_op("."):
            self.advance()
            last = self.name_part('a name after "."')
            parts.append(last.value)
        return tuple(parts), first, last

    def field(self) -> A.Field:
        parts, first, last = self.path("a field name")
        return self.build(A.Field, first, last, parts)

    # -- function calls ----------------------------------------------------------------------

    def call(self) -> A.Node:
        name = self.advance()
        func = name.lower
        if func not in FUNCTIONS:
            self.fail(
                name,
                f'unknown function "{name.value}"',
                suggest(name.value, FUNCTIONS) or f"functions are: {', '.join(FUNCTIONS)}",
            )
        opening = self.advance()  # (
        self.enter(opening)
        saved, self.in_filter = self.in_filter, 0
        if func in SOURCE_FUNCTIONS or func in FIELD_AGGREGATES:
            node = self.source_call(name, func)
        elif func == "purchased":
            node = self.purchased(name)
        elif func == "trend":
            node = self.trend(name)
        elif func == "in_segment":
            node = self.in_segment(name)
        else:
            node = self.days_since(name)
        self.in_filter = saved
        self.leave()
        return node

    def close(self, name: Token) -> Token:
        return self.expect_op(
            ")",
            f"to close {name.value}(",
            f"the ( is at line {name.line}, column {name.column + len(name.value)}; "
            "separate arguments with commas",
        )

    def source_args(self, func: str, name: Token):
        what = (
            "source.field (e.g. orders.total)"
            if func in FIELD_AGGREGATES
            else "an event type or table (e.g. orders, email_open)"
        )
        parts, first, last = self.path(what)
        if func in FIELD_AGGREGATES:
            if len(parts) != 2:
                self.fail(
                    self.span(first, last),
                    f"{func} takes source.field, e.g. {func}(orders.total)",
                    f"{func} needs the column to aggregate: {func}({parts[0]}.<field>)"
                    if len(parts) == 1
                    else "backquote names that contain dots",
                )
        elif len(parts) != 1:
            hint = (
                f"count counts rows: write count({parts[0]}); "
                f"use sum/avg/min/max({'.'.join(parts)}) to aggregate a field"
                if func == "count"
                else "backquote names that contain dots"
            )
            self.fail(self.span(first, last), f"{func} takes an event type or table name", hint)
        where = None
        if self.at_kw("where"):
            self.advance()
            where = self.filter()
        window = self.optional_window(name)
        return parts, where, window

    def source_call(self, name: Token, func: str) -> A.Node:
        parts, where, window = self.source_args(func, name)
        close = self.close(name)
        if func in ("exists", "no"):
            return self.build(A.Exists, name, close, parts[0], where, window, func == "no")
        if func in ("first", "last"):
            return self.build(A.Occurrence, name, close, func, parts[0], where, window)
        field = parts[1] if len(parts) == 2 else None
        return self.build(A.Aggregate, name, close, func, parts[0], field, where, window)

    def filter(self) -> A.Node:
        tok = self.peek()
        if tok.kind == "eof" or (tok.kind == "op" and tok.value in (",", ")")):
            self.fail(
                tok,
                f"expected a condition after where, found {tok.describe()}",
                'e.g. where device_os = "iOS"',
            )
        self.in_filter += 1
        node = self.or_expr()
        self.in_filter -= 1
        self.condition(node, "a where filter")
        return node

    def purchased(self, name: Token) -> A.Node:
        where = window = None
        if not self.at_op(")"):
            if self.at_window(0):
                window = self.window()
            else:
                where = self.filter()
                window = self.optional_window(name)
        close = self.close(name)
        return self.build(A.Purchased, name, close, where, window)

    def trend(self, name: Token) -> A.Node:
        tok = self.peek()
        if tok.kind == "name" and tok.lower in A.AGGREGATE_FUNCS and self.at_op("(", k=1):
            agg = self.call()
            if not isinstance(agg, A.Aggregate):  # pragma: no cover - call() of an aggregate
                self.fail(agg, "trend takes an aggregate")
        else:
            parts, first, last = self.path("an event type or table, or an aggregate")
            if len(parts) != 1:
                self.fail(
                    self.span(first, last),
                    "trend takes a source or an aggregate",
                    f"write trend(sum({'.'.join(parts)}), 90 days) to follow a sum",
                )
            where = None
            if self.at_kw("where"):
                self.advance()
                where = self.filter()
            agg = self.build(A.Aggregate, first, self.prev, "count", parts[0], None, where, None)
        self.expect_op(",", "before the period of the trend", "write trend(orders, 90 days)")
        if self.at_kw("last"):
            self.advance()
        period = self.duration()
        method = "difference"
        if self.at_op(","):
            self.advance()
            tok = self.peek()
            if tok.kind != "name" or tok.lower not in A.TREND_METHODS:
                self.fail(
                    tok,
                    f"expected a trend method ({' or '.join(A.TREND_METHODS)}), "
                    f"found {tok.describe()}",
                    suggest(tok.value, A.TREND_METHODS) if tok.kind == "name" else None,
                )
            method = self.advance().lower
        close = self.close(name)
        return self.build(A.Trend, name, close, agg, period, method)

    def in_segment(self, name: Token) -> A.Node:
        tok = self.peek()
        if tok.kind != "string":
            hint = (
                f'quote the segment name: in_segment("{tok.value}")'
                if tok.kind in ("name", "qname")
                else 'e.g. in_segment("apple-fans")'
            )
            self.fail(tok, f"expected a segment name in quotes, found {tok.describe()}", hint)
        self.advance()
        close = self.close(name)
        return self.build(A.InSegment, name, close, tok.value)

    def days_since(self, name: Token) -> A.Node:
        if self.at_kw("first", "last") and self.peek(1).kind in ("name", "qname"):
            which = self.advance()
            parts, where, window = self.source_args("first", name)
            occ = self.build(A.Occurrence, which, self.prev, which.lower, parts[0], where, window)
            close = self.close(name)
            return self.build(A.DaysSince, name, close, occ)
        operand = self.additive()
        if not isinstance(operand, (A.Occurrence, A.Field)):
            self.fail(
                operand,
                "days_since takes first/last of a source or a date field",
                "e.g. days_since(last orders) or days_since(created_at)",
            )
        close = self.close(name)
        return self.build(A.DaysSince, name, close, operand)

    # -- windows -----------------------------------------------------------------------------

    def at_window(self, k: int) -> bool:
        tok = self.peek(k)
        if tok.kind != "name":
            return False
        low = tok.lower
        if low == "last":
            return self.peek(k + 1).kind == "number"
        if low in ("since", "before"):
            return self.peek(k + 1).kind == "string"
        return low == "between"

    def optional_window(self, name: Token) -> A.Node | None:
        if self.at_op(","):
            comma = self.advance()
            if self.at_kw("in") and self.at_window(1):
                self.advance()
            tok = self.peek()
            if not (tok.kind == "name" and tok.lower in WINDOW_WORDS):
                hint = suggest(tok.value, WINDOW_WORDS) if tok.kind == "name" else None
                self.fail(
                    tok,
                    f"expected a time window after the comma, found {tok.describe()}",
                    hint
                    or "e.g. last 90 days, between 365 and 90 days ago, "
                    'since "2024-01-01", before "2024-01-01"',
                )
            del comma
            return self.window()
        if self.at_kw("in") and self.at_window(1):
            self.advance()
            return self.window()
        if self.at_window(0):
            return self.window()
        return None

    def window(self) -> A.Node:
        tok = self.advance()
        word = tok.lower
        if word == "last":
            amount = self.amount(1, "after last")
            unit = self.unit()
            return self.build(A.Last, tok, self.prev, amount, unit)
        if word == "between":
            if self.peek().kind == "string":
                start = self.advance()
                self.expect_kw(
                    "and", "between the two dates", 'write between "2024-01-01" and "2024-03-31"'
                )
                end = self.peek()
                if end.kind != "string":
                    self.fail(end, f"expected a date in quotes, found {end.describe()}")
                self.advance()
                return self.build(A.DateRange, tok, end, start.value, end.value)
            far_tok = self.peek()
            far = self.amount(0, "after between")
            self.expect_kw(
                "and", "between the two ends of the window", "write between 365 and 90 days ago"
            )
            near_tok = self.peek()
            near = self.amount(0, "after and")
            unit = self.unit()
            ago = self.expect_kw("ago", "to end the window", "write between 365 and 90 days ago")
            if far == near:
                self.fail(
                    self.span(far_tok, near_tok),
                    "the window is empty: both ends are the same",
                    "write between 365 and 90 days ago",
                )
            return self.build(A.Ago, tok, ago, max(far, near), min(far, near), unit)
        if word in ("since", "before"):
            date = self.peek()
            if date.kind != "string":
                hint = (
                    'write dates in quotes: since "2024-01-01"' if date.kind == "number" else None
                )
                self.fail(
                    date, f"expected a date in quotes after {word}, found {date.describe()}", hint
                )
            self.advance()
            cls = A.Since if word == "since" else A.Before
            return self.build(cls, tok, date, date.value)
        self.fail(tok, f"expected a time window, found {tok.describe()}")  # pragma: no cover

    def amount(self, minimum: int, context: str) -> int:
        tok = self.peek()
        if tok.kind != "number":
            self.fail(tok, f"expected a number {context}, found {tok.describe()}")
        if isinstance(tok.value, float):
            self.fail(tok, "a window length is a whole number", "e.g. last 90 days")
        if tok.value < minimum:
            self.fail(tok, f"a window length must be at least {minimum}")
        self.advance()
        return tok.value

    def unit(self) -> str:
        tok = self.peek()
        if tok.kind == "name" and tok.lower in UNIT_WORDS:
            self.advance()
            return UNIT_WORDS[tok.lower]
        hint = suggest(tok.value, UNIT_WORDS) if tok.kind == "name" else None
        self.fail(
            tok,
            f"expected a time unit (hours, days, weeks, months, years), found {tok.describe()}",
            hint,
        )

    def duration(self) -> A.Duration:
        first = self.peek()
        amount = self.amount(1, "for the period")
        unit = self.unit()
        return self.build(A.Duration, first, self.prev, amount, unit)


def parse(text: str, params: Mapping[str, Any] | None = None) -> A.Node:
    """The syntax tree of a rule (a condition), with ``{name}`` placeholders substituted.

    Raises SegmentSyntaxError (with line, column, excerpt and hint) for anything that does
    not parse; never any other exception for a str input.
    """
    tokens = tokenize(text, params)
    return _Parser(text, tokens).rule()
