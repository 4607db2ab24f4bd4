"""The V2 REST surface under `/v2` (so a client's `base_url` is `http://<sandbox>/v2`), its controls under
`/__sandbox__/v2/` and the V2 browser SDK stand-in at `/v2/browser-sdk.js`.

Requests go through the same machinery as V1's: counted in flight, latency, the request log, the per-endpoint
rate caps and the fault queue. V2 routes reuse V1's endpoint names (`again` is `POST /payments/{id}/billing-key`,
`customers` the billing keys, …) so one fault or cap applies to "charges" whichever API the app speaks.
Errors are V2's `{"type", "message"}` bodies with the statuses of PortOne's V2 OpenAPI schema.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from iamport_sandbox.admin import CORS, Reply
from iamport_sandbox.api import Route, split_path
from iamport_sandbox.faults import DEFAULT_RETRY_AFTER_S
from iamport_sandbox.forms import q_one
from iamport_sandbox.v2 import signing
from iamport_sandbox.v2.ledger import (
    DEFAULT_API_SECRET,
    DEFAULT_CHANNEL_KEY,
    DEFAULT_STORE_ID,
    V2Answer,
    V2Error,
    V2Ledger,
)
from iamport_sandbox.v2.sdk import render_v2_sdk

if TYPE_CHECKING:
    from iamport_sandbox.server import SandboxServer

PREFIX = "/v2"
SDK_PATH = "/v2/browser-sdk.js"
CONTROL_PREFIX = "/__sandbox__/v2/"


@dataclass
class V2Call:
    args: dict
    body: dict
    now: int


def _error(status: int, type_: str, message: str) -> dict:
    return {"type": type_, "message": message}


class V2Surface:
    def __init__(
        self,
        server: "SandboxServer",
        *,
        api_secret: str = DEFAULT_API_SECRET,
        store_id: str = DEFAULT_STORE_ID,
        channel_keys: tuple[str, ...] = (DEFAULT_CHANNEL_KEY,),
        webhook_url: str | None = None,
        webhook_secret: str = signing.DEFAULT_WEBHOOK_SECRET,
    ):
        self.server = server
        self.ledger = V2Ledger(server.ledger, api_secret=api_secret, store_id=store_id, channel_keys=channel_keys)
        self._initial = (webhook_url, webhook_secret)
        self.reset()
        r = Route
        self.routes: list[Route] = [
            r("POST", ("billing-keys",), self._issue_key, "customers"),
            r("GET", ("billing-keys", "{billingKey}"), self._get_key, "customers"),
            r("DELETE", ("billing-keys", "{billingKey}"), self._delete_key, "customers"),
            r("POST", ("payments", "{paymentId}", "billing-key"), self._pay, "again"),
            r("POST", ("payments", "{paymentId}", "cancel"), self._cancel, "cancel"),
            r("POST", ("payments", "{paymentId}", "schedule"), self._schedule, "schedule"),
            r("GET", ("payments", "{paymentId}"), self._get_payment, "payments"),
            r("GET", ("payment-schedules",), self._list_schedules, "schedules"),
            r("DELETE", ("payment-schedules",), self._revoke_schedules, "unschedule"),
            r("GET", ("payment-schedules", "{scheduleId}"), self._get_schedule, "schedules"),
        ]

    def reset(self) -> None:
        self.ledger.webhook_url, self.ledger.webhook_secret = self._initial

    # -- routing -------------------------------------------------------------------------------------------

    @staticmethod
    def owns(path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/") or path.startswith(CONTROL_PREFIX)

    def resolve(self, method: str, path: str) -> tuple[Route | None, dict, bool]:
        segments = split_path(path[len(PREFIX) :])
        path_known = False
        for route in self.routes:
            args = route.match(segments)
            if args is None:
                continue
            path_known = True
            if route.method == method:
                return route, args, True
        return None, {}, path_known

    def handle(self, handler, method: str, path: str, query: dict, raw: bytes) -> tuple[int | None, str | None]:
        server = self.server
        if path.startswith(CONTROL_PREFIX):
            reply = self._control(method, path[len(CONTROL_PREFIX) :], raw)
            server._send(handler, reply)
            return reply.status, "sandbox"
        if path == SDK_PATH:
            body = render_v2_sdk(f"http://{handler.headers.get('Host') or server.url[7:]}")
            server._send(
                handler, Reply(200, body, "application/javascript; charset=utf-8", {"Cache-Control": "no-store"})
            )
            return 200, "sdk.js"
        arrived_epoch = server.faults.hold_epoch
        resolved = self.resolve(method, path)
        endpoint = resolved[0].endpoint if resolved[0] else None
        if endpoint is None:
            return self._serve(handler, method, path, query, raw, resolved, arrived_epoch)
        server.inflight.enter(endpoint)
        try:
            return self._serve(handler, method, path, query, raw, resolved, arrived_epoch)
        finally:
            server.inflight.leave(endpoint)

    def _serve(self, handler, method, path, query, raw, resolved, arrived_epoch) -> tuple[int | None, str | None]:
        server = self.server
        route, args, path_known = resolved
        if server.faults.latency_ms:
            server.faults.sleep(server.faults.latency_ms)
        endpoint = route.endpoint if route else None
        entry = {
            "method": method,
            "path": path,
            "endpoint": endpoint,
            "status": None,
            "merchant_uid": args.get("paymentId"),
            "merchant_uids": [args["paymentId"]] if args.get("paymentId") else [],
            "customer_uid": args.get("billingKey"),
            "fault": None,
            "at": server.clock.now(),
            "api": "v2",
        }

        def answer(status: int, body: dict, headers: dict | None = None) -> tuple[int, str | None]:
            entry["status"] = status
            server._log_request(entry)
            server._send(handler, Reply.json(status, body, headers))
            return status, endpoint

        auth = (handler.headers.get("Authorization") or "").strip()
        scheme, _, secret = auth.partition(" ")
        if scheme != "PortOne" or secret.strip() != self.ledger.api_secret:
            return answer(401, _error(401, "UNAUTHORIZED", "인증 정보가 올바르지 않습니다."))
        if route is None:
            if path_known:
                return answer(405, _error(405, "INVALID_REQUEST", "Method Not Allowed"))
            return answer(404, _error(404, "NOT_FOUND", f"{method} {path} not found"))
        try:
            body = self._body(method, raw, query)
        except V2Error as exc:
            return answer(exc.status, exc.body())
        store_id = body.get("storeId") if "storeId" in body else q_one(query, "storeId")
        if store_id is not None and store_id != self.ledger.store_id:
            return answer(403, _error(403, "FORBIDDEN", "요청된 상점에 접근할 수 없습니다."))
        if entry["customer_uid"] is None and isinstance(body.get("billingKey"), str):
            entry["customer_uid"] = body["billingKey"]

        refusal = server.rate_limits.admit(endpoint)
        if refusal is not None:
            retry_after, cap = refusal
            entry["fault"] = "rate_limit"
            return answer(
                429,
                _error(429, "TOO_MANY_REQUESTS", f"more than {cap} {endpoint} requests in one second"),
                {"Retry-After": str(retry_after)},
            )

        fault = server.faults.take(endpoint)
        if fault is not None:
            entry["fault"] = fault.mode
            if fault.mode == "delay":
                server.faults.sleep(fault.delay_ms or 0)
            elif fault.mode == "gate":
                server.faults.hold(fault, arrived_epoch)
            elif fault.mode == "throttle":
                retry_after = DEFAULT_RETRY_AFTER_S if fault.retry_after is None else fault.retry_after
                # PortOne documents no 429 body; the sandbox answers the V2 error shape and Retry-After.
                return answer(
                    429,
                    _error(429, "TOO_MANY_REQUESTS", "Too Many Requests (sandbox throttle): injected fault"),
                    {"Retry-After": str(retry_after)},
                )
            elif fault.mode in ("http_500", "http_503"):
                status = 500 if fault.mode == "http_500" else 503
                return answer(status, _error(status, "INTERNAL_SERVER_ERROR", "[sandbox fault] server error"))
            elif fault.mode == "code_error":
                # V1's "HTTP 200, code -1" has no V2 twin; the nearest refusal-before-processing is a 400.
                return answer(400, _error(400, "INVALID_REQUEST", "[sandbox fault] 일시적인 오류가 발생했습니다."))
            elif fault.mode == "timeout_before_commit":
                return server._hold(handler, entry, fault, arrived_epoch)

        call = V2Call(args=args, body=body, now=server.clock.now())
        try:
            result = route.handler(call)
        except V2Error as exc:
            result = V2Answer(exc.body(), status=exc.status, notices=exc.notices)
        if result.notices:
            server.outbox.submit(result.notices)
        if fault is not None and fault.mode == "timeout_after_commit":
            return server._hold(handler, entry, fault, arrived_epoch)
        return answer(result.status, result.body)

    @staticmethod
    def _body(method: str, raw: bytes, query: dict) -> dict:
        # GET and DELETE calls with a body send it as one `requestBody=<JSON>` query parameter (V2 SDK).
        text = q_one(query, "requestBody") if method in ("GET", "DELETE") else None
        if text is None:
            text = raw.decode("utf-8", errors="replace") if raw.strip() else ""
        if not text:
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            raise V2Error(400, "INVALID_REQUEST", "요청 본문의 JSON 형식이 올바르지 않습니다.") from None
        if not isinstance(data, dict):
            raise V2Error(400, "INVALID_REQUEST", "요청 본문은 JSON 객체여야 합니다.")
        return data

    # -- handlers ------------------------------------------------------------------------------------------

    def _issue_key(self, call: V2Call) -> V2Answer:
        return V2Answer(self.ledger.issue_billing_key(call.body, call.now))

    def _get_key(self, call: V2Call) -> V2Answer:
        return V2Answer(self.ledger.get_billing_key(call.args["billingKey"]))

    def _delete_key(self, call: V2Call) -> V2Answer:
        return V2Answer(self.ledger.delete_billing_key(call.args["billingKey"], call.now))

    def _pay(self, call: V2Call) -> V2Answer:
        return self.ledger.pay_with_billing_key(call.args["paymentId"], call.body, call.now)

    def _get_payment(self, call: V2Call) -> V2Answer:
        return V2Answer(self.ledger.get_payment(call.args["paymentId"]))

    def _cancel(self, call: V2Call) -> V2Answer:
        return self.ledger.cancel_payment(call.args["paymentId"], call.body, call.now)

    def _schedule(self, call: V2Call) -> V2Answer:
        return self.ledger.create_schedule(call.args["paymentId"], call.body, call.now)

    def _get_schedule(self, call: V2Call) -> V2Answer:
        return V2Answer(self.ledger.get_schedule(call.args["scheduleId"]))

    def _list_schedules(self, call: V2Call) -> V2Answer:
        return V2Answer(self.ledger.list_schedules(call.body, call.now))

    def _revoke_schedules(self, call: V2Call) -> V2Answer:
        return V2Answer(self.ledger.revoke_schedules(call.body, call.now))

    # -- controls ------------------------------------------------------------------------------------------

    def config(self) -> dict:
        return {
            "api_secret": self.ledger.api_secret,
            "store_id": self.ledger.store_id,
            "channel_keys": list(self.ledger.channel_keys),
            "webhook_url": self.ledger.webhook_url,
            "webhook_secret": self.ledger.webhook_secret,
        }

    def _control(self, method: str, path: str, raw: bytes) -> Reply:
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return Reply.json(400, {"error": "body must be JSON"})
        if not isinstance(body, dict):
            return Reply.json(400, {"error": "body must be a JSON object"})
        routes: dict[tuple[str, str], Callable[[dict], Reply]] = {
            ("GET", "config"): lambda b: Reply.json(200, self.config()),
            ("POST", "config"): self._set_config,
            ("POST", "sdk/issue-billing-key"): self._sdk_issue,
            ("OPTIONS", "sdk/issue-billing-key"): lambda b: Reply(204, b"", "text/plain", dict(CORS)),
        }
        handler = routes.get((method, path.strip("/")))
        if handler is None:
            return Reply.json(404, {"error": f"no control {method} /__sandbox__/v2/{path}"})
        return handler(body)

    def _set_config(self, body: dict) -> Reply:
        if "webhook_url" in body:
            url = body["webhook_url"]
            if url is not None and not isinstance(url, str):
                return Reply.json(400, {"error": "webhook_url must be a string or null"})
            self.ledger.webhook_url = url or None
        if "webhook_secret" in body:
            secret = body["webhook_secret"]
            if not isinstance(secret, str) or not secret.startswith("whsec_"):
                return Reply.json(400, {"error": "webhook_secret must be a whsec_<base64> string"})
            self.ledger.webhook_secret = secret
        return Reply.json(200, self.config())

    def _sdk_issue(self, body: dict) -> Reply:
        """What the stand-in SDK posts when its card form is submitted: issue the key as the API would."""
        server = self.server
        params = body.get("params") if isinstance(body.get("params"), dict) else {}
        card = body.get("card") if isinstance(body.get("card"), dict) else {}
        browser_customer = params.get("customer") if isinstance(params.get("customer"), dict) else {}
        request = {
            "channelKey": params.get("channelKey"),
            # The browser SDK's customer (customerId, fullName, …) in the REST API's shape.
            "customer": {
                "id": browser_customer.get("customerId"),
                "name": {"full": browser_customer.get("fullName")} if browser_customer.get("fullName") else None,
                "email": browser_customer.get("email"),
                "phoneNumber": browser_customer.get("phoneNumber"),
            },
            "method": {"card": {"credential": card}},
        }
        status = 200
        if params.get("storeId") != self.ledger.store_id:
            result = {
                "transactionType": "ISSUE_BILLING_KEY",
                "code": "FAILURE_TYPE_INVALID_REQUEST",
                "message": "storeId가 올바르지 않습니다.",
            }
        else:
            try:
                issued = self.ledger.issue_billing_key(request, server.clock.now(), source="v2_sdk")
                result = {
                    "transactionType": "ISSUE_BILLING_KEY",
                    "billingKey": issued["billingKeyInfo"]["billingKey"],
                }
            except V2Error as exc:
                result = {
                    "transactionType": "ISSUE_BILLING_KEY",
                    "code": "FAILURE_TYPE_PG" if exc.type == "PG_PROVIDER" else "FAILURE_TYPE_INVALID_REQUEST",
                    "message": exc.extra.get("pgMessage") or exc.message,
                    "pgCode": exc.extra.get("pgCode"),
                    "pgMessage": exc.extra.get("pgMessage"),
                }
        server._log_request(
            {
                "method": "POST",
                "path": "/__sandbox__/v2/sdk/issue-billing-key",
                "endpoint": "sdk",
                "status": status,
                "merchant_uid": None,
                "merchant_uids": [],
                "customer_uid": result.get("billingKey"),
                "fault": None,
                "at": server.clock.now(),
                "api": "v2",
            }
        )
        return Reply.json(status, result, dict(CORS))
