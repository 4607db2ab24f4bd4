"""Test cards: how a card number behaves when a billing key is issued on it and when that key is charged.

The sandbox never stores a full card number: only the masked number, the card company and the charge
behaviour survive the request that carried the card.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from iamport_sandbox.clock import KST
from iamport_sandbox.errors import pg_error

PAID = "paid"
INSUFFICIENT_FUNDS = "insufficient_funds"
LIMIT_EXCEEDED = "limit_exceeded"
LOST_CARD = "lost_card"
BEHAVIOURS = (PAID, INSUFFICIENT_FUNDS, LIMIT_EXCEEDED, LOST_CARD)

# The bracketed prefix is the stable part a client can classify on; the rest reads like a PG message.
FAIL_REASONS = {
    INSUFFICIENT_FUNDS: "[잔액부족] 카드 잔액이 부족합니다.",
    LIMIT_EXCEEDED: "[한도초과] 카드 한도가 초과되었습니다.",
    LOST_CARD: "[분실/도난 카드] 분실 또는 도난 신고된 카드입니다. 카드사에 문의하세요.",
}

MSG_INVALID_NUMBER = "유효하지않은 카드번호를 입력하셨습니다."
MSG_ISSUE_REFUSED = "카드정보 인증 및 빌키 발급에 실패하였습니다."
MSG_ONETIME_REFUSED = "카드정보 인증에 실패하였습니다."
MSG_EXPIRED = "[유효기간만료] 유효기간이 만료된 카드입니다."
MSG_BAD_EXPIRY = "카드 유효기간(expiry)은 YYYY-MM 형식이어야 합니다."
MSG_BAD_BIRTH = "생년월일(birth)은 6자리(YYMMDD) 또는 사업자등록번호 10자리여야 합니다."
MSG_BAD_PWD = "카드 비밀번호 앞 2자리(pwd_2digit)는 숫자 2자리여야 합니다."

REFUSE_ISSUE = "refuse_issue"
REFUSE_EXPIRED = "refuse_expired"


@dataclass(frozen=True)
class CardCompany:
    name: str
    code: str


SHINHAN = CardCompany("신한카드", "366")
KOOKMIN = CardCompany("KB국민카드", "381")
SAMSUNG = CardCompany("삼성카드", "365")
HYUNDAI = CardCompany("현대카드", "367")
LOTTE = CardCompany("롯데카드", "368")
BC = CardCompany("BC카드", "361")
HANA = CardCompany("하나카드", "374")
NH = CardCompany("NH농협카드", "371")
_OTHER_COMPANIES = (SHINHAN, KOOKMIN, SAMSUNG, HYUNDAI, LOTTE, BC, HANA, NH)

# number -> (behaviour when charged, or a refusal at issuance; card company)
TEST_CARDS: dict[str, tuple[str, CardCompany]] = {
    "4242424242424242": (PAID, SHINHAN),
    "4000000000000002": (REFUSE_ISSUE, BC),
    "4000000000009995": (INSUFFICIENT_FUNDS, KOOKMIN),
    "4000000000009235": (LIMIT_EXCEEDED, SAMSUNG),
    "4000000000000341": (LOST_CARD, HYUNDAI),
    "4000000000000069": (REFUSE_EXPIRED, LOTTE),
}

_CARD_FORMAT = re.compile(r"\d{4}-\d{4}-\d{4}-\d{4}")
_EXPIRY_FORMAT = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True)
class CardProfile:
    """What survives of a card after it was accepted."""

    masked_number: str
    card_name: str
    card_code: str
    card_type: int
    behaviour: str


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def mask(digits: str) -> str:
    return f"{digits[0:4]}-{digits[4:6]}**-****-{digits[12:16]}"


def format_card_number(text: str) -> str:
    """Used by the browser SDK stand-in only: a human may type the number without dashes."""
    digits = re.sub(r"[\s-]", "", text or "")
    if re.fullmatch(r"\d{16}", digits):
        return "-".join(digits[i : i + 4] for i in range(0, 16, 4))
    return (text or "").strip()


def expiry_is_past(year: int, month: int, now: int) -> bool:
    """A card is valid through the last day of its expiry month (Korean time)."""
    today = datetime.fromtimestamp(now, UTC).astimezone(KST)
    return (year, month) < (today.year, today.month)


def inspect_card(
    *,
    card_number: str,
    expiry: str,
    birth: str | None,
    pwd_2digit: str | None,
    now: int,
    onetime: bool = False,
) -> CardProfile:
    """Accept a card or raise the code -1 refusal Iamport gives for it.

    Defensive choice: the number must be exactly `dddd-dddd-dddd-dddd` and the expiry exactly `YYYY-MM`,
    the formats the schema documents, so a client that sends anything else fails here before production.
    """
    if not _CARD_FORMAT.fullmatch(card_number or ""):
        raise pg_error(MSG_INVALID_NUMBER)
    digits = card_number.replace("-", "")
    match = _EXPIRY_FORMAT.fullmatch(expiry or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise pg_error(MSG_BAD_EXPIRY)
    if birth is not None and not re.fullmatch(r"\d{6}|\d{10}", birth):
        raise pg_error(MSG_BAD_BIRTH)
    if pwd_2digit is not None and not re.fullmatch(r"\d{2}", pwd_2digit):
        raise pg_error(MSG_BAD_PWD)
    known = TEST_CARDS.get(digits)
    if known is None:
        if not luhn_ok(digits):
            raise pg_error(MSG_INVALID_NUMBER)
        known = (PAID, _OTHER_COMPANIES[sum(int(d) for d in digits) % len(_OTHER_COMPANIES)])
    behaviour, company = known
    if behaviour == REFUSE_ISSUE:
        raise pg_error(MSG_ONETIME_REFUSED if onetime else MSG_ISSUE_REFUSED)
    if behaviour == REFUSE_EXPIRED or expiry_is_past(int(match.group(1)), int(match.group(2)), now):
        raise pg_error(MSG_EXPIRED)
    return CardProfile(
        masked_number=mask(digits),
        card_name=company.name,
        card_code=company.code,
        card_type=0,
        behaviour=behaviour,
    )


def charge_outcome(behaviour: str) -> tuple[str, str | None]:
    """(status, fail_reason) of one charge on a key with this behaviour."""
    if behaviour == PAID:
        return "paid", None
    return "failed", FAIL_REASONS[behaviour]
