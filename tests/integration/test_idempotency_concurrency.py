"""50 concurrent POSTs with one Idempotency-Key, against the web server `make run` starts: one effect, and every
other answer is the stored one replayed or 409 idempotency_key_in_use."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from billing.models import Customer
from billing.services.api_keys import api_key_create
from tests.integration.test_web_server import web_server  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)
CONCURRENT = 50


def post(url: str, body: dict, headers: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def test_fifty_concurrent_posts_with_one_idempotency_key_create_one_customer(web_server):  # noqa: F811
    base, _capacity = web_server
    _key, secret = api_key_create(name="concurrency", scopes=["read", "write"])
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "one-signup"}
    start = threading.Barrier(CONCURRENT)
    answers = []

    def one():
        start.wait()
        answers.append(post(f"{base}/api/customers", {"external_id": "race-1"}, headers))

    threads = [threading.Thread(target=one) for _ in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Customer.objects.filter(external_id="race-1").count() == 1
    created = [body for status, body, _h in answers if status == 201]
    in_use = [body for status, body, _h in answers if status == 409]
    assert len(created) + len(in_use) == CONCURRENT, [a[:2] for a in answers if a[0] not in (201, 409)]
    assert {body["id"] for body in created} == {Customer.objects.get(external_id="race-1").pk}
    assert {body["error"]["code"] for body in in_use} <= {"idempotency_key_in_use"}
    # After the first finished, the same request is the stored answer.
    status, body, replay_headers = post(f"{base}/api/customers", {"external_id": "race-1"}, headers)
    assert status == 201 and body["id"] == created[0]["id"]
    assert replay_headers.get("Idempotent-Replayed") == "true"
