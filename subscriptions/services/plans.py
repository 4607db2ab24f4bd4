"""Plans: immutable prices. A price change is a new plan; existing subscribers keep theirs until moved."""

from __future__ import annotations

from subscriptions.errors import PlanImmutableError
from subscriptions.models import Plan

DEMO_PLANS = [
    # code, ko, en, amount, tax_free, interval, count, trial_days, description ko, description en
    (
        "basic-monthly",
        "베이직 월간",
        "Basic monthly",
        9_900,
        0,
        "month",
        1,
        0,
        "개인용 기본 플랜",
        "For individuals",
    ),
    (
        "pro-monthly",
        "프로 월간",
        "Pro monthly",
        29_900,
        0,
        "month",
        1,
        14,
        "팀을 위한 플랜, 14일 무료 체험",
        "For teams, 14-day free trial",
    ),
    (
        "pro-yearly",
        "프로 연간",
        "Pro yearly",
        299_000,
        0,
        "year",
        1,
        0,
        "프로 플랜 연간 결제(2개월 할인)",
        "Pro, billed yearly (2 months free)",
    ),
    (
        "books-monthly",
        "도서 정기배송",
        "Book box",
        22_000,
        12_000,
        "month",
        1,
        0,
        "도서(면세) + 굿즈(과세)",
        "Books (tax-free) + goods (taxable)",
    ),
]


def plans_seed_demo() -> int:
    for order, (code, ko, en, amount, tax_free, interval, count, trial, dko, den) in enumerate(DEMO_PLANS):
        Plan.objects.get_or_create(
            code=code,
            defaults={
                "name_ko": ko,
                "name_en": en,
                "amount": amount,
                "tax_free_amount": tax_free,
                "interval": interval,
                "interval_count": count,
                "trial_days": trial,
                "description_ko": dko,
                "description_en": den,
                "sort_order": order,
            },
        )
    return Plan.objects.count()


def plan_update(*, plan: Plan, **changes) -> Plan:
    """Edit a plan. Price fields are frozen once anyone subscribed."""
    frozen = [name for name in Plan.PRICE_FIELDS if name in changes and changes[name] != getattr(plan, name)]
    if frozen and plan.subscriptions.exists():
        raise PlanImmutableError(fields=frozen)
    for name, value in changes.items():
        setattr(plan, name, value)
    plan.full_clean()
    plan.save()
    return plan
