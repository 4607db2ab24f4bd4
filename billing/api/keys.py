"""Server API keys: the merchant's backend sends `Authorization: Bearer sk_…` and acts across customers.

The subscriber token (billing/api/authentication.py) travels in the same header; a server key is told apart by its
`sk_` prefix (billing/models.py MerchantApiKey), so one scheme serves both and neither is ever tried as the other.
A key request's `request.user` is a `ServerKey` (no user row): subscriber endpoints refuse it (`IsSubscriber`),
the merchant endpoints ask for a scope (`HasScope`), and audit rows name it `key:<prefix>`. Keys are hashed and
checked by djangorestframework-api-key; a revoked or expired key is refused at its next request.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from billing import clock
from billing.errors import ScopeMissingError
from billing.models import API_KEY_PREFIX, MerchantApiKey
from billing.selectors import server_key_from_secret

Scope = MerchantApiKey.Scope


class ServerKey:
    """`request.user` of a request made with a server key."""

    is_server_key = True
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, key: MerchantApiKey):
        self.key = key
        self.label = f"key:{key.prefix}"

    def get_username(self) -> str:
        return self.label

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def has_scope(self, scope: str) -> bool:
        return scope in self.key.scopes

    def __str__(self) -> str:
        return self.label


def bearer_value(request) -> str | None:
    """The credential of an `Authorization: Bearer <x>` header, or None."""
    parts = get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return None
    try:
        return parts[1].decode()
    except UnicodeError:
        return None


class ServerKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        secret = bearer_value(request)
        if secret is None or not secret.startswith(API_KEY_PREFIX):
            return None  # a subscriber token, or another scheme: not ours
        key = server_key_from_secret(secret)
        if key is None:
            raise exceptions.AuthenticationFailed(_("This server key is not valid, or it was revoked."))
        now = clock.now()
        if key.expiry_date is not None and key.expiry_date <= now:
            raise exceptions.AuthenticationFailed(_("This server key has expired. Create a new one in the admin."))
        MerchantApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        request._request.kbilling_server_key = key  # audited after the response (billing/api/middleware.py)
        return ServerKey(key), key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


def is_server_key(user) -> bool:
    return getattr(user, "is_server_key", False)


class IsSubscriber(BasePermission):
    """The default: a signed-in subscriber (session or token). A server key acts through /api/customers/…."""

    message = _(
        "This endpoint is a signed-in subscriber's. "
        "With a server key, act for a customer through /api/customers/{id}/…."
    )

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and not is_server_key(request.user))


class SubscriberOrServerKey(BasePermission):
    """Endpoints both kinds of caller use; the view checks a key's scope itself."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)


def HasScope(scope: str) -> type[BasePermission]:
    class _HasScope(BasePermission):
        def has_permission(self, request, view) -> bool:
            if not is_server_key(request.user):
                raise exceptions.NotAuthenticated(
                    _("This endpoint takes a server key: send Authorization: Bearer sk_….")
                )
            require_scope(request.user, scope)
            return True

    _HasScope.__name__ = f"HasScope_{scope}"
    return _HasScope


def require_scope(user: ServerKey, scope: str) -> None:
    if not user.has_scope(scope):
        raise ScopeMissingError(
            _("This server key lacks the %(scope)s scope. Add it to the key in the admin, or use a key that has it.")
            % {"scope": scope},
            scope=scope,
        )


class ServerKeyScheme(OpenApiAuthenticationExtension):
    target_class = ServerKeyAuthentication
    name = "serverKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A server API key of the merchant, created in the admin (shown once), sent as "
                "`Authorization: Bearer sk_….`. It acts for the merchant across customers, within its scopes: "
                "read, write, refunds. Keep it on your server; never in a browser or an app."
            ),
        }
