"""The browser SDK stand-in at `/v1/iamport.js`: `IMP.init`, `IMP.request_pay` and an in-page card form.

Plain ES5-ish JavaScript, no build step, no external assets. The form posts to
`POST /__sandbox__/sdk/request_pay` on the sandbox's origin (CORS is answered by the server).
"""

SDK_PATHS = ("/v1/iamport.js",)

_JS = r"""/* iamport_sandbox: stand-in for https://cdn.iamport.kr/v1/iamport.js (offline, test cards only). */
(function (window, document) {
  "use strict";

  var script = document.currentScript;
  var BASE = "__SANDBOX_BASE__";
  try {
    if (script && script.src) { BASE = new URL(script.src, window.location.href).origin; }
  } catch (e) { /* keep the origin the server rendered */ }

  var state = { code: null };
  var OVERLAY_ID = "imp-sandbox-overlay";

  function init(code) { state.code = code; }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    var key;
    for (key in (attrs || {})) {
      if (Object.prototype.hasOwnProperty.call(attrs, key)) { node.setAttribute(key, attrs[key]); }
    }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function formatCardNumber(value) {
    var digits = String(value || "").replace(/[\s-]/g, "");
    if (/^\d{16}$/.test(digits)) { return digits.replace(/(\d{4})(?=\d)/g, "$1-"); }
    return String(value || "").trim();
  }

  function formatExpiry(value) {
    var text = String(value || "").trim();
    var m = /^(\d{4})[-\/.]?(\d{2})$/.exec(text);
    if (m) { return m[1] + "-" + m[2]; }
    m = /^(\d{2})\s*\/?\s*(\d{2})$/.exec(text);          /* MM/YY or MMYY */
    if (m) { return "20" + m[2] + "-" + m[1]; }
    return text;
  }

  function failure(params, code, msg) {
    return {
      success: false, imp_success: false, error_code: code, error_msg: msg,
      imp_uid: null, merchant_uid: params.merchant_uid || null, pay_method: "card",
      paid_amount: 0, status: null
    };
  }

  function finish(params, rsp, callback) {
    if (params.m_redirect_url) {
      var url = new URL(params.m_redirect_url, window.location.href);
      url.searchParams.set("imp_uid", rsp.imp_uid || "");
      url.searchParams.set("merchant_uid", rsp.merchant_uid || params.merchant_uid || "");
      url.searchParams.set("imp_success", rsp.success ? "true" : "false");
      if (!rsp.success) {
        url.searchParams.set("error_code", rsp.error_code || "");
        url.searchParams.set("error_msg", rsp.error_msg || "");
      }
      window.location.href = url.toString();
      return;
    }
    if (typeof callback === "function") { callback(rsp); }
  }

  function closeOverlay() {
    var old = document.getElementById(OVERLAY_ID);
    if (old && old.parentNode) { old.parentNode.removeChild(old); }
  }

  function field(form, name, caption, placeholder, type) {
    var id = "imp-sandbox-" + name;
    var row = el("div", { style: "margin:0 0 10px 0" });
    var label = el("label", { "for": id, style: "display:block;font-size:13px;margin-bottom:4px" },
      caption + " (" + name + ")");
    var input = el("input", {
      id: id, name: name, type: type || "text", placeholder: placeholder, autocomplete: "off",
      style: "width:100%;box-sizing:border-box;padding:8px;font-size:15px;" +
        "border:1px solid #bbb;border-radius:4px"
    });
    row.appendChild(label);
    row.appendChild(input);
    form.appendChild(row);
    return input;
  }

  function openForm(params, callback) {
    closeOverlay();
    var overlay = el("div", {
      id: OVERLAY_ID, role: "dialog", "aria-modal": "true", "aria-label": "iamport sandbox 결제창",
      style: "position:fixed;inset:0;background:rgba(0,0,0,.45);z-index:2147483647;display:flex;" +
        "align-items:center;justify-content:center;font-family:sans-serif"
    });
    var box = el("div", {
      style: "background:#fff;color:#111;width:360px;max-width:92vw;padding:20px;border-radius:8px;" +
        "box-shadow:0 10px 30px rgba(0,0,0,.3)"
    });
    box.appendChild(el("h2", { style: "margin:0 0 6px 0;font-size:18px" },
      params.customer_uid ? "카드 등록 (iamport sandbox)" : "카드 결제 (iamport sandbox)"));
    box.appendChild(el("p", { style: "margin:0 0 14px 0;font-size:13px;color:#555" },
      (params.name || "") + " · " + Number(params.amount || 0).toLocaleString("ko-KR") + "원"));
    var form = el("form", { novalidate: "novalidate" });
    var number = field(form, "card_number", "카드번호", "4242-4242-4242-4242");
    var expiry = field(form, "expiry", "유효기간", "YYYY-MM");
    var birth = field(form, "birth", "생년월일 6자리", "YYMMDD");
    var pwd = field(form, "pwd_2digit", "비밀번호 앞 2자리", "**", "password");
    var message = el("p", {
      role: "alert", style: "min-height:18px;margin:4px 0 10px 0;color:#c00;font-size:13px"
    });
    form.appendChild(message);
    var buttons = el("div", { style: "display:flex;gap:8px" });
    var pay = el("button", {
      type: "submit",
      style: "flex:1;padding:10px;background:#1f6feb;color:#fff;border:0;border-radius:4px;font-size:15px"
    }, "결제하기");
    var cancel = el("button", {
      type: "button",
      style: "flex:1;padding:10px;background:#eee;color:#111;border:0;border-radius:4px;font-size:15px"
    }, "취소");
    buttons.appendChild(pay);
    buttons.appendChild(cancel);
    form.appendChild(buttons);
    box.appendChild(form);
    overlay.appendChild(box);
    document.body.appendChild(overlay);
    number.focus();

    cancel.addEventListener("click", function () {
      closeOverlay();
      finish(params, failure(params, "F1002", "사용자가 결제를 취소하셨습니다"), callback);
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      pay.disabled = true;
      cancel.disabled = true;
      message.textContent = "처리 중…";
      number.value = formatCardNumber(number.value);
      expiry.value = formatExpiry(expiry.value);
      var payload = {
        imp_code: state.code,
        params: params,
        card: { card_number: number.value, expiry: expiry.value, birth: birth.value, pwd_2digit: pwd.value }
      };
      fetch(BASE + "/__sandbox__/sdk/request_pay", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(payload)
      }).then(function (res) { return res.json(); }).then(function (rsp) {
        closeOverlay();
        finish(params, rsp, callback);
      }).catch(function (err) {
        closeOverlay();
        finish(params, failure(params, "F0000", "샌드박스 서버와 통신하지 못했습니다: " + err), callback);
      });
    });
  }

  function request_pay(params, callback) {
    params = params || {};
    if (!state.code) {
      var msg = "IMP.init()으로 가맹점 식별코드를 먼저 설정해주세요.";
      finish(params, failure(params, "F400", msg), callback);
      return;
    }
    if (!params.merchant_uid) {
      finish(params, failure(params, "F400", "merchant_uid 파라미터가 누락되었습니다."), callback);
      return;
    }
    if (document.body) { openForm(params, callback); }
    else { document.addEventListener("DOMContentLoaded", function () { openForm(params, callback); }); }
  }

  window.IMP = {
    init: init,
    agency: function (code) { init(code); },
    request_pay: request_pay,
    __sandbox__: { base: BASE, formatCardNumber: formatCardNumber, formatExpiry: formatExpiry }
  };
})(window, document);
"""


def render_sdk(base_url: str) -> bytes:
    return _JS.replace("__SANDBOX_BASE__", base_url).encode("utf-8")
