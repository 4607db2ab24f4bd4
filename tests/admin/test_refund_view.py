"""The admin's refund form on a paid attempt: balance shown, refunds through `refund_create` with Iamport's
checksum, outcome told with message_user, permission and CSRF enforced, never above the paid amount."""

from __future__ import annotations

import threading

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import AuditLog, PaymentAttempt, Refund
from billing.services.payments import payment_attempt_create
from billing.services.refunds import refund_totals
from tests.admin.conftest import open_invoice, paid_attempt, staff_user
from tests.factories import make_customer, register_card

pytestmark = pytest.mark.django_db


def refund_url(attempt) -> str:
    return reverse("admin:billing_paymentattempt_refund", args=[attempt.pk])


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def test_form_defaults_to_the_refundable_balance_when_part_was_already_refunded(admin_client, sandbox, gateway, now):
    attempt = paid_attempt(gateway, now, amount=10_000)
    admin_client.post(refund_url(attempt), {"amount": 2_500, "reason": "first"})

    response = admin_client.get(refund_url(attempt))

    assert response.status_code == 200
    assert response.context["form"]["amount"].value() == 7_500
    assert response.context["totals"]["refunded"] == 2_500
    page = response.content.decode()
    assert "10,000" in page and "2,500" in page and "7,500" in page


def test_partial_refund_reaches_iamport_and_is_recorded_when_submitted(admin_client, admin_user, sandbox, gateway, now):
    attempt = paid_attempt(gateway, now, amount=10_000)

    response = admin_client.post(refund_url(attempt), {"amount": 3_000, "reason": "고객 요청 부분 환불"})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:billing_paymentattempt_change", args=[attempt.pk])
    [refund] = Refund.objects.filter(attempt=attempt)
    assert (refund.amount, refund.status, refund.actor, refund.reason) == (
        3_000,
        Refund.Status.SUCCEEDED,
        admin_user,
        "고객 요청 부분 환불",
    )
    remote = gateway.get_payment(imp_uid=attempt.imp_uid)
    assert (remote.status, remote.cancel_amount) == ("paid", 3_000)  # partially cancelled stays "paid"
    requested = AuditLog.objects.get(action="refund.requested", object_id=str(refund.pk))
    assert (requested.actor, requested.data["checksum"]) == (admin_user, 10_000)
    assert AuditLog.objects.filter(action="refund.succeeded", object_id=str(refund.pk)).exists()
    [(level, text)] = messages_of(response)
    assert level == "success" and "3,000" in text


def test_refund_above_the_balance_is_refused_with_a_message_when_submitted(admin_client, sandbox, gateway, now):
    attempt = paid_attempt(gateway, now, amount=10_000)

    response = admin_client.post(refund_url(attempt), {"amount": 10_001, "reason": "too much"})

    assert response.status_code == 200  # the form again, with the reason
    assert not Refund.objects.filter(attempt=attempt).exists()
    assert gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount == 0
    [(level, text)] = messages_of(response)
    assert level == "error" and "10,000" in text


def test_form_is_replaced_by_a_notice_when_everything_was_refunded(admin_client, sandbox, gateway, now):
    attempt = paid_attempt(gateway, now, amount=10_000)
    admin_client.post(refund_url(attempt), {"amount": 10_000, "reason": "all"})

    response = admin_client.get(refund_url(attempt))

    page = response.content.decode()
    assert 'id="nothing-to-refund"' in page and 'name="amount"' not in page
    assert gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount == 10_000


def test_refund_without_a_reason_is_refused_when_submitted(admin_client, sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)

    response = admin_client.post(refund_url(attempt), {"amount": 1_000, "reason": "  "})

    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    assert not Refund.objects.exists()


def test_refund_view_is_forbidden_when_staff_lacks_the_add_refund_permission(client, sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)
    client.force_login(staff_user("billing.view_paymentattempt"))

    shown = client.get(refund_url(attempt))
    posted = client.post(refund_url(attempt), {"amount": 1_000, "reason": "x"})

    assert (shown.status_code, posted.status_code) == (403, 403)
    assert not Refund.objects.exists()


def test_refund_works_when_staff_holds_only_the_add_refund_permission(client, sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)
    client.force_login(staff_user("billing.add_refund"))

    response = client.post(refund_url(attempt), {"amount": 1_000, "reason": "x"})

    assert response.status_code == 302
    assert refund_totals(attempt)["refunded"] == 1_000


def test_refund_view_sends_non_staff_to_the_admin_login_when_logged_in_as_a_customer(client, sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)
    client.force_login(attempt.invoice.customer.user)

    response = client.post(refund_url(attempt), {"amount": 1_000, "reason": "x"})

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not Refund.objects.exists()


def test_refund_post_is_refused_when_the_csrf_token_is_missing(admin_user, sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    response = client.post(refund_url(attempt), {"amount": 1_000, "reason": "x"})

    assert response.status_code == 403
    assert not Refund.objects.exists()


def test_refund_view_redirects_with_an_error_when_the_attempt_was_not_paid(admin_client, sandbox, gateway, now):
    customer = make_customer()
    register_card(customer, gateway, now=now)
    pending = payment_attempt_create(invoice_id=open_invoice(customer, now).pk, now=now)

    response = admin_client.get(refund_url(pending))

    assert response.status_code == 302
    [(level, _text)] = messages_of(response)
    assert level == "error"


def test_change_page_links_the_refund_form_when_the_attempt_is_paid(admin_client, client, sandbox, gateway, now):
    attempt = paid_attempt(gateway, now)
    change_url = reverse("admin:billing_paymentattempt_change", args=[attempt.pk])
    client.force_login(staff_user("billing.view_paymentattempt"))

    as_admin = admin_client.get(change_url).content.decode()
    in_list = admin_client.get(reverse("admin:billing_paymentattempt_changelist")).content.decode()
    without_permission = client.get(change_url).content.decode()

    assert refund_url(attempt) in as_admin
    assert refund_url(attempt) in in_list
    assert refund_url(attempt) not in without_permission


@pytest.mark.django_db(transaction=True)
def test_two_admins_refunding_at_once_never_exceed_the_paid_amount_when_submitted_through_the_view(
    admin_user, sandbox, gateway
):
    now = timezone.now()
    attempt = paid_attempt(gateway, now, amount=10_000)
    sandbox.set_latency(300)  # both requests are inside the view, waiting on Iamport, at the same time
    barrier = threading.Barrier(2)
    statuses = []

    def admin():
        client = Client()
        client.force_login(admin_user)
        barrier.wait()
        try:
            statuses.append(client.post(refund_url(attempt), {"amount": 7_000, "reason": "race"}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=admin) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    refunds = Refund.objects.filter(attempt=attempt)
    assert sorted(statuses) == [200, 302]  # one refunded, one shown the form again with the refusal
    assert [(r.amount, r.status) for r in refunds] == [(7_000, Refund.Status.SUCCEEDED)]
    assert gateway.get_payment(imp_uid=attempt.imp_uid).cancel_amount == 7_000
    assert PaymentAttempt.objects.get(pk=attempt.pk).status == PaymentAttempt.Status.SUCCEEDED
