"""KRW money maths: VAT splits, proration of plan changes, refund splits. The ONLY place that divides money.

Money is an ``int`` of won, VAT-inclusive (the price a customer sees). Intermediate values are exact
``fractions.Fraction``; floats never appear, because a float cannot hold 1/11 or 1/30 and the error
surfaces as a won that nobody can explain. Each operation rounds ONCE, at the end, by one rule:

============================  ==================================================================
Operation                     Rounding rule
============================  ==================================================================
``split_vat``                 vat = taxable / 11 rounded half-up to the won (Iamport's default
                              VAT); supply = taxable − vat (takes the leftover, never rounded).
                              taxable / 11 is a multiple of 1/11, so an exact .5 cannot occur.
``prorate_change``            net = new × r − old × r with r = remaining / length (microseconds,
                              exact). amount_due = net rounded half-up if net > 0, else 0;
                              credit_left = −net rounded DOWN (merchant's favour) if net < 0.
                              Tax-free part: netted the same way, rounded half-up, clamped to
                              [0, amount_due].
``prorate_interval_change``   net = new − old × r; same rules as ``prorate_change``.
``split_refund``              tax_free = refund × remaining_tax_free / remaining rounded half-up;
                              vat by running-total rounding (vat of everything refunded so far
                              minus vat already refunded), so the last refund takes exactly the
                              remainder and all refunds sum to the invoice's parts.
``daily_rate``                none: returns the exact Fraction of won per day.
============================  ==================================================================

"Half-up" here means ties go away from zero (commercial rounding, 사사오입); outputs that are money
are never negative, so for them it is plain half-up. The per-line amounts in ``Proration.lines`` are
rounded only for display; the charged amount comes from the exact net, and a "rounding" line
records the difference. ``Proration.describe`` prints whole days and whole won, and allocates that
difference to the unused-time credit (``display_amounts``), so the sentences add up to the charge.

Formatting won for people (``format_won``, ``Proration.describe``) lives here only so that the
explanation of a proration and its numbers cannot drift apart; templates format everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from math import floor
from typing import Literal

from billing.money import (
    RefundExceedsBalanceError,
    VatSplit,
    check_money,
    format_won,
    round_half_up,
    split_refund,
    split_vat,
)

__all__ = [
    "LineKind",
    "Proration",
    "ProrationLine",
    "RefundExceedsBalanceError",
    "VatSplit",
    "daily_rate",
    "format_won",
    "is_upgrade",
    "prorate_change",
    "prorate_interval_change",
    "split_refund",
    "split_vat",
]

_MICROSECONDS_PER_DAY = 86_400 * 1_000_000
_ONE_MICROSECOND = timedelta(microseconds=1)

LineKind = Literal["unused_time", "remaining_time", "new_period", "rounding"]
Lang = Literal["ko", "en"]


@dataclass(frozen=True)
class ProrationLine:
    """One line of a proration explanation, with the numbers a template needs to show the working.

    ``exact_amount`` is signed (a credit is negative) and is what the charge is computed from;
    ``rounded_amount`` is the same value rounded half-up for display. For ``"rounding"`` lines,
    ``rounded_amount`` is what makes the displayed lines add up to the result, and ``exact_amount``
    is the true rounding error (result − exact net). ``days_remaining``, ``total_days`` and
    ``daily_rate`` (won per day) are set on time-based lines and ``None`` elsewhere.
    """

    kind: LineKind
    exact_amount: Fraction
    rounded_amount: int
    days_remaining: Fraction | None = None
    total_days: Fraction | None = None
    daily_rate: Fraction | None = None


@dataclass(frozen=True)
class Proration:
    """The result of a mid-period plan change.

    - ``amount_due``: what to charge now (>= 0).
    - ``credit_left``: what the customer is still owed when the change nets out negative (>= 0);
      callers decide whether to carry it, refund it or drop it. At most one of the two is non-zero.
    - ``vat_split``: the VAT split of ``amount_due`` (``tax_free`` is a shortcut to its tax-free part).
    - ``exact_net``: charge − credit before rounding; negative means a credit.
    - ``lines``: the working, in order. ``sum(line.rounded_amount) == amount_due − credit_left``.
    """

    amount_due: int
    credit_left: int
    vat_split: VatSplit
    exact_net: Fraction
    lines: tuple[ProrationLine, ...]

    @property
    def tax_free(self) -> int:
        """Tax-free part of ``amount_due`` (send as Iamport's ``tax_free``)."""
        return self.vat_split.tax_free

    def display_amounts(self) -> tuple[int, ...]:
        """The whole-won amount shown for each non-rounding line, summing exactly to amount_due − credit_left.

        Rounding rule (display only; the charge is unaffected): every line shows its own half-up rounding,
        except that the rounding difference (at most a won or two, the ``"rounding"`` line) is allocated to
        the credit for unused time, the one line that is always a share of a period. So a subscriber who adds
        up the lines gets the amount charged, and no line reads "rounding"."""
        shown = [line.rounded_amount for line in self.lines if line.kind != "rounding"]
        difference = self.amount_due - self.credit_left - sum(shown)
        kinds = [line.kind for line in self.lines if line.kind != "rounding"]
        target = kinds.index("unused_time") if "unused_time" in kinds else len(shown) - 1
        shown[target] += difference
        return tuple(shown)

    def describe(self, lang: Lang = "ko") -> tuple[str, ...]:
        """The working as plain sentences in Korean (``"ko"``) or English (``"en"``), last line the result:
        whole days and whole won (``남은 11일분 3,513원 차감``), and the shown amounts add up to the result."""
        if lang not in _TEXT:
            raise ValueError(f"unsupported language {lang!r}; expected 'ko' or 'en'")
        text = _TEXT[lang]
        lines = [line for line in self.lines if line.kind != "rounding"]
        rendered = [
            _describe_line(line, amount, lang) for line, amount in zip(lines, self.display_amounts(), strict=True)
        ]
        rendered.append(text["amount_due"].format(amount=format_won(self.amount_due, lang)))
        if self.credit_left:
            rendered.append(text["credit_left"].format(amount=format_won(self.credit_left, lang)))
        return tuple(rendered)


def daily_rate(amount: int, period_start: datetime, period_end: datetime) -> Fraction:
    """Exact price per day (won / 86,400 s) of ``amount`` over ``[period_start, period_end)``.

    Not rounded: it feeds comparisons and explanations, never a charge on its own.
    """
    check_money("amount", amount)
    _check_period(period_start, period_end)
    return Fraction(amount * _MICROSECONDS_PER_DAY, _microseconds(period_end - period_start))


def is_upgrade(
    *, old_amount: int, old_len_seconds: int | Fraction, new_amount: int, new_len_seconds: int | Fraction
) -> bool:
    """True if the new plan costs strictly more per unit of time than the old one.

    Policy (style of LemonSqueezy's "higher daily fee"): an upgrade applies now with proration, anything
    else (cheaper or the same daily price) waits for the period end. Compared by cross-multiplication,
    so no division and no rounding: new/new_len > old/old_len  <=>  new × old_len > old × new_len.
    """
    check_money("old_amount", old_amount)
    check_money("new_amount", new_amount)
    for name, length in (("old_len_seconds", old_len_seconds), ("new_len_seconds", new_len_seconds)):
        if isinstance(length, bool) or not isinstance(length, int | Fraction):
            raise TypeError(f"{name} must be an int or Fraction of seconds, got {type(length).__name__}")
        if length <= 0:
            raise ValueError(f"{name} must be > 0, got {length}")
    return new_amount * old_len_seconds > old_amount * new_len_seconds


def prorate_change(
    *,
    old_amount: int,
    new_amount: int,
    old_tax_free: int = 0,
    new_tax_free: int = 0,
    period_start: datetime,
    period_end: datetime,
    at: datetime,
) -> Proration:
    """Price a plan change at ``at`` inside the current period, keeping the period's end (Stripe-like).

    With r = (period_end − at) / (period_end − period_start), exact to the microsecond:
    credit for unused time = old_amount × r, charge for remaining time = new_amount × r.

    Rounding, once, on the exact net (charge − credit): half-up to the won if positive (amount_due);
    if the net is zero or negative (a downgrade), amount_due is 0 and credit_left is the negative part
    rounded DOWN, so a fraction of a won is never promised away. Rounding each side separately would
    round twice and could be off by a won. The tax-free part of amount_due is (new_tax_free −
    old_tax_free) × r rounded half-up and clamped to [0, amount_due]: one charge cannot carry a
    negative tax-free or taxable part.
    """
    _check_plan("old", old_amount, old_tax_free)
    _check_plan("new", new_amount, new_tax_free)
    remaining, length = _remaining_and_length(period_start, period_end, at)
    ratio = Fraction(remaining, length)
    credit = old_amount * ratio
    charge = new_amount * ratio
    lines = (
        _time_line("unused_time", -credit, old_amount, remaining, length),
        _time_line("remaining_time", charge, new_amount, remaining, length),
    )
    return _settle(charge - credit, (new_tax_free - old_tax_free) * ratio, lines)


def prorate_interval_change(
    *,
    old_amount: int,
    old_tax_free: int,
    new_amount: int,
    new_tax_free: int,
    period_start: datetime,
    period_end: datetime,
    at: datetime,
) -> Proration:
    """Price a change of billing interval (monthly <-> yearly) at ``at``, where a new full period starts now.

    The credit for unused time on the old plan, old_amount × (period_end − at) / (period_end −
    period_start), is kept exact and subtracted from the FULL new amount; the net is rounded once.
    Rounding: amount_due half-up when the net is positive; when the credit exceeds the new amount,
    amount_due is 0 and credit_left is the remainder rounded DOWN to the won (merchant's favour: we
    never owe a fraction of a won we cannot pay out). Tax-free part: new_tax_free − old_tax_free × r,
    rounded half-up, clamped to [0, amount_due].
    """
    _check_plan("old", old_amount, old_tax_free)
    _check_plan("new", new_amount, new_tax_free)
    remaining, length = _remaining_and_length(period_start, period_end, at)
    ratio = Fraction(remaining, length)
    credit = old_amount * ratio
    lines = (
        _time_line("unused_time", -credit, old_amount, remaining, length),
        ProrationLine(kind="new_period", exact_amount=Fraction(new_amount), rounded_amount=new_amount),
    )
    return _settle(new_amount - credit, new_tax_free - old_tax_free * ratio, lines)


# --- internals -------------------------------------------------------------------------------------


def _settle(net: Fraction, tax_free_net: Fraction, lines: tuple[ProrationLine, ...]) -> Proration:
    """Round the exact net once and build the result; shared by both proration operations."""
    if net > 0:
        amount_due, credit_left = round_half_up(net), 0
    else:
        amount_due, credit_left = 0, floor(-net)
    tax_free = min(max(round_half_up(tax_free_net), 0), amount_due)
    result = amount_due - credit_left
    shown = sum(line.rounded_amount for line in lines)
    if result != shown:
        lines += (ProrationLine(kind="rounding", exact_amount=result - net, rounded_amount=result - shown),)
    return Proration(
        amount_due=amount_due,
        credit_left=credit_left,
        vat_split=split_vat(amount_due, tax_free),
        exact_net=net,
        lines=lines,
    )


def _time_line(kind: LineKind, exact: Fraction, amount: int, remaining: int, length: int) -> ProrationLine:
    return ProrationLine(
        kind=kind,
        exact_amount=exact,
        rounded_amount=round_half_up(exact),
        days_remaining=Fraction(remaining, _MICROSECONDS_PER_DAY),
        total_days=Fraction(length, _MICROSECONDS_PER_DAY),
        daily_rate=Fraction(amount * _MICROSECONDS_PER_DAY, length),
    )


def _remaining_and_length(period_start: datetime, period_end: datetime, at: datetime) -> tuple[int, int]:
    """(period_end − at, period_end − period_start) in whole microseconds: exact, unlike total_seconds()."""
    _check_period(period_start, period_end)
    _check_aware("at", at)
    if not period_start <= at <= period_end:
        period = f"[{period_start.isoformat()}, {period_end.isoformat()}]"
        raise ValueError(f"at ({at.isoformat()}) is outside the period {period}")
    return _microseconds(period_end - at), _microseconds(period_end - period_start)


def _microseconds(delta: timedelta) -> int:
    return delta // _ONE_MICROSECOND


def _check_period(period_start: datetime, period_end: datetime) -> None:
    _check_aware("period_start", period_start)
    _check_aware("period_end", period_end)
    if period_end <= period_start:
        raise ValueError(
            f"period_end ({period_end.isoformat()}) must be after period_start ({period_start.isoformat()})"
        )


def _check_plan(which: str, amount: int, tax_free: int) -> None:
    check_money(f"{which}_amount", amount)
    check_money(f"{which}_tax_free", tax_free)
    if tax_free > amount:
        raise ValueError(f"{which}_tax_free ({tax_free}) exceeds {which}_amount ({amount})")


def _check_aware(name: str, value: datetime) -> None:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")


# --- explanations ----------------------------------------------------------------------------------

_TEXT: dict[str, dict[str, str]] = {
    "ko": {
        "unused_time": "기존 요금제 남은 {days}일분 {amount} 차감",
        "unused_time_added": "기존 요금제 남은 {days}일분 {amount} 추가",
        "remaining_time": "새 요금제 남은 {days}일분 {amount}",
        "new_period": "새 요금제 전체 기간 {amount}",
        "about": "약 {days}",
        "amount_due": "결제할 금액: {amount}",
        "credit_left": "남은 크레딧: {amount}",
    },
    "en": {
        "unused_time": "Unused {days} days of the previous plan: −{amount}",
        "unused_time_added": "Unused {days} days of the previous plan: +{amount}",
        "remaining_time": "Remaining {days} days on the new plan: {amount}",
        "new_period": "New plan, full period: {amount}",
        "about": "about {days}",
        "amount_due": "Amount due: {amount}",
        "credit_left": "Credit left: {amount}",
    },
}


def _whole_days(value: Fraction, lang: str) -> str:
    """Days as a whole number; "약 13" / "about 13" when the exact figure is not whole (never "0" for a part)."""
    days = max(round_half_up(value), 1 if value > 0 else 0)
    return f"{days:,}" if value == days else _TEXT[lang]["about"].format(days=f"{days:,}")


def _describe_line(line: ProrationLine, amount: int, lang: str) -> str:
    text = _TEXT[lang]
    if line.days_remaining is None:
        return text[line.kind].format(amount=format_won(amount, lang))
    days = _whole_days(line.days_remaining, lang)
    if line.kind == "unused_time":
        # A credit is shown as a positive amount taken off ("차감"); it can only turn positive by rounding.
        key = "unused_time" if amount <= 0 else "unused_time_added"
        return text[key].format(days=days, amount=format_won(abs(amount), lang))
    return text[line.kind].format(days=days, amount=format_won(amount, lang))


# A plan price normalised to one month, for MRR: a year is 12 months, a week 52/12, a day 365/12.
MONTHLY_FACTOR = {
    "day": Fraction(365, 12),
    "week": Fraction(52, 12),
    "month": Fraction(1),
    "year": Fraction(1, 12),
}


def monthly_amount(*, amount: int, interval: str, interval_count: int) -> Fraction:
    """The exact monthly equivalent of a plan price (not rounded: callers sum first, then round once)."""
    return Fraction(amount) * MONTHLY_FACTOR[interval] / interval_count


def recognised_through(*, total: int, days_elapsed: int, days: int) -> int:
    """Revenue of a prepaid period recognised after `days_elapsed` of its `days` days: floor(total * elapsed /
    days). Cumulative flooring, so the daily amounts (the differences) are whole won and add up to `total`
    exactly on the last day; a day recognises at most one won more than another."""
    if days <= 0:
        raise ValueError("a period has at least one day")
    elapsed = min(max(days_elapsed, 0), days)
    return total * elapsed // days
