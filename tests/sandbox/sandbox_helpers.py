"""Shared helpers for the sandbox tests: an Iamport client over real HTTP and a local webhook receiver."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import requests

from iamport_sandbox.server import DEFAULT_IMP_KEY, DEFAULT_IMP_SECRET

GOOD_CARD = "4242-4242-4242-4242"
REFUSED_CARD = "4000-0000-0000-0002"
INSUFFICIENT_CARD = "4000-0000-0000-9995"
LIMIT_CARD = "4000-0000-0000-9235"
LOST_CARD = "4000-0000-0000-0341"
EXPIRED_CARD = "4000-0000-0000-0069"
FAR_EXPIRY = "2099-12"


class Iamport:
    """A deliberately thin client: it only adds the token, so tests see raw status codes and envelopes."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()
        self._token: str | None = None

    def token(self, refresh: bool = False) -> str:
        if self._token is None or refresh:
            response = self.session.post(
                f"{self.base_url}/users/getToken",
                json={"imp_key": DEFAULT_IMP_KEY, "imp_secret": DEFAULT_IMP_SECRET},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            self._token = response.json()["response"]["access_token"]
        return self._token

    def request(self, method: str, path: str, *, auth: bool = True, timeout: float = 10, **kwargs):
        headers = kwargs.pop("headers", {})
        if auth:
            headers.setdefault("Authorization", f"Bearer {self.token()}")
        return self.session.request(method, f"{self.base_url}{path}", headers=headers, timeout=timeout, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs):
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.request("DELETE", path, **kwargs)

    # -- shortcuts ----------------------------------------------------------------------------------------

    def issue(self, customer_uid: str, card_number: str = GOOD_CARD, **fields):
        body = {"card_number": card_number, "expiry": FAR_EXPIRY, "channel_key": "channel-key-sandbox", **fields}
        return self.post(f"/subscribe/customers/{customer_uid}", json=body)

    def issued(self, customer_uid: str, card_number: str = GOOD_CARD, **fields) -> dict:
        response = self.issue(customer_uid, card_number, **fields)
        assert response.status_code == 200 and response.json()["code"] == 0, response.text
        return response.json()["response"]

    def again(self, customer_uid: str, merchant_uid: str, amount: int = 9900, **fields):
        body = {"customer_uid": customer_uid, "merchant_uid": merchant_uid, "amount": amount, "name": "월간 이용권"}
        body.update(fields)
        return self.post("/subscribe/payments/again", json=body)

    def paid(self, customer_uid: str, merchant_uid: str, amount: int = 9900, **fields) -> dict:
        response = self.again(customer_uid, merchant_uid, amount, **fields)
        body = response.json()
        assert response.status_code == 200 and body["code"] == 0, response.text
        assert body["response"]["status"] == "paid", body
        return body["response"]

    def payment(self, imp_uid: str) -> dict:
        response = self.get(f"/payments/{imp_uid}", params={"include_sandbox": "true"})
        assert response.status_code == 200, response.text
        return response.json()["response"]

    def schedule(self, customer_uid: str, *items: dict, **fields):
        return self.post(
            "/subscribe/payments/schedule", json={"customer_uid": customer_uid, "schedules": list(items), **fields}
        )

    def cancel(self, **fields):
        return self.post("/payments/cancel", json=fields)


def charge_with_own_client(base_url: str, merchant_uid: str, timeout: float = 30):
    """One charge of `c1` on a fresh connection, for callers in their own threads (a Session is not thread-safe)."""
    client = Iamport(base_url)
    try:
        body = {"customer_uid": "c1", "merchant_uid": merchant_uid, "amount": 9900, "name": "월간 이용권"}
        return client.post("/subscribe/payments/again", json=body, timeout=timeout)
    finally:
        client.session.close()


def wait_until_idle(control, timeout: float = 5.0) -> dict:
    """Poll `inflight` until no API request is in flight (or the deadline); the last snapshot.

    A client has its answer a moment before the server thread counts the request out, so tests poll.
    """
    deadline = time.monotonic() + timeout
    while True:
        snapshot = control.inflight()
        if not snapshot["current"] or time.monotonic() > deadline:
            return snapshot
        time.sleep(0.01)


def schedule_item(merchant_uid: str, schedule_at: int, amount: int = 9900, **fields) -> dict:
    return {"merchant_uid": merchant_uid, "schedule_at": schedule_at, "amount": amount, "name": "월간 이용권", **fields}


class WebhookReceiver:
    """A local HTTP endpoint that records every POST it gets and answers `status` (default 200)."""

    def __init__(self):
        self.received: list[dict] = []
        self.status = 200
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ctype = self.headers.get("Content-Type", "")
                body = dict(parse_qsl(raw.decode())) if "urlencoded" in ctype else json.loads(raw or b"{}")
                with receiver._cond:
                    receiver.received.append(
                        {
                            "path": self.path,
                            "content_type": ctype,
                            "headers": dict(self.headers),
                            "body": body,
                            "raw": raw.decode(),
                        }
                    )
                    receiver._cond.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/iamport/webhook"

    def wait(self, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(self.received)

    def bodies(self) -> list[dict]:
        with self._cond:
            return [item["body"] for item in self.received]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
