"""The delivery log in the admin: read-only, because it is the merchant's proof."""

from django.contrib import admin

from notices.models import Contact, Notice, NoticeDelivery


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class DeliveryInline(admin.TabularInline):
    model = NoticeDelivery
    fields = ("at", "channel", "status", "to", "provider_message_id", "code", "detail", "text")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "customer", "subscription_id", "required", "created_at")
    list_filter = ("type", "required")
    search_fields = ("key", "customer__email", "=subscription_id")
    inlines = [DeliveryInline]


@admin.register(NoticeDelivery)
class NoticeDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("at", "notice", "channel", "status", "to", "provider_message_id", "code")
    list_filter = ("channel", "status")
    search_fields = ("provider_message_id", "to", "=notice__subscription_id")


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = ("customer", "phone", "phone_verified_at", "alimtalk_opt_out", "sms_opt_out", "email_opt_out")
