"""The merchant's API (a server key, billing/api/keys.py): customers, their cards, invoices and payments, and the
event feed. Entry points only: parse, call one service or selector, render.

A customer is addressed by its kbilling id (`/api/customers/42`) or by the merchant's own id
(`/api/customers/ext:user-981`). Lists page with a cursor (`cursor`, `limit`).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from billing import clock, selectors
from billing.api.inputs import InputSerializer, validated_body
from billing.api.keys import HasScope, Scope, ServerKeyAuthentication
from billing.api.schema import error_responses
from billing.api.serializers import BillingKeySerializer, InvoiceSerializer, PaymentSerializer
from billing.models import Customer
from billing.services.customers import LANGUAGES, customer_create, customer_update
from billing.services.events import EVENT_TYPES, event_payload, events_sequence

KEY_ERRORS = {401: "not_authenticated (no server key, or a revoked or expired one)", 403: "scope_missing"}
CUSTOMER_ERRORS = {**KEY_ERRORS, 404: "not_found"}
CUSTOMER_REF = OpenApiParameter(
    "ref", OpenApiTypes.STR, OpenApiParameter.PATH, description="The customer's id, or ext:<your external_id>."
)


class MerchantCursorPagination(CursorPagination):
    page_size = 20
    page_size_query_param = "limit"
    max_page_size = 100
    ordering = "-id"


class MerchantApi(GenericAPIView):
    """A view of the merchant's API: a server key only, with `read` for GET and `write` for POST by default."""

    authentication_classes = [ServerKeyAuthentication]
    pagination_class = MerchantCursorPagination
    read_scope = Scope.READ
    write_scope = Scope.WRITE

    def get_permissions(self):
        scope = self.read_scope if self.request.method in ("GET", "HEAD", "OPTIONS") else self.write_scope
        return [HasScope(scope)()]

    def customer(self, ref: str) -> Customer:
        customer = selectors.customer_for_merchant(ref=ref)
        if customer is None:
            raise NotFound(_("No customer has this id or external_id."))
        return customer

    def page(self, queryset, serializer_class):
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer_class(page, many=True).data)


class CustomerSerializer(serializers.ModelSerializer):
    object = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = ["object", "id", "external_id", "email", "name", "preferred_language", "created_at"]
        read_only_fields = fields

    def get_object(self, obj) -> str:
        return "customer"


class CustomerCreateSerializer(InputSerializer):
    external_id = serializers.CharField(
        max_length=100, required=False, allow_null=True, default=None, help_text="Your own id for this user; unique."
    )
    email = serializers.EmailField(required=False, allow_blank=True)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    preferred_language = serializers.ChoiceField(choices=LANGUAGES, required=False)


class CustomerUpdateSerializer(InputSerializer):
    email = serializers.EmailField(required=False, allow_blank=True)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    preferred_language = serializers.ChoiceField(choices=LANGUAGES, required=False)


class CustomerListCreateApi(MerchantApi):
    @extend_schema(
        tags=["merchant: customers"],
        operation_id="customers_list",
        summary="Customers, newest first (server key, read)",
        parameters=[OpenApiParameter("external_id", OpenApiTypes.STR, description="Only the customer with this id.")],
        responses={200: CustomerSerializer(many=True), **error_responses(KEY_ERRORS)},
    )
    def get(self, request):
        return self.page(
            selectors.customers_for_merchant(external_id=request.query_params.get("external_id")), CustomerSerializer
        )

    @extend_schema(
        tags=["merchant: customers"],
        operation_id="customer_create",
        summary="Create a customer for one of your users (server key, write)",
        request=CustomerCreateSerializer,
        responses={
            201: CustomerSerializer,
            **error_responses({400: "validation_error", **KEY_ERRORS, 409: "external_id_taken"}),
        },
    )
    def post(self, request):
        body = validated_body(CustomerCreateSerializer, request)
        customer = customer_create(**body, now=clock.now(), actor=request.user)
        return Response(CustomerSerializer(customer).data, status=status.HTTP_201_CREATED)


class CustomerDetailApi(MerchantApi):
    @extend_schema(
        tags=["merchant: customers"],
        operation_id="customer_retrieve",
        summary="One customer, by id or ext:<external_id> (server key, read)",
        parameters=[CUSTOMER_REF],
        responses={200: CustomerSerializer, **error_responses(CUSTOMER_ERRORS)},
    )
    def get(self, request, ref: str):
        return Response(CustomerSerializer(self.customer(ref)).data)

    @extend_schema(
        tags=["merchant: customers"],
        operation_id="customer_update",
        summary="Change a customer's email, name or language (server key, write)",
        parameters=[CUSTOMER_REF],
        request=CustomerUpdateSerializer,
        responses={200: CustomerSerializer, **error_responses({400: "validation_error", **CUSTOMER_ERRORS})},
    )
    def post(self, request, ref: str):
        customer = self.customer(ref)
        body = validated_body(CustomerUpdateSerializer, request)
        customer = customer_update(customer=customer, now=clock.now(), actor=request.user, **body)
        return Response(CustomerSerializer(customer).data)


class CustomerBillingKeyListApi(MerchantApi):
    pagination_class = None

    @extend_schema(
        tags=["merchant: customers"],
        operation_id="customer_billing_keys_list",
        summary="A customer's active cards, the default first (server key, read)",
        parameters=[CUSTOMER_REF],
        responses={200: BillingKeySerializer(many=True), **error_responses(CUSTOMER_ERRORS)},
    )
    def get(self, request, ref: str):
        keys = selectors.billing_keys_for_customer(customer=self.customer(ref))
        return Response(BillingKeySerializer(keys, many=True).data)


class _CreatedCursorPagination(MerchantCursorPagination):
    ordering = ("-created_at", "-id")


class CustomerInvoiceListApi(MerchantApi):
    pagination_class = _CreatedCursorPagination

    @extend_schema(
        tags=["merchant: customers"],
        operation_id="customer_invoices_list",
        summary="A customer's invoices, newest first (server key, read)",
        parameters=[CUSTOMER_REF, OpenApiParameter("status", OpenApiTypes.STR, description="open, paid, void, …")],
        responses={200: InvoiceSerializer(many=True), **error_responses(CUSTOMER_ERRORS)},
    )
    def get(self, request, ref: str):
        invoices = selectors.invoices_finalized().filter(customer=self.customer(ref))
        if request.query_params.get("status"):
            invoices = invoices.filter(status=request.query_params["status"])
        return self.page(invoices, InvoiceSerializer)


class CustomerPaymentListApi(MerchantApi):
    pagination_class = _CreatedCursorPagination

    @extend_schema(
        tags=["merchant: customers"],
        operation_id="customer_payments_list",
        summary="A customer's payment attempts with their refunds, newest first (server key, read)",
        parameters=[CUSTOMER_REF],
        responses={200: PaymentSerializer(many=True), **error_responses(CUSTOMER_ERRORS)},
    )
    def get(self, request, ref: str):
        return self.page(selectors.payments_for_customer(customer=self.customer(ref)), PaymentSerializer)


# --- events ------------------------------------------------------------------------------------------------


class EventSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="evt_<n>: the webhook-id of its deliveries; dedupe on it.")
    object = serializers.CharField(help_text="event")
    type = serializers.ChoiceField(choices=EVENT_TYPES)
    sequence = serializers.IntegerField(help_text="Its place in the feed: pass the last one you read as after=.")
    created_at = serializers.DateTimeField()
    customer = serializers.DictField(allow_null=True, help_text="{id, external_id}")
    data = serializers.DictField(help_text='{"object": {object, id, status, previous_status, amount, …}}')


class EventPageSerializer(serializers.Serializer):
    object = serializers.CharField(help_text="list")
    data = EventSerializer(many=True)
    has_more = serializers.BooleanField()
    next_after = serializers.IntegerField(help_text="Pass as after= for the next page (the last sequence read).")


class EventListApi(MerchantApi):
    pagination_class = None

    @extend_schema(
        tags=["merchant: events"],
        operation_id="events_list",
        summary="The event feed, oldest first, after a cursor (server key, read)",
        description=(
            "Every event in the order it committed, numbered by `sequence`. Start with after=0 and pass the "
            "`next_after` of each page: a merchant that missed deliveries catches up with no gap and no duplicate."
        ),
        parameters=[
            OpenApiParameter("after", OpenApiTypes.INT, description="The last sequence you have read (default 0)."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="1 to 500 (default 100)."),
            OpenApiParameter("type", OpenApiTypes.STR, many=True, description="Only these types (repeatable)."),
        ],
        responses={200: EventPageSerializer, **error_responses({400: "validation_error", **KEY_ERRORS})},
    )
    def get(self, request):
        params = _FeedParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        after, limit = params.validated_data["after"], params.validated_data["limit"]
        events_sequence(now=clock.now())  # number what committed since the last dispatch, so the feed is current
        events = selectors.events_after(after=after, limit=limit + 1, types=request.query_params.getlist("type"))
        page = events[:limit]
        return Response(
            {
                "object": "list",
                "data": [event_payload(event) for event in page],
                "has_more": len(events) > limit,
                "next_after": page[-1].sequence if page else after,
            }
        )


class _FeedParams(serializers.Serializer):
    after = serializers.IntegerField(min_value=0, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100)
    type = serializers.CharField(required=False)
