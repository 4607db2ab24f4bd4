"""Notices, their delivery log, and the subscriber's mobile number and channel choices.

`Notice` and `NoticeDelivery` are append-only: a notice is written once with its facts and the exact text of
every channel, and each step of each channel (queued, sent, delivered, failed) is a new `NoticeDelivery` row.
A channel's current state is its newest row; nothing is updated in place (the admin makes both read-only).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import Customer


class Channel(models.TextChoices):
    ALIMTALK = "alimtalk", _("KakaoTalk AlimTalk")
    SMS = "sms", _("SMS/LMS")
    EMAIL = "email", _("email")


class NoticeType(models.TextChoices):
    TRIAL_ENDING = "trial_ending", _("trial ends in 7 days")
    DISCOUNT_ENDING = "discount_ending", _("discount ends in 7 days")
    RENEWAL_UPCOMING = "renewal_upcoming", _("annual renewal coming")
    CONSENT_REQUEST = "consent_request", _("consent request")
    PAYMENT_FAILED = "payment_failed", _("charge failed")
    DUNNING_STEP = "dunning_step", _("dunning step")
    CANCELLATION_CONFIRMED = "cancellation_confirmed", _("cancellation confirmed")
    REFUND_DONE = "refund_done", _("refund done")
    RECEIPT = "receipt", _("receipt")
    PHONE_VERIFICATION = "phone_verification", _("phone verification code")


class Notice(models.Model):
    """One notice to one subscriber. `key` makes it once-only (a doubled sweep finds the same notice).
    `required` notices are the ones the law asks for: they ignore opt-outs."""

    type = models.CharField(max_length=32, choices=NoticeType.choices)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="notices")
    # The subscription the notice is about (notices sit below subscriptions, so an id, not a foreign key).
    subscription_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    key = models.CharField(max_length=120, unique=True)
    required = models.BooleanField(default=False)
    language = models.CharField(max_length=8, default="ko")
    facts = models.JSONField(default=dict, help_text=_("date, amount with VAT, card, how to cancel"))
    # The exact text per channel, rendered once from the ko/en templates: {"alimtalk": {...}, "sms": …}
    texts = models.JSONField(default=dict)
    channels = models.JSONField(default=list, help_text=_("channels in the order they are tried"))
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_type_display()} #{self.pk}"


class NoticeDelivery(models.Model):
    """One step of one channel of a notice: the proof. Append-only."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENT = "sent", _("sent")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed")
        SKIPPED = "skipped", _("skipped")  # no verified number, no email, or opted out
        FALLBACK = "fallback", _("merchant's fallback rule applied")

    notice = models.ForeignKey(Notice, on_delete=models.PROTECT, related_name="deliveries")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    to = models.CharField(max_length=254, blank=True)
    provider_message_id = models.CharField(max_length=64, blank=True, db_index=True)
    subject = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True)
    code = models.CharField(max_length=64, blank=True)
    detail = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField()

    class Meta:
        verbose_name = _("notice delivery")
        verbose_name_plural = _("notice deliveries")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.channel} {self.status} ({self.at:%Y-%m-%d %H:%M})"


class Contact(models.Model):
    """How a subscriber is reached: a verified Korean mobile number and the optional channels they turned off."""

    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="contact")
    phone = models.CharField(max_length=11, blank=True)  # 010XXXXXXXX, only once verified
    phone_verified_at = models.DateTimeField(null=True, blank=True)
    alimtalk_opt_out = models.BooleanField(default=False)
    sms_opt_out = models.BooleanField(default=False)
    email_opt_out = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")

    def __str__(self) -> str:
        return f"contact of customer {self.customer_id}"

    def opted_out(self, channel: str) -> bool:
        return bool(getattr(self, f"{channel}_opt_out", False))


class PhoneVerification(models.Model):
    """A code sent by SMS to a number the subscriber typed. The number becomes theirs only when confirmed."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="phone_verifications")
    phone = models.CharField(max_length=11)
    code_hash = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(attempts__lte=5), name="phone_verification_attempts_le_5")]

    def __str__(self) -> str:
        return f"verification {self.pk} ({self.phone[:3]}-****-{self.phone[-4:]})"
