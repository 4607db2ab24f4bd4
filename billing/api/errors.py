"""Errors that only the API raises (the domain's own errors live in billing.errors)."""

from django.utils.translation import gettext_lazy as _

from billing.errors import ApplicationError


class InvalidCredentialsError(ApplicationError):
    code = "invalid_credentials"
    status_code = 400
    default_message = _("The username or password is not correct.")
