"""The channel port in our own terms: frozen dataclasses, no Django, no provider JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    channel: str  # "alimtalk" | "sms" | "email"
    to: str  # 010XXXXXXXX, or an email address
    text: str
    subject: str = ""
    template_code: str = ""  # 알림톡 template id (검수 받은 템플릿)
    variables: dict[str, str] = field(default_factory=dict)
    reference: str = ""  # our id for the message (notice id + channel), kept by the provider


@dataclass(frozen=True)
class SendResult:
    """Accepted by the provider (`accepted`), or refused for this message (`code`, `message`)."""

    accepted: bool
    provider_message_id: str = ""
    code: str = ""
    message: str = ""
    delivered: bool = False  # a channel without delivery reports (email) says so at once


@dataclass(frozen=True)
class DeliveryReport:
    provider_message_id: str
    state: str  # "pending" | "delivered" | "failed"
    code: str = ""
    message: str = ""


class ChannelError(Exception):
    """The provider could not be asked (connect error, 5xx, 429, auth): nothing is known to have been sent."""

    def __init__(self, message: str, *, code: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class NoticeChannel(Protocol):
    def send(self, message: OutgoingMessage) -> SendResult: ...

    def reports(self, provider_message_ids: list[str]) -> list[DeliveryReport]: ...
