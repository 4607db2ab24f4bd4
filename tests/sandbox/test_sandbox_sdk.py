"""The browser SDK stand-in: /v1/iamport.js and the endpoint its card form posts to."""

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from iamport_sandbox.server import DEFAULT_MERCHANT_CODE
from tests.sandbox.sandbox_helpers import FAR_EXPIRY, INSUFFICIENT_CARD, REFUSED_CARD

DRIVER = Path(__file__).parent / "js" / "drive_sdk.js"
FORM_FIELDS = ("card_number", "expiry", "birth", "pwd_2digit")


def _request_pay(base_url: str, params: dict, card: dict | None = None, imp_code: str = DEFAULT_MERCHANT_CODE):
    card = card or {"card_number": "4242424242424242", "expiry": FAR_EXPIRY, "birth": "900101", "pwd_2digit": "12"}
    response = requests.post(
        f"{base_url}/__sandbox__/sdk/request_pay",
        json={"imp_code": imp_code, "params": params, "card": card},
        headers={"Origin": "http://app.localhost:8000"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    return response.json()


def test_sdk_js_is_served_as_javascript_with_imp_api_and_card_form(sandbox_server):
    response = requests.get(f"{sandbox_server.url}/v1/iamport.js", timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    js = response.text
    for needle in (
        "window.IMP",
        "init: init",
        "request_pay: request_pay",
        "document.body.appendChild(overlay)",
        "/__sandbox__/sdk/request_pay",
        '"결제하기"',
        '"취소"',
        '"F1002"',
        "사용자가 결제를 취소하셨습니다",
        "m_redirect_url",
        "imp_success",
    ):
        assert needle in js, needle
    for name in ("card_number", "expiry", "birth", "pwd_2digit"):
        assert f'field(form, "{name}"' in js
    assert '"label", { "for": id' in js
    assert "http://" not in js.replace(sandbox_server.url, "")


def test_sdk_preflight_is_answered_with_cors_headers(sandbox_server):
    response = requests.options(
        f"{sandbox_server.url}/__sandbox__/sdk/request_pay",
        headers={
            "Origin": "http://app.localhost:8000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=5,
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()


def test_sdk_issues_key_with_issue_usage_when_customer_uid_given_and_amount_zero(sandbox, iamport, sandbox_server):
    rsp = _request_pay(
        sandbox_server.url,
        {"pay_method": "card", "merchant_uid": "sdk-1", "name": "카드 등록", "amount": 0, "customer_uid": "c_sdk"},
    )

    assert rsp["success"] is True and rsp["error_code"] is None
    assert rsp["imp_uid"].startswith("imp_") and rsp["merchant_uid"] == "sdk-1"
    assert rsp["card_number"] == "4242-42**-****-4242" and rsp["card_name"] == "신한카드"
    key = iamport.get("/subscribe/customers/c_sdk").json()["response"]
    assert key["card_number"] == "4242-42**-****-4242"
    payment = iamport.payment(rsp["imp_uid"])
    assert payment["customer_uid_usage"] == "issue" and payment["amount"] == 0 and payment["status"] == "paid"


def test_sdk_charges_amount_too_when_amount_above_zero(sandbox, iamport, sandbox_server):
    rsp = _request_pay(
        sandbox_server.url, {"merchant_uid": "sdk-2", "name": "첫 달", "amount": 9900, "customer_uid": "c_sdk2"}
    )

    assert rsp["success"] is True and rsp["paid_amount"] == 9900 and rsp["status"] == "paid"
    assert iamport.payment(rsp["imp_uid"])["amount"] == 9900


def test_sdk_sends_paid_webhook_for_issuance_when_notice_url_given(sandbox, sandbox_server, receiver):
    rsp = _request_pay(
        sandbox_server.url,
        {"merchant_uid": "sdk-3", "amount": 0, "customer_uid": "c_sdk3", "notice_url": receiver.url},
    )

    (received,) = receiver.wait(1)
    assert received["body"] == {"imp_uid": rsp["imp_uid"], "merchant_uid": "sdk-3", "status": "paid"}


def test_sdk_reports_failure_and_issues_nothing_when_card_refused(sandbox, iamport, sandbox_server):
    rsp = _request_pay(
        sandbox_server.url,
        {"merchant_uid": "sdk-4", "amount": 0, "customer_uid": "c_sdk4"},
        card={"card_number": REFUSED_CARD, "expiry": FAR_EXPIRY},
    )

    assert rsp["success"] is False and rsp["error_code"] and rsp["error_msg"]
    assert iamport.get("/subscribe/customers/c_sdk4").status_code == 404


def test_sdk_reports_failure_without_webhook_when_charge_declined(sandbox, sandbox_server, receiver):
    rsp = _request_pay(
        sandbox_server.url,
        {"merchant_uid": "sdk-5", "amount": 9900, "customer_uid": "c_sdk5", "notice_url": receiver.url},
        card={"card_number": INSUFFICIENT_CARD, "expiry": FAR_EXPIRY},
    )

    assert rsp["success"] is False and rsp["status"] == "failed" and "[잔액부족]" in rsp["error_msg"]
    assert receiver.wait(1, timeout=0.3) == []


def test_sdk_pre_rejects_when_merchant_uid_already_paid(sandbox, iamport, sandbox_server):
    iamport.issued("c1")
    iamport.paid("c1", "sdk-paid")

    rsp = _request_pay(sandbox_server.url, {"merchant_uid": "sdk-paid", "amount": 0, "customer_uid": "c_sdk6"})

    assert rsp["success"] is False and rsp["imp_uid"] is None


def test_sdk_rejects_when_amount_differs_from_prepared_amount(sandbox, iamport, sandbox_server):
    iamport.post("/payments/prepare", json={"merchant_uid": "sdk-prep", "amount": 9900})

    rsp = _request_pay(sandbox_server.url, {"merchant_uid": "sdk-prep", "amount": 100, "customer_uid": "c_sdk7"})

    assert rsp["success"] is False and rsp["imp_uid"] is None


def test_sdk_rejects_when_merchant_code_is_not_the_sandboxs(sandbox, sandbox_server):
    rsp = _request_pay(
        sandbox_server.url, {"merchant_uid": "sdk-8", "amount": 0, "customer_uid": "c"}, imp_code="imp_x"
    )

    assert rsp["success"] is False and rsp["error_code"] == "F400"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the SDK against a fake DOM")
def test_sdk_js_issues_key_cancels_and_redirects_when_driven_in_node(sandbox, iamport, sandbox_server, tmp_path):
    sdk = tmp_path / "iamport.js"
    sdk.write_bytes(requests.get(f"{sandbox_server.url}/v1/iamport.js", timeout=5).content)

    run = subprocess.run(
        ["node", str(DRIVER), str(sdk), sandbox_server.url], capture_output=True, text=True, timeout=30, check=True
    )

    result = json.loads(run.stdout)
    assert result["overlayOpen"] and result["overlayClosed"]
    assert all(label.endswith(f"({name})") for label, name in zip(result["labels"], FORM_FIELDS, strict=True))
    assert result["paid"]["success"] is True and result["paid"]["card_number"] == "4242-42**-****-4242"
    assert iamport.get("/subscribe/customers/c_js").json()["response"]["card_number"] == "4242-42**-****-4242"
    assert result["cancelled"]["success"] is False
    assert result["cancelled"]["error_code"] == "F1002"
    assert result["cancelled"]["error_msg"] == "사용자가 결제를 취소하셨습니다"
    redirect = urlsplit(result["redirect"])
    query = dict(parse_qsl(redirect.query))
    assert redirect.path == "/done"
    assert query["merchant_uid"] == "js-3" and query["imp_success"] == "false"
    assert query["error_msg"] == "카드정보 인증 및 빌키 발급에 실패하였습니다." and query["error_code"]
