"""Webhook deliveries to a real local receiver: which events fire, where they go, what is recorded.

"Nothing is sent" is read from the sandbox's delivery log, never waited for: the outbox records every delivery
(state "pending") before the API call that caused it answers (pinned by the first test below), so a log read
after that answer holds every delivery that call will ever make.
"""

from tests.sandbox.sandbox_helpers import INSUFFICIENT_CARD, WebhookReceiver, schedule_item


def test_delivery_is_in_the_log_when_the_api_call_that_caused_it_answers(sandbox, iamport, receiver):
    iamport.issued("c1")

    iamport.paid("c1", "wh-logged", notice_url=receiver.url)

    (record,) = sandbox.webhooks()  # read at once: not waited for
    assert record["url"] == receiver.url and record["body"]["merchant_uid"] == "wh-logged"
    assert record["state"] in ("pending", "delivered")


def test_paid_again_posts_unsigned_json_webhook_to_notice_url(sandbox, iamport, receiver):
    iamport.issued("c1")
    paid = iamport.paid("c1", "wh-1", notice_url=receiver.url)

    (received,) = receiver.wait(1)

    assert received["body"] == {"imp_uid": paid["imp_uid"], "merchant_uid": "wh-1", "status": "paid"}
    assert received["content_type"].startswith("application/json")
    assert received["path"] == "/iamport/webhook"
    assert not [h for h in received["headers"] if "signature" in h.lower()]


def test_webhook_goes_to_default_notice_url_when_payment_has_none(sandbox, iamport, receiver):
    sandbox.set_default_notice_url(receiver.url)
    iamport.issued("c1")

    iamport.paid("c1", "wh-default")

    assert [r["body"]["merchant_uid"] for r in receiver.wait(1)] == ["wh-default"]


def test_console_url_is_not_called_when_payment_has_its_own_notice_url(sandbox, iamport, receiver):
    console = WebhookReceiver()
    try:
        sandbox.set_default_notice_url(console.url)
        iamport.issued("c1")

        iamport.paid("c1", "wh-own", notice_url=receiver.url)

        assert len(receiver.wait(1)) == 1
        assert [w["url"] for w in sandbox.webhooks()] == [receiver.url]
        assert console.received == []
    finally:
        console.close()


def test_declined_again_sends_no_webhook(sandbox, iamport, receiver):
    iamport.issued("c1", INSUFFICIENT_CARD)

    payment = iamport.again("c1", "wh-declined", notice_url=receiver.url).json()["response"]

    assert payment["status"] == "failed"
    assert sandbox.webhooks() == [] and receiver.received == []


def test_executed_schedules_post_paid_and_failed_webhooks_before_clock_call_returns(sandbox, iamport, receiver):
    sandbox.freeze()
    now = sandbox.now()
    iamport.issued("good")
    iamport.issued("bad", INSUFFICIENT_CARD)
    iamport.schedule("good", schedule_item("wh-s-paid", now + 10, notice_url=receiver.url))
    iamport.schedule("bad", schedule_item("wh-s-failed", now + 20, notice_url=receiver.url))

    result = sandbox.advance(30)

    assert [r["body"]["status"] for r in receiver.received] == ["paid", "failed"]
    assert [w["status"] for w in result["webhooks"]] == [200, 200]
    assert [r["body"]["merchant_uid"] for r in receiver.received] == ["wh-s-paid", "wh-s-failed"]


def test_cancel_sends_no_webhook_when_enable_webhook_not_set(sandbox, iamport, receiver):
    iamport.issued("c1")
    paid = iamport.paid("c1", "wh-c-1", notice_url=receiver.url)
    receiver.wait(1)

    iamport.cancel(imp_uid=paid["imp_uid"])

    assert [w["body"]["status"] for w in sandbox.webhooks()] == ["paid"]
    assert [r["body"]["status"] for r in receiver.received] == ["paid"]


def test_cancel_sends_cancelled_webhook_with_cancellation_id_when_enable_webhook_true(sandbox, iamport, receiver):
    iamport.issued("c1")
    paid = iamport.paid("c1", "wh-c-2", notice_url=receiver.url)
    receiver.wait(1)

    payment = iamport.cancel(imp_uid=paid["imp_uid"], amount=1000, enable_webhook=True).json()["response"]

    received = receiver.wait(2)
    assert received[1]["body"] == {
        "imp_uid": paid["imp_uid"],
        "merchant_uid": "wh-c-2",
        "status": "cancelled",
        "cancellation_id": payment["cancel_history"][0]["cancellation_id"],
    }


def test_delivery_log_records_receiver_status_when_receiver_answers_500(sandbox, iamport, receiver):
    receiver.status = 500
    iamport.issued("c1")

    iamport.paid("c1", "wh-500", notice_url=receiver.url)

    (record,) = sandbox.wait_for_webhooks(1)
    assert record["status"] == 500 and record["state"] == "failed"
    assert record["url"] == receiver.url and record["body"]["merchant_uid"] == "wh-500"
    assert record["seq"] == 1 and record["delivered_at"] > 0
    assert len(receiver.received) == 1  # sent once: V1 does not retry by default


def test_delivery_log_records_error_when_receiver_unreachable(sandbox, iamport, receiver):
    url = receiver.url
    receiver.close()
    iamport.issued("c1")

    iamport.paid("c1", "wh-down", notice_url=url)

    (record,) = sandbox.wait_for_webhooks(1)
    assert record["status"] is None and record["error"] and record["state"] == "failed"


def test_webhook_is_form_encoded_when_console_content_type_is_form(sandbox, iamport, receiver):
    sandbox.set_webhook_content_type("form")
    iamport.issued("c1")

    paid = iamport.paid("c1", "wh-form", notice_url=receiver.url)

    (received,) = receiver.wait(1)
    assert received["content_type"].startswith("application/x-www-form-urlencoded")
    assert received["body"] == {"imp_uid": paid["imp_uid"], "merchant_uid": "wh-form", "status": "paid"}


def test_no_delivery_is_recorded_when_no_notice_url_anywhere(sandbox, iamport):
    iamport.issued("c1")

    iamport.paid("c1", "wh-nowhere")

    assert sandbox.webhooks() == []
