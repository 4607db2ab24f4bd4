"""A tiny urllib client for the sandbox's `/__sandbox__` controls, for tests, benchmarks and scripts."""

import json
import time
import urllib.error
import urllib.request


class SandboxControlError(RuntimeError):
    def __init__(self, status: int, body):
        super().__init__(f"sandbox control failed with HTTP {status}: {body}")
        self.status = status
        self.body = body


class SandboxControl:
    def __init__(self, base_url: str, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 (the sandbox's own http URL)
            f"{self.base_url}/__sandbox__/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                decoded = json.loads(payload)
            except ValueError:
                decoded = payload.decode("utf-8", "replace")
            raise SandboxControlError(exc.code, decoded) from None

    # -- state ------------------------------------------------------------------------------------------

    def health(self) -> dict:
        return self._call("GET", "health")

    def reset(self) -> dict:
        """Clear all state: payments, keys, schedules, tokens, webhooks, faults, latency, rate caps, clock, log.

        Held and gated requests are released; in-flight peaks drop to what is still in flight.
        """
        return self._call("POST", "reset", {})

    # -- clock ------------------------------------------------------------------------------------------

    def now(self) -> int:
        return self._call("GET", "clock")["now"]

    def clock(self) -> dict:
        return self._call("GET", "clock")

    def set_now(self, unix: int) -> dict:
        """Move the clock forward to `unix`; due schedules execute and their webhooks are delivered first."""
        return self._call("POST", "clock", {"now": int(unix)})

    def advance(self, seconds: int) -> dict:
        return self._call("POST", "clock", {"advance": int(seconds)})

    def freeze(self, frozen: bool = True) -> dict:
        """Stop (or restart) the clock following real time."""
        return self._call("POST", "clock", {"freeze": frozen})

    def run_due_schedules(self) -> dict:
        return self._call("POST", "schedules/run", {})

    # -- faults and latency -----------------------------------------------------------------------------

    def add_fault(
        self,
        endpoint: str,
        mode: str,
        times: int = 1,
        delay_ms: int | None = None,
        hold_ms: int | None = None,
        retry_after: int | None = None,
    ):
        """mode: timeout_after_commit | timeout_before_commit | http_500 | http_503 | code_error | delay |
        throttle (429 + Retry-After: `retry_after`, default 1) | gate (waits for `release_held()`, then serves)."""
        body = {"endpoint": endpoint, "mode": mode, "times": times}
        if delay_ms is not None:
            body["delay_ms"] = delay_ms
        if hold_ms is not None:
            body["hold_ms"] = hold_ms
        if retry_after is not None:
            body["retry_after"] = retry_after
        return self._call("POST", "faults", body)

    def release_held(self) -> dict:
        """Let every gated or held (timeout_*) request that has arrived so far go on."""
        return self._call("POST", "faults/release", {})

    def faults(self) -> list:
        return self._call("GET", "faults")

    def clear_faults(self) -> dict:
        return self._call("DELETE", "faults")

    def set_latency(self, ms: int) -> dict:
        return self._call("POST", "latency", {"ms": int(ms)})

    # -- traffic ----------------------------------------------------------------------------------------

    def inflight(self) -> dict:
        """`{"current": {"again": 2}, "peak": {"again": 5}}`: API requests between arrival and answer."""
        return self._call("GET", "inflight")

    def reset_inflight(self) -> dict:
        """Lower the peaks to what is in flight now."""
        return self._call("DELETE", "inflight")

    def wait_for_inflight(self, endpoint: str, count: int, timeout: float = 5.0) -> dict:
        """Poll until exactly `count` `endpoint` requests are in flight (or the deadline); the last snapshot."""
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self.inflight()
            if snapshot["current"].get(endpoint, 0) == count or time.monotonic() > deadline:
                return snapshot
            time.sleep(0.01)

    def set_rate_limit(self, endpoint: str, per_second: int | None) -> dict:
        """At most `per_second` request starts per sliding second, beyond that 429; None or 0 removes the cap."""
        return self._call("POST", "config", {"rate_limits": {endpoint: per_second}})

    def forget_rate_window(self) -> dict:
        """Forget the request starts the caps have counted (caps stay): the PG's second has passed, now."""
        return self._call("DELETE", "rate_window")

    # -- cards, config ----------------------------------------------------------------------------------

    def set_card_behaviour(self, customer_uid: str, behaviour: str) -> dict:
        """behaviour: paid | insufficient_funds | limit_exceeded | lost_card."""
        return self._call("POST", f"cards/{urllib.request.quote(customer_uid, safe='')}", {"behaviour": behaviour})

    def set_default_notice_url(self, url: str | None) -> dict:
        """The console webhook URL, used when a payment has no notice_url."""
        return self._call("POST", "config", {"default_notice_url": url})

    def set_webhook_content_type(self, kind: str) -> dict:
        """'json' (default) or 'form', like the console setting."""
        return self._call("POST", "config", {"webhook_content_type": kind})

    def config(self) -> dict:
        return self._call("GET", "config")

    # -- ledgers ----------------------------------------------------------------------------------------

    def webhooks(self) -> list:
        return self._call("GET", "webhooks")

    # -- PortOne V2 -------------------------------------------------------------------------------------

    def v2_config(self) -> dict:
        """{api_secret, store_id, channel_keys, webhook_url, webhook_secret} of the V2 surface."""
        return self._call("GET", "v2/config")

    def set_v2_config(self, **values) -> dict:
        """`webhook_url` (the store's console URL; None: no webhooks) and/or `webhook_secret` (whsec_...)."""
        return self._call("POST", "v2/config", values)

    def wait_for_webhooks(self, count: int, timeout: float = 5.0) -> list:
        """Poll until at least `count` deliveries are finished (delivered or failed)."""
        deadline = time.monotonic() + timeout
        while True:
            done = [w for w in self.webhooks() if w["state"] != "pending"]
            if len(done) >= count or time.monotonic() > deadline:
                return done
            time.sleep(0.02)

    def payments(self) -> list:
        return self._call("GET", "payments")

    def console_refund(self, imp_uid: str, amount: int | None = None, reason: str | None = None) -> dict:
        """Refund `amount` (None: the whole balance) as if by hand in the PortOne console: no webhook."""
        body = {k: v for k, v in {"amount": amount, "reason": reason}.items() if v is not None}
        return self._call("POST", f"payments/{urllib.request.quote(imp_uid, safe='')}/console_refund", body)

    def direct_payment(self, merchant_uid: str, amount: int, paid_at: int | None = None, **extra) -> dict:
        """A paid payment made outside the app under `merchant_uid` (no webhook); `paid_at` may be in the past."""
        body = {"merchant_uid": merchant_uid, "amount": amount, **extra}
        if paid_at is not None:
            body["paid_at"] = int(paid_at)
        return self._call("POST", "payments/direct", body)

    def bulk_payments(self, *, prefix: str, count: int, amount: int, from_: int, to: int, start: int = 0) -> dict:
        """`count` paid payments `{prefix}{start}`… with paid_at spread over [from_, to], in one transaction."""
        body = {"prefix": prefix, "count": count, "amount": amount, "from": from_, "to": to, "start": start}
        return self._call("POST", "payments/bulk", body)

    def set_payment_amount(self, imp_uid: str, amount: int) -> dict:
        """Change a payment's amount at the PG, as a corrected (or tampered) charge would."""
        return self._call("POST", f"payments/{urllib.request.quote(imp_uid, safe='')}/amount", {"amount": amount})

    def customers(self) -> list:
        return self._call("GET", "customers")

    def schedules(self) -> list:
        return self._call("GET", "schedules")

    def requests_log(self) -> list:
        return self._call("GET", "requests")

    def clear_requests_log(self) -> dict:
        return self._call("DELETE", "requests")
