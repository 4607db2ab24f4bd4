// Card registration with Iamport's browser SDK (no build step). The server issues the customer_uid and
// confirms the card with Iamport itself; the browser's callback is only a hint to go and check.
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
  var button = document.getElementById("register-card");
  button.addEventListener("click", function () {
    status.textContent = cfg.text.processing;
    post(cfg.prepareUrl).then(function (prepared) {
      if (!prepared.ok) {  // e.g. 429: too many registrations in a minute
        status.textContent = cfg.text.failed + " " + ((prepared.data.error || {}).message || "");
        return;
      }
      var p = prepared.data;
      IMP.init(p.merchant_code);
      IMP.request_pay(p.params, function (rsp) {
        if (rsp.success === false || rsp.error_code) {
          status.textContent = cfg.text.failed + " " + (rsp.error_msg || "");
          return;
        }
        post(cfg.confirmUrl, {customer_uid: p.params.customer_uid}).then(function (res) {
          if (res.ok) {
            status.textContent = cfg.text.done + " " + res.data.card_name + " " + res.data.card_number;
            window.location.href = cfg.doneUrl;
          } else {
            status.textContent = cfg.text.failed + " " + res.data.error.message;
          }
        });
      });
    });
  });
  button.disabled = false;
})();
