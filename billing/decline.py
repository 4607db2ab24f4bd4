"""Decline classification: the one place that reads a PG's fail_reason and decides what dunning does.

PG messages are passed through verbatim by Iamport and are not normalised
(docs/iamport-v1.md#error-codes-and-messages), so the rule is a keyword match on the reason, Korean first.
Unknown declines are treated as soft: retrying a card that might recover costs little, while giving up on one
that would have worked loses revenue.
"""

from __future__ import annotations

SOFT = "soft"
HARD = "hard"
GATEWAY = "gateway"

_HARD_KEYWORDS = (
    "분실",
    "도난",
    "정지",
    "유효기간",
    "기간만료",
    "만료",
    "해지",
    "사용불가",
    "유효하지",
    "없는 카드",
    "lost",
    "stolen",
    "expired",
    "invalid",
    "closed",
)


def classify_decline(reason: str | None) -> str:
    """HARD when the card itself is unusable (lost, stolen, expired, invalid): wait for a new card.
    Everything else (잔액부족 insufficient funds, 한도초과 limit exceeded, unknown texts) is SOFT: retry later."""
    text = (reason or "").lower()
    return HARD if any(word in text for word in _HARD_KEYWORDS) else SOFT
