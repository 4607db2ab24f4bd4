"""Subscriber web pages (entry points: parse input, call one service, render). Korean first, English second."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from billing import clock
from billing.errors import ApplicationError
from billing.models import BillingKey
from billing.services.billing_keys import card_registration_confirm, card_registration_prepare
from billing.services.customers import customer_get_or_create
from subscriptions.models import Plan, Subscription
from subscriptions.services.lifecycle import subscription_create


def pricing(request):
    return render(request, "subscriptions/pricing.html", {"plans": Plan.objects.filter(active=True)})


def signup(request):
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        return redirect("subscriptions:account")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def account(request):
    customer = customer_get_or_create(user=request.user)
    subscription = (
        Subscription.objects.filter(customer=customer).select_related("plan", "billing_key").order_by("-id").first()
    )
    card = BillingKey.objects.filter(customer=customer, status="active", is_default=True).first()
    return render(request, "subscriptions/account.html", {"subscription": subscription, "card": card})


@login_required
def card(request):
    return render(request, "subscriptions/card.html", {"next": request.GET.get("next", "")})


@login_required
@require_POST
def card_prepare(request):
    customer = customer_get_or_create(user=request.user)
    return JsonResponse(card_registration_prepare(customer=customer, now=clock.now()))


@login_required
@require_POST
def card_confirm(request):
    customer = customer_get_or_create(user=request.user)
    try:
        payload = json.loads(request.body or "{}")
        customer_uid = str(payload.get("customer_uid") or "")
    except (ValueError, AttributeError):
        customer_uid = ""
    try:
        key = card_registration_confirm(customer=customer, customer_uid=customer_uid, now=clock.now())
    except ApplicationError as exc:
        return JsonResponse({"error": exc.as_dict()}, status=exc.status_code)
    return JsonResponse({"card_name": key.card_name, "card_number": key.card_number_masked})


@login_required
@require_POST
def subscribe(request, code):
    plan = get_object_or_404(Plan, code=code, active=True)
    customer = customer_get_or_create(user=request.user)
    try:
        subscription = subscription_create(customer=customer, plan=plan, now=clock.now())
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("subscriptions:pricing")
    if subscription.status == Subscription.Status.INCOMPLETE:
        messages.error(request, "결제가 완료되지 않았습니다. 카드를 확인해 주세요.")
    else:
        messages.success(request, "구독이 시작되었습니다.")
    return redirect("subscriptions:account")
