"""The error tree: every public error is drawn in errors.py's docstring, reachable from the
root, and turns into JSON (code, message, hint, location) for the HTTP API."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re

import segmentum
from segmentum import errors


def _all_error_classes() -> set[type]:
    for info in pkgutil.walk_packages(segmentum.__path__, "segmentum."):
        if ".cli" in info.name or info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # optional extras (e.g. pyspark) are not installed everywhere
            continue
    seen: set[type] = set()
    todo = [errors.SegmentumError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return {c for c in seen if c.__module__.startswith("segmentum") and not c.__name__.startswith("_")}


def test_every_public_error_is_drawn_in_the_tree():
    drawn = set(re.findall(r"[├└]── (\w+)", errors.__doc__))
    missing = sorted(c.__name__ for c in _all_error_classes() if c.__name__ not in drawn)
    assert not missing, f"errors.py's docstring does not draw: {missing}"


def test_drawn_parents_are_real_parents():
    classes = {c.__name__: c for c in _all_error_classes()} | {"SegmentumError": errors.SegmentumError}
    stack: list[tuple[int, str]] = []
    for line in errors.__doc__.splitlines():
        m = re.match(r"^(\s*)((?:[│ ]   )*)[├└]── (\w+)", line)
        if not m:
            if re.match(r"^\s*SegmentumError\b", line):
                stack = [(-1, "SegmentumError")]
            continue
        depth = len(m.group(2)) // 4
        name = m.group(3)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1]
        assert issubclass(classes[name], classes[parent]), f"{name} is drawn under {parent}"
        stack.append((depth, name))


def test_codes_are_unique_and_statuses_are_http():
    codes: dict[str, str] = {}
    for cls in _all_error_classes():
        if "code" in cls.__dict__:
            assert cls.code not in codes, f"{cls.__name__} and {codes[cls.code]} share {cls.code!r}"
            codes[cls.code] = cls.__name__
        assert 400 <= cls.http_status <= 599


def test_to_dict_is_json_with_code_message_hint_and_location():
    exc = errors.PayloadError("event 3 of the batch has no userId", hint="send userId or anonymousId",
                              index=3, field="userId")
    data = exc.to_dict()
    assert data == {"code": "invalid_payload", "message": "event 3 of the batch has no userId",
                    "hint": "send userId or anonymousId", "index": 3, "field": "userId"}
    json.dumps(data)
    assert str(exc) == "event 3 of the batch has no userId. send userId or anonymousId"
    assert errors.OverloadedError("busy", retry_after=2).to_dict()["retry_after"] == 2


def test_segment_errors_carry_code_and_position():
    from segmentum.segments.parser import parse
    from segmentum.segments.errors import SegmentSyntaxError

    try:
        parse("count(email_open, last 90 days) >")
    except SegmentSyntaxError as exc:
        data = exc.to_dict()
    assert data["code"] == "rule_syntax" and data["line"] == 1 and data["column"] >= 30
