"""Policy documents and the agreement a subscriber gives at checkout.

`agreement_for_checkout` turns "the box was ticked, for these versions" into an `AgreementInput` that
`subscription_create` writes in the same transaction as the subscription; it refuses an unticked box and
versions that are no longer current (the page was opened before the merchant published a new version).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from subscriptions.errors import AgreementRequiredError, PolicyChangedError
from subscriptions.models import PolicyDocument, SubscriptionAgreement
from subscriptions.selectors import policies_current


@dataclass(frozen=True)
class AgreementInput:
    terms: PolicyDocument | None
    refund_policy: PolicyDocument | None
    privacy_policy: PolicyDocument | None
    channel: str
    ip_address: str | None = None


def agreement_for_checkout(
    *,
    agreed: bool,
    now: dt.datetime,
    channel: str,
    shown: dict[str, str] | None = None,
    ip_address: str | None = None,
) -> AgreementInput:
    """The agreement to record, or AgreementRequiredError. `shown` maps a kind to the document id the page
    showed (the web checkout posts them back); the API passes None and agrees to the current versions."""
    if not agreed:
        raise AgreementRequiredError()
    current = policies_current(now=now)
    if shown is not None:
        for kind in PolicyDocument.Kind.values:
            document = current.get(kind)
            if str(shown.get(kind) or "") != (str(document.pk) if document else ""):
                raise PolicyChangedError()
    return AgreementInput(
        terms=current.get(PolicyDocument.Kind.TERMS),
        refund_policy=current.get(PolicyDocument.Kind.REFUND),
        privacy_policy=current.get(PolicyDocument.Kind.PRIVACY),
        channel=channel,
        ip_address=ip_address or None,
    )


def agreement_record(*, subscription, agreement: AgreementInput, now: dt.datetime) -> SubscriptionAgreement:
    """Called by subscription_create inside its transaction."""
    return SubscriptionAgreement.objects.create(
        subscription=subscription,
        plan=subscription.plan,
        terms=agreement.terms,
        refund_policy=agreement.refund_policy,
        privacy_policy=agreement.privacy_policy,
        auto_renewal=True,
        channel=agreement.channel,
        ip_address=agreement.ip_address,
        agreed_at=now,
    )


DEMO_POLICIES = {
    PolicyDocument.Kind.TERMS: (
        '제1조(목적) 이 약관은 케이빌링 데모상점(이하 "회사")이 제공하는 구독 서비스의 이용 조건을 정합니다.\n\n'
        "제2조(정기결제) 구독은 해지할 때까지 매 결제 주기마다 등록한 카드로 자동 결제됩니다. 결제 금액과 "
        "다음 결제일은 '내 구독' 화면에 표시됩니다.\n\n"
        "제3조(해지) 회원은 언제든지 '내 구독' > '구독 해지'에서 한 번에 해지할 수 있으며, 해지하면 다음 결제일부터 "
        "결제되지 않습니다.\n\n"
        "(개발용 예시 약관입니다. 실제 서비스에서는 관리자 화면에서 직접 작성하세요.)",
        'Article 1 (Purpose) These terms govern the subscription service of the kbilling demo shop ("we").\n\n'
        "Article 2 (Recurring payment) A subscription renews automatically and is charged to the registered card "
        "every billing cycle until you cancel. The amount and the next charge date are shown on My subscription.\n\n"
        "Article 3 (Cancellation) You can cancel at any time in one step under My subscription > Cancel "
        "subscription; nothing is charged after that.\n\n"
        "(Sample terms for development. Write your own in the admin.)",
    ),
    PolicyDocument.Kind.REFUND: (
        "결제일로부터 7일 이내에 서비스를 이용하지 않았다면 전액 환불합니다. 그 밖의 경우 해지하면 남은 기간까지 "
        "이용할 수 있고, 이미 결제한 금액은 관계 법령에 따라 이용 기간을 뺀 금액을 환불합니다. 환불은 결제한 "
        "카드의 승인 취소로 이루어지며, 카드사에 따라 3~7영업일이 걸립니다.\n\n(개발용 예시입니다.)",
        "Within 7 days of a payment, if you have not used the service, we refund it in full. Otherwise, after "
        "cancelling you keep access until the period ends, and a refund of an amount already paid is the amount "
        "less the time used, as the law provides. Refunds cancel the card payment and take 3 to 7 business days "
        "depending on the card company.\n\n(A sample for development.)",
    ),
    PolicyDocument.Kind.PRIVACY: (
        "수집 항목: 아이디, 이메일, 카드사명과 마스킹된 카드번호(카드번호 전체는 결제대행사만 보관합니다). 목적: 구독 "
        "결제와 고객 응대. 보유 기간: 회원 탈퇴 시까지, 결제 기록은 전자상거래법에 따라 5년.\n\n(개발용 예시입니다.)",
        "We collect: your username, email, card company and masked card number (only the payment processor keeps "
        "the full number). Purpose: subscription billing and support. Kept until you leave; payment records for "
        "5 years as the E-Commerce Act requires.\n\n(A sample for development.)",
    ),
}


def policies_seed_demo(*, now: dt.datetime) -> int:
    """Version 1 of each demo policy, in effect from `now` (idempotent)."""
    for kind, (body_ko, body_en) in DEMO_POLICIES.items():
        PolicyDocument.objects.get_or_create(
            kind=kind, version="1", defaults={"body_ko": body_ko, "body_en": body_en, "effective_at": now}
        )
    return PolicyDocument.objects.count()
