"""Admin views beyond ModelAdmin's own: the refund form of a paid attempt.

Thin: it shows the balance, reads the form, calls `refund_create` (which locks the attempt, refuses anything
above the refundable balance, sends Iamport's checksum and writes the audit entry) and tells the admin
the outcome with message_user.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from billing import clock
from billing.errors import ApplicationError, PaymentPendingError, RefundNotAllowedError
from billing.models import PaymentAttempt, Refund
from billing.services.refunds import refund_create, refund_totals

REFUND_PERMISSION = "billing.add_refund"


class RefundForm(forms.Form):
    # No bounds here: the balance can change between showing the form and submitting it, so the
    # service, holding the attempt's lock, is the one place that decides what can be refunded.
    amount = forms.IntegerField(label=_("Refund amount (won)"), widget=forms.NumberInput(attrs={"step": 1}))
    reason = forms.CharField(
        label=_("Reason"),
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Recorded in the audit log and sent to Iamport."),
    )


def refund_view(request, attempt_id: int, *, model_admin):
    """GET: the form with the paid, refunded and refundable amounts. POST: refund through the service."""
    if not request.user.has_perm(REFUND_PERMISSION):
        raise PermissionDenied
    attempt = get_object_or_404(PaymentAttempt.objects.select_related("invoice__customer"), pk=attempt_id)
    change_url = reverse("admin:billing_paymentattempt_change", args=[attempt.pk])
    if attempt.status != PaymentAttempt.Status.SUCCEEDED or not attempt.imp_uid:
        model_admin.message_user(request, RefundNotAllowedError().message, messages.ERROR)
        return redirect(change_url)

    totals = refund_totals(attempt)
    form = RefundForm(request.POST or None, initial={"amount": totals["refundable"]})
    if request.method == "POST" and form.is_valid():
        try:
            refund = refund_create(
                attempt_id=attempt.pk,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                now=clock.now(),
                actor=request.user,
            )
        except PaymentPendingError as exc:
            # Sent, not yet confirmed: a warning, not a failure, so nobody refunds a second time by hand.
            model_admin.message_user(request, exc.message, messages.WARNING)
            return redirect(change_url)
        except ApplicationError as exc:
            model_admin.message_user(request, exc.message, messages.ERROR)
            totals = refund_totals(attempt)
        else:
            _report(request, model_admin, refund)
            return redirect(change_url)

    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Refund %(merchant_uid)s") % {"merchant_uid": attempt.merchant_uid},
        "opts": PaymentAttempt._meta,
        "attempt": attempt,
        "totals": totals,
        "form": form,
        "change_url": change_url,
    }
    return TemplateResponse(request, "admin/billing/paymentattempt/refund.html", context)


def _report(request, model_admin, refund: Refund) -> None:
    if refund.status == Refund.Status.SUCCEEDED:
        model_admin.message_user(
            request, _("%(amount)s won refunded") % {"amount": f"{refund.amount:,}"}, messages.SUCCESS
        )
    else:
        model_admin.message_user(
            request,
            _("Nothing was refunded: %(reason)s") % {"reason": refund.failure_reason or refund.get_status_display()},
            messages.ERROR,
        )
