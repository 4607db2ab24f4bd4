"""Consent on the subscriber pages and the API: the account banner, the email links (a GET changes nothing,
a link works once, a bad link is refused with a clear page and changes nothing), and the API's answer."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from billing import clock
from subscriptions.models import ConsentDecision, ConsentRequest
from subscriptions.services.consent import consent_token_make
from subscriptions.services.lifecycle import subscription_create
from tests.factories import PlanFactory, make_customer, register_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def trialing(gateway):
    def make(*, started=None):
        customer = make_customer(email="t@example.com")
        now = started or clock.now()
        register_card(customer, gateway, now=now)
        plan = PlanFactory(code=f"trial-{customer.pk}", amount=19_900, trial_days=14)
        return subscription_create(customer=customer, plan=plan, now=now, gateway=gateway)

    return make


def request_of(sub) -> ConsentRequest:
    return ConsentRequest.objects.get(subscription=sub)


def test_account_banner_offers_two_equal_choices_and_records_the_answer_when_one_is_clicked(client, trialing):
    sub = trialing()
    client.force_login(sub.customer.user)
    page = client.get("/account/", HTTP_ACCEPT_LANGUAGE="ko").content.decode()
    assert 'id="consent-yes"' in page and 'id="consent-no"' in page
    assert "19,900원" in page and "checked" not in page.split('id="consent-trial_conversion"')[1].split("</div>")[0]

    client.post(f"/account/consent/{request_of(sub).pk}/", {"answer": "yes"}, HTTP_USER_AGENT="Browser/1")

    decision = request_of(sub).decisions.get()
    assert (decision.outcome, decision.channel, decision.user_agent) == ("granted", "web", "Browser/1")
    assert 'id="consent-yes"' not in client.get("/account/").content.decode()


def test_email_link_get_changes_nothing_and_its_confirmation_records_once(client, trialing):
    sub = trialing()
    token = consent_token_make(request=request_of(sub), outcome="refused", nonce="n1")

    shown = client.get("/consent/", {"t": token})
    assert shown.status_code == 200 and 'id="consent-confirm"' in shown.content.decode()
    assert not ConsentDecision.objects.exists()

    done = client.post("/consent/", {"t": token})
    assert done.status_code == 200 and 'id="consent-done"' in done.content.decode()
    replay = client.post("/consent/", {"t": token})
    assert replay.status_code == 409 and 'data-code="consent_token_used"' in replay.content.decode()
    assert [d.outcome for d in request_of(sub).decisions.all()] == ["refused"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_forged_expired_and_other_subscriber_links_are_refused_with_a_clear_page_and_change_nothing(
    client, trialing, method
):
    sub = trialing()
    good = consent_token_make(request=request_of(sub), outcome="granted", nonce="n2")
    forged = good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb")
    ended = trialing(started=clock.now() - dt.timedelta(days=15))
    past = consent_token_make(request=request_of(ended), outcome="granted", nonce="n3")

    answers = {"forged": getattr(client, method)("/consent/", {"t": forged})}
    answers["expired"] = getattr(client, method)("/consent/", {"t": past})
    client.force_login(make_customer().user)
    answers["other"] = getattr(client, method)("/consent/", {"t": good})

    assert {k: (r.status_code, r.context["code"]) for k, r in answers.items()} == {
        "forged": (400, "consent_token_invalid"),
        "expired": (409, "consent_closed"),
        "other": (403, "consent_token_other_subscriber"),
    }
    assert not ConsentDecision.objects.exists()


def test_api_lists_the_question_and_takes_an_answer_but_no_unknown_key(trialing):
    sub = trialing()
    api = APIClient()
    api.force_authenticate(sub.customer.user)

    listed = api.get(f"/api/subscriptions/{sub.pk}/consents").json()
    assert [(c["kind"], c["outcome"], c["amount_after"]) for c in listed] == [("trial_conversion", "pending", 19_900)]
    url = f"/api/subscriptions/{sub.pk}/consents/{listed[0]['id']}"
    unknown = api.post(url, {"decision": "granted", "agree": True}, format="json")
    assert unknown.status_code == 400 and not ConsentDecision.objects.exists()
    missing = api.post(url, {}, format="json")
    assert missing.status_code == 400 and not ConsentDecision.objects.exists()

    answered = api.post(url, {"decision": "granted"}, format="json")

    assert answered.status_code == 200 and answered.json()["outcome"] == "granted"
    assert request_of(sub).decisions.get().channel == "api"


def test_api_answers_404_for_another_subscribers_question(trialing):
    mine, theirs = trialing(), trialing()
    api = APIClient()
    api.force_authenticate(mine.customer.user)
    response = api.post(
        f"/api/subscriptions/{mine.pk}/consents/{request_of(theirs).pk}", {"decision": "refused"}, format="json"
    )
    assert response.status_code == 404 and not ConsentDecision.objects.exists()
