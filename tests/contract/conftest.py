"""The gateway contract target: the sandbox by default, the real Iamport when credentials are set.

Live run: export IAMPORT_IMP_KEY, IAMPORT_IMP_SECRET and IAMPORT_CHANNEL_KEY (a *test* channel), plus
IAMPORT_TEST_CARD_NUMBER / _EXPIRY (YYYY-MM) / _BIRTH / _PWD_2DIGIT for scenarios that issue a billing key,
then ``pytest tests/contract -m live_iamport``. Live charges are refunded and keys deleted at teardown.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from billing.gateway import GatewayError, IamportGateway

LIVE_VARS = ("IAMPORT_IMP_KEY", "IAMPORT_IMP_SECRET", "IAMPORT_CHANNEL_KEY")
LIVE_SKIP_REASON = (
    "live Iamport contract run skipped: set IAMPORT_IMP_KEY, IAMPORT_IMP_SECRET and IAMPORT_CHANNEL_KEY "
    "(a test channel) to run these scenarios against the real Iamport"
)
LIVE_BASE_URL = os.environ.get("IAMPORT_LIVE_API_URL", "https://api.iamport.kr")

SANDBOX_IMP_KEY = "imp_apikey"
SANDBOX_IMP_SECRET = "ekKoeW8RyKuT0zgaZsUtXXTLQ4AhPFW3ZGseDA6bkA5lamv9OqDMnxyeB9wqOsuO9W3Mx9YSJ4dTqJ3f"


def live_configured() -> bool:
    return all(os.environ.get(name) for name in LIVE_VARS)


@dataclass(frozen=True)
class Card:
    number: str
    expiry: str
    birth: str | None
    pwd_2digit: str | None


SANDBOX_CARD = Card("4242-4242-4242-4242", "2030-12", "880101", "12")


def _live_card() -> Card | None:
    number = os.environ.get("IAMPORT_TEST_CARD_NUMBER")
    expiry = os.environ.get("IAMPORT_TEST_CARD_EXPIRY")
    if not number or not expiry:
        return None
    return Card(
        number,
        expiry,
        os.environ.get("IAMPORT_TEST_CARD_BIRTH"),
        os.environ.get("IAMPORT_TEST_CARD_PWD_2DIGIT"),
    )


@dataclass
class ContractTarget:
    """Everything a scenario needs besides the gateway: ids, the target's clock, a card, cleanup."""

    name: str
    gateway: IamportGateway
    card: Card | None
    clock: Callable[[], float]
    control: object | None = None  # SandboxControl on the sandbox, None live
    _ids: Callable[[str], str] = field(default=lambda prefix: prefix)
    _keys: list[str] = field(default_factory=list)
    _payments: list[str] = field(default_factory=list)

    @property
    def is_live(self) -> bool:
        return self.name == "live"

    def uid(self, prefix: str) -> str:
        return self._ids(prefix)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(int(self.clock()), tz=dt.UTC)

    def require_sandbox(self, why: str) -> None:
        if self.is_live:
            pytest.skip(f"sandbox-only scenario, skipped against live Iamport: {why}")

    def issue_key(self) -> str:
        if self.card is None:
            pytest.skip("live scenario needs IAMPORT_TEST_CARD_NUMBER and IAMPORT_TEST_CARD_EXPIRY")
        customer_uid = self.uid("ct-cust")
        self.gateway.issue_billing_key(
            customer_uid=customer_uid,
            card_number=self.card.number,
            expiry=self.card.expiry,
            birth=self.card.birth,
            pwd_2digit=self.card.pwd_2digit,
            customer_name="계약테스트",
        )
        self._keys.append(customer_uid)
        return customer_uid

    def charged(self, imp_uid: str) -> None:
        """Remember a charge so a live run refunds it at teardown."""
        self._payments.append(imp_uid)

    def cleanup(self) -> None:
        if not self.is_live:
            return  # the sandbox is reset before every test
        for imp_uid in self._payments:
            try:
                payment = self.gateway.get_payment(imp_uid=imp_uid)
                if payment.cancellable_amount:
                    self.gateway.cancel_payment(imp_uid=imp_uid, reason="contract test cleanup")
            except GatewayError:
                pass
        for customer_uid in self._keys:
            try:
                self.gateway.unschedule_charges(customer_uid=customer_uid)
            except GatewayError:
                pass  # usually: nothing was scheduled
            try:
                self.gateway.delete_billing_key(customer_uid=customer_uid, reason="contract test cleanup")
            except GatewayError:
                pass


@pytest.fixture(
    params=[
        "sandbox",
        pytest.param(
            "live",
            marks=[
                pytest.mark.live_iamport,
                pytest.mark.skipif(not live_configured(), reason=LIVE_SKIP_REASON),
            ],
        ),
    ]
)
def contract(request) -> ContractTarget:
    """The contract target: the sandbox by default; the real Iamport for the ``live_iamport`` param."""
    if request.param == "live":
        gateway = IamportGateway(
            base_url=LIVE_BASE_URL,
            imp_key=os.environ["IAMPORT_IMP_KEY"],
            imp_secret=os.environ["IAMPORT_IMP_SECRET"],
            channel_key=os.environ["IAMPORT_CHANNEL_KEY"],
            include_sandbox=True,
        )
        run = f"{int(time.time()):x}{uuid.uuid4().hex[:6]}"
        counter = itertools.count(1)
        target = ContractTarget("live", gateway, _live_card(), time.time, _ids=lambda p: f"{p}-{run}-{next(counter)}")
    else:
        sandbox_server = request.getfixturevalue("sandbox_server")
        control = request.getfixturevalue("sandbox")
        gateway = IamportGateway(
            base_url=sandbox_server.url,
            imp_key=SANDBOX_IMP_KEY,
            imp_secret=SANDBOX_IMP_SECRET,
            include_sandbox=True,
            channel_key="channel-key-sandbox-contract",
            read_timeout=5.0,
            backoff=0.0,
        )
        counter = itertools.count(1)
        target = ContractTarget(
            "sandbox", gateway, SANDBOX_CARD, control.now, control, _ids=lambda p: f"{p}-{next(counter)}"
        )
    yield target
    target.cleanup()
    gateway.close()


@pytest.fixture
def contract_gateway(contract) -> IamportGateway:
    """The gateway every contract scenario runs against."""
    return contract.gateway
