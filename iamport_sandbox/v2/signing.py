"""Standard Webhooks signatures (https://www.standardwebhooks.com/), as PortOne V2 signs its webhooks.

The secret is `whsec_` + base64 of the key bytes; the signed content is `{webhook-id}.{webhook-timestamp}.{body}`
and the `webhook-signature` header is `v1,<base64 HMAC-SHA256>`.
"""

import base64
import hashlib
import hmac

DEFAULT_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"iamport-sandbox-v2-webhook-key-32").decode()


def _key(secret: str) -> bytes:
    raw = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    return base64.b64decode(raw)


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    content = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: str) -> dict:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
