// Card registration with the gateway's browser SDK (no build step): Iamport V1's IMP.request_pay, or PortOne
// V2's PortOne.requestIssueBillingKey when the server's prepare answer says `gateway: "portone_v2"`. The server
// issues the registration id and confirms the card with the gateway itself; the browser's answer is only a hint
// to go and check.
(function () {
  var cfg = window.KBILLING;
  var status = document.getElementById("card-status");
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRFToken": cfg.csrf},
      credentials: "same-origin",
      body: JSON.stringify(body || {})
    }).then(function (r) { return r.json().then(function (data) { return {ok: r.ok, data: data}; }); });
  }
  function confirmCard(body) {
    post(cfg.confirmUrl, body).then(function (res) {
      if (res.ok) {
        status.textContent = cfg.text.done + " " + res.data.card_name + " " + res.data.card_number;
        window.location.href = cfg.doneUrl;
      } else {
        status.textContent = cfg.text.failed + " " + res.data.error.message;
      }
    });
  }
  var button = document.getElementById("register-card");
  button.addEventListener("click", function () {
    status.textContent = cfg.text.processing;
    post(cfg.prepareUrl).then(function (prepared) {
      if (!prepared.ok) {  // e.g. 429: too many registrations in a minute
        status.textContent = cfg.text.failed + " " + ((prepared.data.error || {}).message || "");
        return;
      }
      var p = prepared.data;
      if (p.gateway === "portone_v2") {
        // V2: PortOne names the key; it resolves (never rejects) with {billingKey} or {code, message}.
        PortOne.requestIssueBillingKey(p.request).then(function (rsp) {
          if (!rsp || rsp.code !== undefined || !rsp.billingKey) {
            status.textContent = cfg.text.failed + " " + ((rsp && rsp.message) || "");
            return;
          }
          confirmCard({customer_uid: p.registration, billing_key: rsp.billingKey});
        });
        return;
      }
      IMP.init(p.merchant_code);
      IMP.request_pay(p.params, function (rsp) {
        if (rsp.success === false || rsp.error_code) {
          status.textContent = cfg.text.failed + " " + (rsp.error_msg || "");
          return;
        }
        confirmCard({customer_uid: p.params.customer_uid});
      });
    });
  });
  button.disabled = false;
})();
