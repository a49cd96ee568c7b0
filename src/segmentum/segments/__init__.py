"""The segment language and the dynamic segment engine: parse -> ast -> passes -> compiler.

    parser / printer / json_face / yaml_face   the three faces of a rule and its tree (ast)
    catalog     the names a workspace offers (fields, event types, properties, scores)
    passes/     resolve -> typecheck -> simplify, with located errors and did-you-mean
    compiler    checked rules -> Ibis expressions (one scan per source, semi-joins)
    engine      preview, members, refresh, evaluate (SegmentEngine)
    explain     why one contact is in or out, condition by condition
    store       saved segments, membership intervals, refresh log

    >>> from segmentum.segments import SegmentEngine
    >>> SegmentEngine(ws).preview('count(orders, last 90 days) >= 2').count
"""

from segmentum.segments.catalog import Catalog
from segmentum.segments.compiler import Compiler
from segmentum.segments.engine import EvaluationError, Preview, SegmentEngine
from segmentum.segments.errors import (
    RuleError,
    SegmentError,
    SegmentFileError,
    SegmentJSONError,
    SegmentSyntaxError,
)
from segmentum.segments.explain import ExplainLine, Explanation
from segmentum.segments.parser import parse
from segmentum.segments.passes import (
    CheckedRule,
    MissingDataError,
    RuleCheckError,
    RuleTypeError,
    SegmentCycleError,
    UnknownNameError,
)
from segmentum.segments.store import (
    RefreshError,
    RefreshResult,
    SavedSegment,
    SegmentNotFoundError,
    SegmentStore,
)

__all__ = [
    "parse",
    "Catalog",
    "Compiler",
    "CheckedRule",
    "SegmentEngine",
    "Preview",
    "Explanation",
    "ExplainLine",
    "SegmentStore",
    "SavedSegment",
    "RefreshResult",
    "SegmentError",
    "RuleError",
    "SegmentSyntaxError",
    "SegmentJSONError",
    "SegmentFileError",
    "RuleCheckError",
    "UnknownNameError",
    "MissingDataError",
    "RuleTypeError",
    "SegmentCycleError",
    "SegmentNotFoundError",
    "RefreshError",
    "EvaluationError",
]
