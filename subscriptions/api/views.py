"""Subscriptions API entry points: parse input, call one service or selector, render
(docs/architecture.md#layers-and-import-direction).

Every subscription is scoped to its owner: another subscriber's id answers 404, never 403. Each action
looks the subscription up before validating the body, so the answer never depends on someone else's data.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView, ListAPIView, RetrieveAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import clock
from billing.api.inputs import NoBodySerializer, validated_body
from billing.api.schema import AUTHENTICATED, PAGINATED, error_responses, unknown_field_example
from billing.api.serializers import BillingKeySerializer, public_failure_reason
from billing.errors import PaymentDeclinedError, PaymentPendingError
from billing.models import PaymentAttempt
from billing.services.billing_keys import billing_key_delete
from billing.services.customers import customer_get_or_create
from subscriptions import selectors
from subscriptions.api.errors import BillingKeyInUseError
from subscriptions.api.serializers import (
    ConsentDecideSerializer,
    ConsentRequestSerializer,
    PlanChangePreviewSerializer,
    PlanChangeSerializer,
    PlanSerializer,
    SubscriptionCancelSerializer,
    SubscriptionCreateSerializer,
    SubscriptionPauseSerializer,
    SubscriptionSerializer,
)
from subscriptions.models import ConsentDecision, Subscription, SubscriptionAgreement
from subscriptions.services.consent import Answerer, consent_decide, consent_outcome
from subscriptions.services.lifecycle import (
    subscription_cancel,
    subscription_create,
    subscription_latest_attempt,
    subscription_pause,
    subscription_resume,
)
from subscriptions.services.plan_changes import subscription_change_plan, subscription_change_preview
from subscriptions.services.policies import agreement_for_checkout

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


@extend_schema_view(
    get=extend_schema(
        tags=["plans"],
        operation_id="plans_list",
        summary="Plans on sale (public)",
        responses={200: PlanSerializer(many=True), **error_responses(PAGINATED)},
    )
)
class PlanListApi(ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = PlanSerializer

    def get_queryset(self):
        return selectors.plans_available()


@extend_schema_view(
    get=extend_schema(
        tags=["plans"],
        operation_id="plan_retrieve",
        summary="One plan on sale, by its code (public)",
        responses={200: PlanSerializer, **error_responses({404: "not_found (no such plan, or not on sale)"})},
    )
)
class PlanDetailApi(RetrieveAPIView):
    permission_classes = [AllowAny]
    serializer_class = PlanSerializer
    lookup_field = "code"

    def get_queryset(self):
        return selectors.plans_available()


# --- subscriptions -------------------------------------------------------------------------------------


class SubscriptionListCreateApi(GenericAPIView):
    serializer_class = SubscriptionSerializer

    def get_queryset(self):
        return selectors.subscriptions_for_user(user=self.request.user)

    @extend_schema(
        tags=["subscriptions"],
        operation_id="subscriptions_list",
        summary="Your subscriptions (the live one and ended ones), newest first",
        responses={200: SubscriptionSerializer(many=True), **error_responses({**AUTHENTICATED, **PAGINATED})},
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SubscriptionSerializer(page, many=True).data)

    @extend_schema(
        tags=["subscriptions"],
        operation_id="subscription_create",
        summary="Subscribe to a plan with your default card",
        description=(
            "Without a trial the first period is charged now. If that charge is declined the answer is "
            "payment_declined (402) with subscription_id: the subscription stays incomplete for a day, a newly "
            "registered card retries the charge, or cancel it."
        ),
        request=SubscriptionCreateSerializer,
        examples=[OpenApiExample("Subscribe to pro", value={"plan": "pro"}, request_only=True)],
        responses={
            201: SubscriptionSerializer,
            **error_responses(
                {
                    400: "validation_error, agreement_required, plan_not_available, no_payment_method",
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
        now = clock.now()
        agreement = agreement_for_checkout(
            agreed=serializer.validated_data["agree_to_terms"],
            now=now,
            channel=SubscriptionAgreement.Channel.API,
            ip_address=request.META.get("REMOTE_ADDR"),
        )
        customer = customer_get_or_create(user=request.user)
        subscription = subscription_create(
            customer=customer, plan=serializer.validated_data["plan"], now=now, agreement=agreement
        )
        _raise_unless_first_charge_went_through(subscription)
        return Response(SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(
        tags=["subscriptions"],
        operation_id="subscription_retrieve",
        summary="One of your subscriptions",
        responses={200: SubscriptionSerializer, **error_responses(NOT_YOURS)},
    )
)
class SubscriptionDetailApi(RetrieveAPIView):
    serializer_class = SubscriptionSerializer

    def get_queryset(self):
        return selectors.subscriptions_for_user(user=self.request.user)


class SubscriptionChangePreviewApi(APIView):
    @extend_schema(
        tags=["subscriptions"],
        operation_id="subscription_change_plan_preview",
        summary="What changing to a plan would cost now (or at proration_at), and why (ko and en)",
        request=PlanChangeSerializer,
        examples=[
            OpenApiExample("Upgrade to pro", value={"plan": "pro"}, request_only=True),
            OpenApiExample(
                "An upgrade half-way through the period",
                value={
                    "kind": "upgrade",
                    "current_plan": "basic",
                    "new_plan": "pro",
                    "amount_due": 10_000,
                    "credit_left": 0,
                    "effective_at": "2026-03-16T03:00:00Z",
                    "period_end": "2026-03-31T15:00:00Z",
                    "priced_at": "2026-03-16T03:00:00Z",
                    "explanation": {
                        "ko": [
                            "기존 요금제 미사용 기간: 남은 기간 15.5일 / 31일 × 일 ≈319.35원 = −4,950원",
                            "새 요금제 남은 기간: 남은 기간 15.5일 / 31일 × 일 ≈964.52원 = 14,950원",
                            "결제할 금액: 10,000원",
                        ],
                        "en": [
                            "Unused time on the previous plan: 15.5 of 31 days × ≈₩319.35/day = −₩4,950",
                            "Remaining time on the new plan: 15.5 of 31 days × ≈₩964.52/day = ₩14,950",
                            "Amount due: ₩10,000",
                        ],
                    },
                },
                response_only=True,
                status_codes=["200"],
            ),
            unknown_field_example("amount_due", "plan"),
        ],
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
        operation_id="subscription_change_plan",
        summary="Change plan: an upgrade is charged and applied now, a downgrade waits for the period end",
        request=PlanChangeSerializer,
        examples=[
            OpenApiExample(
                "Upgrade at the previewed price",
                value={"plan": "pro", "proration_at": "2026-03-16T03:00:00Z"},
                request_only=True,
            ),
        ],
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
        operation_id="subscription_cancel",
        summary="Cancel at the period end (default) or now",
        request=SubscriptionCancelSerializer,
        examples=[
            OpenApiExample(
                "At the period end", value={"at_period_end": True, "reason": "too expensive"}, request_only=True
            ),
            OpenApiExample("Now", value={"at_period_end": False}, request_only=True),
        ],
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


class SubscriptionConsentListApi(APIView):
    @extend_schema(
        tags=["subscriptions"],
        operation_id="subscription_consents",
        summary="The consent questions of a subscription (trial conversion, price increase) with their answers",
        responses={200: ConsentRequestSerializer(many=True), **error_responses(NOT_YOURS)},
    )
    def get(self, request, pk: int):
        subscription = _subscription_or_404(request, pk)
        return Response(ConsentRequestSerializer(_consent_objects(subscription), many=True).data)


def _consent_objects(subscription: Subscription) -> list:
    requests = list(subscription.consent_requests.order_by("change_at", "id"))
    for request in requests:
        request.outcome = consent_outcome(request)
    return requests


class SubscriptionConsentDecideApi(APIView):
    @extend_schema(
        tags=["subscriptions"],
        operation_id="subscription_consent_decide",
        summary="Answer a consent question: granted or refused (recorded with IP, user agent and the terms)",
        request=ConsentDecideSerializer,
        examples=[OpenApiExample("Yes", value={"decision": "granted"}, request_only=True)],
        responses={
            200: ConsentRequestSerializer,
            **error_responses({400: "validation_error", **NOT_YOURS, 409: "consent_not_open, consent_closed"}),
        },
    )
    def post(self, request, pk: int, consent_id: int):
        subscription = _subscription_or_404(request, pk)
        consent = subscription.consent_requests.filter(pk=consent_id).first()
        if consent is None:
            raise NotFound()
        body = validated_body(ConsentDecideSerializer, request)
        consent_decide(
            request_id=consent.pk,
            outcome=body["decision"],
            answerer=Answerer(
                channel=ConsentDecision.Channel.API,
                actor=request.user,
                ip_address=request.META.get("REMOTE_ADDR"),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
                language="en" if (request.LANGUAGE_CODE or "ko").startswith("en") else "ko",
            ),
            now=clock.now(),
            customer_id=subscription.customer_id,
        )
        consent.outcome = consent_outcome(consent)
        return Response(ConsentRequestSerializer(consent).data)


class SubscriptionResumeApi(APIView):
    @extend_schema(
        tags=["subscriptions"],
        operation_id="subscription_resume",
        summary="Undo a scheduled cancel or pause, or end a pause now (charging the current period)",
        request=None,
        responses={
            200: SubscriptionSerializer,
            **error_responses({400: "validation_error (it takes no parameters)", **NOT_YOURS, 409: STATE}),
        },
    )
    def post(self, request, pk: int):
        subscription = _subscription_or_404(request, pk)
        validated_body(NoBodySerializer, request)
        subscription = subscription_resume(subscription=subscription, now=clock.now(), actor=request.user)
        return Response(SubscriptionSerializer(subscription).data)


class SubscriptionPauseApi(APIView):
    @extend_schema(
        tags=["subscriptions"],
        operation_id="subscription_pause",
        summary="Pause from the next period, for some periods or until resumed",
        request=SubscriptionPauseSerializer,
        examples=[
            OpenApiExample("For 3 periods", value={"periods": 3}, request_only=True),
            OpenApiExample("Until resumed", value={"periods": None}, request_only=True),
            unknown_field_example("period", "periods"),
        ],
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


class BillingKeyDetailApi(APIView):
    @extend_schema(
        tags=["billing keys"],
        operation_id="billing_key_retrieve",
        summary="One of your active cards",
        responses={200: BillingKeySerializer, **error_responses(NOT_YOURS)},
    )
    def get(self, request, pk: int):
        return Response(BillingKeySerializer(_billing_key_or_404(request, pk)).data)

    @extend_schema(
        tags=["billing keys"],
        operation_id="billing_key_delete",
        summary="Remove a card (deleted at Iamport too)",
        request=None,
        responses={
            204: None,
            **error_responses(
                {
                    400: "validation_error (it takes no parameters)",
                    **NOT_YOURS,
                    409: "billing_key_in_use (the only card of a live subscription)",
                    503: "gateway_unavailable",
                }
            ),
        },
    )
    def delete(self, request, pk: int):
        billing_key = _billing_key_or_404(request, pk)
        validated_body(NoBodySerializer, request)
        if selectors.billing_key_is_only_card_of_live_subscription(billing_key=billing_key):
            raise BillingKeyInUseError()
        billing_key_delete(billing_key=billing_key, now=clock.now(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _billing_key_or_404(request, pk: int):
    billing_key = selectors.billing_key_for_user(user=request.user, pk=pk)
    if billing_key is None:
        raise NotFound()
    return billing_key
