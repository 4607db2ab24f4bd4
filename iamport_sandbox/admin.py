"""The `/__sandbox__` controls: reset, clock, faults (and releasing held requests), latency, rate caps,
in-flight counts, card behaviour, ledgers and the SDK endpoint.

Controls answer plain JSON (no Iamport envelope), need no token and get no latency or faults. Errors are
`{"error": "..."}` with a 4xx status.
"""

import html
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from iamport_sandbox.api import split_path
from iamport_sandbox.clock import ClockError
from iamport_sandbox.errors import ApiError
from iamport_sandbox.faults import FaultError
from iamport_sandbox.forms import parse_body
from iamport_sandbox.traffic import RateLimitError

if TYPE_CHECKING:
    from iamport_sandbox.server import SandboxServer

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value, headers: dict | None = None) -> "Reply":
        return cls(status, json.dumps(value, ensure_ascii=False).encode("utf-8"), headers=headers or {})


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _int_field(body: dict, name: str, *, required: bool = True) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ControlError(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ControlError(f"{name} must be an integer")
    return int(value)


class AdminApi:
    def __init__(self, server: "SandboxServer"):
        self.server = server
        self.routes = {
            ("GET", "health"): self.health,
            ("POST", "reset"): self.reset,
            ("GET", "clock"): self.get_clock,
            ("POST", "clock"): self.post_clock,
            ("GET", "faults"): self.get_faults,
            ("POST", "faults"): self.add_fault,
            ("DELETE", "faults"): self.clear_faults,
            ("POST", "faults/release"): self.release_faults,
            ("GET", "inflight"): lambda body: self.server.inflight.snapshot(),
            ("DELETE", "inflight"): self.reset_inflight,
            ("GET", "latency"): self.get_latency,
            ("POST", "latency"): self.set_latency,
            ("GET", "config"): self.get_config,
            ("POST", "config"): self.set_config,
            ("DELETE", "rate_window"): self.forget_rate_window,
            ("GET", "webhooks"): self.get_webhooks,
            ("DELETE", "webhooks"): self.clear_webhooks,
            ("GET", "payments"): lambda body: self.server.ledger.dump_payments(),
            ("POST", "payments/direct"): lambda body: self.server.ledger.direct_payment(body, self.server.clock.now()),
            ("POST", "payments/bulk"): lambda body: self.server.ledger.bulk_payments(body, self.server.clock.now()),
            ("GET", "customers"): lambda body: self.server.ledger.dump_keys(),
            ("GET", "schedules"): lambda body: self.server.ledger.dump_schedules(),
            ("POST", "schedules/run"): self.run_schedules,
            ("GET", "requests"): lambda body: self.server.request_log(),
            ("DELETE", "requests"): self.clear_requests,
        }

    def handle(self, method: str, path: str, query: dict, raw: bytes, headers) -> Reply:
        segments = split_path(path)[1:]
        name = "/".join(segments)
        try:
            if segments[:2] == ["sdk", "request_pay"]:
                return self.sdk_request_pay(method, raw, headers)
            if method == "GET" and len(segments) == 2 and segments[0] == "receipts":
                return self.receipt(segments[1], query)
            if method == "POST" and len(segments) == 2 and segments[0] == "cards":
                return Reply.json(200, self.set_card(segments[1], self._body(raw, headers)))
            if method == "POST" and len(segments) == 3 and segments[0] == "payments":
                return Reply.json(200, self.change_payment(segments[1], segments[2], self._body(raw, headers)))
            handler = self.routes.get((method, name))
            if handler is None:
                known = any(route_name == name for _, route_name in self.routes)
                raise ControlError(f"{method} /__sandbox__/{name} is not a sandbox control", 405 if known else 404)
            return Reply.json(200, handler(self._body(raw, headers)))
        except ControlError as exc:
            return Reply.json(exc.status, {"error": str(exc)})
        except (ClockError, FaultError, RateLimitError) as exc:
            return Reply.json(400, {"error": str(exc)})
        except ApiError as exc:
            return Reply.json(exc.http_status if exc.http_status >= 400 else 400, {"error": exc.message})

    @staticmethod
    def _body(raw: bytes, headers) -> dict:
        # `curl -d '{...}'` sends JSON labelled as a form; controls take JSON whatever the label says.
        content_type = "application/json" if raw.lstrip().startswith(b"{") else headers.get("Content-Type", "")
        try:
            return parse_body(raw, content_type)
        except ApiError as exc:
            raise ControlError(exc.message) from exc

    # -- controls ------------------------------------------------------------------------------------------

    def change_payment(self, imp_uid: str, change: str, body: dict) -> dict:
        """`payments/{imp_uid}/console_refund` and `payments/{imp_uid}/amount`: Iamport changing behind our back."""
        now = self.server.clock.now()
        if change == "console_refund":
            return self.server.ledger.console_refund(imp_uid, body, now)
        if change == "amount":
            return self.server.ledger.set_payment_amount(imp_uid, body, now)
        raise ControlError(f"POST /__sandbox__/payments/{imp_uid}/{change} is not a sandbox control", 404)

    def health(self, body: dict) -> dict:
        return {"ok": True, "merchant_code": self.server.merchant_code, "url": self.server.url}

    def reset(self, body: dict) -> dict:
        self.server.reset()
        return {"ok": True, "now": self.server.clock.now()}

    def get_clock(self, body: dict) -> dict:
        return self.server.clock.snapshot()

    def post_clock(self, body: dict) -> dict:
        """`{"now": t}` or `{"advance": s}` (forward only) and/or `{"freeze": bool}`; run what fell due."""
        clock = self.server.clock
        target = _int_field(body, "now", required=False)
        advance = _int_field(body, "advance", required=False)
        freeze = body.get("freeze")
        if target is not None and advance is not None:
            raise ControlError("give either now or advance, not both")
        if target is None and advance is None and freeze is None:
            raise ControlError("give now, advance or freeze")
        if target is not None and target < clock.now():
            raise ControlError(f"the sandbox clock only moves forward (now={clock.now()}, asked {target})")
        if advance is not None and advance < 0:
            raise ControlError("advance must be zero or positive")

        def move() -> None:
            if freeze is not None:
                clock.freeze(bool(freeze))
            if target is not None:
                clock.set_now(target)
            elif advance is not None:
                clock.advance(advance)

        executed, deliveries = self.server.run_due_schedules(synchronous=True, move_clock=move)
        return {
            **clock.snapshot(),
            "executed": [
                {"merchant_uid": p["merchant_uid"], "imp_uid": p["imp_uid"], "status": p["status"]} for p in executed
            ],
            "webhooks": deliveries,
        }

    def run_schedules(self, body: dict) -> dict:
        executed, deliveries = self.server.run_due_schedules(synchronous=True)
        return {"executed": [p["merchant_uid"] for p in executed], "webhooks": deliveries}

    def get_faults(self, body: dict) -> list:
        return self.server.faults.list()

    def add_fault(self, body: dict) -> dict:
        fault = self.server.faults.add(
            endpoint=body.get("endpoint"),
            mode=body.get("mode"),
            times=body.get("times", 1),
            delay_ms=body.get("delay_ms"),
            hold_ms=body.get("hold_ms"),
            retry_after=body.get("retry_after"),
        )
        return {"ok": True, "fault": fault.as_dict(), "faults": self.server.faults.list()}

    def clear_faults(self, body: dict) -> dict:
        self.server.faults.clear()
        return {"ok": True}

    def release_faults(self, body: dict) -> dict:
        """End every `gate` and `timeout_*` hold of requests that arrived before this call."""
        self.server.faults.release_held()
        return {"ok": True}

    def reset_inflight(self, body: dict) -> dict:
        self.server.inflight.reset_peaks()
        return self.server.inflight.snapshot()

    def get_latency(self, body: dict) -> dict:
        return {"ms": self.server.faults.latency_ms}

    def set_latency(self, body: dict) -> dict:
        self.server.faults.set_latency(_int_field(body, "ms"))
        return {"ms": self.server.faults.latency_ms}

    def get_config(self, body: dict) -> dict:
        outbox = self.server.outbox
        return {
            "default_notice_url": outbox.default_notice_url,
            "webhook_content_type": "form" if outbox.content_type.endswith("urlencoded") else "json",
            "merchant_code": self.server.merchant_code,
            "rate_limits": self.server.rate_limits.caps(),
        }

    def set_config(self, body: dict) -> dict:
        outbox = self.server.outbox
        # Checked before anything changes, so bad rate_limits leave every setting as it was.
        if "rate_limits" in body:
            self.server.rate_limits.validate(body["rate_limits"])
        if "default_notice_url" in body:
            url = body["default_notice_url"]
            if url is not None and not isinstance(url, str):
                raise ControlError("default_notice_url must be a string or null")
            outbox.default_notice_url = url or None
        if "webhook_content_type" in body:
            kind = body["webhook_content_type"]
            if kind not in ("json", "form"):
                raise ControlError("webhook_content_type must be 'json' or 'form'")
            outbox.content_type = "application/json" if kind == "json" else "application/x-www-form-urlencoded"
        if "rate_limits" in body:
            self.server.rate_limits.update(body["rate_limits"])
        return self.get_config(body)

    def forget_rate_window(self, body: dict) -> dict:
        self.server.rate_limits.forget_starts()
        return {"rate_limits": self.server.rate_limits.caps()}

    def get_webhooks(self, body: dict) -> list:
        return self.server.outbox.records()

    def clear_webhooks(self, body: dict) -> dict:
        self.server.outbox.clear()
        return {"ok": True}

    def clear_requests(self, body: dict) -> dict:
        self.server.clear_request_log()
        return {"ok": True}

    def set_card(self, customer_uid: str, body: dict) -> dict:
        behaviour = body.get("behaviour")
        if not isinstance(behaviour, str):
            raise ControlError("behaviour is required")
        return self.server.ledger.set_behaviour(customer_uid, behaviour)

    # -- browser SDK and receipts --------------------------------------------------------------------------

    def sdk_request_pay(self, method: str, raw: bytes, headers) -> Reply:
        if method == "OPTIONS":
            return Reply(204, b"", "text/plain", dict(CORS))
        if method != "POST":
            return Reply.json(405, {"error": "use POST"}, dict(CORS))
        try:
            payload = parse_body(raw, headers.get("Content-Type", ""))
        except ApiError as exc:
            return Reply.json(400, {"error": exc.message}, dict(CORS))
        server = self.server
        answer, notices = server.ledger.sdk_request_pay(payload, server.clock.now())
        if notices:
            server.outbox.submit(notices)
        params = payload.get("params") if isinstance(payload.get("params"), dict) else {}
        server._log_request(
            {
                "method": method,
                "path": "/__sandbox__/sdk/request_pay",
                "endpoint": "sdk",
                "status": 200,
                "merchant_uid": params.get("merchant_uid"),
                "merchant_uids": [params["merchant_uid"]] if params.get("merchant_uid") else [],
                "customer_uid": params.get("customer_uid"),
                "fault": None,
                "at": server.clock.now(),
            }
        )
        return Reply.json(200, answer, dict(CORS))

    def receipt(self, imp_uid: str, query: dict) -> Reply:
        try:
            payment = self.server.ledger.get_payment(imp_uid, include_sandbox=True)
        except ApiError:
            return Reply(404, "<h1>영수증을 찾을 수 없습니다</h1>".encode(), "text/html; charset=utf-8")
        rows = "".join(
            f"<tr><th>{html.escape(key)}</th><td>{html.escape(str(payment.get(key)))}</td></tr>"
            for key in (
                "imp_uid",
                "merchant_uid",
                "name",
                "amount",
                "cancel_amount",
                "status",
                "card_name",
                "card_number",
                "apply_num",
                "paid_at",
            )
        )
        page = (
            "<!doctype html><meta charset=utf-8><title>sandbox 매출전표</title>"
            f"<h1>sandbox 매출전표</h1><table>{rows}</table>"
        )
        return Reply(200, page.encode("utf-8"), "text/html; charset=utf-8")
