"""Start-up checks (Django system checks): the gateway settings are complete before anything is charged."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.compatibility)
def gateway_settings_check(app_configs=None, **kwargs) -> list[Error]:
    from billing.services.gateway import GATEWAYS, PORTONE_V2

    errors: list[Error] = []
    name = settings.BILLING_GATEWAY
    if name not in GATEWAYS and "." not in name:
        errors.append(
            Error(
                f"BILLING_GATEWAY={name!r} is not a gateway.",
                hint="Use iamport_v1 or portone_v2.",
                id="billing.E001",
            )
        )
    if name == PORTONE_V2:
        for setting in ("PORTONE_API_SECRET", "PORTONE_STORE_ID", "PORTONE_CHANNEL_KEY", "PORTONE_WEBHOOK_SECRET"):
            if not getattr(settings, setting, None):
                errors.append(
                    Error(
                        f"BILLING_GATEWAY=portone_v2 needs {setting}.",
                        hint="Set it in the environment (PortOne console: 결제 연동 > 연동 정보 / 웹훅, V2).",
                        id="billing.E002",
                    )
                )
        secret = getattr(settings, "PORTONE_WEBHOOK_SECRET", None) or ""
        if secret and not secret.startswith("whsec_"):
            errors.append(
                Error(
                    "PORTONE_WEBHOOK_SECRET must be the whsec_... secret PortOne shows for the V2 webhook.",
                    id="billing.E003",
                )
            )
    return errors
