"""The merchant's API with server keys: customers across users, scopes, revocation, the audit of every keyed
request, idempotent POSTs and the event feed."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from billing import clock
from billing.models import AuditLog, Customer, Event, IdempotencyRecord, MerchantApiKey, Refund
from billing.services.api_keys import api_key_create
from billing.services.events import events_sequence
from tests.api.conftest import RecordingAPIClient, error_of

pytestmark = pytest.mark.django_db

ALL = ("read", "write", "refunds")


@pytest.fixture
def key_client():
    """key_client(*scopes) -> (client sending a new server key, the key row)."""

    def build(*scopes: str, expiry_date=None):
        key, secret = api_key_create(name="backend", scopes=scopes or ALL, expiry_date=expiry_date)
        client = RecordingAPIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client, key

    return build


def test_key_is_stored_hashed_with_a_visible_prefix_when_created(key_client):
    key, secret = api_key_create(name="backend", scopes=["read"])

    stored = MerchantApiKey.objects.get(pk=key.pk)
    assert secret.startswith("sk_") and secret.split(".")[0] == stored.prefix
    assert secret not in stored.hashed_key and secret not in stored.pk


def test_customer_is_created_and_retrieved_by_external_id_when_a_write_key_posts(key_client):
    client, key = key_client("read", "write")

    created = client.post("/api/customers", {"external_id": "user-981", "email": "minji@example.com", "name": "민지"})

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["object"] == "customer" and body["external_id"] == "user-981"
    by_ext = client.get("/api/customers/ext:user-981")
    assert by_ext.status_code == 200 and by_ext.json()["id"] == body["id"]
    by_id = client.get(f"/api/customers/{body['id']}")
    assert by_id.json()["external_id"] == "user-981"
    assert client.get("/api/customers", {"external_id": "user-981"}).json()["results"][0]["id"] == body["id"]
    updated = client.post(f"/api/customers/{body['id']}", {"preferred_language": "en"})
    assert updated.json()["preferred_language"] == "en"
    # Every keyed request is audited, naming the key (prefix) and what it answered.
    audited = AuditLog.objects.filter(action="api_key.request", object_id=key.prefix).order_by("id")
    assert [(row.data["method"], row.data["status"]) for row in audited] == [
        ("POST", 201),
        ("GET", 200),
        ("GET", 200),
        ("GET", 200),
        ("POST", 200),
    ]
    assert MerchantApiKey.objects.get(pk=key.pk).last_used_at is not None


def test_external_id_is_unique_when_a_second_customer_claims_it(key_client):
    client, _key = key_client()
    client.post("/api/customers", {"external_id": "user-1"})

    again = client.post("/api/customers", {"external_id": "user-1"})

    assert again.status_code == 409
    assert error_of(again)["code"] == "external_id_taken"
    assert error_of(again)["param"] == "external_id"
    assert Customer.objects.filter(external_id="user-1").count() == 1


def test_read_key_cannot_write_or_refund_when_it_tries(key_client, subscriber):
    member = subscriber()
    payment = member.subscription.subscription_invoices.get().invoice.attempts.get()
    client, _key = key_client("read")

    write = client.post("/api/customers", {"external_id": "x"})
    refund = client.post(f"/api/payments/{payment.pk}/refunds", {"amount": 1_000, "reason": "try"})

    assert write.status_code == 403 and error_of(write)["code"] == "scope_missing"
    assert refund.status_code == 403 and error_of(refund)["code"] == "scope_missing"
    assert not Refund.objects.exists()
    assert client.get(f"/api/payments/{payment.pk}/refunds").status_code == 200


def test_refunds_key_refunds_any_customers_payment_when_it_posts(key_client, subscriber):
    member = subscriber()
    payment = member.subscription.subscription_invoices.get().invoice.attempts.get()
    client, key = key_client("read", "refunds")

    refund = client.post(f"/api/payments/{payment.pk}/refunds", {"amount": 1_000, "reason": "goodwill"})

    assert refund.status_code == 201, refund.content
    row = Refund.objects.get()
    assert row.actor is None
    assert AuditLog.objects.filter(action="refund.requested", actor_label=f"key:{key.prefix}").exists()


def test_revoked_key_is_refused_at_once_when_used_again(key_client):
    client, key = key_client()
    assert client.get("/api/customers").status_code == 200

    key.revoked = True
    key.save()

    refused = client.get("/api/customers")
    assert refused.status_code == 401
    assert error_of(refused)["code"] == "not_authenticated"


def test_expired_key_is_refused_when_used(key_client):
    client, _key = key_client(expiry_date=clock.now() - dt.timedelta(seconds=1))

    assert client.get("/api/customers").status_code == 401


def test_key_is_refused_by_subscriber_endpoints_and_tokens_by_merchant_ones(key_client, subscriber, client_for):
    client, _key = key_client()
    member = subscriber()

    assert client.get("/api/invoices/").status_code == 403
    assert client_for(member.user).get("/api/customers").status_code == 401


def test_customer_lists_show_its_cards_invoices_and_payments_when_a_key_reads(key_client, subscriber):
    member = subscriber()
    other = subscriber()
    client, _key = key_client("read")

    keys = client.get(f"/api/customers/{member.customer.pk}/billing-keys").json()
    invoices = client.get(f"/api/customers/{member.customer.pk}/invoices", {"limit": 1}).json()
    payments = client.get(f"/api/customers/{member.customer.pk}/payments").json()

    assert [k["id"] for k in keys] == [member.billing_key.pk]
    assert len(invoices["results"]) == 1 and "next" in invoices
    assert {p["id"] for p in payments["results"]} == set(
        member.customer.invoices.values_list("attempts__id", flat=True)
    )
    assert other.billing_key.pk not in {k["id"] for k in keys}
    assert client.get("/api/customers/ext:nobody").status_code == 404


# --- idempotency ----------------------------------------------------------------------------------------


def test_same_idempotency_key_and_body_replays_the_first_response_when_sent_twice(key_client):
    client, _key = key_client()
    body = {"external_id": "idem-1"}

    first = client.post("/api/customers", body, HTTP_IDEMPOTENCY_KEY="k-1")
    second = client.post("/api/customers", body, HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Customer.objects.filter(external_id="idem-1").count() == 1


def test_same_idempotency_key_with_another_body_is_refused_when_sent(key_client):
    client, _key = key_client()
    client.post("/api/customers", {"external_id": "idem-2"}, HTTP_IDEMPOTENCY_KEY="k-2")

    reused = client.post("/api/customers", {"external_id": "idem-3"}, HTTP_IDEMPOTENCY_KEY="k-2")

    assert reused.status_code == 422
    assert error_of(reused)["code"] == "idempotency_key_reused"
    assert not Customer.objects.filter(external_id="idem-3").exists()


def test_idempotency_key_in_flight_is_refused_when_a_second_request_comes(key_client):
    client, key = key_client()
    body = {"external_id": "idem-4"}
    IdempotencyRecord.objects.create(
        owner=f"key:{key.prefix}",
        key="k-4",
        method="POST",
        path="/api/customers",
        request_hash=_fingerprint(body),
        created_at=clock.now(),
        expires_at=clock.now() + dt.timedelta(hours=24),
    )

    busy = client.post("/api/customers", body, HTTP_IDEMPOTENCY_KEY="k-4")

    assert busy.status_code == 409
    assert error_of(busy)["code"] == "idempotency_key_in_use"
    assert not Customer.objects.filter(external_id="idem-4").exists()


def test_idempotency_keys_belong_to_their_holder_when_two_keys_use_one(key_client):
    one, _ = key_client()
    two, _ = key_client()

    one.post("/api/customers", {"external_id": "a"}, HTTP_IDEMPOTENCY_KEY="shared")
    other = two.post("/api/customers", {"external_id": "b"}, HTTP_IDEMPOTENCY_KEY="shared")

    assert other.status_code == 201
    assert Customer.objects.filter(external_id__in=["a", "b"]).count() == 2


def test_expired_idempotency_key_runs_the_request_again_when_reused(key_client):
    client, _key = key_client()
    client.post("/api/customers", {"external_id": "old"}, HTTP_IDEMPOTENCY_KEY="k-5")
    IdempotencyRecord.objects.update(expires_at=clock.now() - dt.timedelta(seconds=1))

    again = client.post("/api/customers", {"external_id": "old"}, HTTP_IDEMPOTENCY_KEY="k-5")

    assert again.status_code == 409 and error_of(again)["code"] == "external_id_taken"  # it ran, not replayed
    assert "Idempotent-Replayed" not in again


def _fingerprint(body: dict) -> str:
    from billing.services.idempotency import request_fingerprint

    return request_fingerprint(method="POST", path="/api/customers", body=json.dumps(body).encode())


# --- the feed ---------------------------------------------------------------------------------------------


def test_feed_lists_events_in_sequence_without_gaps_when_paged(key_client):
    client, _key = key_client()
    for n in range(5):
        client.post("/api/customers", {"external_id": f"feed-{n}"})

    seen, after = [], 0
    while True:
        page = client.get("/api/events", {"after": after, "limit": 2, "type": "customer.created"}).json()
        seen += page["data"]
        after = page["next_after"]
        if not page["has_more"]:
            break

    assert [e["customer"]["external_id"] for e in seen] == [f"feed-{n}" for n in range(5)]
    assert [e["sequence"] for e in seen] == sorted(e["sequence"] for e in seen)
    assert len({e["id"] for e in seen}) == 5
    assert all(e["object"] == "event" and e["data"]["object"]["object"] == "customer" for e in seen)


def test_event_committed_late_gets_a_later_sequence_when_sequenced(db):
    # An event whose row id is lower but which is sequenced after a higher one still appears after the cursor.
    late = Event.objects.create(type="customer.created", object_type="customer", object_id="1", created_at=clock.now())
    early = Event.objects.create(type="customer.created", object_type="customer", object_id="2", created_at=clock.now())
    Event.objects.filter(pk=early.pk).update(sequence=1)

    events_sequence(now=clock.now())

    late.refresh_from_db()
    assert late.sequence == 2
