"""Logs say what was called and how it went, and never carry card data, secrets or tokens."""

from __future__ import annotations

import logging

import pytest

from billing.gateway import GatewayRejected

from .conftest import CARD_ISSUE_REFUSED, CARD_OK, EXPIRY, IMP_SECRET


def test_logs_never_contain_card_data_or_secrets_when_issuing_and_charging(gateway, uid, caplog):
    caplog.set_level(logging.DEBUG)  # everything: our logger, urllib3, requests
    customer_uid = uid("cust")
    birth, pwd = "770707", "93"

    gateway.issue_billing_key(
        customer_uid=customer_uid, card_number=CARD_OK, expiry=EXPIRY, birth=birth, pwd_2digit=pwd
    )
    gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=uid("order"), amount=9900, name="n")
    gateway.charge_onetime(
        merchant_uid=uid("order"), amount=100, card_number=CARD_OK, expiry=EXPIRY, birth=birth, pwd_2digit=pwd
    )
    with pytest.raises(GatewayRejected) as info:
        gateway.issue_billing_key(
            customer_uid=uid("cust"),
            card_number=CARD_ISSUE_REFUSED,
            expiry=EXPIRY,
            birth=birth,
            pwd_2digit=pwd,
        )
    token = gateway.get_token()

    text = caplog.text + "\n" + "\n".join(str(r.__dict__) for r in caplog.records)
    error_text = f"{info.value} {info.value.body} {info.value!r}"
    for secret in (
        CARD_OK,
        CARD_OK.replace("-", ""),
        CARD_ISSUE_REFUSED,
        CARD_ISSUE_REFUSED.replace("-", ""),
        EXPIRY,
        birth,
        f"pwd_2digit={pwd}",
        f'"pwd_2digit": "{pwd}"',
        IMP_SECRET,
        token,
    ):
        assert secret not in text, secret
        assert secret not in error_text, secret
    assert "IamportGateway" in repr(gateway) and IMP_SECRET not in repr(gateway)


def test_each_call_is_logged_with_path_status_code_and_elapsed_when_charging(gateway, customer_uid, uid, caplog):
    caplog.set_level(logging.INFO, logger="billing.gateway")

    gateway.charge_billing_key(customer_uid=customer_uid, merchant_uid=uid("order"), amount=9900, name="n")

    records = [r for r in caplog.records if r.name == "billing.gateway"]
    charge = [r for r in records if getattr(r, "gateway_path", None) == "/subscribe/payments/again"]
    assert len(charge) == 1
    assert charge[0].gateway_method == "POST"
    assert charge[0].gateway_status == 200
    assert charge[0].gateway_code == 0
    assert isinstance(charge[0].gateway_elapsed_ms, int)
    assert "/subscribe/payments/again" in charge[0].getMessage()
