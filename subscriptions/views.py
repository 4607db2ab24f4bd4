"""Subscriber web pages (entry points: parse input, call one service or selector, render).

Korean first, English second. Every object is looked up through the signed-in customer, so another
subscriber's invoice is a 404. Amounts are never taken from the browser: the server decides every amount.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import wraps
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import resolve, reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from billing import clock
from billing.errors import ApplicationError
from billing.selectors import billing_key_default
from billing.services.billing_keys import card_registration_confirm, card_registration_prepare
from billing.services.customers import customer_get_or_create
from subscriptions import ratelimit
from subscriptions.errors import AgreementRequiredError
from subscriptions.forms import CancelForm, PauseForm
from subscriptions.models import (
    ConsentDecision,
    ConsentRequest,
    Plan,
    PlanPriceVersion,
    PolicyDocument,
    Subscription,
    SubscriptionAgreement,
)
from subscriptions.selectors import (
    account_summary,
    checkout_terms,
    invoice_receipt,
    invoices_for_customer,
    policies_current,
    policy_versions,
)
from subscriptions.services.consent import (
    Answerer,
    consent_decide,
    consent_token_read,
    consent_token_use,
    consents_open_for,
)
from subscriptions.services.lifecycle import (
    subscription_cancel,
    subscription_create,
    subscription_pause,
    subscription_resume,
)
from subscriptions.services.notices import NOTICE_DAYS
from subscriptions.services.plan_changes import subscription_change_plan, subscription_change_preview
from subscriptions.services.policies import agreement_for_checkout
from subscriptions.templatetags.kbilling import sentence


def _customer(request):
    return customer_get_or_create(user=request.user)


def _live_subscription(customer) -> Subscription:
    subscription = Subscription.objects.filter(customer=customer).exclude(status=Subscription.Status.CANCELED).first()
    if subscription is None:
        raise Http404
    return subscription


def pricing(request):
    current_plan_id = None
    if request.user.is_authenticated:
        live = (
            Subscription.objects.filter(customer__user=request.user)
            .exclude(status=Subscription.Status.CANCELED)
            .first()
        )
        current_plan_id = live.plan_id if live else None
    return render(
        request,
        "subscriptions/pricing.html",
        {"plans": Plan.objects.filter(active=True), "current_plan_id": current_plan_id},
    )


class LoginView(auth_views.LoginView):
    """Django's log-in, refused with 429 after too many failures for one username from one client IP.

    While refused, even the right password is not checked, so guessing gains nothing; a successful log-in
    clears the count. The IP is REMOTE_ADDR (as for the webhook allow-list): behind a proxy that is the
    proxy's address unless the proxy sets it, and the limit then counts per username.
    """

    def _limit_key(self) -> tuple[str, str]:
        username = str(self.request.POST.get("username", "")).strip().lower()
        return username, self.request.META.get("REMOTE_ADDR", "")

    def post(self, request, *args, **kwargs):
        limit = ratelimit.login_failures()
        if limit.exceeded(*self._limit_key()):
            retry_after = limit.retry_after(*self._limit_key())
            messages.error(request, ratelimit.refusal_message("login", retry_after=retry_after))
            form = self.form_class(request, initial={"username": request.POST.get("username", "")})
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(retry_after)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        ratelimit.login_failures().hit(*self._limit_key())
        return super().form_invalid(form)

    def form_valid(self, form):
        ratelimit.login_failures().reset(*self._limit_key())
        return super().form_valid(form)


def _card_registration_limited(view):
    """At most RATE_LIMIT_CARD_REGISTRATION calls per user per window: billing-key issuance is where card
    testers probe stolen cards, and the API's DRF throttle does not cover these session views."""

    @wraps(view)
    def limited(request, *args, **kwargs):
        limit = ratelimit.card_registrations(view.__name__)
        if limit.hit(str(request.user.pk)) > limit.limit:
            retry_after = limit.retry_after(str(request.user.pk))
            message = ratelimit.refusal_message("card_registration", retry_after=retry_after)
            error = {"code": "throttled", "message": message, "retry_after": retry_after}
            return JsonResponse({"error": error}, status=429, headers={"Retry-After": str(retry_after)})
        return view(request, *args, **kwargs)

    return limited


def signup(request):
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        return redirect(_safe_next(request.GET.get("next")) or "subscriptions:account")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def account(request):
    customer = _customer(request)
    summary = account_summary(customer=customer)
    consents = consents_open_for(subscription=summary.subscription, now=clock.now()) if summary.subscription else []
    return render(
        request,
        "subscriptions/account.html",
        {
            "consents": consents,
            "summary": summary,
            "subscription": summary.subscription,
            "card": summary.card,
            "recent_invoices": invoices_for_customer(customer=customer)[:3],
        },
    )


CHECKOUT_SESSION_KEY = "checkout_agreement"


def _checkout_page(request, plan: Plan, *, status: int = 200, error: str = ""):
    customer = _customer(request)
    summary = account_summary(customer=customer)
    now = clock.now()
    policies = policies_current(now=now)
    agreed = _agreed_in_session(request, plan)
    context = {
        "plan": plan,
        "card": summary.card,
        "summary": summary,
        "terms": checkout_terms(plan=plan, now=now),
        "policies": policies,
        "shown": {kind: document.pk for kind, document in policies.items()},
        "agreed": agreed and not error,
        "agreement_error": error,
        "notice_days": NOTICE_DAYS,
    }
    return render(request, "subscriptions/checkout.html", context, status=status)


def _agreement_token(plan: Plan, policies: dict) -> dict:
    """What the session remembers between ticking the box and coming back from the card page."""
    return {"plan": plan.code, "documents": {kind: document.pk for kind, document in sorted(policies.items())}}


def _agreement_from_post(request):
    shown = {kind: request.POST.get(f"shown_{kind}", "") for kind in PolicyDocument.Kind.values}
    return agreement_for_checkout(
        agreed=request.POST.get("agree") == "yes",
        now=clock.now(),
        channel=SubscriptionAgreement.Channel.WEB,
        shown=shown,
        ip_address=request.META.get("REMOTE_ADDR"),
    )


@login_required
def checkout(request, code):
    """The terms of the purchase, and the agreement without which neither a card is asked for nor anything
    charged. Posting here (no card yet) records the agreement in the session and goes on to the card page."""
    plan = get_object_or_404(Plan, code=code, active=True)
    if request.method == "POST":
        try:
            _agreement_from_post(request)
        except ApplicationError as exc:
            return _checkout_page(request, plan, status=exc.status_code, error=exc.message)
        request.session[CHECKOUT_SESSION_KEY] = _agreement_token(plan, policies_current(now=clock.now()))
        checkout_url = reverse("subscriptions:checkout", args=[plan.code])
        return redirect(f"{reverse('subscriptions:card')}?next={quote(checkout_url)}")
    return _checkout_page(request, plan)


@login_required
@require_POST
def subscribe(request, code):
    plan = get_object_or_404(Plan, code=code, active=True)
    try:
        agreement = _agreement_from_post(request)
    except ApplicationError as exc:
        return _checkout_page(request, plan, status=exc.status_code, error=exc.message)
    try:
        subscription = subscription_create(customer=_customer(request), plan=plan, now=clock.now(), agreement=agreement)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("subscriptions:checkout", code=plan.code)
    request.session.pop(CHECKOUT_SESSION_KEY, None)
    if subscription.status == Subscription.Status.INCOMPLETE:
        summary = account_summary(customer=subscription.customer)
        reason = summary.last_failure.failure_reason if summary.last_failure else ""
        messages.error(
            request,
            _("The payment was declined: %(reason)s Try another card.")
            % {"reason": sentence(reason or _("no reason given"))},
        )
        return redirect("subscriptions:checkout", code=plan.code)
    if subscription.status == Subscription.Status.TRIALING:
        messages.success(request, _("Your free trial has started."))
    else:
        messages.success(request, _("Payment complete. Your subscription is active."))
    return redirect("subscriptions:account")


@login_required
def card(request):
    next_url = _safe_next(request.GET.get("next"))
    plan = _checkout_plan(next_url)
    if plan is not None and not _agreed_in_session(request, plan):
        if billing_key_default(customer_id=_customer(request).pk) is None:
            # On the way to a subscription, a card is asked for only after the subscriber agreed at checkout.
            messages.error(request, AgreementRequiredError().message)
            return redirect("subscriptions:checkout", code=plan.code)
    return render(request, "subscriptions/card.html", {"next": next_url, "plan": plan})


def _agreed_in_session(request, plan: Plan) -> bool:
    return request.session.get(CHECKOUT_SESSION_KEY) == _agreement_token(plan, policies_current(now=clock.now()))


def _checkout_plan(next_url: str) -> Plan | None:
    """The plan whose checkout the card page will return to, if it returns to one."""
    try:
        match = resolve(next_url) if next_url else None
    except Http404:
        return None
    if match is None or match.view_name != "subscriptions:checkout":
        return None
    return Plan.objects.filter(code=match.kwargs.get("code"), active=True).first()


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") else ""


@login_required
@require_POST
@_card_registration_limited
def card_prepare(request):
    return JsonResponse(card_registration_prepare(customer=_customer(request), now=clock.now()))


@login_required
@require_POST
@_card_registration_limited
def card_confirm(request):
    try:
        payload = json.loads(request.body or "{}")
        customer_uid = str(payload.get("customer_uid") or "")
        billing_key = str(payload.get("billing_key") or "") or None  # PortOne V2: the key the SDK returned
    except (ValueError, AttributeError):
        customer_uid, billing_key = "", None
    if "\x00" in customer_uid or "\x00" in (billing_key or ""):  # PostgreSQL cannot even compare text with NUL
        customer_uid, billing_key = "", None
    try:
        key = card_registration_confirm(
            customer=_customer(request), customer_uid=customer_uid, billing_key=billing_key, now=clock.now()
        )
    except ApplicationError as exc:
        return JsonResponse({"error": exc.as_dict()}, status=exc.status_code)
    return JsonResponse({"card_name": key.card_name, "card_number": key.card_number_masked})


@login_required
def change_plan(request):
    subscription = _live_subscription(_customer(request))
    plans = Plan.objects.filter(active=True).exclude(pk=subscription.plan_id)
    return render(request, "subscriptions/change_plan.html", {"subscription": subscription, "plans": plans})


@login_required
def change_plan_preview(request, code):
    subscription = _live_subscription(_customer(request))
    plan = get_object_or_404(Plan, code=code, active=True)
    now = clock.now()
    if request.method == "POST":
        try:
            subscription_change_plan(
                subscription=subscription,
                new_plan=plan,
                now=now,
                proration_at=_previewed_at(request.POST.get("proration_at")),
                actor=request.user,
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("subscriptions:change-plan-preview", code=plan.code)
        messages.success(request, _("Your plan change is confirmed."))
        return redirect("subscriptions:account")
    try:
        preview = subscription_change_preview(subscription=subscription, new_plan=plan, now=now)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("subscriptions:change-plan")
    lang = "en" if (get_language() or "ko").startswith("en") else "ko"
    return render(
        request,
        "subscriptions/change_plan_preview.html",
        {
            "subscription": subscription,
            "plan": plan,
            "preview": preview,
            "lines": preview.explanation(lang),
            "proration_at": f"{now.timestamp():.6f}",
        },
    )


def _previewed_at(value: str | None):
    """The preview's instant posted back with the confirmation (None when absent or unreadable)."""
    try:
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC) if value else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


@login_required
def cancel(request):
    subscription = _live_subscription(_customer(request))
    form = CancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        at_period_end = form.cleaned_data["when"] == "period_end"
        try:
            subscription_cancel(
                subscription=subscription,
                now=clock.now(),
                at_period_end=at_period_end,
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("subscriptions:account")
        if at_period_end:
            messages.success(request, _("Your subscription will end at the end of the current period."))
        else:
            messages.success(request, _("Your subscription has ended."))
        return redirect("subscriptions:account")
    return render(request, "subscriptions/cancel.html", {"subscription": subscription, "form": form})


@login_required
@require_POST
def resume(request):
    subscription = _live_subscription(_customer(request))
    try:
        subscription_resume(subscription=subscription, now=clock.now(), actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Your subscription continues."))
    return redirect("subscriptions:account")


@login_required
def pause(request):
    subscription = _live_subscription(_customer(request))
    form = PauseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subscription_pause(
                subscription=subscription, now=clock.now(), periods=form.cleaned_data["periods"], actor=request.user
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("subscriptions:account")
        messages.success(request, _("Your subscription will pause from the next period."))
        return redirect("subscriptions:account")
    return render(request, "subscriptions/pause.html", {"subscription": subscription, "form": form})


def _answerer(request, channel: str) -> Answerer:
    return Answerer(
        channel=channel,
        actor=request.user,
        ip_address=request.META.get("REMOTE_ADDR"),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        language="en" if (get_language() or "ko").startswith("en") else "ko",
    )


_ANSWERS = {"yes": ConsentDecision.Outcome.GRANTED, "no": ConsentDecision.Outcome.REFUSED}


@login_required
@require_POST
def consent_answer(request, request_id: int):
    """The account banner's two buttons: yes or no to one consent question of the signed-in subscriber."""
    subscription = _live_subscription(_customer(request))
    consent = get_object_or_404(ConsentRequest, pk=request_id, subscription=subscription)
    outcome = _ANSWERS.get(request.POST.get("answer", ""))
    if outcome is None:
        messages.error(request, _("Choose one of the two answers."))
        return redirect("subscriptions:account")
    try:
        consent_decide(
            request_id=consent.pk,
            outcome=outcome,
            answerer=_answerer(request, ConsentDecision.Channel.WEB),
            now=clock.now(),
            customer_id=subscription.customer_id,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("subscriptions:account")
    messages.success(request, _consent_thanks(consent, outcome))
    return redirect("subscriptions:account")


def _consent_thanks(consent: ConsentRequest, outcome: str) -> str:
    if outcome == ConsentDecision.Outcome.GRANTED:
        return _("Thank you: your agreement is recorded. You can still cancel at any time.")
    if consent.kind == ConsentRequest.Kind.TRIAL_CONVERSION:
        return _("Your answer is recorded: the subscription ends with the trial and nothing is charged.")
    if consent.non_consent_action == PlanPriceVersion.NonConsentAction.KEEP_OLD_PRICE:
        return _("Your answer is recorded: you keep the old price.")
    return _("Your answer is recorded: the subscription ends at the renewal and the new price is not charged.")


def consent_link(request):
    """An email's yes or no link. GET shows what the answer means and changes nothing (mail scanners open
    links); only the page's POST records it, once per email, without a log-in."""
    token = request.POST.get("t") if request.method == "POST" else request.GET.get("t")
    now = clock.now()
    try:
        if request.method == "POST":
            decision = consent_token_use(
                token=token or "",
                answerer=_answerer(request, ConsentDecision.Channel.EMAIL),
                now=now,
                user=request.user,
            )
            return render(
                request,
                "subscriptions/consent_link.html",
                {"done": True, "message": _consent_thanks(decision.request, decision.outcome)},
            )
        link = consent_token_read(token=token or "", now=now, user=request.user)
    except ApplicationError as exc:
        return render(
            request, "subscriptions/consent_link.html", {"error": exc.message, "code": exc.code}, status=exc.status_code
        )
    return render(
        request,
        "subscriptions/consent_link.html",
        {"link": link, "token": token, "granting": link.outcome == ConsentDecision.Outcome.GRANTED},
    )


@login_required
def invoices(request):
    return render(
        request, "subscriptions/invoices.html", {"invoices": invoices_for_customer(customer=_customer(request))}
    )


@login_required
def receipt(request, invoice_id: int):
    receipt = invoice_receipt(customer=_customer(request), invoice_id=invoice_id)
    if receipt is None:
        raise Http404
    return render(request, "subscriptions/receipt.html", {"receipt": receipt, "invoice": receipt.invoice})


def policy(request, kind: str, version: str | None = None):
    """A policy the merchant wrote: the version in effect, or an earlier one by its version label."""
    if kind not in PolicyDocument.Kind.values:
        raise Http404
    versions = policy_versions(kind=kind, now=clock.now())
    if version is None:
        document = versions[0] if versions else None
    else:
        document = next((v for v in versions if v.version == version), None)
        if document is None:
            raise Http404
    return render(
        request,
        "subscriptions/policy.html",
        {
            "kind": kind,
            "title": PolicyDocument.Kind(kind).label,
            "document": document,
            "versions": versions,
            "is_current": bool(versions) and document == versions[0],
        },
    )
