"""User-facing errors: a stable machine `code`, a human `message` (translated), and `extra` details.

One DRF exception handler renders them as {"error": {"code", "message", ...}}; templates show `message`;
admin uses `message_user`. Tests assert on `code`, never on wording.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class ApplicationError(Exception):
    code = "application_error"
    status_code = 400
    default_message = _("The request could not be completed.")

    def __init__(self, message=None, **extra):
        self.message = message if message is not None else self.default_message
        self.extra = extra
        super().__init__(str(self.message))

    def as_dict(self) -> dict:
        return {"code": self.code, "message": str(self.message), **self.extra}


class NotFoundError(ApplicationError):
    code = "not_found"
    status_code = 404
    default_message = _("Not found.")


class CardRegistrationNotFoundError(ApplicationError):
    code = "card_registration_not_found"
    status_code = 404
    default_message = _("This card registration was not started by you. Please start again.")


class CardNotIssuedError(ApplicationError):
    code = "card_not_issued"
    status_code = 400
    default_message = _("Iamport has no card registered for this request. Please enter the card again.")


class NoPaymentMethodError(ApplicationError):
    code = "no_payment_method"
    status_code = 400
    default_message = _("Register a card before subscribing.")


class PaymentDeclinedError(ApplicationError):
    code = "payment_declined"
    status_code = 402
    default_message = _("The card was declined.")


class PaymentPendingError(ApplicationError):
    code = "payment_pending"
    status_code = 409
    default_message = _(
        "We have not heard back from the card company yet. We will confirm the payment shortly; "
        "you will not be charged twice."
    )


class PaymentInProgressError(ApplicationError):
    code = "payment_in_progress"
    status_code = 409
    default_message = _("A payment for this invoice is already in progress.")


class InvoiceNotPayableError(ApplicationError):
    code = "invoice_not_payable"
    status_code = 409
    default_message = _("This invoice cannot be paid in its current state.")


class GatewayUnavailableError(ApplicationError):
    code = "gateway_unavailable"
    status_code = 503
    default_message = _("The payment service is temporarily unavailable. Please try again in a few minutes.")


class RefundExceedsBalanceError(ApplicationError):
    code = "refund_exceeds_balance"
    status_code = 400
    default_message = _("The refund is larger than the amount still refundable.")


class RefundNotAllowedError(ApplicationError):
    code = "refund_not_allowed"
    status_code = 400
    default_message = _("Only a succeeded payment can be refunded.")


class RefundFailedError(ApplicationError):
    code = "refund_failed"
    status_code = 400
    default_message = _("Iamport refused the refund.")


# The daily reconciliation (billing/services/reconciliation.py): lazy, so each request reads its own language.
class ReconciliationInProgressError(ApplicationError):
    code = "reconciliation_in_progress"
    status_code = 409
    default_message = _("This day is being reconciled right now. Wait for that run to finish.")


class ReconciliationDayNotOverError(ApplicationError):
    code = "day_not_over"
    status_code = 400
    default_message = _("Only a business day that is over (KST) can be reconciled.")


class ReconciliationActionError(ApplicationError):
    code = "reconciliation_action_not_allowed"
    status_code = 409
    default_message = _("This action is not possible for this difference.")


class ReconciliationNoteRequiredError(ApplicationError):
    code = "note_required"
    status_code = 400
    default_message = _("Write a note saying what you found.")


class ReconciliationNotSupportedError(ApplicationError):
    code = "reconciliation_not_supported"
    status_code = 409
    default_message = _(
        "The daily reconciliation reads Iamport V1's payment listing; it is not available while PortOne V2 is"
        " the gateway (BILLING_GATEWAY=portone_v2)."
    )


# --- the merchant's integration (server keys, idempotent writes) --------------------------------------------


class ExternalIdTakenError(ApplicationError):
    code = "external_id_taken"
    status_code = 409
    default_message = _(
        "Another customer already has this external_id. Retrieve it with GET /api/customers?external_id=."
    )


class ScopeMissingError(ApplicationError):
    code = "scope_missing"
    status_code = 403
    default_message = _("This server key lacks the scope this request needs.")


class IdempotencyKeyReusedError(ApplicationError):
    code = "idempotency_key_reused"
    status_code = 422
    default_message = _(
        "This Idempotency-Key was used with a different request (method, path or body). "
        "Use a new key for a new request."
    )


class IdempotencyKeyInUseError(ApplicationError):
    code = "idempotency_key_in_use"
    status_code = 409
    default_message = _("A request with this Idempotency-Key is still running. Retry after it has finished.")


class IdempotencyKeyInvalidError(ApplicationError):
    code = "idempotency_key_invalid"
    status_code = 400
    default_message = _("An Idempotency-Key is 1 to 255 printable ASCII characters, such as a UUID.")
