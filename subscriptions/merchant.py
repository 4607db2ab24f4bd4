"""The merchant's identity as the law wants it shown (전자상거래법 §10, 시행령 §10): read from settings only.

One frozen value, built from the MERCHANT_* settings (env-driven, see .env.example), used by the footer of
every subscriber page, the emails and the receipts, so the three can never show different details.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from django.conf import settings

# The Fair Trade Commission's 사업자정보 공개 lookup: the number is checked against 통신판매업 신고 records.
FTC_LOOKUP_URL = "https://www.ftc.go.kr/bizCommPop.do?wrkr_no={digits}"


@dataclass(frozen=True)
class MerchantProfile:
    name: str  # 상호
    representative: str  # 대표자
    business_number: str  # 사업자등록번호, as written (123-45-67890)
    mail_order_number: str  # 통신판매업 신고번호
    address: str
    phone: str
    email: str
    hosting_provider: str

    @property
    def business_number_digits(self) -> str:
        return "".join(ch for ch in self.business_number if ch.isdigit())

    @property
    def ftc_lookup_url(self) -> str:
        digits = self.business_number_digits
        return FTC_LOOKUP_URL.format(digits=digits) if len(digits) == 10 else ""

    @property
    def missing(self) -> list[str]:
        """The settings still empty (the site must not go live with any of them missing)."""
        return [f"MERCHANT_{field.name.upper()}" for field in fields(self) if not getattr(self, field.name)]


def merchant_profile() -> MerchantProfile:
    return MerchantProfile(
        name=settings.MERCHANT_NAME,
        representative=settings.MERCHANT_REPRESENTATIVE,
        business_number=settings.MERCHANT_BUSINESS_NUMBER,
        mail_order_number=settings.MERCHANT_MAIL_ORDER_NUMBER,
        address=settings.MERCHANT_ADDRESS,
        phone=settings.MERCHANT_PHONE,
        email=settings.MERCHANT_EMAIL,
        hosting_provider=settings.MERCHANT_HOSTING_PROVIDER,
    )


def check_merchant_profile(app_configs=None, **kwargs):
    """`manage.py check --deploy`: a storefront without its legal identity must not go live."""
    from django.core.checks import Warning as CheckWarning

    missing = merchant_profile().missing
    if not missing:
        return []
    return [
        CheckWarning(
            f"The merchant identity is incomplete: {', '.join(missing)} unset",
            hint="전자상거래법 §10 requires them on every page; set them in the environment (.env.example).",
            id="subscriptions.W001",
        )
    ]
