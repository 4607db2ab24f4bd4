"""Outcome rules of IamportGateway against the sandbox: paid, declined, rejected, not found, auth, 5xx."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from billing.gateway import (
    GatewayAuthError,
    GatewayNotFound,
    GatewayPayment,
    GatewayRejected,
    GatewayUnavailable,
    IamportGateway,
)

from .conftest import (
    BIRTH,
    CARD_EXPIRED,
    CARD_INSUFFICIENT_FUNDS,
    CARD_ISSUE_REFUSED,
    CARD_LIMIT_EXCEEDED,
    CARD_LOST_STOLEN,
    CARD_OK,
    EXPIRY,
    IMP_KEY,
    PWD_2DIGIT,
    issue_key,
    log_of,
)


def test_charge_returns_paid_payment_when_card_is_approved(gateway, customer_uid, uid):
    merchant_uid = uid("order")

    payment = gateway.charge_billing_key(
        customer_uid=customer_uid, merchant_uid=merchant_uid, amount=9900, name="월간 이용권"
    )

    assert isinstance(payment, GatewayPayment)
    assert payment.is_paid and not payment.is_failed
    assert payment.status == "paid"
    assert payment.merchant_uid == merchant_uid
    assert payment.customer_uid == customer_uid
    assert payment.amount == 9900 and payment.cancel_amount == 0
    assert payment.cancellable_amount == 9900
    assert payment.imp_uid
    assert payment.paid_at is not None and payment.failed_at is None
    assert payment.fail_reason is None


@pytest.mark.parametrize(
    ("card", "reason_fragment"),
    [
        (CARD_INSUFFICIENT_FUNDS, "잔액부족"),
        (CARD_LIMIT_EXCEEDED, "한도초과"),
        (CARD_LOST_STOLEN, "분실"),
    ],
)
def test_charge_returns_failed_payment_when_card_is_declined(gateway, uid, card, reason_fragment):
    customer_uid = uid("cust")
    issue_key(gateway, customer_uid, card)
    merchant_uid = uid("order")

    payment = gateway.charge_billing_key(
        customer_uid=customer_uid, merchant_uid=merchant_uid, amount=9900, name="월간 이용권"
    )

    assert payment.status == "failed"
    assert payment.is_failed and not payment.is_paid
    assert reason_fragment in (payment.fail_reason or "")
    assert payment.failed_at is not None and payment.paid_at is None
    assert payment.cancellable_amount == 0
    assert payment.imp_uid and payment.merchant_uid == merchant_uid


def test_charge_returns_failed_payment_when_key_behaviour_is_switched_to_decline(gateway, sandbox, customer_uid, uid):
    sandbox.set_card_behaviour(customer_uid, "insufficient_funds")

    payment = gateway.charge_billing_key(
        customer_uid=customer_uid, merchant_uid=uid("order"), amount=1000, name="월간 이용권"
    )

    assert payment.is_failed
    assert payment.fail_reason


def test_charge_raises_rejected_when_iamport_answers_code_not_zero(gateway, sandbox, customer_uid, uid):
    sandbox.add_fault("again", "code_error")

    with pytest.raises(GatewayRejected) as info:
        gateway.charge_billing_key(
            customer_uid=customer_uid, merchant_uid=uid("order"), amount=9900, name="월간 이용권"
        )

    assert info.value.code != 0
    assert info.value.gateway_message
    assert info.value.path == "/subscribe/payments/again"
    assert not isinstance(info.value, GatewayNotFound)


def test_charge_raises_rejected_when_customer_uid_is_unknown(gateway, uid):
    with pytest.raises(GatewayRejected) as info:
        gateway.charge_billing_key(customer_uid="nobody", merchant_uid=uid("order"), amount=9900, name="월간 이용권")

    assert info.value.code != 0


@pytest.mark.parametrize("card", [CARD_ISSUE_REFUSED, CARD_EXPIRED])
def test_issue_raises_rejected_when_card_is_refused_at_issuance(gateway, uid, card):
    customer_uid = uid("cust")

    with pytest.raises(GatewayRejected) as info:
        issue_key(gateway, customer_uid, card)

    assert info.value.code == -1
    assert info.value.gateway_message
    with pytest.raises(GatewayNotFound):
        gateway.get_billing_key(customer_uid=customer_uid)


def test_onetime_charge_returns_paid_and_stores_key_when_customer_uid_given(gateway, uid):
    customer_uid, merchant_uid = uid("cust"), uid("order")

    payment = gateway.charge_onetime(
        merchant_uid=merchant_uid,
        amount=5000,
        card_number=CARD_OK,
        expiry=EXPIRY,
        birth=BIRTH,
        pwd_2digit=PWD_2DIGIT,
        customer_uid=customer_uid,
        name="첫 달",
    )

    assert payment.is_paid and payment.amount == 5000
    assert gateway.get_billing_key(customer_uid=customer_uid).customer_uid == customer_uid


def test_onetime_charge_returns_failed_payment_when_card_is_declined(gateway, uid):
    payment = gateway.charge_onetime(
        merchant_uid=uid("order"),
        amount=5000,
        card_number=CARD_INSUFFICIENT_FUNDS,
        expiry=EXPIRY,
        birth=BIRTH,
        pwd_2digit=PWD_2DIGIT,
        name="첫 달",
    )

    assert payment.is_failed
    assert "잔액부족" in (payment.fail_reason or "")


def test_get_payment_raises_not_found_when_http_404(gateway, sandbox):
    with pytest.raises(GatewayNotFound) as info:
        gateway.get_payment(imp_uid="imp_000000000000")

    assert info.value.status == 404
    assert info.value.gateway_message  # the envelope's message travels with the error
    assert log_of(sandbox, "payments")[-1]["status"] == 404


def test_not_found_is_raised_for_both_shapes_when_resource_is_missing(gateway, sandbox):
    """The sandbox answers lookups with HTTP 404 and some writes with HTTP 200 + code 1: both are NotFound."""
    calls = {
        "payment": lambda: gateway.get_payment(imp_uid="imp_000000000000"),
        "billing_key": lambda: gateway.get_billing_key(customer_uid="nobody"),
        "delete_key": lambda: gateway.delete_billing_key(customer_uid="nobody"),
        "schedule": lambda: gateway.get_schedule(merchant_uid="no-such-schedule"),
        "prepared": lambda: gateway.get_prepared_payment(merchant_uid="no-such-prepare"),
        "cancel": lambda: gateway.cancel_payment(imp_uid="imp_000000000000", reason="test"),
        "unschedule": lambda: gateway.unschedule_charges(customer_uid="nobody"),
    }
    shapes = {}
    for name, call in calls.items():
        with pytest.raises(GatewayNotFound) as info:
            call()
        shapes[name] = (info.value.status, info.value.code)
        assert info.value.gateway_message, name

    assert {status for status, _ in shapes.values()} == {200, 404}, shapes
    assert all(code != 0 for status, code in shapes.values() if status == 200), shapes


class _StubIamport(BaseHTTPRequestHandler):
    """A loopback stand-in for wire shapes the sandbox does not produce; it records what it received.

    * ``GET /subscribe/customers/...``: HTTP 200 + code 1, as the real Iamport was observed to answer a
      missing key (docs/iamport-v1.md#http-statuses; the sandbox chose the schema's 404);
    * ``GET /payments/...``: always 401, i.e. a token that is refused even after a refresh.
    """

    def do_POST(self):
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        self._reply(
            200, {"code": 0, "message": None, "response": {"access_token": "t", "now": 100, "expired_at": 1900}}
        )

    def do_GET(self):
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        if self.path.startswith("/payments/"):
            self._reply(401, {"code": -1, "message": "Unauthorized", "response": None})
            return
        customer_uid = self.path.rsplit("/", 1)[-1]
        message = f"요청하신 customer_uid({customer_uid})로 등록된 정보를 찾을 수 없습니다."
        self._reply(200, {"code": 1, "message": message, "response": None})

    def _reply(self, status, envelope):
        body = json.dumps(envelope).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_iamport():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubIamport)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _stub_gateway(server, **kwargs) -> IamportGateway:
    url = f"http://127.0.0.1:{server.server_address[1]}"
    return IamportGateway(base_url=url, imp_key="k", imp_secret="s", backoff=0.0, **kwargs)


def test_lookup_raises_not_found_when_iamport_answers_200_with_code_1(stub_iamport):
    gateway = _stub_gateway(stub_iamport)

    with pytest.raises(GatewayNotFound) as info:
        gateway.get_billing_key(customer_uid="nobody")

    assert info.value.status == 200 and info.value.code == 1
    assert "nobody" in info.value.gateway_message
    assert gateway.get_billing_keys(customer_uids=["nobody"]) == []


def test_raises_auth_error_after_one_refresh_when_401_persists(stub_iamport):
    gateway = _stub_gateway(stub_iamport)

    with pytest.raises(GatewayAuthError) as info:
        gateway.get_payment(imp_uid="imp_1")

    assert info.value.status == 401
    assert [(method, path.split("?")[0]) for method, path, _ in stub_iamport.seen] == [
        ("POST", "/users/getToken"),
        ("GET", "/payments/imp_1"),
        ("POST", "/users/getToken"),
        ("GET", "/payments/imp_1"),
    ]


def test_requests_carry_bearer_token_and_tier_header_when_tier_code_is_set(stub_iamport):
    gateway = _stub_gateway(stub_iamport, tier_code="T01")

    assert gateway.get_billing_keys(customer_uids=["m"]) == []  # the stub's 200 + code 1 "not found"

    token_call, lookup = stub_iamport.seen
    assert token_call[2].get("Tier") == "T01"
    assert lookup[2]["Authorization"] == "Bearer t"
    assert lookup[2]["Tier"] == "T01"
    assert _stub_gateway(stub_iamport).get_token() == "t"
    assert "Tier" not in stub_iamport.seen[-1][2]


def test_find_payment_returns_none_when_merchant_uid_is_unknown(gateway):
    assert gateway.find_payment(merchant_uid="never-charged") is None
    assert gateway.find_payment(merchant_uid="never-charged", status="paid") is None
    assert gateway.find_payments(merchant_uid="never-charged") == []


def test_raises_auth_error_when_secret_is_wrong(make_gateway, sandbox):
    gateway = make_gateway(imp_secret="wrong-secret")

    with pytest.raises(GatewayAuthError) as info:
        gateway.get_billing_key(customer_uid="anyone")

    assert info.value.status == 401
    assert "wrong-secret" not in str(info.value) and "wrong-secret" not in (info.value.body or "")
    assert [e["endpoint"] for e in sandbox.requests_log()] == ["getToken"]


def test_raises_auth_error_when_key_is_unknown(make_gateway):
    gateway = make_gateway(imp_key="not-a-key")

    with pytest.raises(GatewayAuthError):
        gateway.charge_billing_key(customer_uid="x", merchant_uid="m", amount=1, name="n")


def test_charge_raises_unavailable_not_processed_when_connection_is_refused(uid):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gateway = IamportGateway(
        base_url=f"http://127.0.0.1:{port}", imp_key=IMP_KEY, imp_secret="x", backoff=0.0, connect_timeout=1.0
    )

    with pytest.raises(GatewayUnavailable) as info:
        gateway.charge_billing_key(customer_uid="c", merchant_uid=uid("order"), amount=100, name="n")

    assert info.value.maybe_processed is False
    assert info.value.status is None


def test_charge_raises_unavailable_maybe_processed_when_iamport_answers_500(gateway, sandbox, customer_uid, uid):
    sandbox.add_fault("again", "http_500")
    merchant_uid = uid("order")

    with pytest.raises(GatewayUnavailable) as info:
        gateway.charge_billing_key(
            customer_uid=customer_uid, merchant_uid=merchant_uid, amount=9900, name="월간 이용권"
        )

    assert info.value.status == 500
    assert info.value.maybe_processed is True
    assert len(log_of(sandbox, "again")) == 1  # never re-sent


def test_get_raises_unavailable_not_processed_when_5xx_persists(make_gateway, sandbox, customer_uid):
    gateway = make_gateway(read_retries=2)
    sandbox.add_fault("customers", "http_503", times=10)

    with pytest.raises(GatewayUnavailable) as info:
        gateway.get_billing_key(customer_uid=customer_uid)

    assert info.value.status == 503
    assert info.value.maybe_processed is False
    assert len([e for e in log_of(sandbox, "customers") if e["method"] == "GET"]) == 3  # 1 + read_retries


def test_cancel_raises_rejected_when_checksum_does_not_match(gateway, customer_uid, uid):
    payment = gateway.charge_billing_key(
        customer_uid=customer_uid, merchant_uid=uid("order"), amount=10000, name="월간 이용권"
    )

    with pytest.raises(GatewayRejected) as info:
        gateway.cancel_payment(imp_uid=payment.imp_uid, amount=1000, checksum=9000, reason="stale balance")

    assert info.value.code != 0
    assert not isinstance(info.value, GatewayNotFound)
    assert gateway.get_payment(imp_uid=payment.imp_uid).cancel_amount == 0


def test_cancel_raises_rejected_when_payment_is_already_fully_cancelled(gateway, customer_uid, uid):
    payment = gateway.charge_billing_key(
        customer_uid=customer_uid, merchant_uid=uid("order"), amount=3000, name="월간 이용권"
    )
    gateway.cancel_payment(imp_uid=payment.imp_uid, reason="refund")

    with pytest.raises(GatewayRejected):
        gateway.cancel_payment(imp_uid=payment.imp_uid, reason="again")
