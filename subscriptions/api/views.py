"""Subscriptions API entry points: parse input, call one service or selector, render
(docs/architecture.md#layers-and-import-direction).

Every subscription is scoped to its owner: another subscriber's id answers 404, never 403. Each action
looks the subscription up before validating the body, so the answer never depends on someone else's data.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView, ListAPIView, RetrieveAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import clock
from billing.api.schema import AUTHENTICATED, PAGINATED, error_responses
from billing.api.serializers import public_failure_reason
from billing.errors import PaymentDeclinedError, PaymentPendingError
from billing.models import PaymentAttempt
from billing.services.billing_keys import billing_key_delete
from billing.services.customers import customer_get_or_create
from subscriptions import selectors
from subscriptions.api.errors import BillingKeyInUseError
from subscriptions.api.serializers import (
    PlanChangePreviewSerializer,
    PlanChangeSerializer,
    PlanSerializer,
    SubscriptionCancelSerializer,
    SubscriptionCreateSerializer,
    SubscriptionPauseSerializer,
    SubscriptionSerializer,
)
from subscriptions.models import Subscription
from subscriptions.services.lifecycle import (
    subscription_cancel,
    subscription_create,
    subscription_latest_attempt,
    subscription_pause,
    subscription_resume,
)
from subscriptions.services.plan_changes import subscription_change_plan, subscription_change_preview

NOT_YOURS = {**AUTHENTICATED, 404: "not_found"}
STATE = "subscription_state"


def _subscription_or_404(request, pk: int) -> Subscription:
    subscription = selectors.subscriptions_for_user(user=request.user).filter(pk=pk).first()
    if subscription is None:
        raise NotFound()
    return subscription


def _raise_unless_first_charge_went_through(subscription: Subscription) -> None:
    """subscription_create leaves the subscription `incomplete` when its first charge did not succeed. The API
    answers as a plan change does (payment_declined 402, payment_pending 409), naming the subscription that
    now waits for payment: a new card retries the charge, or cancel it."""
    if subscription.status != Subscription.Status.INCOMPLETE:
        return
    attempt = subscription_latest_attempt(subscription)
    if attempt is None:
        return
    if attempt.status == PaymentAttempt.Status.FAILED:
        reason = public_failure_reason(attempt)
        raise PaymentDeclinedError(
            _(
                "The card was declined (%(reason)s). The subscription waits for payment: register another card "
                "to retry, or cancel it."
            )
            % {"reason": reason or _("no reason given")},
            reason=reason,
            decline_class=attempt.decline_class,
            subscription_id=subscription.pk,
        )
    if attempt.is_unsettled:
        raise PaymentPendingError(subscription_id=subscription.pk)


# --- plans -------------------------------------------------------------------------------------------


@extend_schema(
    tags=["plans"],
    summary="Plans on sale (public)",
    responses={200: PlanSerializer(many=True), **error_responses(PAGINATED)},
)
class PlanListApi(ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = PlanSerializer

    def get_queryset(self):
        return selectors.plans_available()


# --- subscriptions -------------------------------------------------------------------------------------


class SubscriptionListCreateApi(GenericAPIView):
    serializer_class = SubscriptionSerializer

    def get_queryset(self):
        return selectors.subscriptions_for_user(user=self.request.user)

    @extend_schema(
        tags=["subscriptions"],
        summary="Your subscriptions (the live one and ended ones), newest first",
        responses={200: SubscriptionSerializer(many=True), **error_responses({**AUTHENTICATED, **PAGINATED})},
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SubscriptionSerializer(page, many=True).data)

    @extend_schema(
        tags=["subscriptions"],
        summary="Subscribe to a plan with your default card",
        description=(
            "Without a trial the first period is charged now. If that charge is declined the answer is "
            "payment_declined (402) with subscription_id: the subscription stays incomplete for a day, a newly "
            "registered card retries the charge, or cancel it."
        ),
        request=SubscriptionCreateSerializer,
        responses={
            201: SubscriptionSerializer,
            **error_responses(
                {
                    400: "validation_error, plan_not_available, no_payment_method",
                    **AUTHENTICATED,
                    402: "payment_declined",
                    409: "already_subscribed, payment_pending",
                }
            ),
        },
    )
    def post(self, request):
        serializer = SubscriptionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = customer_get_or_create(user=request.user)
        subscription = subscription_create(customer=customer, plan=serializer.validated_data["plan"], now=clock.now())
        _raise_unless_first_charge_went_through(subscription)
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)


@extend_schema(
    tags=["subscriptions"],
    summary="One of your subscriptions",
    responses={200: SubscriptionSerializer, **error_responses(NOT_YOURS)},
)
class SubscriptionDetailApi(RetrieveAPIView):
    serializer_class = SubscriptionSerializer

    def get_queryset(self):
        return selectors.subscriptions_for_user(user=self.request.user)


class SubscriptionChangePreviewApi(APIView):
    @extend_schema(
        tags=["subscriptions"],
        summary="What changing to a plan would cost now (or at proration_at), and why (ko and en)",
        request=PlanChangeSerializer,
        responses={
            200: PlanChangePreviewSerializer,
            **error_responses(
                {
                    400: "validation_error, plan_not_available, invalid_proration_at",
                    **NOT_YOURS,
                    409: "plan_change_not_allowed, period_not_current (the period is being renewed)",
                }
            ),
        },
    )
    def post(self, request, pk: int):
        subscription = _subscription_or_404(request, pk)
        serializer = PlanChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        preview = subscription_change_preview(
            subscription=subscription,
            new_plan=serializer.validated_data["plan"],
            now=clock.now(),
            proration_at=serializer.validated_data["proration_at"],
        )
        return Response(PlanChangePreviewSerializer(preview).data)


class SubscriptionChangePlanApi(APIView):
    @extend_schema(
        tags=["subscriptions"],
        summary="Change plan: an upgrade is charged and applied now, a downgrade waits for the period end",
        request=PlanChangeSerializer,
        responses={
            200: SubscriptionSerializer,
            **error_responses(
                {
                    400: "validation_error, plan_not_available",
                    **NOT_YOURS,
                    402: "payment_declined (nothing changed)",
                    409: "plan_change_not_allowed, payment_pending (applies once Iamport confirms the charge)",
                }
            ),
        },
    )
    def post(self, request, pk: int):
        subscription = _subscription_or_404(request, pk)
        serializer = PlanChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = subscription_change_plan(
            subscription=subscription,
            new_plan=serializer.validated_data["plan"],
            now=clock.now(),
            proration_at=serializer.validated_data["proration_at"],
            actor=request.user,
        )
        return Response(SubscriptionSerializer(subscription).data)


class SubscriptionCancelApi(APIView):
    @extend_schema(
        tags=["subscriptions"],
        summary="Cancel at the period end (default) or now",
        request=SubscriptionCancelSerializer,
        responses={
            200: SubscriptionSerializer,
            **error_responses({400: "validation_error", **NOT_YOURS, 409: STATE}),
        },
    )
    def post(self, request, pk: int):
        subscription = _subscription_or_404(request, pk)
        serializer = SubscriptionCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = subscription_cancel(
            subscription=subscription,
            now=clock.now(),
            at_period_end=serializer.validated_data["at_period_end"],
            reason=serializer.validated_data["reason"],
            actor=request.user,
        )
        return Response(SubscriptionSerializer(subscription).data)


class SubscriptionResumeApi(APIView):
    @extend_schema(
        tags=["subscriptions"],
        summary="Undo a scheduled cancel or pause, or end a pause now (charging the current period)",
        request=None,
        responses={200: SubscriptionSerializer, **error_responses({**NOT_YOURS, 409: STATE})},
    )
    def post(self, request, pk: int):
        subscription = _subscription_or_404(request, pk)
        subscription = subscription_resume(subscription=subscription, now=clock.now(), actor=request.user)
        return Response(SubscriptionSerializer(subscription).data)


class SubscriptionPauseApi(APIView):
    @extend_schema(
        tags=["subscriptions"],
        summary="Pause from the next period, for some periods or until resumed",
        request=SubscriptionPauseSerializer,
        responses={
            200: SubscriptionSerializer,
            **error_responses({400: "validation_error", **NOT_YOURS, 409: STATE}),
        },
    )
    def post(self, request, pk: int):
        subscription = _subscription_or_404(request, pk)
        serializer = SubscriptionPauseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = subscription_pause(
            subscription=subscription,
            now=clock.now(),
            periods=serializer.validated_data["periods"],
            actor=request.user,
        )
        return Response(SubscriptionSerializer(subscription).data)


# --- removing a card: here, not in billing.api, because it must know about subscriptions ------------------


class BillingKeyDeleteApi(APIView):
    @extend_schema(
        tags=["billing keys"],
        summary="Remove a card (deleted at Iamport too)",
        request=None,
        responses={
            204: None,
            **error_responses(
                {
                    **NOT_YOURS,
                    409: "billing_key_in_use (the only card of a live subscription)",
                    503: "gateway_unavailable",
                }
            ),
        },
    )
    def delete(self, request, pk: int):
        billing_key = selectors.billing_key_for_user(user=request.user, pk=pk)
        if billing_key is None:
            raise NotFound()
        if selectors.billing_key_is_only_card_of_live_subscription(billing_key=billing_key):
            raise BillingKeyInUseError()
        billing_key_delete(billing_key=billing_key, now=clock.now(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
