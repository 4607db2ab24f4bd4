"""The OpenAPI document: it validates, it is served with offline docs, and every operation in it is exercised
by this suite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from tests.api.conftest import API_TESTS, PARTIAL_RUN, REQUESTED

pytestmark = pytest.mark.django_db


def test_schema_validates_without_warnings_when_generated_by_the_management_command(tmp_path):
    target = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    schema = yaml.safe_load(target.read_text())
    assert schema["openapi"].startswith("3.")
    error = schema["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["$ref"] == "#/components/schemas/ErrorDetail"
    assert set(schema["components"]["schemas"]["ErrorDetail"]["required"]) == {"code", "message"}


def test_every_error_response_in_the_schema_uses_the_shared_error_component_when_documented():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    error_refs = {
        response["content"]["application/json"]["schema"]["$ref"]
        for item in schema["paths"].values()
        for operation in item.values()
        for status, response in operation["responses"].items()
        if status.startswith("4") or status.startswith("5")
    }

    assert error_refs == {"#/components/schemas/Error"}


def test_schema_and_docs_are_served_without_a_cdn_when_requested(anon):
    schema = anon.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = anon.get("/api/docs/")

    assert schema.status_code == 200
    assert "/api/subscriptions/{id}/change-plan/preview" in schema.json()["paths"]
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn.jsdelivr.net" not in html


def _operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {(method.upper(), path) for path, item in schema["paths"].items() for method in item}


def _requested(method: str, template: str) -> bool:
    pattern = re.compile(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$")
    return any(m == method and pattern.match(path) for m, path in REQUESTED)


def test_every_schema_operation_is_requested_when_the_whole_api_suite_runs(request):
    # Runs last (see conftest); meaningful only when every API test ran in this process.
    collected = {Path(str(item.fspath)) for item in request.session.items}
    if PARTIAL_RUN.deselected or not set(API_TESTS.glob("test_*.py")) <= collected:
        pytest.skip("checks coverage only when the whole tests/api suite runs")
    if hasattr(request.config, "workerinput"):
        pytest.skip("each xdist worker sees only its own requests")

    missing = sorted(op for op in _operations() if not _requested(*op))

    assert missing == [], f"schema operations no test requested: {missing}"
