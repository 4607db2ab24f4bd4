"""Money maths that billing needs: VAT splits and refund splits of KRW amounts (int won, VAT included).

The rounding rules (see subscriptions/pricing.py for the table of every money operation):
- ``split_vat``: vat = taxable / 11 rounded half-up to the won (Iamport's default VAT); supply takes the rest.
- ``split_refund``: tax_free share proportional to what is left, rounded half-up; VAT by running totals so
  all refunds of a payment add up exactly to its parts.
Lives in billing because invoices and refunds (the lower layer) need it; subscriptions.pricing builds
proration on top of it. No floats: a float cannot hold 1/11.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import floor

# Korean VAT is 10% of the supply amount, so it is 1/11 of a VAT-inclusive price.
VAT_DIVISOR = 11


HALF = Fraction(1, 2)


class RefundExceedsBalanceError(ValueError):
    """The refund is larger than what is left of the payment; services translate it for users."""


@dataclass(frozen=True)
class VatSplit:
    """A VAT-inclusive amount split into 공급가액 (supply), 부가세 (vat) and 면세 (tax_free) parts.

    Invariant, checked on construction: ``supply + vat + tax_free == total``, all parts >= 0.
    """

    total: int
    supply: int
    vat: int
    tax_free: int

    def __post_init__(self) -> None:
        if min(self.total, self.supply, self.vat, self.tax_free) < 0:
            raise ValueError(f"negative part in {self!r}")
        if self.supply + self.vat + self.tax_free != self.total:
            raise ValueError(f"parts do not add up to the total in {self!r}")

    @property
    def taxable(self) -> int:
        """The VAT-inclusive taxable part (supply + vat)."""
        return self.supply + self.vat


def split_vat(total: int, tax_free: int = 0) -> VatSplit:
    """Split a VAT-inclusive ``total`` into supply, VAT and tax-free parts.

    Rounding: vat = (total − tax_free) / 11 rounded half-up to the won, which is what Iamport computes
    when no ``vat_amount`` is sent, so our receipts match the PG's. Supply takes the remainder so the
    parts always add up. Example: 10,000 -> vat 909 (909.09…), supply 9,091.
    """
    check_money("total", total)
    check_money("tax_free", tax_free)
    if tax_free > total:
        raise ValueError(f"tax_free ({tax_free}) exceeds total ({total})")
    taxable = total - tax_free
    vat = vat_of(taxable)
    return VatSplit(total=total, supply=taxable - vat, vat=vat, tax_free=tax_free)


def split_refund(
    *,
    refund_amount: int,
    paid_total: int,
    paid_tax_free: int,
    already_refunded: int,
    already_refunded_tax_free: int,
) -> VatSplit:
    """Split a (partial) refund of a payment into supply, VAT and tax-free parts.

    Rounding:
    - tax_free = refund_amount × remaining_tax_free / remaining_balance, rounded half-up. Using what is
      LEFT (not the original ratio) keeps every refund feasible — the rounded share never exceeds the
      tax-free or taxable part still left — and makes the refund that empties the balance take exactly
      the remaining tax-free part, by construction.
    - vat = vat(all taxable refunded including this one) − vat(taxable refunded before), each by
      ``split_vat``'s rule. Rounding the running total instead of each refund means the VAT of all
      refunds adds up to the invoice's VAT exactly; it assumes earlier refunds were split here too.
    - supply takes the remainder.

    Raises RefundExceedsBalanceError (a ValueError) if refund_amount exceeds the remaining balance.
    """
    for name, value in (
        ("refund_amount", refund_amount),
        ("paid_total", paid_total),
        ("paid_tax_free", paid_tax_free),
        ("already_refunded", already_refunded),
        ("already_refunded_tax_free", already_refunded_tax_free),
    ):
        check_money(name, value)
    if paid_tax_free > paid_total:
        raise ValueError(f"paid_tax_free ({paid_tax_free}) exceeds paid_total ({paid_total})")
    if already_refunded > paid_total:
        raise ValueError(f"already_refunded ({already_refunded}) exceeds paid_total ({paid_total})")
    if already_refunded_tax_free > min(paid_tax_free, already_refunded):
        raise ValueError(
            f"already_refunded_tax_free ({already_refunded_tax_free}) exceeds paid_tax_free ({paid_tax_free})"
            f" or already_refunded ({already_refunded})"
        )
    already_taxable = already_refunded - already_refunded_tax_free
    if already_taxable > paid_total - paid_tax_free:
        raise ValueError(f"already refunded taxable part ({already_taxable}) exceeds the paid taxable part")
    if refund_amount == 0:
        raise ValueError("refund_amount must be > 0")
    remaining = paid_total - already_refunded
    if refund_amount > remaining:
        raise RefundExceedsBalanceError(
            f"refund of {refund_amount} exceeds the remaining balance of {remaining} (paid {paid_total})"
        )

    remaining_tax_free = paid_tax_free - already_refunded_tax_free
    tax_free = round_half_up(Fraction(refund_amount * remaining_tax_free, remaining))
    taxable = refund_amount - tax_free
    vat = vat_of(already_taxable + taxable) - vat_of(already_taxable)
    return VatSplit(total=refund_amount, supply=taxable - vat, vat=vat, tax_free=tax_free)


def format_won(amount: int, lang: str = "ko") -> str:
    """``12,900원`` (ko) or ``₩12,900`` (en); negatives get a leading ``−``."""
    check_int("amount", amount)
    return format_won_number(f"{abs(amount):,}", negative=amount < 0, lang=lang)


def round_half_up(value: Fraction) -> int:
    """Nearest integer, ties away from zero (so −4.5 displays as −5 like 4.5 displays as 5)."""
    magnitude = floor(abs(value) + HALF)
    return magnitude if value >= 0 else -magnitude


def vat_of(taxable: int) -> int:
    return round_half_up(Fraction(taxable, VAT_DIVISOR))


def check_int(name: str, value: object) -> None:
    # bool is an int subclass and float/Decimal would smuggle inexact money in; refuse all three.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int of won, got {type(value).__name__}")


def check_money(name: str, value: int) -> None:
    check_int(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0 won, got {value}")


def format_won_number(number: str, *, negative: bool, lang: str) -> str:
    sign = "−" if negative else ""
    if lang == "ko":
        return f"{sign}{number}원"
    if lang == "en":
        return f"{sign}₩{number}"
    raise ValueError(f"unsupported language {lang!r}; expected 'ko' or 'en'")
