"""Errors that only the API raises. BillingKeyInUseError belongs in subscriptions.errors once a service owns
the "may this card be removed" rule."""

from django.utils.translation import gettext_lazy as _

from billing.errors import ApplicationError


class BillingKeyInUseError(ApplicationError):
    code = "billing_key_in_use"
    status_code = 409
    default_message = _(
        "This card pays for your subscription. Register another card first, or cancel the subscription."
    )
