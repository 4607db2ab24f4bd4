"""Billing API entry points: parse input, call one service or selector, render
(docs/architecture.md#layers-and-import-direction).

Every object is scoped to the requesting user: another subscriber's object answers 404, never 403.
Refund endpoints are for staff and for a server key (read to list, refunds to refund); a subscriber must not even
learn that someone else's payment exists.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView, ListAPIView, RetrieveAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from billing import clock, selectors
from billing.api.errors import InvalidCredentialsError
from billing.api.inputs import NoBodySerializer, validated_body
from billing.api.keys import Scope, SubscriberOrServerKey, is_server_key, require_scope
from billing.api.schema import AUTHENTICATED, PAGINATED, error_responses
from billing.api.serializers import (
    AuthTokenCreateSerializer,
    AuthTokenSerializer,
    BillingKeySerializer,
    CardRegistrationConfirmSerializer,
    CardRegistrationPrepareSerializer,
    InvoiceSerializer,
    PaymentSerializer,
    RefundCreateSerializer,
    StaffRefundSerializer,
)
from billing.models import PaymentAttempt
from billing.services.billing_keys import card_registration_confirm, card_registration_prepare
from billing.services.customers import customer_get_or_create
from billing.services.refunds import refund_create

# --- auth ----------------------------------------------------------------------------------------------


class AuthTokenCreateApi(APIView):
    authentication_classes = []  # a login: no session (and so no CSRF) involved
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth_token"

    @extend_schema(
        tags=["auth"],
        operation_id="auth_token_create",
        summary="Exchange a username and password for an API token",
        request=AuthTokenCreateSerializer,
        examples=[
            OpenApiExample(
                "Log in", value={"username": "minji", "password": "correct horse battery"}, request_only=True
            ),
            OpenApiExample("A token", value={"token": "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"}, response_only=True),
        ],
        responses={
            200: AuthTokenSerializer,
            **error_responses({400: "validation_error, invalid_credentials", 429: "throttled"}),
        },
        auth=[],
    )
    def post(self, request):
        serializer = AuthTokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request=request, **serializer.validated_data)
        if user is None:
            raise InvalidCredentialsError()
        token, _created = Token.objects.get_or_create(user=user)
        return Response(AuthTokenSerializer({"token": token.key}).data)


# --- billing keys ----------------------------------------------------------------------------------------


class CardRegistrationPrepareApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "card_registration"

    @extend_schema(
        tags=["billing keys"],
        operation_id="billing_key_prepare",
        summary="Start registering a card: the parameters for IMP.request_pay",
        request=None,
        responses={
            201: CardRegistrationPrepareSerializer,
            **error_responses({400: "validation_error (it takes no parameters)", **AUTHENTICATED, 429: "throttled"}),
        },
    )
    def post(self, request):
        validated_body(NoBodySerializer, request)
        customer = customer_get_or_create(user=request.user)
        prepared = card_registration_prepare(customer=customer, now=clock.now())
        return Response(CardRegistrationPrepareSerializer(prepared).data, status=status.HTTP_201_CREATED)


class CardRegistrationConfirmApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "card_registration"

    @extend_schema(
        tags=["billing keys"],
        operation_id="billing_key_confirm",
        summary="Confirm a card registration with Iamport; the card becomes the default",
        request=CardRegistrationConfirmSerializer,
        responses={
            201: BillingKeySerializer,
            **error_responses(
                {
                    400: "validation_error, card_not_issued",
                    **AUTHENTICATED,
                    404: "card_registration_not_found",
                    429: "throttled",
                    503: "gateway_unavailable",
                }
            ),
        },
    )
    def post(self, request):
        serializer = CardRegistrationConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer = customer_get_or_create(user=request.user)
        key = card_registration_confirm(
            customer=customer, customer_uid=serializer.validated_data["customer_uid"], now=clock.now()
        )
        return Response(BillingKeySerializer(key).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(
        tags=["billing keys"],
        operation_id="billing_keys_list",
        summary="Your active cards",
        responses={200: BillingKeySerializer(many=True), **error_responses({**AUTHENTICATED, **PAGINATED})},
    )
)
class BillingKeyListApi(ListAPIView):
    serializer_class = BillingKeySerializer

    def get_queryset(self):
        return selectors.billing_keys_for_user(user=self.request.user)


# --- invoices ------------------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        tags=["invoices"],
        operation_id="invoices_list",
        summary="Your invoices, newest first",
        responses={200: InvoiceSerializer(many=True), **error_responses({**AUTHENTICATED, **PAGINATED})},
    )
)
class InvoiceListApi(ListAPIView):
    serializer_class = InvoiceSerializer

    def get_queryset(self):
        return selectors.invoices_for_user(user=self.request.user)


@extend_schema_view(
    get=extend_schema(
        tags=["invoices"],
        operation_id="invoice_retrieve",
        summary="One of your invoices",
        responses={200: InvoiceSerializer, **error_responses({**AUTHENTICATED, 404: "not_found"})},
    )
)
class InvoiceDetailApi(RetrieveAPIView):
    serializer_class = InvoiceSerializer

    def get_queryset(self):
        return selectors.invoices_for_user(user=self.request.user)


# --- payments --------------------------------------------------------------------------------------------


@extend_schema_view(
    get=extend_schema(
        tags=["payments"],
        operation_id="payments_list",
        summary="Your payment attempts, newest first",
        responses={200: PaymentSerializer(many=True), **error_responses({**AUTHENTICATED, **PAGINATED})},
    )
)
class PaymentListApi(ListAPIView):
    serializer_class = PaymentSerializer

    def get_queryset(self):
        return selectors.payments_for_user(user=self.request.user)


@extend_schema_view(
    get=extend_schema(
        tags=["payments"],
        operation_id="payment_retrieve",
        summary="One of your payment attempts, with its refunds",
        responses={200: PaymentSerializer, **error_responses({**AUTHENTICATED, 404: "not_found"})},
    )
)
class PaymentDetailApi(RetrieveAPIView):
    serializer_class = PaymentSerializer

    def get_queryset(self):
        return selectors.payments_for_user(user=self.request.user)


# --- refunds (staff) ----------------------------------------------------------------------------------------

STAFF_ERRORS = {
    **AUTHENTICATED,
    403: "permission_denied, scope_missing (a server key without the scope)",
    404: "not_found",
}


def _refuse_unless_staff_with(request, permission: str, *, payment_pk: int) -> None:
    user = request.user
    if is_server_key(user):
        # The merchant's backend: any customer's payment, with the key's scope (refunds to make one).
        require_scope(user, Scope.REFUNDS if permission == "billing.add_refund" else Scope.READ)
        return
    if not user.is_staff:
        # A subscriber may see that refunds of their own payment are not theirs to make; of anyone else's
        # payment they learn nothing, not even that it exists.
        if selectors.payments_for_user(user=user).filter(pk=payment_pk).exists():
            raise PermissionDenied()
        raise NotFound()
    if not user.has_perm(permission):
        raise PermissionDenied(
            _("Your staff account lacks the %(permission)s permission.") % {"permission": permission}
        )


def _payment_for_staff(request, pk: int, *, permission: str) -> PaymentAttempt:
    _refuse_unless_staff_with(request, permission, payment_pk=pk)
    return get_object_or_404(selectors.payments_all(), pk=pk)


class PaymentRefundListCreateApi(GenericAPIView):
    serializer_class = StaffRefundSerializer
    permission_classes = [SubscriberOrServerKey]

    @extend_schema(
        tags=["refunds (staff)"],
        operation_id="payment_refunds_list",
        summary="Refunds of a payment (staff, billing.view_refund)",
        responses={200: StaffRefundSerializer(many=True), **error_responses(STAFF_ERRORS)},
    )
    def get(self, request, pk: int):
        attempt = _payment_for_staff(request, pk, permission="billing.view_refund")
        page = self.paginate_queryset(selectors.refunds_for_payment(attempt=attempt))
        return self.get_paginated_response(StaffRefundSerializer(page, many=True).data)

    @extend_schema(
        tags=["refunds (staff)"],
        operation_id="refund_create",
        summary="Refund a payment, fully or partly (staff with billing.add_refund, or a server key with refunds)",
        request=RefundCreateSerializer,
        examples=[
            OpenApiExample("Part of it", value={"amount": 5_000, "reason": "서비스 장애 보상"}, request_only=True),
            OpenApiExample("All that is left", value={"reason": "customer request"}, request_only=True),
            OpenApiExample(
                "More than is left",
                value={
                    "error": {
                        "code": "refund_exceeds_balance",
                        "message": "At most 4,900 won can still be refunded.",
                        "refundable": 4_900,
                    }
                },
                response_only=True,
                status_codes=["400"],
            ),
        ],
        responses={
            201: StaffRefundSerializer,
            **error_responses(
                {
                    400: "validation_error, refund_exceeds_balance, refund_not_allowed, refund_failed",
                    **STAFF_ERRORS,
                    409: "payment_in_progress (another refund in flight), payment_pending (Iamport has not confirmed)",
                    503: "gateway_unavailable",
                }
            ),
        },
    )
    def post(self, request, pk: int):
        attempt = _payment_for_staff(request, pk, permission="billing.add_refund")
        serializer = RefundCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refund = refund_create(
            attempt_id=attempt.pk,
            amount=serializer.validated_data.get("amount"),
            reason=serializer.validated_data["reason"],
            now=clock.now(),
            actor=request.user,
        )
        return Response(StaffRefundSerializer(refund).data, status=status.HTTP_201_CREATED)


class RefundDetailApi(APIView):
    permission_classes = [SubscriberOrServerKey]

    @extend_schema(
        tags=["refunds (staff)"],
        operation_id="refund_retrieve",
        summary="One refund, by its id (staff, billing.view_refund)",
        responses={200: StaffRefundSerializer, **error_responses(STAFF_ERRORS)},
    )
    def get(self, request, pk: int):
        refund = selectors.refund_get(pk=pk)
        # Not found and not allowed must look the same to a subscriber as for a payment that is not theirs.
        _refuse_unless_staff_with(request, "billing.view_refund", payment_pk=refund.attempt_id if refund else 0)
        if refund is None:
            raise NotFound()
        return Response(StaffRefundSerializer(refund).data)
