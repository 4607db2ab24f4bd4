"""What the delivery log says: each channel's newest row, and the notice's outcome derived from them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from notices.models import Channel, Notice, NoticeDelivery

D = NoticeDelivery.Status


def channel_states(notice: Notice) -> dict[str, NoticeDelivery | None]:
    """The newest delivery row of each channel of the notice (None: not tried yet)."""
    states: dict[str, NoticeDelivery | None] = dict.fromkeys(notice.channels)
    for row in NoticeDelivery.objects.filter(notice=notice).order_by("at", "id"):
        states[row.channel] = row
    return states


@dataclass(frozen=True)
class NoticeOutcome:
    state: str  # "delivered" | "email_sent" | "pending" | "exhausted"
    at: dt.datetime | None = None  # when it was delivered (or the email sent)
    channel: str = ""

    @property
    def settled(self) -> bool:
        return self.state != "pending"


def notice_outcome(notice: Notice, states: dict[str, NoticeDelivery | None] | None = None) -> NoticeOutcome:
    """Delivered (a phone channel's report, the earliest), email sent (accepted by the mail server, no report
    exists), pending (a channel is queued, waiting for its report, or not tried yet), or exhausted (every
    channel failed or was skipped)."""
    states = channel_states(notice) if states is None else states
    delivered = NoticeDelivery.objects.filter(notice=notice, status=D.DELIVERED).order_by("at", "id").first()
    if delivered is not None:
        return NoticeOutcome("delivered", delivered.at, delivered.channel)
    email = states.get(Channel.EMAIL)
    if email is not None and email.status == D.SENT:  # final: email has no delivery report
        return NoticeOutcome("email_sent", email.at, Channel.EMAIL)
    if all(row is not None and row.status in (D.FAILED, D.SKIPPED) for row in states.values()):
        return NoticeOutcome("exhausted")
    return NoticeOutcome("pending")


def notices_for_subscription(subscription_id: int):
    return Notice.objects.filter(subscription_id=subscription_id).prefetch_related("deliveries").order_by("created_at")
