"""The V2 browser SDK stand-in at `/v2/browser-sdk.js`: `PortOne.requestIssueBillingKey(request)`.

Like PortOne's `@portone/browser-sdk/v2`, it returns a Promise of the response: `{transactionType,
billingKey}` on success, `{transactionType, code, message, pgCode?, pgMessage?}` on failure (the Promise
resolves either way). Only `billingKeyMethod: "CARD"` is simulated. Its form has inputs named (and labelled)
`card_number`, `expiry`, `birth`, `pwd_2digit`, and buttons `발급하기` / `취소`; it posts to
`POST /__sandbox__/v2/sdk/issue-billing-key` on the sandbox's origin.
"""

_JS = r"""/* iamport_sandbox: stand-in for PortOne's V2 browser SDK (offline, test cards only). */
(function (window, document) {
  "use strict";
  var script = document.currentScript;
  var BASE = "__SANDBOX_BASE__";
  try {
    if (script && script.src) { BASE = new URL(script.src, window.location.href).origin; }
  } catch (e) { /* keep the origin the server rendered */ }
  var OVERLAY_ID = "portone-sandbox-overlay";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var key in (attrs || {})) {
      if (Object.prototype.hasOwnProperty.call(attrs, key)) { node.setAttribute(key, attrs[key]); }
    }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function failure(code, message) {
    return { transactionType: "ISSUE_BILLING_KEY", code: code, message: message };
  }

  function expiryParts(value) {
    var text = String(value || "").trim();
    var m = /^(\d{4})[-\/.]?(\d{2})$/.exec(text);
    if (m) { return [m[1].slice(2), m[2]]; }
    m = /^(\d{2})\s*\/?\s*(\d{2})$/.exec(text);
    if (m) { return [m[2], m[1]]; }
    return ["", ""];
  }

  function field(form, name, caption, placeholder, type) {
    var id = "portone-sandbox-" + name;
    var row = el("div", { style: "margin:0 0 10px 0" });
    row.appendChild(el("label", { "for": id, style: "display:block;font-size:13px;margin-bottom:4px" },
      caption + " (" + name + ")"));
    var input = el("input", { id: id, name: name, type: type || "text", placeholder: placeholder,
      autocomplete: "off", style: "width:100%;box-sizing:border-box;padding:8px;font-size:15px" });
    row.appendChild(input);
    form.appendChild(row);
    return input;
  }

  function close() {
    var old = document.getElementById(OVERLAY_ID);
    if (old && old.parentNode) { old.parentNode.removeChild(old); }
  }

  function openForm(request, resolve) {
    close();
    var overlay = el("div", { id: OVERLAY_ID, role: "dialog", "aria-modal": "true",
      "aria-label": "PortOne sandbox 빌링키 발급",
      style: "position:fixed;inset:0;background:rgba(0,0,0,.45);z-index:2147483647;display:flex;" +
        "align-items:center;justify-content:center;font-family:sans-serif" });
    var box = el("div", { style: "background:#fff;color:#111;width:360px;max-width:92vw;padding:20px;" +
      "border-radius:8px" });
    box.appendChild(el("h2", { style: "margin:0 0 6px 0;font-size:18px" }, "카드 등록 (PortOne V2 sandbox)"));
    box.appendChild(el("p", { style: "margin:0 0 14px 0;font-size:13px;color:#555" }, request.issueName || ""));
    var form = el("form", { novalidate: "novalidate" });
    var number = field(form, "card_number", "카드번호", "4242-4242-4242-4242");
    var expiry = field(form, "expiry", "유효기간", "YYYY-MM");
    var birth = field(form, "birth", "생년월일 6자리", "YYMMDD");
    var pwd = field(form, "pwd_2digit", "비밀번호 앞 2자리", "**", "password");
    var message = el("p", { role: "alert", style: "min-height:18px;color:#c00;font-size:13px" });
    form.appendChild(message);
    var ok = el("button", { type: "submit", style: "padding:10px;margin-right:8px" }, "발급하기");
    var cancel = el("button", { type: "button", style: "padding:10px" }, "취소");
    form.appendChild(ok);
    form.appendChild(cancel);
    box.appendChild(form);
    overlay.appendChild(box);
    document.body.appendChild(overlay);
    number.focus();
    cancel.addEventListener("click", function () {
      close();
      resolve(failure("FAILURE_TYPE_PG", "사용자가 결제를 취소하셨습니다"));
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      ok.disabled = true; cancel.disabled = true; message.textContent = "처리 중…";
      var parts = expiryParts(expiry.value);
      var card = { number: String(number.value || "").replace(/[\s-]/g, ""), expiryYear: parts[0],
        expiryMonth: parts[1] };
      if (birth.value) { card.birthOrBusinessRegistrationNumber = birth.value; }
      if (pwd.value) { card.passwordTwoDigits = pwd.value; }
      fetch(BASE + "/__sandbox__/v2/sdk/issue-billing-key", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ params: request, card: card })
      }).then(function (res) { return res.json(); }).then(function (rsp) {
        close(); resolve(rsp);
      }).catch(function (err) {
        close(); resolve(failure("FAILURE_TYPE_PG", "sandbox 서버와 통신하지 못했습니다: " + err));
      });
    });
  }

  function requestIssueBillingKey(request) {
    request = request || {};
    return new Promise(function (resolve) {
      var bad = "FAILURE_TYPE_INVALID_REQUEST";
      if (!request.storeId) { resolve(failure(bad, "storeId가 누락되었습니다.")); return; }
      if (!request.channelKey) { resolve(failure(bad, "channelKey가 누락되었습니다.")); return; }
      if (request.billingKeyMethod !== "CARD") {
        resolve(failure("FAILURE_TYPE_INVALID_REQUEST", "sandbox는 billingKeyMethod CARD만 지원합니다.")); return;
      }
      if (document.body) { openForm(request, resolve); }
      else { document.addEventListener("DOMContentLoaded", function () { openForm(request, resolve); }); }
    });
  }

  window.PortOne = { requestIssueBillingKey: requestIssueBillingKey, __sandbox__: { base: BASE } };
})(window, document);
"""


def render_v2_sdk(base_url: str) -> bytes:
    return _JS.replace("__SANDBOX_BASE__", base_url).encode("utf-8")
