"""User-facing errors of the subscriptions layer (see billing.errors.ApplicationError)."""

from django.utils.translation import gettext_lazy as _

from billing.errors import ApplicationError


class PlanNotAvailableError(ApplicationError):
    code = "plan_not_available"
    status_code = 400
    default_message = _("This plan is not available.")


class AlreadySubscribedError(ApplicationError):
    code = "already_subscribed"
    status_code = 409
    default_message = _("You already have a subscription. Change its plan instead of subscribing again.")


class PlanChangeNotAllowedError(ApplicationError):
    code = "plan_change_not_allowed"
    status_code = 409
    default_message = _("The plan cannot be changed right now.")


class SubscriptionStateError(ApplicationError):
    code = "subscription_state"
    status_code = 409
    default_message = _("This action is not possible in the subscription's current state.")


class PlanImmutableError(ApplicationError):
    code = "plan_immutable"
    status_code = 400
    default_message = _("A plan that has subscribers cannot change its price or interval. Create a new plan.")


class PlanChangePreviewExpiredError(ApplicationError):
    code = "preview_expired"
    status_code = 409
    default_message = _("The preview has expired. Look at the new price again before confirming.")


class ProrationAtInvalidError(ApplicationError):
    code = "invalid_proration_at"
    status_code = 400
    default_message = _(
        "proration_at must be an instant of the last 15 minutes within the current billing period "
        "(the priced_at of a recent preview). Omit it to price the change now."
    )


class PeriodNotCurrentError(ApplicationError):
    code = "period_not_current"
    status_code = 409
    default_message = _(
        "Your billing period is being renewed right now. Try again in a minute; the price will be worked out "
        "for the new period."
    )


class AgreementRequiredError(ApplicationError):
    code = "agreement_required"
    status_code = 400
    default_message = _(
        "To subscribe, agree to the terms of service and to the automatic renewal: tick the agreement box."
    )


class PolicyChangedError(ApplicationError):
    code = "policy_changed"
    status_code = 409
    default_message = _("The terms or the refund policy were updated while you were reading. Read them again.")


class ConsentNotOpenError(ApplicationError):
    code = "consent_not_open"
    status_code = 409
    default_message = _("This question is not open yet: we ask no earlier than 30 days before the change.")


class ConsentClosedError(ApplicationError):
    code = "consent_closed"
    status_code = 409
    default_message = _("The date of this change has passed, so this answer can no longer be given.")


class ConsentTokenInvalidError(ApplicationError):
    code = "consent_token_invalid"
    status_code = 400
    default_message = _("This link is not valid. Open the latest email from us, or answer on your account page.")


class ConsentTokenUsedError(ApplicationError):
    code = "consent_token_used"
    status_code = 409
    default_message = _(
        "This link was already used, so it changes nothing now. Your answer is shown on your account page."
    )


class ConsentTokenOtherSubscriberError(ApplicationError):
    code = "consent_token_other_subscriber"
    status_code = 403
    default_message = _(
        "This link belongs to another account. Log out, or open it from the email of the account it was sent to."
    )
