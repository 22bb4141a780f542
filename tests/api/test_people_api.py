"""Users, password sign-in, tokens and disabling, through the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.service import Service
from postroom.store.models import Conversation, ConversationStatus
from support import Api

PASSWORD = "correct horse battery"


@pytest.fixture
def api(make_service: Callable[..., Service]) -> Api:
    return Api(make_service(start=False))


def _sign_in(api: Api, email: str, password: str) -> Any:
    # A client of its own: no bearer token, a form as OAuth2PasswordRequestForm expects.
    return TestClient(create_app(api.service)).post(
        "/api/v1/auth/token", data={"username": email, "password": password}
    )


def _as(api: Api, token: str) -> TestClient:
    client = TestClient(create_app(api.service))
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_admin_creates_a_user_who_signs_in_with_a_password(api: Api) -> None:
    made = api.post("/users", {"email": "Ann@Example.com", "name": "Ann", "password": PASSWORD}, 201)
    assert made["email"] == "ann@example.com"
    assert made["role"] == "agent" and made["has_password"] is True
    assert "password" not in made and "password_hash" not in made
    again = api.client.post("/api/v1/users", json={"email": "ann@example.com"})
    assert again.status_code == 409
    unknown = api.client.post("/api/v1/users", json={"email": "x@example.com", "rol": "admin"})
    assert unknown.status_code == 422

    answer = _sign_in(api, "ann@example.com", PASSWORD)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 12 * 3600
    ann = _as(api, body["access_token"])
    me = ann.get("/api/v1/users/me").json()
    assert me["email"] == "ann@example.com" and me["last_sign_in_at"] is not None
    # Own name and availability, not own role.
    changed = ann.patch("/api/v1/users/me", json={"name": "Ann B.", "availability": "away"})
    assert changed.status_code == 200 and changed.json()["availability"] == "away"
    assert ann.patch("/api/v1/users/me", json={"role": "admin"}).status_code == 422
    assert ann.get("/api/v1/users").status_code == 403

    # PATCH by an administrator: null clears the cap.
    capped = api.client.patch(f"/api/v1/users/{made['id']}", json={"max_open": 5}).json()
    assert capped["max_open"] == 5
    assert api.client.patch(f"/api/v1/users/{made['id']}", json={"name": "A"}).json()["max_open"] == 5
    assert api.client.patch(f"/api/v1/users/{made['id']}", json={"max_open": None}).json()["max_open"] is None
    listed = api.items("/users", limit=1)
    assert "ann@example.com" in [u["email"] for u in listed] and len(listed) >= 2


def test_wrong_passwords_are_throttled_with_retry_after(api: Api) -> None:
    api.post("/users", {"email": "ann@example.com", "password": PASSWORD}, 201)
    for _ in range(5):
        refused = _sign_in(api, "ann@example.com", "not the password")
        assert refused.status_code == 401, refused.text
        assert refused.json()["detail"] == "wrong email address or password"
    locked = _sign_in(api, "ann@example.com", PASSWORD)
    assert locked.status_code == 429, locked.text
    assert 0 < int(locked.headers["Retry-After"]) <= 900
    assert "not the password" not in locked.text and PASSWORD not in locked.text
    # An unknown address answers exactly like a wrong password.
    assert _sign_in(api, "nobody@example.com", PASSWORD).json()["detail"] == "wrong email address or password"


def test_own_tokens_are_listed_without_secret_and_a_revoked_one_stops_at_once(api: Api) -> None:
    api.post("/users", {"email": "ann@example.com", "password": PASSWORD}, 201)
    ann = _as(api, _sign_in(api, "ann@example.com", PASSWORD).json()["access_token"])
    made = ann.post("/api/v1/tokens", json={"name": "script"})
    assert made.status_code == 201, made.text
    secret = made.json()["token"]
    script = _as(api, secret)
    assert script.get("/api/v1/users/me").status_code == 200
    listed = ann.get("/api/v1/tokens").json()["items"]
    assert {t["kind"] for t in listed} == {"access", "api"}
    assert secret not in str(listed) and all("token" not in t for t in listed)

    # Another user's token: an agent may not revoke it; an administrator may list and revoke any.
    admin_tokens = api.get("/tokens")["items"]
    assert ann.delete(f"/api/v1/tokens/{admin_tokens[0]['id']}").status_code == 403
    user_id = ann.get("/api/v1/users/me").json()["id"]
    assert len(api.get(f"/users/{user_id}/tokens")["items"]) == 2

    assert ann.delete(f"/api/v1/tokens/{made.json()['id']}").status_code == 204
    refused = script.get("/api/v1/users/me")
    assert refused.status_code == 401
    assert ann.get("/api/v1/users/me").status_code == 200


def test_disable_sends_conversations_back_and_tokens_stop(api: Api) -> None:
    agent = api.post("/users", {"email": "ann@example.com", "password": PASSWORD}, 201)
    token = _sign_in(api, "ann@example.com", PASSWORD).json()["access_token"]
    ann = _as(api, token)
    with api.service.db.write() as session:
        kept = Conversation(subject="done", status=ConversationStatus.RESOLVED, assignee_id=agent["id"])
        moved = Conversation(subject="open", status=ConversationStatus.OPEN, assignee_id=agent["id"])
        session.add_all([kept, moved])
        session.flush()
        moved_id = moved.id
    assert ann.get("/api/v1/users/me").status_code == 200

    report = api.post(f"/users/{agent['id']}/disable")
    assert report["unassigned_conversations"] == [moved_id]
    assert report["revoked_tokens"] == 1 and report["user"]["enabled"] is False
    assert ann.get("/api/v1/users/me").status_code == 401
    assert _sign_in(api, "ann@example.com", PASSWORD).status_code == 401
    me = api.get("/users/me")
    assert api.client.post(f"/api/v1/users/{me['id']}/disable").status_code == 409

    assert api.post(f"/users/{agent['id']}/enable")["enabled"] is True
    assert _sign_in(api, "ann@example.com", PASSWORD).status_code == 200
