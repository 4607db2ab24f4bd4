"""Invoices: drafted with lines, finalized with a gapless number per year and fixed VAT parts, then paid,
voided or written off. Status only moves forward: draft -> open -> paid | void | uncollectible, and every move
goes through `invoices_transition`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import F

from billing import signals
from billing.bulk import rows_move
from billing.errors import InvoiceNotPayableError
from billing.models import AuditLog, Customer, Invoice, InvoiceLine, PaymentAttempt
from billing.money import split_vat
from billing.services.audit import audit_entry, audit_record, audit_records

KST = ZoneInfo("Asia/Seoul")
Status = Invoice.Status

# The statuses an invoice may move to, and from which: forward only.
ALLOWED_FROM: dict[str, frozenset[str]] = {
    Status.OPEN: frozenset({Status.DRAFT}),
    Status.PAID: frozenset({Status.DRAFT, Status.OPEN}),  # from draft: finalized at 0 won (credit covers it)
    Status.VOID: frozenset({Status.DRAFT, Status.OPEN}),
    Status.UNCOLLECTIBLE: frozenset({Status.OPEN}),
}


def invoices_transition(
    moves: Sequence[tuple[Invoice, str]],
    *,
    to: str,
    fields: Sequence[str],
    now: dt.datetime,
    action: str,
    label: str = "system",
    actor=None,
    reason: Callable[[Invoice], str] = lambda invoice: "",
    data: Callable[[Invoice], dict] = lambda invoice: {},
) -> list[Invoice]:
    """The one way an invoice's status changes. Each move is (invoice with its new `fields` set in memory, the
    status its row must still have). One guarded UPDATE per starting status and one audit INSERT, however many
    invoices; returns the invoices it moved. A row no longer in its expected status is left alone and missing
    from the result. Raises ValueError for a move `ALLOWED_FROM` does not allow."""
    moved = rows_move(Invoice, moves, to=to, allowed_from=ALLOWED_FROM, fields=fields)
    audit_records(
        audit_entry(
            at=now,
            action=action,
            obj=invoice,
            actor=actor,
            actor_label=label,
            customer_id=invoice.customer_id,
            amount=invoice.total,
            from_status=previous,
            to_status=to,
            reason=reason(invoice),
            data=data(invoice),
        )
        for invoice, previous in moved
    )
    return [invoice for invoice, _ in moved]


@dataclass(frozen=True)
class LineSpec:
    description: str
    amount: int
    tax_free_amount: int = 0
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None
    details: dict = field(default_factory=dict)


def invoice_create(
    *,
    customer: Customer,
    kind: str,
    description: str,
    lines: Sequence[LineSpec],
    now: dt.datetime,
    period_start: dt.datetime | None = None,
    period_end: dt.datetime | None = None,
) -> Invoice:
    """A draft invoice with its lines. Must run inside the caller's transaction."""
    invoice = Invoice.objects.create(
        customer=customer,
        kind=kind,
        description=description[:40],
        period_start=period_start,
        period_end=period_end,
        created_at=now,
    )
    InvoiceLine.objects.bulk_create(_line(invoice, line) for line in lines)
    return invoice


@dataclass(frozen=True)
class InvoiceDraft:
    """An invoice to open in bulk with `invoices_create_open`."""

    customer: Customer
    kind: str
    description: str
    lines: Sequence[LineSpec]
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None
    # A safety net for the caller: when the retry sweep should charge it if nothing else does first.
    next_attempt_at: dt.datetime | None = None


def invoices_create_open(*, drafts: Sequence[InvoiceDraft], now: dt.datetime) -> list[Invoice]:
    """Create invoices already finalized (open, numbered, VAT fixed) with their lines and audit rows, in four
    statements however many there are. Must run inside the caller's transaction.

    The result is exactly what `invoice_create` + `invoice_finalize` give, for customers without credit:
    applying credit needs the customer row locked, so a draft whose customer (as the caller loaded it) has a
    credit balance is refused here and goes through `invoice_finalize`. Credit granted concurrently, after
    the caller read the balance, simply waits for the customer's next invoice.
    """
    if not drafts:
        return []
    if any(draft.customer.credit_balance for draft in drafts):
        raise ValueError("a customer with credit is invoiced through invoice_finalize")
    invoices = []
    for draft in drafts:
        split = split_vat(sum(line.amount for line in draft.lines), sum(line.tax_free_amount for line in draft.lines))
        if split.total <= 0:
            raise ValueError("an invoice of 0 won is paid at once: use invoice_finalize")
        invoices.append(
            Invoice(
                customer=draft.customer,
                kind=draft.kind,
                description=draft.description[:40],
                period_start=draft.period_start,
                period_end=draft.period_end,
                status=Invoice.Status.OPEN,
                total=split.total,
                supply_amount=split.supply,
                vat_amount=split.vat,
                tax_free_amount=split.tax_free,
                next_attempt_at=draft.next_attempt_at,
                created_at=now,
                finalized_at=now,
            )
        )
    # Numbers last before the inserts that need them: the sequence row stays locked until the caller commits.
    for invoice, number in zip(invoices, _next_numbers(now.astimezone(KST).year, len(invoices)), strict=True):
        invoice.number = number
    Invoice.objects.bulk_create(invoices)
    InvoiceLine.objects.bulk_create(
        _line(invoice, line) for invoice, draft in zip(invoices, drafts, strict=True) for line in draft.lines
    )
    audit_records(_finalized_entry(invoice, now) for invoice in invoices)
    return invoices


def _finalized_entry(invoice: Invoice, now: dt.datetime) -> AuditLog:
    return audit_entry(
        at=now,
        action="invoice.finalized",
        obj=invoice,
        customer_id=invoice.customer_id,
        amount=invoice.total,
        from_status=Status.DRAFT,
        to_status=invoice.status,
        data={"number": invoice.number, "credit_applied": invoice.credit_applied},
    )


def _line(invoice: Invoice, line: LineSpec) -> InvoiceLine:
    return InvoiceLine(
        invoice=invoice,
        description=line.description[:255],
        amount=line.amount,
        tax_free_amount=line.tax_free_amount,
        period_start=line.period_start,
        period_end=line.period_end,
        details=line.details,
    )


def _next_numbers(year: int, count: int = 1) -> list[str]:
    """Take the next `count` numbers of `year` in one statement. The row stays locked until the caller commits,
    so a rolled-back finalization gives its numbers back and numbers stay gapless; callers keep that window
    short (a batch takes its numbers as late as it can)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_invoicenumbersequence (year, last_number) VALUES (%s, %s) "
            "ON CONFLICT (year) DO UPDATE SET last_number = billing_invoicenumbersequence.last_number + %s "
            "RETURNING last_number",
            [year, count, count],
        )
        last = cursor.fetchone()[0]
    return [f"{year}-{n:06d}" for n in range(last - count + 1, last + 1)]


def invoice_finalize(*, invoice: Invoice, now: dt.datetime) -> Invoice:
    """Open the invoice: fix its total and VAT parts and give it the next number of its KST year.
    An invoice that comes to 0 won (e.g. covered by credit) is paid at once and `invoices_paid` is sent.

    Credit on the customer's balance is applied here, as a line.
    In the caller's transaction, the number sequence row stays locked until it commits (gapless numbers).
    """
    with transaction.atomic():  # nested in the caller's transaction when there is one
        if invoice.status != Invoice.Status.DRAFT:
            raise InvoiceNotPayableError()
        lines = list(invoice.lines.all())
        total = sum(line.amount for line in lines)
        tax_free = sum(line.tax_free_amount for line in lines)
        customer = Customer.objects.select_for_update().get(pk=invoice.customer_id)
        credit = min(customer.credit_balance, total)
        if credit:
            # Credit reduces the taxable part first; a tax-free part cannot exceed what is left to pay.
            InvoiceLine.objects.create(invoice=invoice, description="Credit applied / 크레딧 차감", amount=-credit)
            total -= credit
            tax_free = min(tax_free, total)
            Customer.objects.filter(pk=customer.pk).update(credit_balance=customer.credit_balance - credit)
        split = split_vat(total, tax_free)
        invoice.total = split.total
        invoice.supply_amount = split.supply
        invoice.vat_amount = split.vat
        invoice.tax_free_amount = split.tax_free
        invoice.credit_applied = credit
        invoice.number = _next_numbers(now.astimezone(KST).year)[0]
        invoice.finalized_at = now
        paid = invoice.total == 0
        invoice.paid_at = now if paid else None
        moved = invoices_transition(
            [(invoice, Status.DRAFT)],
            to=Status.PAID if paid else Status.OPEN,
            fields=_FINALIZED_FIELDS,
            now=now,
            action="invoice.finalized",
            data=_finalized_data,
        )
        if not moved:
            raise InvoiceNotPayableError()
        if paid:
            signals.invoices_paid.send(sender=Invoice, payments=[(invoice, None)], now=now)
    return invoice


_FINALIZED_FIELDS = (
    "total",
    "supply_amount",
    "vat_amount",
    "tax_free_amount",
    "credit_applied",
    "number",
    "finalized_at",
    "paid_at",
)


def _finalized_data(invoice: Invoice) -> dict:
    return {"number": invoice.number, "credit_applied": invoice.credit_applied}


def invoice_void(*, invoice: Invoice, now: dt.datetime, reason: str, actor=None) -> Invoice:
    """Void an open (or draft) invoice that has no unsettled or succeeded attempt."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status not in (Status.DRAFT, Status.OPEN):
            return invoice
        if invoice.attempts.filter(
            status__in=[PaymentAttempt.Status.PENDING, PaymentAttempt.Status.UNKNOWN, PaymentAttempt.Status.SUCCEEDED]
        ).exists():
            raise InvoiceNotPayableError()
        invoice.voided_at = now
        invoice.next_attempt_at = None
        invoices_transition(
            [(invoice, invoice.status)],
            to=Status.VOID,
            fields=("voided_at", "next_attempt_at"),
            now=now,
            action="invoice.voided",
            actor=actor,
            reason=lambda invoice: reason,
        )
        _return_credit(invoice, now=now, reason="invoice voided")
    return invoice


def _return_credit(invoice: Invoice, *, now: dt.datetime, reason: str) -> None:
    """Credit applied to an invoice that will never be paid goes back to the customer's balance."""
    if not invoice.credit_applied:
        return
    Customer.objects.filter(pk=invoice.customer_id).update(credit_balance=F("credit_balance") + invoice.credit_applied)
    audit_record(
        at=now,
        action="customer.credit_returned",
        obj=invoice,
        customer_id=invoice.customer_id,
        amount=invoice.credit_applied,
        reason=reason,
    )


def invoice_mark_uncollectible(*, invoice: Invoice, now: dt.datetime, reason: str) -> Invoice:
    """Write off an open invoice (dunning gave up); its credit goes back to the customer."""
    with transaction.atomic():
        invoice.next_attempt_at = None
        moved = invoices_transition(
            [(invoice, Status.OPEN)],
            to=Status.UNCOLLECTIBLE,
            fields=("next_attempt_at",),
            now=now,
            action="invoice.uncollectible",
            reason=lambda invoice: reason,
        )
        if moved:
            _return_credit(invoice, now=now, reason=reason)
    invoice.refresh_from_db()
    return invoice
