"""The subscriber token in the Authorization header: `Bearer <token>` (declared in the schema as HTTP bearer, so a
generated client sends it right), and DRF's `Token <token>` (what the API documented first) for existing clients.
Both carry the same key from POST /api/auth/token."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header

SCHEMES = (b"bearer", b"token")


class BearerTokenAuthentication(TokenAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in SCHEMES:
            return None  # another scheme (or none): not ours to refuse
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _('Send the token as "Authorization: Bearer <token>", with no spaces in the token.')
            )
        try:
            key = parts[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed(_("The token contains characters a token never has.")) from exc
        return self.authenticate_credentials(key)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "The token from POST /api/auth/token, sent as `Authorization: Bearer <token>`. "
                "`Authorization: Token <token>` is accepted too, for clients written before this scheme was declared."
            ),
        }
