"""Input and output shapes of the subscriptions API. Amounts are ints of won (VAT included)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.inputs import InputSerializer
from subscriptions.models import Plan, Subscription


class PlanSerializer(serializers.ModelSerializer):
    amount = serializers.IntegerField(read_only=True, help_text="Won per interval, VAT included.")
    tax_free_amount = serializers.IntegerField(read_only=True, help_text="Tax-free (면세) part of amount.")

    class Meta:
        model = Plan
        fields = [
            "code",
            "name_ko",
            "name_en",
            "description_ko",
            "description_en",
            "amount",
            "tax_free_amount",
            "currency",
            "interval",
            "interval_count",
            "trial_days",
        ]
        read_only_fields = fields


class PlanCodeField(serializers.SlugRelatedField):
    """A plan code. Unlike CharField, SlugRelatedField has no NUL-character validator, and PostgreSQL refuses
    NUL in a query parameter (a 500): such a value is simply not a plan code."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


class PlanChoiceSerializer(InputSerializer):
    plan = PlanCodeField(slug_field="code", queryset=Plan.objects.all(), help_text="A plan code.")


class SubscriptionCreateSerializer(PlanChoiceSerializer):
    agree_to_terms = serializers.BooleanField(
        default=False,
        help_text="Required true: the subscriber agrees to the current terms of service, refund policy and "
        "privacy policy (the pages under /policies/) and to the automatic renewal until cancelled. Without it the "
        "answer is agreement_required (400) and nothing is created or charged.",
    )


class PlanChangeSerializer(PlanChoiceSerializer):
    proration_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="An instant of the last 15 minutes inside the current period, typically the `priced_at` of a "
        "preview: the preview and the change are priced at that instant, so the amount charged is exactly the "
        "previewed amount_due. Omit it to price now. Outside that window: 400 invalid_proration_at (preview) or "
        "409 preview_expired (change).",
    )


class SubscriptionSerializer(serializers.ModelSerializer):
    plan = PlanSerializer(read_only=True)
    pending_plan = serializers.SlugRelatedField(
        slug_field="code", read_only=True, allow_null=True, help_text="A downgrade waiting for the period end."
    )
    billing_key = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = Subscription
        fields = [
            "id",
            "plan",
            "status",
            "billing_key",
            "current_period_start",
            "current_period_end",
            "trial_end",
            "cancel_at_period_end",
            "canceled_at",
            "ended_at",
            "end_reason",
            "pending_plan",
            "pause_requested",
            "pause_periods",
            "resume_at",
            "created_at",
        ]
        read_only_fields = fields


class ExplanationSerializer(serializers.Serializer):
    ko = serializers.ListField(child=serializers.CharField())
    en = serializers.ListField(child=serializers.CharField())


class PlanChangePreviewSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["upgrade", "downgrade", "interval_change", "cancel_pending"])
    current_plan = serializers.CharField(source="current_plan.code", help_text="Plan code.")
    new_plan = serializers.CharField(source="new_plan.code", help_text="Plan code.")
    amount_due = serializers.IntegerField(help_text="Won charged now if the change is made now, VAT included.")
    credit_left = serializers.IntegerField(help_text="Won kept as credit for the next invoices.")
    effective_at = serializers.DateTimeField()
    period_end = serializers.DateTimeField(help_text="End of the period the change is billed up to.")
    priced_at = serializers.DateTimeField(
        allow_null=True,
        help_text="The instant amount_due was computed for; send it back as proration_at within 15 minutes to be "
        "charged exactly amount_due. Null for changes that charge nothing now.",
    )
    explanation = serializers.SerializerMethodField()

    @extend_schema_field(ExplanationSerializer)
    def get_explanation(self, preview) -> dict:
        return {"ko": list(preview.explanation("ko")), "en": list(preview.explanation("en"))}


class SubscriptionCancelSerializer(InputSerializer):
    at_period_end = serializers.BooleanField(
        default=True, help_text="true: keep access until the period ends; false: end now."
    )
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class SubscriptionPauseSerializer(InputSerializer):
    periods = serializers.IntegerField(
        min_value=1,
        max_value=32767,  # the column's limit
        required=False,
        allow_null=True,
        default=None,
        help_text="Pause from the next period for this many periods; null: until resumed.",
    )


class ConsentRequestSerializer(serializers.Serializer):
    """A consent question with its exact terms and its answer so far (pending until a decision)."""

    id = serializers.IntegerField()
    kind = serializers.CharField(help_text="trial_conversion or price_increase")
    change_at = serializers.DateTimeField()
    opens_at = serializers.DateTimeField()
    amount_before = serializers.IntegerField(help_text="KRW, VAT included")
    amount_after = serializers.IntegerField(help_text="KRW, VAT included")
    card = serializers.CharField(source="card_label")
    non_consent_action = serializers.CharField(help_text="price increases: cancel_at_period_end or keep_old_price")
    terms_ko = serializers.CharField()
    terms_en = serializers.CharField()
    outcome = serializers.CharField(help_text="pending, granted, refused or expired")


class ConsentDecideSerializer(InputSerializer):
    decision = serializers.ChoiceField(choices=["granted", "refused"], help_text="No default: silence is not consent.")
