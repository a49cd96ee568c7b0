"""Property tests of the REST API against its published spec (schemathesis): on any input
the generator makes from /openapi.json, a real `segmentum serve` answers without a 500.

Every operation of ``/api`` gets up to ``EXAMPLES`` generated requests with an admin key
(so the checks run past authentication); bounded to keep the run within about two
minutes on 2 cores."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.service._api import api_workspace, copy_workspace, serve  # noqa: F401 - fixture

EXAMPLES = 5


@pytest.fixture(scope="module")
def served(api_workspace, tmp_path_factory):  # noqa: F811
    ws = copy_workspace(api_workspace, tmp_path_factory.mktemp("schemathesis"))
    server, apis = serve(ws)
    yield server, apis
    server.stop()


@pytest.fixture(scope="module")
def api_schema(served):
    server, _ = served
    return schemathesis.openapi.from_url(server.url + "/openapi.json").include(path_regex="^/api/")


def test_the_spec_is_published(served):
    import httpx

    server, apis = served
    doc = httpx.get(server.url + "/openapi.json", timeout=30).json()
    paths = set(doc["paths"])
    for p in ("/api/segments", "/api/segments/{name}/changes", "/api/contacts/{contact_id}",
              "/api/analytics/rfm", "/api/crm/{kind}", "/api/crm/webhooks", "/api/campaigns",
              "/api/exports", "/api/triggers", "/api/personas", "/api/catalog", "/api/models"):
        assert p in paths, p
    assert {"HTTPBearer", "HTTPBasic"} <= set(doc["components"]["securitySchemes"])
    assert "SegmentCreate" in doc["components"]["schemas"] and "Page_SegmentSummary_" in doc["components"]["schemas"]


@pytest.mark.slow
def test_no_input_gets_a_500(api_schema, served):
    server, apis = served
    headers = {"Authorization": f"Bearer {apis['admin'].key}"}
    failures, operations = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(base_url=server.url, headers=headers,
                                   checks=[not_a_server_error], timeout=120)

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - every operation is tried; all failures reported
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:400]}")
    assert operations > 50
    assert not failures, "\n".join(failures)
