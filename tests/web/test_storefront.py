"""The storefront a subscriber reads, rendered by the real views against the real database and sandbox:
the merchant's identity, the policies, the checkout agreement, money statuses after refunds, and words
(no doubled full stops, no fraction of a won, no plan name in the other language)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from billing.models import BillingKey, Invoice, PaymentAttempt
from billing.services.refunds import refund_create
from subscriptions.models import PolicyDocument, Subscription, SubscriptionAgreement
from subscriptions.services.lifecycle import subscription_create
from subscriptions.services.plans import plans_seed_demo
from subscriptions.services.policies import policies_seed_demo
from tests.factories import make_customer as new_customer
from tests.factories import register_card

pytestmark = pytest.mark.django_db

PAGES = ["/", "/account/", "/account/invoices/", "/checkout/basic-monthly/", "/policies/terms/", "/account/card/"]


@pytest.fixture
def shop(db):
    plans_seed_demo()
    policies_seed_demo(now=timezone.now() - dt.timedelta(days=1))


def ko(client, path, **kwargs):
    return client.get(path, HTTP_ACCEPT_LANGUAGE="ko", **kwargs)


def en(client, path):
    return client.get(path, HTTP_ACCEPT_LANGUAGE="en")


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def shown_ids(response) -> dict:
    return dict(re.findall(r'name="(shown_\w+)" value="(\d*)"', response.content.decode()))


def test_every_subscriber_page_shows_the_merchant_identity_when_rendered(client, shop, settings):
    settings.MERCHANT_BUSINESS_NUMBER = "220-81-62517"
    client.force_login(new_customer().user)

    for path in [*PAGES, "/signup/"]:
        html = ko(client, path).content.decode()
        assert 'id="merchant-footer"' in html, path
        for value in (settings.MERCHANT_NAME, settings.MERCHANT_REPRESENTATIVE, settings.MERCHANT_MAIL_ORDER_NUMBER):
            assert value in html, (path, value)
        assert "https://www.ftc.go.kr/bizCommPop.do?wrkr_no=2208162517" in html
        assert "사업자등록번호" in html and "통신판매업 신고번호" in html and "호스팅 서비스 제공자" in html


def test_policy_page_shows_the_version_in_effect_and_keeps_earlier_ones_readable_when_a_new_one_is_published(
    client, shop
):
    now = timezone.now()
    PolicyDocument.objects.create(kind="terms", version="2", body_ko="제2판 약관 본문", effective_at=now)
    PolicyDocument.objects.create(
        kind="terms", version="3", body_ko="아직 시행 전인 약관", effective_at=now + dt.timedelta(days=30)
    )

    current = text_of(ko(client, "/policies/terms/"))
    earlier = text_of(ko(client, "/policies/terms/1/"))

    assert "제2판 약관 본문" in current and "아직 시행 전인 약관" not in current
    assert "이전 버전입니다" in earlier and "제1조(목적)" in earlier
    assert ko(client, "/policies/terms/3/").status_code == 404  # not public before it takes effect
    assert ko(client, "/policies/nonsense/").status_code == 404


def test_checkout_states_the_terms_of_the_purchase_when_a_plan_is_chosen(client, shop):
    client.force_login(new_customer().user)

    page = text_of(ko(client, "/checkout/books-monthly/"))
    trial = text_of(ko(client, "/checkout/pro-monthly/"))

    assert "22,000원" in page and "공급가액 9,091원" in page and "부가세 909원" in page and "면세 12,000원" in page
    assert "매월 결제" in page and "해지할 때까지 매월 22,000원이 자동 결제됩니다" in page
    assert "'내 구독' → '구독 해지'에서 한 번에 해지" in page
    assert "결제일로부터 7일 이내" in page  # the refund policy itself
    assert "14일 동안 무료" in trial and "29,900원이 자동 결제됩니다" in trial
    html = ko(client, "/checkout/basic-monthly/").content.decode()
    assert re.search(r'<input type="checkbox" name="agree" value="yes" id="agree" required>', html)  # unticked


def test_subscribing_is_refused_and_nothing_is_created_when_the_agreement_is_not_ticked(client, shop, gateway):
    customer = new_customer()
    register_card(customer, gateway, now=timezone.now())
    client.force_login(customer.user)
    shown = shown_ids(ko(client, "/checkout/basic-monthly/"))

    response = client.post("/subscribe/basic-monthly/", shown, HTTP_ACCEPT_LANGUAGE="ko")

    assert response.status_code == 400
    assert "동의 항목에 체크" in text_of(response)
    assert not Subscription.objects.exists() and not PaymentAttempt.objects.exists()


def test_card_is_not_asked_for_when_the_checkout_agreement_was_not_given(client, shop):
    customer = new_customer()
    client.force_login(customer.user)
    shown = shown_ids(ko(client, "/checkout/basic-monthly/"))

    refused = client.post("/checkout/basic-monthly/", shown)
    card_page = client.get("/account/card/?next=/checkout/basic-monthly/")

    assert refused.status_code == 400
    assert card_page.status_code == 302 and card_page["Location"] == "/checkout/basic-monthly/"
    agreed = client.post("/checkout/basic-monthly/", {**shown, "agree": "yes"})
    assert agreed.status_code == 302 and agreed["Location"].startswith("/account/card/?next=")
    assert client.get("/account/card/?next=/checkout/basic-monthly/").status_code == 200
    assert not BillingKey.objects.exists()


def test_subscribing_records_the_versions_agreed_to_when_the_box_is_ticked(client, shop, gateway):
    customer = new_customer()
    register_card(customer, gateway, now=timezone.now())
    client.force_login(customer.user)
    shown = shown_ids(ko(client, "/checkout/basic-monthly/"))

    response = client.post("/subscribe/basic-monthly/", {**shown, "agree": "yes"})

    assert response.status_code == 302 and response["Location"] == "/account/"
    [agreement] = SubscriptionAgreement.objects.all()
    assert agreement.subscription.status == "active" and agreement.auto_renewal and agreement.channel == "web"
    assert (agreement.terms.kind, agreement.refund_policy.kind, agreement.privacy_policy.kind) == (
        "terms",
        "refund",
        "privacy",
    )
    assert str(agreement.terms.pk) == shown["shown_terms"]


def test_subscribing_asks_to_read_again_when_the_terms_changed_after_the_page_was_shown(client, shop, gateway):
    customer = new_customer()
    register_card(customer, gateway, now=timezone.now())
    client.force_login(customer.user)
    shown = shown_ids(ko(client, "/checkout/basic-monthly/"))
    PolicyDocument.objects.create(kind="terms", version="2", body_ko="바뀐 약관", effective_at=timezone.now())

    response = client.post("/subscribe/basic-monthly/", {**shown, "agree": "yes"})

    assert response.status_code == 409 and "바뀐 약관" not in text_of(response)
    assert not Subscription.objects.exists()


def test_api_subscribe_answers_agreement_required_and_creates_nothing_when_not_agreed(shop, gateway):
    from rest_framework.test import APIClient

    customer = new_customer()
    register_card(customer, gateway, now=timezone.now())
    api = APIClient()
    api.force_authenticate(customer.user)

    refused = api.post("/api/subscriptions/", {"plan": "basic-monthly"}, format="json")
    agreed = api.post("/api/subscriptions/", {"plan": "basic-monthly", "agree_to_terms": True}, format="json")

    assert refused.status_code == 400 and refused.json()["error"]["code"] == "agreement_required"
    assert agreed.status_code == 201
    assert SubscriptionAgreement.objects.get().channel == "api"


@pytest.fixture
def refunded_twice(shop, gateway):
    """A 9,900원 payment refunded in two parts, 3,000원 then 6,900원 (the issue's case)."""
    customer = new_customer()
    now = timezone.now()
    register_card(customer, gateway, now=now)
    from subscriptions.models import Plan

    subscription_create(customer=customer, plan=Plan.objects.get(code="basic-monthly"), now=now, gateway=gateway)
    attempt = PaymentAttempt.objects.get(status="succeeded")
    return customer, attempt, gateway


def refund(attempt, gateway, amount, reason):
    refund_create(attempt_id=attempt.pk, amount=amount, reason=reason, now=timezone.now(), gateway=gateway)


def test_money_status_follows_the_refunds_on_every_page_and_in_the_api(client, refunded_twice):
    from rest_framework.test import APIClient

    customer, attempt, gateway = refunded_twice
    client.force_login(customer.user)
    api = APIClient()
    api.force_authenticate(customer.user)
    invoice = Invoice.objects.get()
    pages = ["/account/invoices/", f"/account/invoices/{invoice.pk}/", "/account/"]

    assert all("결제 완료" in text_of(ko(client, p)) for p in pages)
    refund(attempt, gateway, 3_000, "고객 요청 부분 환불")
    assert all("부분 환불 (3,000원 환불)" in text_of(ko(client, p)) for p in pages)
    assert "Partially refunded (₩3,000 refunded)" in text_of(en(client, "/account/invoices/"))
    assert api.get("/api/invoices/").json()["results"][0]["money_status"] == "partially_refunded"
    assert api.get("/api/payments/").json()["results"][0]["money_status"] == "partially_refunded"
    refund(attempt, gateway, 6_900, "서비스 해지")
    for page in pages:
        assert "전액 환불" in text_of(ko(client, page)) and "결제 완료" not in text_of(ko(client, page))
    assert api.get("/api/invoices/").json()["results"][0]["money_status"] == "refunded"


def test_receipt_refund_lines_show_the_books_split_and_reconcile_when_refunded_in_parts(client, refunded_twice):
    customer, attempt, gateway = refunded_twice
    refund(attempt, gateway, 3_000, "고객 요청 부분 환불")
    refund(attempt, gateway, 6_900, "서비스 해지")
    client.force_login(customer.user)
    invoice = Invoice.objects.get()

    html = ko(client, f"/account/invoices/{invoice.pk}/").content.decode()

    rows = re.findall(r'<tr class="refund">(.*?)</tr>', html)
    cells = [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in rows]
    won = [[int(c.replace(",", "").removesuffix("원")) for c in row[2:]] for row in cells]
    books = [
        (r.amount - r.vat_amount - r.tax_free_amount, r.vat_amount, r.tax_free_amount, r.amount)
        for r in attempt.refunds.order_by("created_at")
    ]
    assert [tuple(row) for row in won] == books  # supply, VAT, tax-free, amount as the books record them
    assert [row[1] for row in cells] == ["고객 요청 부분 환불", "서비스 해지"]
    assert all(supply + vat + free == amount for supply, vat, free, amount in won)
    assert [sum(column) for column in zip(*won, strict=True)] == [9_000, 900, 0, 9_900]  # = the invoice's parts
    assert re.search(r'id="refunded">9,900원<', html) and re.search(r'id="net">0원<', html)


def all_rendered_pages(client, customer):
    invoice = Invoice.objects.filter(customer=customer).first()
    paths = [*PAGES, "/policies/refund/", "/policies/privacy/", "/account/change/", "/account/cancel/"]
    paths += ["/account/pause/", "/account/change/pro-monthly/"]
    if invoice:
        paths.append(f"/account/invoices/{invoice.pk}/")
    return paths


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_no_subscriber_page_doubles_a_full_stop_prints_a_fraction_of_a_won_or_the_other_languages_plan_name(
    client, refunded_twice, lang
):
    from subscriptions.models import Plan

    customer, attempt, gateway = refunded_twice
    refund(attempt, gateway, 3_000, "고객 요청")
    # The card company's reason ends in a full stop; the dunning banner used to add a second one.
    sub = Subscription.objects.get()
    Subscription.objects.filter(pk=sub.pk).update(status="past_due")
    PaymentAttempt.objects.create(
        invoice=Invoice.objects.get(),
        merchant_uid="kb-failed-1",
        customer_uid=attempt.customer_uid,
        amount=9_900,
        status="failed",
        failure_reason="[잔액부족] 카드 잔액이 부족합니다.",
        created_at=timezone.now(),
    )
    client.force_login(customer.user)
    other = [p.name_en if lang == "ko" else p.name_ko for p in Plan.objects.all()]

    for path in all_rendered_pages(client, customer):
        response = client.get(path, HTTP_ACCEPT_LANGUAGE=lang, follow=True)
        assert response.status_code == 200, path
        text = text_of(response)
        assert ".." not in text.replace("…", ""), path
        assert not re.search(r"\d\.\d+\s*원|₩\s?[\d,]+\.\d", text), path
        for name in other:
            assert name not in text, (path, name)
    account = text_of(client.get("/account/", HTTP_ACCEPT_LANGUAGE="ko"))
    assert "카드 잔액이 부족합니다." in account


def test_upgrade_preview_lines_add_up_to_the_amount_charged_in_whole_days_and_won(client, shop, gateway):
    from billing import clock
    from subscriptions.models import Plan

    customer = new_customer()
    now = clock.now()
    register_card(customer, gateway, now=now)
    subscription_create(customer=customer, plan=Plan.objects.get(code="basic-monthly"), now=now, gateway=gateway)
    clock.advance_to(now + dt.timedelta(days=19, hours=7))
    client.force_login(customer.user)

    html = ko(client, "/account/change/pro-monthly/").content.decode()

    lines = re.findall(r"<li>(.*?)</li>", html.split('id="explanation"')[1].split("</ol>")[0])
    due = int(re.search(r'id="amount-due">[^:]*: ([\d,]+)원', html).group(1).replace(",", ""))
    credit, charge = lines[0], lines[1]
    assert re.fullmatch(r"기존 요금제 남은 (약 )?\d+일분 [\d,]+원 차감", credit)
    assert re.fullmatch(r"새 요금제 남은 (약 )?\d+일분 [\d,]+원", charge)
    amounts = [int(re.search(r"([\d,]+)원", line).group(1).replace(",", "")) for line in (credit, charge)]
    assert amounts[1] - amounts[0] == due > 0
