"""Input and output shapes of the billing API. Amounts are ints of won; times are ISO 8601 with offset."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.inputs import InputSerializer
from billing.decline import GATEWAY
from billing.models import BillingKey, Invoice, InvoiceLine, PaymentAttempt, Refund
from billing.money_status import MoneyStatus, attempt_money_status, invoice_money_status


def public_failure_reason(attempt: PaymentAttempt) -> str:
    """Why a failed attempt failed, as the card company said it. Our own infrastructure failures (connect
    errors, 5xx) are never shown raw (docs/architecture.md#errors): they get a generic sentence."""
    if attempt.status != PaymentAttempt.Status.FAILED:
        return ""
    if attempt.decline_class == GATEWAY and not attempt.failure_code.startswith("iamport_"):
        return _("The payment service could not be reached; nothing was charged.")
    return attempt.failure_reason


# --- auth --------------------------------------------------------------------------------------------


class AuthTokenCreateSerializer(InputSerializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})


class AuthTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text='Send as "Authorization: Bearer <token>".')


# --- billing keys ------------------------------------------------------------------------------------


class CardRegistrationParamsSerializer(serializers.Serializer):
    """Passed as-is to IMP.request_pay in the browser."""

    pg = serializers.CharField()
    pay_method = serializers.CharField()
    merchant_uid = serializers.CharField()
    customer_uid = serializers.CharField(help_text="Send this back to /api/billing-keys/confirm.")
    name = serializers.CharField()
    amount = serializers.IntegerField()
    buyer_email = serializers.CharField(allow_blank=True)
    buyer_name = serializers.CharField(allow_blank=True)
    channelKey = serializers.CharField(required=False)  # Iamport's own parameter name


class CardRegistrationPrepareSerializer(serializers.Serializer):
    merchant_code = serializers.CharField(help_text="For IMP.init().")
    sdk_url = serializers.CharField()
    params = CardRegistrationParamsSerializer()


class CardRegistrationConfirmSerializer(InputSerializer):
    customer_uid = serializers.CharField(max_length=80)


class BillingKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = BillingKey
        fields = [
            "id",
            "customer_uid",
            "card_name",
            "card_number_masked",
            "card_code",
            "card_type",
            "pg_provider",
            "is_default",
            "created_at",
        ]
        read_only_fields = fields


# --- invoices ----------------------------------------------------------------------------------------


class InvoiceLineDetailsSerializer(serializers.Serializer):
    """What a line records about its origin; every key is optional (a credit line has none)."""

    plan = serializers.CharField(required=False, help_text="A period line: the plan code billed.")
    kind = serializers.ChoiceField(
        choices=["upgrade", "interval_change"], required=False, help_text="A plan-change line: the change made."
    )
    explanation_ko = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="A plan-change line: how it was priced (Korean)."
    )
    explanation_en = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="A plan-change line: how it was priced (English)."
    )


@extend_schema_field(InvoiceLineDetailsSerializer)
class InvoiceLineDetailsField(serializers.JSONField):
    """The line's JSON as stored, declared by InvoiceLineDetailsSerializer."""


class InvoiceLineSerializer(serializers.ModelSerializer):
    details = InvoiceLineDetailsField(read_only=True)

    class Meta:
        model = InvoiceLine
        fields = ["description", "amount", "tax_free_amount", "period_start", "period_end", "details"]
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    lines = InvoiceLineSerializer(many=True, read_only=True)
    refunded_total = serializers.IntegerField(read_only=True, help_text="Sum of succeeded refunds of its payments.")
    money_status = serializers.SerializerMethodField(
        help_text="What happened to the money, as the subscriber's pages say it: paid, partially_refunded, "
        "refunded, failed or unpaid."
    )
    money_status_display = serializers.SerializerMethodField(help_text="money_status in the request's language.")

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "kind",
            "status",
            "currency",
            "description",
            "total",
            "supply_amount",
            "vat_amount",
            "tax_free_amount",
            "credit_applied",
            "refunded_total",
            "money_status",
            "money_status_display",
            "period_start",
            "period_end",
            "lines",
            "created_at",
            "finalized_at",
            "paid_at",
            "voided_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=MoneyStatus.choices))
    def get_money_status(self, invoice: Invoice) -> str:
        return invoice_money_status(invoice, refunded=getattr(invoice, "refunded_total", 0) or 0).value

    def get_money_status_display(self, invoice: Invoice) -> str:
        return str(invoice_money_status(invoice, refunded=getattr(invoice, "refunded_total", 0) or 0).label)


# --- payments and refunds -------------------------------------------------------------------------


class RefundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Refund
        fields = ["id", "amount", "tax_free_amount", "vat_amount", "reason", "status", "created_at", "settled_at"]
        read_only_fields = fields


class StaffRefundSerializer(RefundSerializer):
    payment = serializers.PrimaryKeyRelatedField(
        source="attempt", read_only=True, help_text="The refunded payment's id."
    )
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta(RefundSerializer.Meta):
        fields = [*RefundSerializer.Meta.fields, "payment", "failure_reason", "cancellation_id", "actor"]
        read_only_fields = fields


class RefundCreateSerializer(InputSerializer):
    amount = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, help_text="Won; omit to refund everything still refundable."
    )
    reason = serializers.CharField(max_length=255)


class PaymentCardSerializer(serializers.Serializer):
    name = serializers.CharField(source="card_name")
    number_masked = serializers.CharField(source="card_number_masked")


class PaymentSerializer(serializers.ModelSerializer):
    invoice_number = serializers.CharField(source="invoice.number", read_only=True, allow_null=True)
    # Declared: a read-only ModelSerializer field drops allow_blank, and the schema then omitted "" (no decline).
    decline_class = serializers.ChoiceField(
        choices=Invoice.DeclineClass.choices, allow_blank=True, read_only=True, help_text="Empty unless it failed."
    )
    card = PaymentCardSerializer(source="*", read_only=True)
    failure_reason = serializers.SerializerMethodField()
    refunds = RefundSerializer(many=True, read_only=True)
    refunded_total = serializers.SerializerMethodField()
    refundable = serializers.SerializerMethodField()
    money_status = serializers.SerializerMethodField(
        help_text="paid, partially_refunded, refunded, failed or unpaid (pending and unknown charges)."
    )
    money_status_display = serializers.SerializerMethodField(help_text="money_status in the request's language.")

    class Meta:
        model = PaymentAttempt
        fields = [
            "id",
            "invoice",
            "invoice_number",
            "merchant_uid",
            "imp_uid",
            "amount",
            "tax_free_amount",
            "vat_amount",
            "status",
            "decline_class",
            "failure_reason",
            "receipt_url",
            "card",
            "refunded_total",
            "refundable",
            "money_status",
            "money_status_display",
            "refunds",
            "created_at",
            "paid_at",
            "settled_at",
        ]
        read_only_fields = fields

    def get_failure_reason(self, attempt: PaymentAttempt) -> str:
        return public_failure_reason(attempt)

    def get_refunded_total(self, attempt: PaymentAttempt) -> int:
        return sum(r.amount for r in attempt.refunds.all() if r.status == Refund.Status.SUCCEEDED)

    def get_refundable(self, attempt: PaymentAttempt) -> int:
        """What staff could still refund: the paid amount minus succeeded and in-flight refunds."""
        if attempt.status != PaymentAttempt.Status.SUCCEEDED:
            return 0
        held = sum(r.amount for r in attempt.refunds.all() if r.status != Refund.Status.FAILED)
        return attempt.amount - held

    @extend_schema_field(serializers.ChoiceField(choices=MoneyStatus.choices))
    def get_money_status(self, attempt: PaymentAttempt) -> str:
        return attempt_money_status(attempt, refunded=self.get_refunded_total(attempt)).value

    def get_money_status_display(self, attempt: PaymentAttempt) -> str:
        return str(attempt_money_status(attempt, refunded=self.get_refunded_total(attempt)).label)
