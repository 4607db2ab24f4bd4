"""POST /users/getToken and the token rules every other API path enforces."""

import http.client
import json
from urllib.parse import urlsplit

import requests

from iamport_sandbox.server import DEFAULT_IMP_KEY, DEFAULT_IMP_SECRET

CREDENTIALS = {"imp_key": DEFAULT_IMP_KEY, "imp_secret": DEFAULT_IMP_SECRET}


def _get_token(base_url: str, **kwargs) -> requests.Response:
    return requests.post(f"{base_url}/users/getToken", timeout=10, **kwargs)


def test_get_token_returns_30_minute_token_when_credentials_are_right(sandbox, sandbox_server):
    sandbox.freeze()
    response = _get_token(sandbox_server.url, json=CREDENTIALS)

    body = response.json()
    assert response.status_code == 200 and body["code"] == 0 and body["message"] is None
    token = body["response"]
    assert token["access_token"]
    assert token["now"] == sandbox.now()
    assert token["expired_at"] == token["now"] + 30 * 60


def test_get_token_returns_401_envelope_when_secret_is_wrong(sandbox, sandbox_server):
    response = _get_token(sandbox_server.url, json={"imp_key": DEFAULT_IMP_KEY, "imp_secret": "nope"})

    assert response.status_code == 401
    body = response.json()
    assert body["code"] != 0 and body["response"] is None and body["message"]


def test_get_token_accepts_form_body_when_sent_form_encoded(sandbox, sandbox_server):
    response = _get_token(sandbox_server.url, data=CREDENTIALS)

    assert response.status_code == 200
    assert response.json()["response"]["access_token"]


def test_get_token_returns_same_token_when_called_again_before_expiry(sandbox, sandbox_server):
    sandbox.freeze()
    first = _get_token(sandbox_server.url, json=CREDENTIALS).json()["response"]
    sandbox.advance(25 * 60)

    second = _get_token(sandbox_server.url, json=CREDENTIALS).json()["response"]

    assert second["access_token"] == first["access_token"]
    assert second["expired_at"] == first["expired_at"]


def test_get_token_extends_expiry_by_5_minutes_when_called_in_last_minute(sandbox, sandbox_server):
    sandbox.freeze()
    first = _get_token(sandbox_server.url, json=CREDENTIALS).json()["response"]
    sandbox.set_now(first["expired_at"] - 30)

    second = _get_token(sandbox_server.url, json=CREDENTIALS).json()["response"]

    assert second["access_token"] == first["access_token"]
    assert second["expired_at"] == first["expired_at"] + 5 * 60


def test_get_token_issues_new_token_when_previous_expired(sandbox, sandbox_server):
    sandbox.freeze()
    first = _get_token(sandbox_server.url, json=CREDENTIALS).json()["response"]
    sandbox.set_now(first["expired_at"])

    second = _get_token(sandbox_server.url, json=CREDENTIALS).json()["response"]

    assert second["access_token"] != first["access_token"]
    assert second["expired_at"] == first["expired_at"] + 30 * 60


def test_api_returns_401_when_token_expired(sandbox, iamport):
    sandbox.freeze()
    token = iamport.token()
    assert iamport.get("/subscribe/customers/nobody").status_code == 404
    sandbox.advance(30 * 60)

    response = iamport.get("/subscribe/customers/nobody", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json()["response"] is None


def test_api_returns_401_envelope_when_no_token_sent(sandbox, iamport):
    response = iamport.get("/payments/status/paid", auth=False)

    assert response.status_code == 401
    assert set(response.json()) == {"code", "message", "response"}


def test_api_returns_401_when_token_is_unknown(sandbox, iamport):
    response = iamport.get("/payments/status/paid", headers={"Authorization": "Bearer not-a-token"})

    assert response.status_code == 401


def test_api_accepts_bearer_header_when_token_valid(sandbox, iamport):
    response = iamport.get("/payments/status/paid", headers={"Authorization": f"Bearer {iamport.token()}"})

    assert response.status_code == 200


def test_api_accepts_raw_authorization_header_when_token_valid(sandbox, iamport):
    response = iamport.get("/payments/status/paid", headers={"Authorization": iamport.token()})

    assert response.status_code == 200


def test_api_accepts_x_imp_token_header_when_token_valid(sandbox, iamport):
    response = iamport.get("/payments/status/paid", auth=False, headers={"X-ImpTokenHeader": iamport.token()})

    assert response.status_code == 200


def test_unknown_path_returns_401_when_unauthenticated_and_404_when_authenticated(sandbox, iamport):
    assert iamport.get("/no/such/api", auth=False).status_code == 401

    response = iamport.get("/no/such/api")

    assert response.status_code == 404
    assert response.json()["code"] != 0


def test_connection_is_kept_alive_when_client_sends_several_requests(sandbox, sandbox_server):
    parts = urlsplit(sandbox_server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request(
            "POST", "/users/getToken", body=json.dumps(CREDENTIALS), headers={"Content-Type": "application/json"}
        )
        first = connection.getresponse()
        token = json.loads(first.read())["response"]["access_token"]
        sock = connection.sock

        connection.request("GET", "/payments/status/paid", headers={"Authorization": f"Bearer {token}"})
        second = connection.getresponse()
        second.read()

        assert second.status == 200
        assert connection.sock is sock
    finally:
        connection.close()
