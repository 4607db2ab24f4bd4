"""How subscriber pages print money and dates: by the page's language, whole won, the KST calendar.

`9,900원` and `2026년 12월 6일` in Korean; `₩9,900` and `December 6, 2026` in English (the same forms the
proration explanations use, billing.money.format_won), so one page never mixes two ways of writing them.
"""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone
from django.utils.translation import get_language

from billing.money import format_won
from billing.money_status import MoneyStatus

register = template.Library()

_MONTHS_EN = "January February March April May June July August September October November December".split()


def _english() -> bool:
    return (get_language() or "ko").startswith("en")


@register.filter
def won(amount) -> str:
    """An int of won for people; anything else (None, '') prints as nothing rather than a guess."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        return ""
    return format_won(amount, "en" if _english() else "ko")


def _local(value: dt.datetime | dt.date) -> dt.date | dt.datetime:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value) if timezone.is_aware(value) else value
    return value


@register.filter
def kdate(value) -> str:
    """`2026년 12월 6일` / `December 6, 2026`, in the billing calendar (Asia/Seoul)."""
    if not isinstance(value, dt.date):
        return ""
    day = _local(value)
    if _english():
        return f"{_MONTHS_EN[day.month - 1]} {day.day}, {day.year}"
    return f"{day.year}년 {day.month}월 {day.day}일"


@register.filter
def kdatetime(value) -> str:
    """`2026년 12월 6일 15:00` / `December 6, 2026, 15:00` (KST)."""
    if not isinstance(value, dt.datetime):
        return kdate(value)
    moment = _local(value)
    return f"{kdate(moment)}{',' if _english() else ''} {moment:%H:%M}"


@register.filter
def money_status_label(value) -> str:
    try:
        return str(MoneyStatus(value).label)
    except ValueError:
        return ""


@register.filter
def sentence(text) -> str:
    """A reason from a card company or a person, ready to be followed by our own words: trimmed, ending in
    exactly one full stop (the templates never add one, so `잔액이 부족합니다..` cannot happen)."""
    text = str(text or "").strip()
    if not text:
        return ""
    return text if text[-1] in ".!?。" else text + "."


@register.filter
def cycle(plan) -> str:
    """How often a plan charges: `매월`, `3개월마다` / `every month`, `every 3 months`."""
    count, interval = plan.interval_count, plan.interval
    if _english():
        unit = {"day": "day", "week": "week", "month": "month", "year": "year"}[interval]
        return f"every {unit}" if count == 1 else f"every {count} {unit}s"
    if count == 1:
        return {"day": "매일", "week": "매주", "month": "매월", "year": "매년"}[interval]
    unit = {"day": "일", "week": "주", "month": "개월", "year": "년"}[interval]
    return f"{count}{unit}마다"
