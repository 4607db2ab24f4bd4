"""GET /healthz reports database and broker reachability (a database outage: tests/reliability/test_web_outage.py)."""

import pytest

from config.celery import app as celery_app


@pytest.mark.django_db
def test_healthz_reports_ok_when_database_and_broker_answer(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert "down" not in body
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True


@pytest.mark.django_db
def test_healthz_is_503_when_broker_is_unreachable(client, monkeypatch):
    original = celery_app.conf.broker_url  # read before the environment below changes what it returns
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens on port 1
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/healthz")
    finally:
        celery_app.conf.broker_url = original

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["down"] == ["broker"]
    assert response["Retry-After"]
    assert body["database"]["ok"] is True
    assert body["broker"] == {"ok": False, "error": body["broker"]["error"]}
