"""Card registration through Iamport's browser SDK, and the billing keys it produces.

Flow: `card_registration_prepare` issues a fresh customer_uid bound to the customer and returns the
`IMP.request_pay` parameters; the browser opens the PG window; `card_registration_confirm` then asks Iamport
itself (GET /subscribe/customers/{customer_uid}) whether a card is registered under that id — the browser's
word is never enough — stores the masked card, and makes it the default.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from django.conf import settings
from django.db import transaction

from billing import signals
from billing.errors import CardNotIssuedError, CardRegistrationNotFoundError, GatewayUnavailableError
from billing.gateway.errors import GatewayError, GatewayNotFound
from billing.models import BillingKey, CardRegistration, Customer
from billing.services.audit import audit_record
from billing.services.gateway import PORTONE_V2, gateway_name, get_gateway

logger = logging.getLogger(__name__)


def _new_customer_uid(customer: Customer) -> str:
    # ≤80 chars, unique per customer × card (docs/iamport-v1.md#billing-keys): never reused, so a new card
    # never silently replaces the mapping of an old one.
    return f"{settings.BILLING_UID_PREFIX}c{customer.pk}_{secrets.token_hex(8)}"


def card_registration_prepare(*, customer: Customer, now: dt.datetime) -> dict:
    registration = CardRegistration.objects.create(
        customer=customer, customer_uid=_new_customer_uid(customer), created_at=now
    )
    if gateway_name() == PORTONE_V2:
        # PortOne names the key; our registration id travels as the key's customer id, and confirm checks it.
        return {
            "gateway": PORTONE_V2,
            "sdk_url": settings.PORTONE_SDK_URL,
            "registration": registration.customer_uid,
            "request": {
                "storeId": settings.PORTONE_STORE_ID,
                "channelKey": settings.PORTONE_CHANNEL_KEY,
                "billingKeyMethod": "CARD",
                "issueId": registration.customer_uid,
                "issueName": "정기결제 카드 등록",
                "customer": {
                    "customerId": registration.customer_uid,
                    "email": customer.email,
                    "fullName": (customer.name or "")[:16] or None,
                },
            },
        }
    params = {
        "pg": settings.IAMPORT_PG,
        "pay_method": "card",
        "merchant_uid": f"{settings.BILLING_UID_PREFIX}reg_{registration.pk}_{secrets.token_hex(4)}",
        "customer_uid": registration.customer_uid,
        "name": "정기결제 카드 등록",
        "amount": 0,
        "buyer_email": customer.email,
        "buyer_name": (customer.name or "")[:16],
    }
    if settings.IAMPORT_CHANNEL_KEY:
        params["channelKey"] = settings.IAMPORT_CHANNEL_KEY
    return {
        "merchant_code": settings.IAMPORT_MERCHANT_CODE,
        "sdk_url": settings.IAMPORT_SDK_URL,
        "params": params,
    }


def card_registration_confirm(
    *, customer: Customer, customer_uid: str, now: dt.datetime, gateway=None, billing_key: str | None = None
) -> BillingKey:
    """`customer_uid` is our registration id. On PortOne V2 `billing_key` is the key the browser SDK got; it is
    accepted only if PortOne says it was issued for this registration (its customer id)."""
    registration = CardRegistration.objects.filter(customer=customer, customer_uid=customer_uid).first()
    if registration is None:
        raise CardRegistrationNotFoundError()
    key_uid = billing_key or customer_uid
    existing = BillingKey.objects.filter(customer_uid=key_uid, customer=customer).first()
    if registration.status == CardRegistration.Status.CONFIRMED and existing is not None:
        return existing  # confirming twice (a double-submitted callback) changes nothing
    gateway = gateway or get_gateway()
    try:
        remote = gateway.get_billing_key(customer_uid=key_uid)
        if billing_key and remote.customer_id != customer_uid:
            raise GatewayNotFound(None, "the billing key was not issued for this registration")
    except GatewayNotFound as exc:
        CardRegistration.objects.filter(pk=registration.pk).update(
            status=CardRegistration.Status.FAILED, failure_reason=str(exc.message or "")[:255]
        )
        raise CardNotIssuedError() from exc
    except GatewayError as exc:
        logger.warning("billing key lookup failed for registration %s: %s", registration.pk, exc)
        raise GatewayUnavailableError() from exc

    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=customer.pk)
        BillingKey.objects.filter(customer=customer, is_default=True).update(is_default=False)
        key, _created = BillingKey.objects.update_or_create(
            customer_uid=key_uid,
            defaults={
                "customer": customer,
                "gateway": BillingKey.Gateway.PORTONE_V2 if billing_key else BillingKey.Gateway.IAMPORT_V1,
                "status": BillingKey.Status.ACTIVE,
                "is_default": True,
                "card_name": remote.card_name or "",
                "card_number_masked": remote.card_number or "",
                "card_code": remote.card_code or "",
                "card_type": remote.card_type,
                "pg_provider": remote.pg_provider or "",
                "pg_id": remote.pg_id or "",
                "sandbox": remote.sandbox,
                "created_at": now,
            },
        )
        CardRegistration.objects.filter(pk=registration.pk).update(
            status=CardRegistration.Status.CONFIRMED, confirmed_at=now
        )
        audit_record(
            at=now,
            action="billing_key.registered",
            obj=key,
            customer=customer,
            to_status=key.status,
            data={"card": key.card_number_masked, "card_name": key.card_name},
        )
        signals.default_billing_key_changed.send(sender=BillingKey, customer=customer, billing_key=key, now=now)
    return key


def billing_key_delete(*, billing_key: BillingKey, now: dt.datetime, actor=None, gateway=None) -> BillingKey:
    """Deletes the key at Iamport (irreversible) and marks it deleted here. The caller makes sure nothing still
    depends on it (subscriptions refuse to lose their only card)."""
    gateway = gateway or get_gateway()
    try:
        gateway.delete_billing_key(customer_uid=billing_key.customer_uid, reason="customer removed the card")
    except GatewayNotFound:
        pass  # already gone at Iamport: our record follows
    except GatewayError as exc:
        raise GatewayUnavailableError() from exc
    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=billing_key.customer_id)
        was_default = BillingKey.objects.filter(pk=billing_key.pk, is_default=True).exists()
        BillingKey.objects.filter(pk=billing_key.pk).update(
            status=BillingKey.Status.DELETED, is_default=False, deleted_at=now
        )
        billing_key.refresh_from_db()
        audit_record(
            at=now,
            action="billing_key.deleted",
            obj=billing_key,
            actor=actor,
            customer=billing_key.customer,
            from_status=BillingKey.Status.ACTIVE,
            to_status="deleted",
        )
        if was_default:
            # The newest remaining card becomes the default, so renewals keep a card to charge.
            successor = (
                BillingKey.objects.filter(customer_id=billing_key.customer_id, status=BillingKey.Status.ACTIVE)
                .order_by("-created_at", "-id")
                .first()
            )
            if successor is not None:
                BillingKey.objects.filter(pk=successor.pk).update(is_default=True)
                successor.is_default = True
                signals.default_billing_key_changed.send(
                    sender=BillingKey, customer=billing_key.customer, billing_key=successor, now=now
                )
    return billing_key
