"""The email channel on Django's mail backend. Email has no delivery report: accepted by the mail server is
"sent", never "delivered" (the merchant's fallback rule decides whether that is enough for a required notice)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail

from notices.channels.base import ChannelError, DeliveryReport, OutgoingMessage, SendResult


class EmailChannel:
    def send(self, message: OutgoingMessage) -> SendResult:
        try:
            send_mail(message.subject, message.text, settings.DEFAULT_FROM_EMAIL, [message.to])
        except OSError as exc:
            raise ChannelError(f"mail server unreachable: {exc}", code="smtp") from exc
        return SendResult(accepted=True)

    def reports(self, provider_message_ids: list[str]) -> list[DeliveryReport]:
        return []
