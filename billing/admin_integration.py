"""The admin of the merchant's integration: server API keys (created here, the secret shown once; revoked here),
event endpoints (each with its own signing secret, shown on its page) and their deliveries (replayable).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from billing import clock
from billing.models import Event, EventDelivery, EventEndpoint, MerchantApiKey
from billing.services.events import EVENT_TYPES, deliveries_replay, event_secret_new

# The library's own key model is unused (ours has scopes and the sk_ prefix): keep it out of the admin.
admin.site.unregister(APIKey)


class MerchantApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=MerchantApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple, required=True
    )

    class Meta:
        model = MerchantApiKey
        fields = ["name", "scopes", "expiry_date", "revoked"]


@admin.register(MerchantApiKey)
class MerchantApiKeyAdmin(APIKeyModelAdmin):
    form = MerchantApiKeyForm
    list_display = ("prefix", "name", "scopes", "created", "last_used_at", "expiry_date", "_has_expired", "revoked")
    list_filter = ("revoked",)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "last_used_at")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the audit rows keep naming the key


class EventEndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("None ticked: every event type."),
    )

    class Meta:
        model = EventEndpoint
        fields = ["url", "description", "event_types", "enabled"]


@admin.register(EventEndpoint)
class EventEndpointAdmin(admin.ModelAdmin):
    form = EventEndpointForm
    list_display = ("url", "enabled", "failing_since", "disabled_reason", "created_at")
    readonly_fields = ("secret", "failing_since", "disabled_reason", "created_at")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.secret = event_secret_new()
            obj.created_at = clock.now()
        if obj.enabled:
            obj.disabled_reason = ""
        super().save_model(request, obj, form, change)


@admin.register(EventDelivery)
class EventDeliveryAdmin(admin.ModelAdmin):
    list_display = ("event", "endpoint", "status", "attempts", "last_status_code", "last_error", "next_attempt_at")
    list_filter = ("status", "endpoint")
    actions = ["replay"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in EventDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description=_("Deliver the selected events again"), permissions=["change"])
    def replay(self, request, queryset):
        count = deliveries_replay(delivery_ids=list(queryset.values_list("pk", flat=True)), now=clock.now())
        self.message_user(request, _("%(count)d deliveries will be sent again.") % {"count": count}, messages.SUCCESS)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("id", "sequence", "type", "customer", "object_type", "object_id", "created_at")
    list_filter = ("type",)
    search_fields = ("object_id",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Event._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
