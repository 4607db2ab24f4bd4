"""The notification sandbox: SOLAPI's message API over HTTP, with faults and a phone page.

What it checks the way SOLAPI does (the `solapi` SDK's lib/authenticator.py and services/message_service.py):

- `Authorization: HMAC-SHA256 ApiKey=…, Date=…, salt=…, signature=…`, where the signature is the hex
  HMAC-SHA256 of `Date + salt` under the API secret. An unknown key, a wrong signature, a Date more than 15
  minutes from the sandbox's wall clock and a reused salt are each refused with 401 and SOLAPI's
  `{"errorCode", "errorMessage"}` body, and nothing is recorded.
- `POST /messages/v4/send-many/detail` takes `{"messages": [...], "showMessageList": true, ...}`. A message is
  registered (statusCode 2000) or listed in `failedMessageList` (a malformed number, an 알림톡 without
  `kakaoOptions.pfId`/`templateId`, an SMS over 90 bytes). The answer has the `groupInfo` the SDK validates.
- `GET /messages/v4/list-old?messageId=…` (and `/messages/v4/list`) reports each message's status. The first
  report after sending is final: 4000 (received) unless a fault says otherwise. Delivery is reported by polling.

Faults (`POST /__sandbox__/faults`, JSON `{"kind", "type"?, "to"?, "times"?}`), consumed in order:
`undeliverable` (the next `times` messages are accepted, then reported failed: 3104 for 알림톡, 3059 for
SMS/LMS), `pending` (the next message stays 3000 for `times` reports, then is received), `throttle` (429
TooManyRequests, nothing recorded), `unavailable` (500, nothing recorded), `reject` (the message lands in
failedMessageList, 1062).

Controls: `POST /__sandbox__/reset`, `GET /__sandbox__/messages` (JSON, every request the phone would show),
`GET /__sandbox__/phone?to=010…` (HTML: the messages a phone received, newest last). Deterministic: sequential
message and group ids; no randomness.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import html
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DEFAULT_API_KEY = "NCSSANDBOXKEY0001"
DEFAULT_API_SECRET = "SANDBOXSECRETSANDBOXSECRETSANDBOX"
MAX_SKEW = dt.timedelta(minutes=15)
AUTH_RE = re.compile(
    r"^HMAC-SHA256 ApiKey=(?P<key>[^,\s]+), Date=(?P<date>[^,\s]+), salt=(?P<salt>[^,\s]+), "
    r"signature=(?P<signature>[0-9a-f]+)$"
)
KOREAN_PHONE_RE = re.compile(r"^0(1[016789]\d{7,8}|[2-6]\d{7,9})$")
SMS_MAX_BYTES = 90
STATUS_TEXT = {
    "2000": "정상 접수(이통사로 접수 예정)",
    "3000": "이통사로 접수 완료(결과 대기)",
    "4000": "수신완료",
    "3104": "카카오톡 미사용자 또는 알림톡 수신 차단",
    "3059": "수신 불가(결번 또는 일시 정지)",
    "1062": "수신번호 형식 오류 또는 필수 값 누락",
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class State:
    """Messages, faults and used salts, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.messages: dict[str, dict] = {}
        self.faults: list[dict] = []
        self.salts: set[str] = set()
        self.requests: list[dict] = []  # every send request accepted (for tests: what the app asked)
        self.sequence = 0

    def next_id(self, prefix: str) -> str:
        self.sequence += 1
        return f"{prefix}{self.sequence:014d}"

    def take_fault(self, kinds: tuple[str, ...], *, message: dict | None = None) -> dict | None:
        for fault in self.faults:
            if fault["kind"] not in kinds:
                continue
            if message is not None:
                if fault.get("type") and fault["type"] != message.get("type"):
                    continue
                if fault.get("to") and fault["to"] != message.get("to"):
                    continue
            fault["times"] -= 1
            if fault["times"] <= 0:
                self.faults.remove(fault)
            return fault
        return None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class NotifyApi:
    def __init__(self, *, api_key: str, api_secret: str) -> None:
        self.api_key, self.api_secret = api_key, api_secret
        self.state = State()

    # --- auth --------------------------------------------------------------------------------------

    def authenticate(self, header: str) -> None:
        match = AUTH_RE.match(header or "")
        if not match:
            raise ApiError(401, "InvalidAuthorizationHeader", "Authorization 헤더 형식이 올바르지 않습니다.")
        if not hmac.compare_digest(match["key"], self.api_key):
            raise ApiError(401, "InvalidAPIKey", "API Key가 유효하지 않습니다.")
        expected = hmac.new(
            self.api_secret.encode(), (match["date"] + match["salt"]).encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, match["signature"]):
            raise ApiError(401, "SignatureDoesNotMatch", "서명이 일치하지 않습니다.")
        try:
            signed_at = dt.datetime.fromisoformat(match["date"].replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(401, "InvalidDateFormat", "Date 형식이 올바르지 않습니다.") from None
        if signed_at.tzinfo is None or abs(_now() - signed_at) > MAX_SKEW:
            raise ApiError(401, "RequestTimeTooSkewed", "요청 시각이 서버 시각과 15분 이상 차이 납니다.")
        with self.state.lock:
            if match["salt"] in self.state.salts:
                raise ApiError(401, "DuplicatedSignature", "이미 사용된 서명입니다(salt 재사용).")
            self.state.salts.add(match["salt"])

    # --- sending -----------------------------------------------------------------------------------

    def send(self, body: dict) -> dict:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "ValidationError", "messages는 1건 이상이어야 합니다.")
        now = _now()
        with self.state.lock:
            fault = self.state.take_fault(("throttle", "unavailable"))
            if fault and fault["kind"] == "throttle":
                raise ApiError(429, "TooManyRequests", "요청이 너무 많습니다. 잠시 후 다시 시도해 주세요.")
            if fault:
                raise ApiError(500, "InternalError", "일시적인 서버 오류입니다.")
            group_id = self.state.next_id("G4V")
            registered, failed = [], []
            for raw in messages:
                message = self._normalise(raw)
                message_id = self.state.next_id("M4V")
                problem = self._problem(message)
                if problem is None and self.state.take_fault(("reject",), message=message):
                    problem = "1062"
                if problem is not None:
                    failed.append(
                        {
                            "to": message["to"],
                            "from": message["from"],
                            "type": message["type"],
                            "statusMessage": STATUS_TEXT[problem],
                            "country": "82",
                            "messageId": message_id,
                            "statusCode": problem,
                            "accountId": "sandbox-account",
                            "customFields": message.get("customFields"),
                        }
                    )
                    continue
                outcome = self.state.take_fault(("undeliverable", "pending"), message=message)
                record = {
                    **message,
                    "messageId": message_id,
                    "groupId": group_id,
                    "statusCode": "2000",
                    "dateCreated": _iso(now),
                    "dateUpdated": _iso(now),
                    "outcome": {"kind": outcome["kind"], "times": outcome["reports"]} if outcome else None,
                }
                self.state.messages[message_id] = record
                registered.append(record)
            self.state.requests.append({"groupId": group_id, "messages": messages})
        return {
            "failedMessageList": failed,
            "groupInfo": self._group(group_id, now, total=len(messages), ok=len(registered)),
            "messageList": [
                {"messageId": m["messageId"], "statusCode": "2000", "statusMessage": STATUS_TEXT["2000"]}
                for m in registered
            ]
            if body.get("showMessageList")
            else None,
        }

    @staticmethod
    def _normalise(raw: dict) -> dict:
        kakao = raw.get("kakaoOptions") or None
        kind = raw.get("type") or ("ATA" if kakao else "SMS")
        return {
            "to": str(raw.get("to") or "").replace("-", ""),
            "from": str(raw.get("from") or "").replace("-", ""),
            "type": kind,
            "text": raw.get("text") or "",
            "subject": raw.get("subject"),
            "kakaoOptions": kakao,
            "customFields": raw.get("customFields"),
        }

    @staticmethod
    def _problem(message: dict) -> str | None:
        if not KOREAN_PHONE_RE.match(message["to"]) or not message["from"] or not message["text"]:
            return "1062"
        if message["type"] == "ATA":
            kakao = message["kakaoOptions"] or {}
            if not kakao.get("pfId") or not kakao.get("templateId"):
                return "1062"
        elif message["type"] == "SMS" and len(message["text"].encode("cp949", errors="replace")) > SMS_MAX_BYTES:
            return "1062"
        elif message["type"] not in ("SMS", "LMS"):
            return "1062"
        return None

    @staticmethod
    def _group(group_id: str, now: dt.datetime, *, total: int, ok: int) -> dict:
        cash = {"requested": 0, "replacement": 0, "refund": 0, "sum": 0}
        return {
            "count": {
                "total": total,
                "sentTotal": 0,
                "sentSuccess": 0,
                "sentPending": ok,
                "sentReplacement": 0,
                "refund": 0,
                "registeredFailed": total - ok,
                "registeredSuccess": ok,
            },
            "countForCharge": {},
            "balance": cash,
            "point": cash,
            "app": {"profit": {}, "appId": None},
            "log": [],
            "status": "SENDING",
            "allowDuplicates": False,
            "isRefunded": False,
            "accountId": "sandbox-account",
            "masterAccountId": None,
            "apiVersion": "4",
            "groupId": group_id,
            "price": {},
            "dateCreated": _iso(now),
            "dateUpdated": _iso(now),
        }

    # --- reports -----------------------------------------------------------------------------------

    def list_messages(self, query: dict[str, list[str]]) -> dict:
        ids = query.get("messageId", []) + [i for v in query.get("messageIds", []) for i in v.split(",")]
        with self.state.lock:
            chosen = [self.state.messages[i] for i in ids if i in self.state.messages] if ids else []
            for message in chosen:
                self._report(message)
            listed = {m["messageId"]: self._public(m) for m in chosen}
        return {"limit": len(listed) or 20, "messageList": listed, "startKey": None, "nextKey": None}

    @staticmethod
    def _report(message: dict) -> None:
        if message["statusCode"] not in ("2000", "3000"):
            return  # final
        outcome = message["outcome"]
        if outcome and outcome["kind"] == "pending":
            outcome["times"] -= 1
            message["statusCode"] = "3000"
            if outcome["times"] <= 0:
                message["outcome"] = None
        elif outcome and outcome["kind"] == "undeliverable":
            message["statusCode"] = "3104" if message["type"] == "ATA" else "3059"
        else:
            message["statusCode"] = "4000"
        message["dateUpdated"] = _iso(_now())

    @staticmethod
    def _public(message: dict) -> dict:
        return {
            key: message[key]
            for key in ("messageId", "groupId", "to", "from", "type", "text", "subject", "kakaoOptions", "statusCode")
        } | {
            "statusMessage": STATUS_TEXT.get(message["statusCode"], ""),
            "dateCreated": message["dateCreated"],
            "dateUpdated": message["dateUpdated"],
            "log": [],
        }

    # --- controls ----------------------------------------------------------------------------------

    def add_fault(self, body: dict) -> dict:
        kind = body.get("kind")
        if kind not in ("undeliverable", "pending", "throttle", "unavailable", "reject"):
            raise ApiError(400, "ValidationError", f"unknown fault kind {kind!r}")
        times = int(body.get("times", 1))
        # `pending` applies to the next message, for `times` reports; the others to the next `times` messages.
        fault = {
            "kind": kind,
            "type": body.get("type"),
            "to": body.get("to"),
            "times": 1 if kind == "pending" else times,
        }
        fault["reports"] = times
        with self.state.lock:
            self.state.faults.append(fault)
        return fault

    def snapshot(self) -> list[dict]:
        with self.state.lock:
            return [self._public(m) for m in self.state.messages.values()]

    def phone_page(self, to: str | None) -> str:
        messages = [m for m in self.snapshot() if not to or m["to"] == to.replace("-", "")]
        phones: dict[str, list[dict]] = {}
        for message in messages:
            phones.setdefault(message["to"], []).append(message)
        blocks = []
        for phone, received in phones.items():
            bubbles = "".join(
                '<li class="msg {cls}"><span class="kind">{kind}</span> <span class="status">{status}</span>'
                "<pre>{text}</pre><time>{at}</time></li>".format(
                    cls="ata" if m["type"] == "ATA" else "sms",
                    kind="알림톡" if m["type"] == "ATA" else ("LMS" if m["type"] == "LMS" else "문자"),
                    status=html.escape(f"{m['statusCode']} {m['statusMessage']}"),
                    text=html.escape(((m["subject"] + "\n") if m["subject"] else "") + m["text"]),
                    at=html.escape(m["dateCreated"]),
                )
                for m in received
            )
            blocks.append(f'<section class="phone" data-phone="{phone}"><h2>{phone}</h2><ul>{bubbles}</ul></section>')
        body = "".join(blocks) or "<p>아직 받은 메시지가 없습니다. (No messages yet.)</p>"
        return (
            '<!doctype html><html lang="ko"><meta charset="utf-8"><title>알림 샌드박스 · 휴대폰</title>'
            "<style>body{font-family:sans-serif;max-width:420px;margin:1em auto}.phone{border:2px solid #333;"
            "border-radius:18px;padding:.5em 1em;margin-bottom:1em}ul{list-style:none;padding:0}.msg{background:#eee;"
            "border-radius:10px;padding:.5em;margin:.5em 0}.msg.ata{background:#fee500}pre{white-space:pre-wrap;"
            "font-family:inherit;margin:.3em 0}.kind{font-weight:bold}time,.status{font-size:.8em;color:#555}</style>"
            f"<h1>휴대폰 화면 (Phone)</h1>{body}</html>"
        )


class _Handler(BaseHTTPRequestHandler):
    api: NotifyApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def _reply(self, status: int, payload, content_type: str = "application/json; charset=utf-8") -> None:
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            value = json.loads(raw or b"{}")
        except ValueError:
            raise ApiError(400, "ValidationError", "본문이 올바른 JSON이 아닙니다.") from None
        if not isinstance(value, dict):
            raise ApiError(400, "ValidationError", "본문은 JSON 객체여야 합니다.")
        return value

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            if url.path.startswith("/__sandbox__/") or url.path == "/":
                self._control(method, url.path, query)
                return
            body = self._body() if method == "POST" else {}
            self.api.authenticate(self.headers.get("Authorization", ""))
            if method == "POST" and url.path == "/messages/v4/send-many/detail":
                self._reply(200, self.api.send(body))
            elif method == "GET" and url.path in ("/messages/v4/list-old", "/messages/v4/list"):
                self._reply(200, self.api.list_messages(query))
            else:
                raise ApiError(404, "NotFound", f"{method} {url.path} 는 없는 경로입니다.")
        except ApiError as exc:
            self._reply(exc.status, {"errorCode": exc.code, "errorMessage": exc.message})

    def _control(self, method: str, path: str, query: dict) -> None:
        if method == "POST" and path == "/__sandbox__/reset":
            with self.api.state.lock:
                self.api.state.reset()
            self._reply(200, {"ok": True})
        elif method == "POST" and path == "/__sandbox__/faults":
            self._reply(200, self.api.add_fault(self._body()))
        elif method == "GET" and path == "/__sandbox__/messages":
            self._reply(200, self.api.snapshot())
        elif method == "GET" and path in ("/__sandbox__/phone", "/"):
            self._reply(200, self.api.phone_page((query.get("to") or [None])[0]), "text/html; charset=utf-8")
        else:
            raise ApiError(404, "NotFound", path)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class NotifySandbox:
    """`NotifySandbox(port=0).start()` serves in a background thread (tests); `serve_forever()` in the foreground."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, api_key=DEFAULT_API_KEY, api_secret=DEFAULT_API_SECRET
    ):
        self.api = NotifyApi(api_key=api_key, api_secret=api_secret)
        handler = type("Handler", (_Handler,), {"api": self.api})
        self.httpd = _HTTPServer((host, port), handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> NotifySandbox:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="notify-sandbox")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
