"""KRW money maths: hand-computed tables for every operation, plus properties of the invariants.

Periods used below (KST): April 2027 = 30 days, February 2027 = 28 days, January/March 2027 = 31 days,
the year 2027 = 365 days. r = remaining / length of the period.
"""

import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subscriptions.periods import KST
from subscriptions.pricing import (
    ProrationLine,
    RefundExceedsBalanceError,
    VatSplit,
    daily_rate,
    format_won,
    is_upgrade,
    prorate_change,
    prorate_interval_change,
    split_refund,
    split_vat,
)


def kst(*args: int) -> datetime:
    return datetime(*args, tzinfo=KST)


APR = (kst(2027, 4, 1), kst(2027, 5, 1))  # 30 days
FEB = (kst(2027, 2, 1), kst(2027, 3, 1))  # 28 days
MAR = (kst(2027, 3, 1), kst(2027, 4, 1))  # 31 days
JAN = (kst(2027, 1, 1), kst(2027, 2, 1))  # 31 days
YEAR_2027 = (kst(2027, 1, 1), kst(2028, 1, 1))  # 365 days
APR_HALF = kst(2027, 4, 16)  # 15 of 30 days left: r = 1/2
APR_LAST_SECOND = APR[1] - timedelta(seconds=1)  # r = 1 / 2,592,000
DAY = 86_400


# --- split_vat -----------------------------------------------------------------------------------------

# (total, tax_free, supply, vat); vat = round_half_up((total − tax_free) / 11), supply = the rest.
SPLIT_VAT_CASES = [
    pytest.param(9_900, 0, 9_000, 900, id="9900-divides-exactly"),  # 9,900 / 11 = 900
    pytest.param(10_000, 0, 9_091, 909, id="10000-rounds-down"),  # 909.09… -> 909
    pytest.param(29_900, 0, 27_182, 2_718, id="29900"),  # 2,718.18… -> 2,718
    pytest.param(1, 0, 1, 0, id="one-won-has-no-vat"),  # 0.09… -> 0
    pytest.param(0, 0, 0, 0, id="zero"),
    # taxable/11 is a multiple of 1/11 so an exact .5 never occurs; 5/11 and 6/11 straddle it.
    pytest.param(5, 0, 5, 0, id="just-below-half"),  # 0.4545… -> 0
    pytest.param(6, 0, 5, 1, id="just-above-half"),  # 0.5454… -> 1
    pytest.param(16, 0, 15, 1, id="1.45-rounds-down"),  # 1.4545… -> 1
    pytest.param(17, 0, 15, 2, id="1.54-rounds-up"),  # 1.5454… -> 2
    pytest.param(10_000, 10_000, 0, 0, id="fully-tax-free"),
    pytest.param(10_000, 3_000, 6_364, 636, id="partly-tax-free"),  # 7,000 / 11 = 636.36… -> 636
    pytest.param(10**12, 0, 909_090_909_091, 90_909_090_909, id="a-trillion-won"),  # 90,909,090,909.09…
]


@pytest.mark.parametrize(("total", "tax_free", "supply", "vat"), SPLIT_VAT_CASES)
def test_split_vat_matches_iamport_default_when_hand_computed(total, tax_free, supply, vat):
    assert split_vat(total, tax_free) == VatSplit(total=total, supply=supply, vat=vat, tax_free=tax_free)


@pytest.mark.parametrize(
    ("total", "tax_free", "error"),
    [
        pytest.param(-1, 0, ValueError, id="negative-total"),
        pytest.param(100, -1, ValueError, id="negative-tax-free"),
        pytest.param(100, 101, ValueError, id="tax-free-above-total"),
        pytest.param(9_900.0, 0, TypeError, id="float-total"),
        pytest.param(Fraction(9_900), 0, TypeError, id="fraction-total"),
        pytest.param(True, 0, TypeError, id="bool-total"),
    ],
)
def test_split_vat_rejects_when_input_invalid(total, tax_free, error):
    with pytest.raises(error):
        split_vat(total, tax_free)


@given(total=st.integers(0, 10**13), data=st.data())
def test_split_vat_parts_add_up_when_any_amount(total, data):
    tax_free = data.draw(st.integers(0, total))

    split = split_vat(total, tax_free)

    assert split.supply + split.vat + split.tax_free == total
    assert min(split.supply, split.vat) >= 0
    assert abs(split.vat - Fraction(total - tax_free, 11)) < Fraction(1, 2)


# --- prorate_change ------------------------------------------------------------------------------------

# (old, new, old_tax_free, new_tax_free, period, at, amount_due, credit_left, tax_free, vat)
PRORATE_CHANGE_CASES = [
    # 29,900 × 1/2 − 9,900 × 1/2 = 14,950 − 4,950 = 10,000; vat 909.09… -> 909
    pytest.param(9_900, 29_900, 0, 0, APR, APR_HALF, 10_000, 0, 0, 909, id="upgrade-at-half-period"),
    # 20,000 × 1 s / 2,592,000 s = 0.0077… -> 0
    pytest.param(9_900, 29_900, 0, 0, APR, APR_LAST_SECOND, 0, 0, 0, 0, id="upgrade-one-second-before-end"),
    # r = 1: the full difference 20,000; vat 1,818.18… -> 1,818
    pytest.param(9_900, 29_900, 0, 0, APR, APR[0], 20_000, 0, 0, 1_818, id="upgrade-at-period-start"),
    pytest.param(9_900, 29_900, 0, 0, APR, APR[1], 0, 0, 0, 0, id="upgrade-at-period-end"),
    # Feb 19 -> Mar 1 = 10 of 28 days: 20,000 × 10/28 = 7,142.857… -> 7,143; vat 649.36… -> 649
    pytest.param(9_900, 29_900, 0, 0, FEB, kst(2027, 2, 19), 7_143, 0, 0, 649, id="upgrade-in-28-day-february"),
    # Mar 22 -> Apr 1 = 10 of 31 days: 20,000 × 10/31 = 6,451.61… -> 6,452; vat 586.54… -> 587
    pytest.param(9_900, 29_900, 0, 0, MAR, kst(2027, 3, 22), 6_452, 0, 0, 587, id="upgrade-in-31-day-month"),
    # 9,900/2 − 29,900/2 = −10,000: nothing due, 10,000 credit
    pytest.param(29_900, 9_900, 0, 0, APR, APR_HALF, 0, 10_000, 0, 0, id="downgrade-at-half-period"),
    # −20,000 × 10/28 = −7,142.857…: credit rounded DOWN to 7,142
    pytest.param(29_900, 9_900, 0, 0, FEB, kst(2027, 2, 19), 0, 7_142, 0, 0, id="downgrade-credit-rounds-down"),
    # 19,901/2 − 9,900/2 = 5,000.5 exactly -> half-up 5,001; vat 454.63… -> 455
    pytest.param(9_900, 19_901, 0, 0, APR, APR_HALF, 5_001, 0, 0, 455, id="exact-half-won-rounds-up"),
    # −5,000.5 exactly: credit rounded down to 5,000
    pytest.param(19_901, 9_900, 0, 0, APR, APR_HALF, 0, 5_000, 0, 0, id="exact-half-won-credit-rounds-down"),
    pytest.param(9_900, 9_900, 0, 0, APR, APR_HALF, 0, 0, 0, 0, id="same-price-nets-to-zero"),
    # Apr 21 -> May 1 = 10 of 30 days: 9,900 × 1/3 = 3,300; vat 300
    pytest.param(0, 9_900, 0, 0, APR, kst(2027, 4, 21), 3_300, 0, 0, 300, id="from-free-plan"),
    # Fully tax-free on both sides: 30,000/2 − 10,000/2 = 10,000, all tax-free, vat 0
    pytest.param(10_000, 30_000, 10_000, 30_000, APR, APR_HALF, 10_000, 0, 10_000, 0, id="tax-free-plans"),
    # tax-free net (10,000 − 0)/2 = 5,000 = the whole due: the taxable parts cancel out
    pytest.param(10_000, 20_000, 0, 10_000, APR, APR_HALF, 5_000, 0, 5_000, 0, id="tax-free-netted"),
    # tax-free net (0 − 10,000)/2 = −5,000 -> clamped to 0; vat of 10,000 = 909
    pytest.param(10_000, 30_000, 10_000, 0, APR, APR_HALF, 10_000, 0, 0, 909, id="tax-free-clamped-to-zero"),
    # tax-free net 25,000/2 = 12,500 > due 2,500 -> clamped to 2,500
    pytest.param(20_000, 25_000, 0, 25_000, APR, APR_HALF, 2_500, 0, 2_500, 0, id="tax-free-clamped-to-due"),
    # due 10,001/2 = 5,000.5 -> 5,001; tax-free 5,001/2 = 2,500.5 -> 2,501; vat 2,500/11 = 227.27… -> 227
    pytest.param(0, 10_001, 0, 5_001, APR, APR_HALF, 5_001, 0, 2_501, 227, id="tax-free-half-rounds-up"),
]


@pytest.mark.parametrize(
    ("old", "new", "old_tf", "new_tf", "period", "at", "due", "credit", "tax_free", "vat"),
    PRORATE_CHANGE_CASES,
)
def test_prorate_change_charges_hand_computed_amount_when_plan_changes(
    old, new, old_tf, new_tf, period, at, due, credit, tax_free, vat
):
    proration = prorate_change(
        old_amount=old,
        new_amount=new,
        old_tax_free=old_tf,
        new_tax_free=new_tf,
        period_start=period[0],
        period_end=period[1],
        at=at,
    )

    assert (proration.amount_due, proration.credit_left) == (due, credit)
    assert proration.tax_free == tax_free
    assert proration.vat_split == split_vat(due, tax_free)
    assert proration.vat_split.vat == vat


def test_prorate_change_rounds_once_when_both_sides_have_fractions():
    # Mar 22 -> Apr 1 = 10/31. Per side: credit 9,900 × 10/31 = 3,193.548… (-> 3,194),
    # charge 29,900 × 10/31 = 9,645.161… (-> 9,645); 9,645 − 3,194 = 6,451 would be a won short.
    # Rounded once: 20,000 × 10/31 = 6,451.61… -> 6,452, and a +1 rounding line reconciles the display.
    proration = prorate_change(
        old_amount=9_900, new_amount=29_900, period_start=MAR[0], period_end=MAR[1], at=kst(2027, 3, 22)
    )

    assert proration.amount_due == 6_452
    assert proration.exact_net == Fraction(200_000, 31)
    assert [line.rounded_amount for line in proration.lines] == [-3_194, 9_645, 1]
    assert proration.lines[-1].kind == "rounding"
    # The explanation allocates the +1 to the credit, so its two amounts add up to the charge.
    assert proration.display_amounts() == (-3_193, 9_645)
    assert proration.describe("ko") == (
        "기존 요금제 남은 10일분 3,193원 차감",
        "새 요금제 남은 10일분 9,645원",
        "결제할 금액: 6,452원",
    )
    assert proration.lines[-1].exact_amount == 6_452 - Fraction(200_000, 31)


def test_prorate_change_explains_working_when_upgrading_at_half_period():
    proration = prorate_change(old_amount=9_900, new_amount=29_900, period_start=APR[0], period_end=APR[1], at=APR_HALF)

    assert proration.lines == (
        ProrationLine(
            kind="unused_time",
            exact_amount=Fraction(-4_950),
            rounded_amount=-4_950,
            days_remaining=Fraction(15),
            total_days=Fraction(30),
            daily_rate=Fraction(330),  # 9,900 / 30
        ),
        ProrationLine(
            kind="remaining_time",
            exact_amount=Fraction(14_950),
            rounded_amount=14_950,
            days_remaining=Fraction(15),
            total_days=Fraction(30),
            daily_rate=Fraction(29_900, 30),  # 996.666…
        ),
    )
    assert proration.describe("ko") == (
        "기존 요금제 남은 15일분 4,950원 차감",
        "새 요금제 남은 15일분 14,950원",
        "결제할 금액: 10,000원",
    )
    assert proration.describe("en") == (
        "Unused 15 days of the previous plan: −₩4,950",
        "Remaining 15 days on the new plan: ₩14,950",
        "Amount due: ₩10,000",
    )


def test_prorate_change_shows_fractional_days_when_change_mid_day():
    # Apr 18 12:00 -> May 1 = 12.5 of 30 days; 20,000 × 12.5/30 = 8,333.33… -> 8,333
    proration = prorate_change(
        old_amount=9_900, new_amount=29_900, period_start=APR[0], period_end=APR[1], at=kst(2027, 4, 18, 12)
    )

    assert proration.amount_due == 8_333
    assert proration.lines[0].days_remaining == Fraction(25, 2)
    assert proration.describe() == (
        "기존 요금제 남은 약 13일분 4,125원 차감",
        "새 요금제 남은 약 13일분 12,458원",
        "결제할 금액: 8,333원",
    )
    assert proration.describe("en")[0] == "Unused about 13 days of the previous plan: −₩4,125"


def test_prorate_change_reports_credit_when_downgrading_with_rounding():
    # 9,900/2 − 19,901/2 = −5,000.5: lines show −9,951 + 4,950 = −5,001, the credit is 5,000 -> +1 line
    proration = prorate_change(old_amount=19_901, new_amount=9_900, period_start=APR[0], period_end=APR[1], at=APR_HALF)

    # Shown: the +1 goes to the credit line (−9,951 -> −9,950), so −9,950 + 4,950 = −5,000 = the credit.
    assert proration.describe("ko") == (
        "기존 요금제 남은 15일분 9,950원 차감",
        "새 요금제 남은 15일분 4,950원",
        "결제할 금액: 0원",
        "남은 크레딧: 5,000원",
    )
    assert proration.describe("en")[-2:] == ("Amount due: ₩0", "Credit left: ₩5,000")


def test_prorate_change_is_exact_when_times_have_microseconds():
    # 1 µs left of a 2 µs period: r = 1/2 exactly, which total_seconds() floats would not promise.
    start = datetime(2027, 4, 1, tzinfo=UTC)
    proration = prorate_change(
        old_amount=0,
        new_amount=1,
        period_start=start,
        period_end=start + timedelta(microseconds=2),
        at=start + timedelta(microseconds=1),
    )

    assert proration.exact_net == Fraction(1, 2)
    assert proration.amount_due == 1  # 0.5 -> half-up


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"at": APR[0] - timedelta(seconds=1)}, ValueError, id="at-before-period"),
        pytest.param({"at": APR[1] + timedelta(seconds=1)}, ValueError, id="at-after-period"),
        pytest.param({"period_end": APR[0], "at": APR[0]}, ValueError, id="empty-period"),
        pytest.param({"old_amount": -1}, ValueError, id="negative-amount"),
        pytest.param({"new_tax_free": 30_000}, ValueError, id="tax-free-above-amount"),
        pytest.param({"new_amount": 29_900.0}, TypeError, id="float-amount"),
        pytest.param({"at": datetime(2027, 4, 16)}, ValueError, id="naive-datetime"),
    ],
)
def test_prorate_change_rejects_when_input_invalid(kwargs, error):
    arguments = {
        "old_amount": 9_900,
        "new_amount": 29_900,
        "period_start": APR[0],
        "period_end": APR[1],
        "at": APR_HALF,
    }
    with pytest.raises(error):
        prorate_change(**(arguments | kwargs))


# --- prorate_interval_change ---------------------------------------------------------------------------

# (old, old_tax_free, new, new_tax_free, period, at, amount_due, credit_left, tax_free, vat)
INTERVAL_CHANGE_CASES = [
    # Jul 2 -> Jan 1 = 183 of 365 days: credit 99,000 × 183/365 = 49,635.616…;
    # 9,900 − 49,635.616… = −39,735.616… -> due 0, credit rounded DOWN to 39,735 (not 39,736)
    pytest.param(
        99_000,
        0,
        9_900,
        0,
        YEAR_2027,
        kst(2027, 7, 2),
        0,
        39_735,
        0,
        0,
        id="yearly-to-monthly-credit-exceeds",
    ),
    # Jan 16 -> Feb 1 = 16 of 31 days: credit 9,900 × 16/31 = 5,109.677…;
    # 99,000 − 5,109.677… = 93,890.32… -> 93,890; vat 8,535.45… -> 8,535
    pytest.param(9_900, 0, 99_000, 0, JAN, kst(2027, 1, 16), 93_890, 0, 0, 8_535, id="monthly-to-yearly-mid-month"),
    # full credit: 99,000 − 9,900 = 89,100; vat 8,100
    pytest.param(9_900, 0, 99_000, 0, JAN, JAN[0], 89_100, 0, 0, 8_100, id="monthly-to-yearly-at-start"),
    # no credit: the full 99,000; vat 9,000
    pytest.param(9_900, 0, 99_000, 0, JAN, JAN[1], 99_000, 0, 0, 9_000, id="monthly-to-yearly-at-end"),
    # credit 19,800/2 = 9,900 = the new amount: nothing either way
    pytest.param(19_800, 0, 9_900, 0, APR, APR_HALF, 0, 0, 0, 0, id="credit-equals-new-amount"),
    # 10,000 − 9,901/2 = 5,049.5 exactly -> half-up 5,050; vat 459.09… -> 459
    pytest.param(9_901, 0, 10_000, 0, APR, APR_HALF, 5_050, 0, 0, 459, id="exact-half-won-rounds-up"),
    # Dec 2 -> Jan 1 = 30 of 365 days: credit 120,000 × 30/365 = 9,863.01…;
    # 10,000 − 9,863.01… = 136.98… -> 137, all of it tax-free
    pytest.param(120_000, 120_000, 10_000, 10_000, YEAR_2027, kst(2027, 12, 2), 137, 0, 137, 0, id="tax-free-plans"),
    # 99,000 − 4,950 = 94,050; tax-free 33,000 − 0 = 33,000; vat of 61,050 = 5,550
    pytest.param(9_900, 0, 99_000, 33_000, APR, APR_HALF, 94_050, 0, 33_000, 5_550, id="new-plan-partly-tax-free"),
]


@pytest.mark.parametrize(
    ("old", "old_tf", "new", "new_tf", "period", "at", "due", "credit", "tax_free", "vat"),
    INTERVAL_CHANGE_CASES,
)
def test_prorate_interval_change_subtracts_exact_credit_when_interval_changes(
    old, old_tf, new, new_tf, period, at, due, credit, tax_free, vat
):
    proration = prorate_interval_change(
        old_amount=old,
        old_tax_free=old_tf,
        new_amount=new,
        new_tax_free=new_tf,
        period_start=period[0],
        period_end=period[1],
        at=at,
    )

    assert (proration.amount_due, proration.credit_left) == (due, credit)
    assert proration.tax_free == tax_free
    assert proration.vat_split == split_vat(due, tax_free)
    assert proration.vat_split.vat == vat


def test_prorate_interval_change_explains_credit_left_when_yearly_to_monthly():
    proration = prorate_interval_change(
        old_amount=99_000,
        old_tax_free=0,
        new_amount=9_900,
        new_tax_free=0,
        period_start=YEAR_2027[0],
        period_end=YEAR_2027[1],
        at=kst(2027, 7, 2),
    )

    # Display: −49,636 + 9,900 = −39,736; the credit is rounded down to 39,735 -> +1 line.
    assert [line.kind for line in proration.lines] == ["unused_time", "new_period", "rounding"]
    assert proration.describe("ko") == (
        "기존 요금제 남은 183일분 49,635원 차감",
        "새 요금제 전체 기간 9,900원",
        "결제할 금액: 0원",
        "남은 크레딧: 39,735원",
    )
    assert proration.describe("en") == (
        "Unused 183 days of the previous plan: −₩49,635",
        "New plan, full period: ₩9,900",
        "Amount due: ₩0",
        "Credit left: ₩39,735",
    )


def test_describe_rejects_when_language_unknown():
    proration = prorate_change(old_amount=0, new_amount=0, period_start=APR[0], period_end=APR[1], at=APR_HALF)
    with pytest.raises(ValueError, match="unsupported language"):
        proration.describe("ja")


# --- split_refund --------------------------------------------------------------------------------------

# (refund, paid_total, paid_tax_free, already_refunded, already_refunded_tax_free, supply, vat, tax_free)
SPLIT_REFUND_CASES = [
    pytest.param(9_900, 9_900, 0, 0, 0, 9_000, 900, 0, id="full-refund-taxable"),
    # Invoice 10,000 with 3,000 tax-free = supply 6,364 + vat 636 + tax-free 3,000, refunded in 3 parts:
    # 1st: tax-free 3,333 × 3,000/10,000 = 999.9 -> 1,000; taxable 2,333: vat(2,333) = 212.09… -> 212
    pytest.param(3_333, 10_000, 3_000, 0, 0, 2_121, 212, 1_000, id="first-of-three"),
    # 2nd: tax-free 3,333 × 2,000/6,667 = 999.85… -> 1,000; vat(4,666) − vat(2,333) = 424 − 212 = 212
    pytest.param(3_333, 10_000, 3_000, 3_333, 1_000, 2_121, 212, 1_000, id="second-of-three"),
    # last: takes what is left: tax-free 1,000; vat(7,000) − vat(4,666) = 636 − 424 = 212; supply 2,122
    pytest.param(3_334, 10_000, 3_000, 6_666, 2_000, 2_122, 212, 1_000, id="last-of-three-takes-remainder"),
    # running-total VAT: 1st half vat(5,000) = 454.54… -> 455; 2nd half vat(10,000) − 455 = 909 − 455 = 454
    pytest.param(5_000, 10_000, 0, 0, 0, 4_545, 455, 0, id="first-half-taxable"),
    pytest.param(5_000, 10_000, 0, 5_000, 0, 4_546, 454, 0, id="second-half-takes-vat-remainder"),
    # tax-free 1 × 1/2 = 0.5 exactly -> half-up 1
    pytest.param(1, 2, 1, 0, 0, 0, 0, 1, id="exact-half-won-tax-free-rounds-up"),
    # then the last won has no tax-free left: all taxable, vat(1) = 0
    pytest.param(1, 2, 1, 1, 1, 1, 0, 0, id="after-half-won-rounded-up"),
    pytest.param(4_000, 10_000, 10_000, 0, 0, 0, 0, 4_000, id="tax-free-payment"),
]


@pytest.mark.parametrize(
    ("refund", "paid", "paid_tf", "already", "already_tf", "supply", "vat", "tax_free"), SPLIT_REFUND_CASES
)
def test_split_refund_matches_hand_computed_parts_when_refunding(
    refund, paid, paid_tf, already, already_tf, supply, vat, tax_free
):
    split = split_refund(
        refund_amount=refund,
        paid_total=paid,
        paid_tax_free=paid_tf,
        already_refunded=already,
        already_refunded_tax_free=already_tf,
    )

    assert split == VatSplit(total=refund, supply=supply, vat=vat, tax_free=tax_free)


def test_split_refund_parts_sum_to_invoice_when_refunded_in_three_partials():
    invoice = split_vat(10_000, 3_000)  # supply 6,364, vat 636, tax-free 3,000
    refunds = _refund_in_parts(invoice, [3_333, 3_333, 3_334])

    assert sum(r.supply for r in refunds) == invoice.supply
    assert sum(r.vat for r in refunds) == invoice.vat
    assert sum(r.tax_free for r in refunds) == invoice.tax_free


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        pytest.param({"refund_amount": 10_001}, RefundExceedsBalanceError, id="above-paid"),
        pytest.param({"refund_amount": 5_001, "already_refunded": 5_000}, RefundExceedsBalanceError, id="above-left"),
        pytest.param(
            {"refund_amount": 1, "already_refunded": 10_000, "already_refunded_tax_free": 3_000},
            RefundExceedsBalanceError,
            id="fully-refunded",
        ),
        pytest.param(
            {"already_refunded": 8_000, "already_refunded_tax_free": 0},
            ValueError,
            id="more-taxable-refunded-than-paid",
        ),
        pytest.param({"refund_amount": 0}, ValueError, id="zero-refund"),
        pytest.param({"refund_amount": -1}, ValueError, id="negative-refund"),
        pytest.param({"already_refunded_tax_free": 1}, ValueError, id="tax-free-refunded-but-nothing-refunded"),
        pytest.param({"paid_tax_free": 10_001}, ValueError, id="tax-free-above-paid"),
        pytest.param({"refund_amount": 100.0}, TypeError, id="float-refund"),
    ],
)
def test_split_refund_rejects_when_refund_invalid(kwargs, error):
    arguments = {
        "refund_amount": 1_000,
        "paid_total": 10_000,
        "paid_tax_free": 3_000,
        "already_refunded": 0,
        "already_refunded_tax_free": 0,
    }
    with pytest.raises(error):
        split_refund(**(arguments | kwargs))


def test_refund_exceeding_balance_is_a_value_error_when_caught_generically():
    # Services may catch ValueError broadly; the specific class lets them map it to a user-facing code.
    assert issubclass(RefundExceedsBalanceError, ValueError)


# --- daily_rate and is_upgrade -------------------------------------------------------------------------

DAILY_RATE_CASES = [
    pytest.param(9_900, *APR, Fraction(330), id="30-day-month"),  # 9,900 / 30
    pytest.param(29_900, *APR, Fraction(2_990, 3), id="non-integral-rate"),  # 29,900 / 30 = 996.66…
    pytest.param(9_900, *FEB, Fraction(2_475, 7), id="28-day-february"),  # 9,900 / 28 = 353.57…
    pytest.param(9_900, *MAR, Fraction(9_900, 31), id="31-day-month"),  # 319.35…
    pytest.param(99_000, *YEAR_2027, Fraction(19_800, 73), id="365-day-year"),  # 99,000 / 365 = 271.23…
    pytest.param(1_000, kst(2027, 4, 1), kst(2027, 4, 1, 12), Fraction(2_000), id="half-day"),
    pytest.param(0, *APR, Fraction(0), id="free-plan"),
]


@pytest.mark.parametrize(("amount", "start", "end", "expected"), DAILY_RATE_CASES)
def test_daily_rate_is_exact_when_period_given(amount, start, end, expected):
    assert daily_rate(amount, start, end) == expected


def test_daily_rate_rejects_when_period_empty():
    with pytest.raises(ValueError, match="must be after"):
        daily_rate(9_900, APR[1], APR[0])


MONTH_30 = 30 * DAY
MONTH_31 = 31 * DAY
YEAR_365 = 365 * DAY

IS_UPGRADE_CASES = [
    pytest.param(9_900, MONTH_30, 29_900, MONTH_30, True, id="pricier-monthly-plan"),
    pytest.param(29_900, MONTH_30, 9_900, MONTH_30, False, id="cheaper-monthly-plan"),
    pytest.param(9_900, MONTH_30, 9_900, MONTH_30, False, id="same-price-is-not-an-upgrade"),
    # 99,000 × 30 = 2,970,000 < 9,900 × 365 = 3,613,500: yearly is cheaper per day
    pytest.param(9_900, MONTH_30, 99_000, YEAR_365, False, id="monthly-to-cheaper-yearly"),
    # 9,900 × 365 = 3,613,500 > 99,000 × 31 = 3,069,000: monthly costs more per day
    pytest.param(99_000, YEAR_365, 9_900, MONTH_31, True, id="yearly-to-pricier-monthly"),
    # 120,450 × 30 = 3,613,500 = 9,900 × 365: the same daily price is not an upgrade
    pytest.param(9_900, MONTH_30, 120_450, YEAR_365, False, id="yearly-at-equal-daily-rate"),
    # 120,451 × 30 = 3,613,530 > 3,613,500: one won more a year tips it
    pytest.param(9_900, MONTH_30, 120_451, YEAR_365, True, id="yearly-one-won-above-daily-rate"),
    pytest.param(0, MONTH_30, 9_900, MONTH_30, True, id="free-to-paid"),
    pytest.param(9_900, MONTH_30, 0, MONTH_30, False, id="paid-to-free"),
]


@pytest.mark.parametrize(("old", "old_len", "new", "new_len", "expected"), IS_UPGRADE_CASES)
def test_is_upgrade_compares_daily_price_when_plans_differ(old, old_len, new, new_len, expected):
    assert is_upgrade(old_amount=old, old_len_seconds=old_len, new_amount=new, new_len_seconds=new_len) is expected


def test_is_upgrade_rejects_when_length_not_positive():
    with pytest.raises(ValueError, match="must be > 0"):
        is_upgrade(old_amount=1, old_len_seconds=0, new_amount=2, new_len_seconds=DAY)


# --- format_won ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "lang", "expected"),
    [
        pytest.param(12_900, "ko", "12,900원", id="ko"),
        pytest.param(12_900, "en", "₩12,900", id="en"),
        pytest.param(0, "ko", "0원", id="zero"),
        pytest.param(-4_950, "ko", "−4,950원", id="negative-ko"),
        pytest.param(-4_950, "en", "−₩4,950", id="negative-en"),
        pytest.param(1_234_567_890, "en", "₩1,234,567,890", id="billions"),
    ],
)
def test_format_won_groups_thousands_when_formatting(amount, lang, expected):
    assert format_won(amount, lang) == expected


# --- properties of the prorations ----------------------------------------------------------------------

MAX_PERIOD_US = 400 * DAY * 1_000_000


@st.composite
def plan(draw):
    amount = draw(st.integers(0, 10**9))
    return amount, draw(st.integers(0, amount))


@st.composite
def period_and_moment(draw):
    start = draw(st.datetimes(datetime(2000, 1, 1), datetime(2200, 1, 1), timezones=st.just(KST)))
    length = draw(st.integers(1, MAX_PERIOD_US))
    elapsed = draw(st.integers(0, length))
    return start, start + timedelta(microseconds=length), start + timedelta(microseconds=elapsed)


def _assert_proration_invariants(proration, exact_net):
    assert proration.exact_net == exact_net
    assert proration.amount_due >= 0
    assert proration.credit_left >= 0
    assert proration.amount_due == 0 or proration.credit_left == 0
    if exact_net > 0:
        assert abs(proration.amount_due - exact_net) <= Fraction(1, 2)  # half-up, once
    else:
        assert proration.amount_due == 0
        assert 0 <= -exact_net - proration.credit_left < 1  # rounded down
    assert abs(proration.amount_due - proration.credit_left - exact_net) < 1
    assert 0 <= proration.tax_free <= proration.amount_due
    split = proration.vat_split
    assert split.supply + split.vat + split.tax_free == split.total == proration.amount_due
    assert sum(line.rounded_amount for line in proration.lines) == proration.amount_due - proration.credit_left
    # What the subscriber reads adds up: the shown whole-won amounts sum to the result, whatever the rounding.
    assert sum(proration.display_amounts()) == proration.amount_due - proration.credit_left
    for lang in ("ko", "en"):
        assert not re.search(r"\d\.\d", " ".join(proration.describe(lang))), "a fraction of a won or a day"
        assert proration.describe(lang)[-1 if not proration.credit_left else -2].endswith(
            format_won(proration.amount_due, lang)
        )


@given(old=plan(), new=plan(), times=period_and_moment())
def test_prorate_change_invariants_hold_when_any_change(old, new, times):
    start, end, at = times
    ratio = Fraction((end - at) // timedelta(microseconds=1), (end - start) // timedelta(microseconds=1))

    proration = prorate_change(
        old_amount=old[0],
        old_tax_free=old[1],
        new_amount=new[0],
        new_tax_free=new[1],
        period_start=start,
        period_end=end,
        at=at,
    )

    _assert_proration_invariants(proration, new[0] * ratio - old[0] * ratio)


@given(old=plan(), new=plan(), times=period_and_moment())
def test_prorate_interval_change_invariants_hold_when_any_change(old, new, times):
    start, end, at = times
    ratio = Fraction((end - at) // timedelta(microseconds=1), (end - start) // timedelta(microseconds=1))

    proration = prorate_interval_change(
        old_amount=old[0],
        old_tax_free=old[1],
        new_amount=new[0],
        new_tax_free=new[1],
        period_start=start,
        period_end=end,
        at=at,
    )

    _assert_proration_invariants(proration, new[0] - old[0] * ratio)


@st.composite
def invoice_and_refunds(draw):
    total = draw(st.integers(1, 10**9))
    tax_free = draw(st.integers(0, total))
    cuts = draw(st.lists(st.integers(1, total - 1), max_size=min(total - 1, 8), unique=True)) if total > 1 else []
    bounds = [0, *sorted(cuts), total]
    return split_vat(total, tax_free), [b - a for a, b in pairwise(bounds)]


@given(case=invoice_and_refunds())
def test_refund_parts_sum_to_invoice_when_any_partial_refunds(case):
    invoice, parts = case

    refunds = _refund_in_parts(invoice, parts)

    assert sum(r.total for r in refunds) == invoice.total
    assert sum(r.supply for r in refunds) == invoice.supply
    assert sum(r.vat for r in refunds) == invoice.vat
    assert sum(r.tax_free for r in refunds) == invoice.tax_free


def _refund_in_parts(invoice: VatSplit, parts: list[int]) -> list[VatSplit]:
    """Refund ``parts`` one after another, feeding back the running totals as the refund ledger would."""
    refunds: list[VatSplit] = []
    for part in parts:
        refunds.append(
            split_refund(
                refund_amount=part,
                paid_total=invoice.total,
                paid_tax_free=invoice.tax_free,
                already_refunded=sum(r.total for r in refunds),
                already_refunded_tax_free=sum(r.tax_free for r in refunds),
            )
        )
    return refunds
