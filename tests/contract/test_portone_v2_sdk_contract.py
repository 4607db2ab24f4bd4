"""The official PortOne V2 server SDK (`portone-server-sdk`), used directly, against the sandbox's V2 surface.

No code of ours sits between the SDK and the sandbox: this proves the sandbox speaks the V2 wire format the SDK
parses strictly (paths, bodies, `Authorization: PortOne <secret>`, the `{"type", "message"}` errors) and signs
its webhooks so that the SDK's own `verify` accepts them.
"""

import datetime as dt

import pytest
import standardwebhooks
from portone_server_sdk import PortOneClient, errors, webhook
from portone_server_sdk._generated.common.card_credential import CardCredential
from portone_server_sdk._generated.common.payment_amount_input import PaymentAmountInput
from portone_server_sdk._generated.payment.billing_key.instant_billing_key_payment_method_input import (
    InstantBillingKeyPaymentMethodInput,
)
from portone_server_sdk._generated.payment.billing_key.instant_billing_key_payment_method_input_card import (
    InstantBillingKeyPaymentMethodInputCard,
)
from portone_server_sdk._generated.payment.payment_schedule.billing_key_payment_schedule_input import (
    BillingKeyPaymentScheduleInput,
)
from portone_server_sdk._generated.payment.payment_schedule.payment_schedule_filter_input import (
    PaymentScheduleFilterInput,
)

from iamport_sandbox.v2.ledger import DEFAULT_API_SECRET, DEFAULT_CHANNEL_KEY, DEFAULT_STORE_ID
from tests.sandbox.sandbox_helpers import WebhookReceiver


@pytest.fixture
def client(sandbox, sandbox_server):
    return PortOneClient(secret=DEFAULT_API_SECRET, base_url=sandbox_server.url + "/v2", store_id=DEFAULT_STORE_ID)


@pytest.fixture
def receiver(sandbox):
    server = WebhookReceiver()
    sandbox.set_v2_config(webhook_url=server.url)
    yield server
    server.close()


def _issue(client, number="4242424242424242") -> str:
    card = CardCredential(number=number, expiry_year="39", expiry_month="12")
    method = InstantBillingKeyPaymentMethodInput(card=InstantBillingKeyPaymentMethodInputCard(credential=card))
    response = client.payment.billing_key.issue_billing_key(method=method, channel_key=DEFAULT_CHANNEL_KEY)
    return response.billing_key_info.billing_key


def _pay(client, payment_id, billing_key, total=10_000):
    return client.payment.pay_with_billing_key(
        payment_id=payment_id,
        billing_key=billing_key,
        order_name="월간 구독",
        amount=PaymentAmountInput(total=total),
        currency="KRW",
    )


def test_issue_and_look_up_a_billing_key_when_the_card_is_good(client):
    key = _issue(client)

    info = client.payment.billing_key.get_billing_key_info(billing_key=key)

    assert type(info).__name__ == "IssuedBillingKeyInfo"
    assert info.methods[0].card.number == "4242-42**-****-4242"


def test_issuance_is_refused_with_pg_provider_when_the_card_company_refuses(client):
    with pytest.raises(errors.PgProviderError) as refused:
        _issue(client, number="4000000000000002")
    assert refused.value.pg_message


def test_pay_with_billing_key_when_the_card_pays(client):
    key = _issue(client)

    summary = _pay(client, "contract-pay-1", key).payment
    payment = client.payment.get_payment(payment_id="contract-pay-1")

    assert summary.paid_at
    assert type(payment).__name__ == "PaidPayment"
    assert payment.amount.total == 10_000 and payment.amount.paid == 10_000
    assert payment.billing_key == key


def test_decline_is_pg_provider_with_the_pg_code_and_a_failed_payment(client, sandbox):
    key = _issue(client, number="4000000000009995")

    with pytest.raises(errors.PgProviderError) as declined:
        _pay(client, "contract-decline-1", key)

    assert declined.value.pg_message.startswith("[잔액부족]")
    payment = client.payment.get_payment(payment_id="contract-decline-1")
    assert type(payment).__name__ == "FailedPayment"
    assert payment.failure.pg_code == declined.value.pg_code


def test_a_paid_payment_id_is_refused_with_already_paid(client, sandbox):
    key = _issue(client)
    _pay(client, "contract-dup-1", key)

    with pytest.raises(errors.AlreadyPaidError):
        _pay(client, "contract-dup-1", key)

    assert [p["status"] for p in sandbox.payments() if p["merchant_uid"] == "contract-dup-1"] == ["paid"]


def test_unknown_billing_key_is_billing_key_not_found(client):
    with pytest.raises(errors.BillingKeyNotFoundError):
        _pay(client, "contract-unknown-1", "billing-key-that-does-not-exist")


def test_wrong_secret_is_unauthorized(sandbox_server, sandbox):
    stranger = PortOneClient(secret="not-the-secret", base_url=sandbox_server.url + "/v2")
    with pytest.raises(errors.UnauthorizedError):
        stranger.payment.get_payment(payment_id="anything")


def test_cancel_partly_then_fully_with_current_cancellable_amount(client):
    key = _issue(client)
    _pay(client, "contract-cancel-1", key)

    partial = client.payment.cancel_payment(
        payment_id="contract-cancel-1", reason="부분 환불", amount=3_000, current_cancellable_amount=10_000
    )
    with pytest.raises(errors.CancellableAmountConsistencyBrokenError):
        client.payment.cancel_payment(
            payment_id="contract-cancel-1", reason="낡은 잔액", amount=1_000, current_cancellable_amount=10_000
        )
    with pytest.raises(errors.CancelAmountExceedsCancellableAmountError):
        client.payment.cancel_payment(payment_id="contract-cancel-1", reason="초과", amount=7_001)
    after_partial = client.payment.get_payment(payment_id="contract-cancel-1")
    rest = client.payment.cancel_payment(
        payment_id="contract-cancel-1", reason="나머지", current_cancellable_amount=7_000
    )

    assert partial.cancellation.total_amount == 3_000
    assert type(after_partial).__name__ == "PartialCancelledPayment"
    assert rest.cancellation.total_amount == 7_000
    final = client.payment.get_payment(payment_id="contract-cancel-1")
    assert type(final).__name__ == "CancelledPayment"
    assert [c.total_amount for c in final.cancellations] == [3_000, 7_000]
    with pytest.raises(errors.PaymentAlreadyCancelledError):
        client.payment.cancel_payment(payment_id="contract-cancel-1", reason="again")


def test_schedule_runs_on_the_sandbox_clock_and_can_be_revoked(client, sandbox):
    key = _issue(client)
    now = dt.datetime.fromtimestamp(sandbox.now(), dt.UTC)
    schedule_input = BillingKeyPaymentScheduleInput(
        billing_key=key, order_name="예약 결제", amount=PaymentAmountInput(total=9_900), currency="KRW"
    )
    run = client.payment.payment_schedule.create_payment_schedule(
        payment_id="contract-sched-run", payment=schedule_input, time_to_pay=(now + dt.timedelta(days=1)).isoformat()
    )
    keep = client.payment.payment_schedule.create_payment_schedule(
        payment_id="contract-sched-revoke",
        payment=schedule_input,
        time_to_pay=(now + dt.timedelta(days=2)).isoformat(),
    )
    with pytest.raises(errors.PaymentScheduleAlreadyExistsError):
        client.payment.payment_schedule.create_payment_schedule(
            payment_id="contract-sched-run",
            payment=schedule_input,
            time_to_pay=(now + dt.timedelta(days=1)).isoformat(),
        )
    with pytest.raises(errors.PaymentScheduleAlreadyExistsError):
        client.payment.billing_key.delete_billing_key(billing_key=key)

    listed = client.payment.payment_schedule.get_payment_schedules(
        filter=PaymentScheduleFilterInput(billing_key=key, until=(now + dt.timedelta(days=3)).isoformat())
    )
    revoked = client.payment.payment_schedule.revoke_payment_schedules(schedule_ids=[keep.schedule.id])
    sandbox.advance(2 * 24 * 3600)

    assert {s.id for s in listed.items} == {run.schedule.id, keep.schedule.id}
    assert revoked.revoked_schedule_ids == [keep.schedule.id]
    ran = client.payment.payment_schedule.get_payment_schedule(payment_schedule_id=run.schedule.id)
    assert type(ran).__name__ == "SucceededPaymentSchedule"
    paid = client.payment.get_payment(payment_id="contract-sched-run")
    assert type(paid).__name__ == "PaidPayment" and paid.schedule_id == run.schedule.id
    with pytest.raises(errors.PaymentNotFoundError):
        client.payment.get_payment(payment_id="contract-sched-revoke")
    with pytest.raises(errors.PaymentScheduleAlreadyRevokedError):
        client.payment.payment_schedule.revoke_payment_schedules(schedule_ids=[keep.schedule.id])


def test_webhook_is_verified_by_the_sdk_and_by_standard_webhooks(client, sandbox, receiver):
    key = _issue(client)
    _pay(client, "contract-hook-1", key)

    [delivery] = receiver.wait(1)
    secret = sandbox.v2_config()["webhook_secret"]
    headers = {k.lower(): v for k, v in delivery["headers"].items()}

    event = webhook.verify(secret, delivery["raw"], headers)
    standardwebhooks.Webhook(secret).verify(delivery["raw"], headers)

    assert type(event).__name__ == "WebhookTransactionPaid"
    assert event.data.payment_id == "contract-hook-1"
    with pytest.raises(webhook.WebhookVerificationError):
        webhook.verify("whsec_" + "c2Vjb25kLXNlY3JldC1ub3QtdGhlLXNhbmRib3hlcw==", delivery["raw"], headers)
    with pytest.raises(webhook.WebhookVerificationError):
        webhook.verify(secret, delivery["raw"].replace("contract-hook-1", "contract-hook-2"), headers)
