"""Rule fixtures: valid rules print canonically, invalid ones fail where and how expected."""

from __future__ import annotations

import json
import re

import pytest

from segmentum.segments.errors import SegmentFileError, SegmentJSONError, SegmentSyntaxError
from segmentum.segments.json_face import from_json, json_schema, to_json
from segmentum.segments.parser import parse
from segmentum.segments.printer import to_text
from segmentum.segments.yaml_face import dump_segment, load_segment, loads_segment

from ._fixtures import FIXTURES, cases, expectation

VALID = cases("valid")
INVALID = cases("invalid")


@pytest.mark.parametrize("case", VALID, ids=[c.id for c in VALID])
def test_valid_rule_prints_canonically_and_round_trips(case):
    node = parse(case.text)
    text = to_text(node)
    assert text == (case.expected if case.expected is not None else case.text)
    assert parse(text) == node
    assert parse(to_text(node, pretty=True)) == node
    # text -> AST -> JSON -> AST -> text
    document = json.loads(json.dumps(to_json(node)))
    assert from_json(document) == node
    assert to_text(from_json(document)) == text


@pytest.mark.parametrize("case", INVALID, ids=[c.id for c in INVALID])
def test_invalid_rule_fails_where_expected(case):
    want = expectation(case)
    with pytest.raises(SegmentSyntaxError) as info:
        parse(case.text)
    got = info.value.to_dict()
    for key in ("line", "column", "end_column"):
        if key in want:
            assert got[key] == int(want[key]), (key, got)
    assert want["message"] in got["message"]
    if "hint" in want:
        assert want["hint"] in (got["hint"] or "")
    # the excerpt shows the line and carets under the spot
    excerpt = info.value.excerpt.split("\n")
    assert excerpt[1].strip().startswith("^")
    assert len(excerpt[1]) - len(excerpt[1].lstrip()) == got["column"] - 1


REQUIRED_TEXTS = [c for c in VALID if c.file == "required.txt"]


def test_the_seven_rules_of_the_brief_are_fixtures():
    assert len(REQUIRED_TEXTS) == 7


# -- JSON face ---------------------------------------------------------------------------------

GOLDEN = json.loads((FIXTURES / "json" / "golden.json").read_text(encoding="utf-8"))
BAD_JSON = json.loads((FIXTURES / "json" / "invalid.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", GOLDEN, ids=[c["text"][:40] for c in GOLDEN])
def test_json_face_is_stable(case):
    assert to_json(parse(case["text"])) == case["json"]
    assert to_text(from_json(case["json"])) == case["text"]


@pytest.mark.parametrize("case", BAD_JSON, ids=[f"{c['path']} {c['message']}" for c in BAD_JSON])
def test_bad_json_is_reported_with_its_path(case):
    with pytest.raises(SegmentJSONError) as info:
        from_json(case["json"])
    assert info.value.path == case["path"]
    assert case["message"] in info.value.message
    if "hint" in case:
        assert case["hint"] in (info.value.hint or "")
    assert info.value.to_dict()["path"] == case["path"]


def test_every_fixture_validates_against_the_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for case in VALID:
        errors = list(validator.iter_errors(to_json(parse(case.text))))
        assert not errors, (case.id, errors[0].message)
    for case in GOLDEN:
        assert not list(validator.iter_errors(case["json"]))


def test_the_json_schema_rejects_what_it_can():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    rejected_by_schema = [
        c
        for c in BAD_JSON
        if not any(
            w in c["message"]
            for w in (
                "inside a where filter",
                "window is empty",
                "not a date that exists",
                "not valid JSON",
            )
        )
    ]
    for case in rejected_by_schema:
        assert not validator.is_valid(case["json"]), case


# -- YAML face ---------------------------------------------------------------------------------

YAML_VALID = sorted((FIXTURES / "yaml" / "valid").glob("*.yaml"))
YAML_INVALID = sorted((FIXTURES / "yaml" / "invalid").glob("*.yaml"))


@pytest.mark.parametrize("path", YAML_VALID, ids=[p.name for p in YAML_VALID])
def test_segment_file_round_trips(path):
    seg = load_segment(path)
    again = loads_segment(dump_segment(seg))
    assert again == seg
    values = {p.name: "F" for p in seg.params if p.name == "gender"}  # the one without default
    assert again.bind(values) == seg.bind(values)


@pytest.mark.parametrize("path", YAML_INVALID, ids=[p.name for p in YAML_INVALID])
def test_bad_segment_file_names_file_and_key(path):
    want = dict(
        re.findall(r"^# expect (\w+): (.*)$", path.read_text(encoding="utf-8"), re.MULTILINE)
    )
    with pytest.raises(SegmentFileError) as info:
        load_segment(path)
    got = info.value.to_dict()
    assert got["file"] == str(path)
    assert str(path) in str(info.value)
    assert want.pop("message") in got["message"]
    if "hint" in want:
        assert want.pop("hint") in (got["hint"] or "")
    for key, value in want.items():
        assert str(got.get(key)) == value, (key, got)
