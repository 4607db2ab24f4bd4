"""The OpenAPI document: it validates, it is served with offline docs, and every operation in it is exercised
by this suite."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from billing.api import schema_check
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


def _served() -> str:
    from django.utils import translation

    with translation.override("en"):
        return schema_check.render(SchemaGenerator().get_schema(request=None, public=True))


def test_the_committed_schema_is_the_served_one_when_the_api_version_is_current():
    assert schema_check.problem(served=_served(), committed=schema_check.COMMITTED.read_text()) is None


def test_the_schema_check_refuses_a_changed_schema_when_the_api_version_did_not_change():
    committed = schema_check.COMMITTED.read_text()
    changed = json.loads(committed)
    changed["paths"]["/api/plans/"]["get"]["summary"] = "Plans (renamed)"

    kind, message = schema_check.problem(served=schema_check.render(changed), committed=committed)

    assert kind == schema_check.UNVERSIONED
    assert 'SPECTACULAR_SETTINGS["VERSION"]' in message


def test_the_schema_check_asks_for_the_file_when_the_version_changed_but_the_file_did_not():
    committed = schema_check.COMMITTED.read_text()
    bumped = json.loads(committed)
    bumped["info"]["version"] = "999"

    kind, message = schema_check.problem(served=schema_check.render(bumped), committed=committed)

    assert kind == schema_check.STALE
    assert "--write" in message


def test_no_schema_in_the_document_is_left_untyped_when_generated():
    """Every property has a type (or a reference); a generated client would otherwise carry it as Any."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    untyped = [
        f"{name}.{prop}"
        for name, component in schema["components"]["schemas"].items()
        for prop, spec in component.get("properties", {}).items()
        if not {"type", "$ref", "allOf", "oneOf", "anyOf", "enum"} & set(spec)
    ]
    bare = [
        name
        for name, component in schema["components"]["schemas"].items()
        if component.get("type") == "object" and "properties" not in component
    ]

    assert (untyped, bare) == ([], [])
