"""Fixtures for the Iamport adapter tests: real gateways pointed at the real sandbox over loopback."""

from __future__ import annotations

import itertools
import time

import pytest

from billing.gateway import IamportGateway

IMP_KEY = "imp_apikey"
IMP_SECRET = "ekKoeW8RyKuT0zgaZsUtXXTLQ4AhPFW3ZGseDA6bkA5lamv9OqDMnxyeB9wqOsuO9W3Mx9YSJ4dTqJ3f"

SANDBOX_CHANNEL_KEY = "channel-key-sandbox-test"

CARD_OK = "4242-4242-4242-4242"
CARD_ISSUE_REFUSED = "4000-0000-0000-0002"
CARD_INSUFFICIENT_FUNDS = "4000-0000-0000-9995"
CARD_LIMIT_EXCEEDED = "4000-0000-0000-9235"
CARD_LOST_STOLEN = "4000-0000-0000-0341"
CARD_EXPIRED = "4000-0000-0000-0069"
EXPIRY = "2030-12"
BIRTH = "880101"
PWD_2DIGIT = "12"


class FakeClock:
    """Our side of the clock (the gateway's ``clock=``), moved together with the sandbox's."""

    def __init__(self, now: float) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def make_gateway(sandbox_server, sandbox):
    """Build IamportGateway instances on the sandbox; every keyword can be overridden."""
    made: list[IamportGateway] = []

    def make(**overrides) -> IamportGateway:
        options = {
            "base_url": sandbox_server.url,
            "imp_key": IMP_KEY,
            "imp_secret": IMP_SECRET,
            "include_sandbox": True,
            "channel_key": SANDBOX_CHANNEL_KEY,
            "read_timeout": 5.0,
            "connect_timeout": 2.0,
            "backoff": 0.0,
        }
        options.update(overrides)
        gateway = IamportGateway(**options)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


@pytest.fixture
def gateway(make_gateway) -> IamportGateway:
    return make_gateway()


@pytest.fixture
def uid():
    """Deterministic unique ids: uid("order") -> "order-1", "order-2", ..."""
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}-{next(counter)}"


def issue_key(gateway: IamportGateway, customer_uid: str, card_number: str = CARD_OK, **extra):
    return gateway.issue_billing_key(
        customer_uid=customer_uid,
        card_number=card_number,
        expiry=EXPIRY,
        birth=BIRTH,
        pwd_2digit=PWD_2DIGIT,
        customer_name="홍길동",
        **extra,
    )


@pytest.fixture
def customer_uid(gateway, uid) -> str:
    """A billing key issued on the good test card."""
    value = uid("cust")
    issue_key(gateway, value)
    return value


def log_of(sandbox, endpoint: str, method: str | None = None) -> list[dict]:
    """The sandbox's record of API requests it received for one endpoint, oldest first."""
    return [
        entry
        for entry in sandbox.requests_log()
        if entry.get("endpoint") == endpoint and (method is None or entry.get("method") == method)
    ]


def wait_for_log(sandbox, endpoint: str, count: int, method: str | None = None, timeout: float = 5.0) -> list:
    """A held or delayed request is logged when the sandbox finishes it; wait for that."""
    deadline = time.monotonic() + timeout
    while True:
        entries = log_of(sandbox, endpoint, method)
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


@pytest.fixture
def make_v2_gateway(sandbox_server, sandbox):
    """Build PortOneV2Gateway instances on the sandbox's /v2 surface; every keyword can be overridden."""
    from billing.gateway.portone_v2 import PortOneV2Gateway
    from iamport_sandbox.v2.ledger import DEFAULT_API_SECRET, DEFAULT_CHANNEL_KEY, DEFAULT_STORE_ID

    made: list[PortOneV2Gateway] = []

    def make(**overrides) -> PortOneV2Gateway:
        options = {
            "base_url": sandbox_server.url + "/v2",
            "api_secret": DEFAULT_API_SECRET,
            "store_id": DEFAULT_STORE_ID,
            "channel_key": DEFAULT_CHANNEL_KEY,
            "read_timeout": 5.0,
            "connect_timeout": 2.0,
            "backoff": 0.0,
        }
        options.update(overrides)
        gateway = PortOneV2Gateway(**options)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


@pytest.fixture
def v2(make_v2_gateway):
    return make_v2_gateway()


@pytest.fixture
def billing_key(v2) -> str:
    """A V2 billing key issued on the good test card (PortOne names it)."""
    return issue_v2_key(v2)


def issue_v2_key(gateway, card_number: str = CARD_OK) -> str:
    key = gateway.issue_billing_key(
        card_number=card_number, expiry=EXPIRY, birth=BIRTH, pwd_2digit=PWD_2DIGIT, customer_name="홍길동"
    )
    return key.customer_uid
