"""Errors a subscriber sees when giving a mobile number (stable codes; billing/errors.py's ApplicationError)."""

from django.utils.translation import gettext_lazy as _

from billing.errors import ApplicationError


class PhoneInvalidError(ApplicationError):
    code = "phone_invalid"
    default_message = _("Enter a Korean mobile number starting with 010, e.g. 010-1234-5678.")


class VerificationCodeInvalidError(ApplicationError):
    code = "verification_code_invalid"
    default_message = _("That code does not match. Check the text message and try again.")


class VerificationExpiredError(ApplicationError):
    code = "verification_expired"
    default_message = _("The code has expired or was tried too often. Ask for a new code.")
