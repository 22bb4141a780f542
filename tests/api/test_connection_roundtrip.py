"""What the API shows a connection as can be sent back as a change: every mode round-trips unchanged.

An admin tool (or a script) reads ``GET /connections/{id}``, edits a field and PATCHes the object back;
before, that failed with 422 on ``webhook_provider: ""`` and on POP3's two spellings of the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from postroom.service import Service
from support import Api

# What the API shows but an admin does not set.
READ_ONLY = (
    "id",
    "status",
    "status_message",
    "status_changed_at",
    "enabled",
    "inbound_address",
    "webhook_path",
    "warnings",
    "mailboxes",
    "created_at",
    "updated_at",
)
IMAP: dict[str, Any] = {
    "name": "Support",
    "address": "sales@example.test, support@example.test",
    "email_name": "Acme Sales, Acme Support",
    "password": ["pw-sales", "pw-support"],
    "imap_server": "imap.example.test",
    "smtp_server": "smtp.example.test",
    "reply_to": "help@example.test",
    "smtp_password": "smtp-pw",
}
MODES: dict[str, dict[str, Any]] = {
    "imap": IMAP,
    "pop3": {
        **IMAP,
        "mode": "pop3",
        "imap_server": None,
        "pop3_server": "pop.example.test",
        "pop3_encryption": "starttls",
        "delete_after_import": True,
    },
    "forwarding": {
        "name": "Fwd",
        "mode": "forwarding",
        "address": "help@example.test",
        "smtp_server": "smtp.example.test",
        "password": "pw",
    },
    "webhook": {
        "name": "Hook",
        "mode": "webhook",
        "address": "help@example.test",
        "smtp_server": "smtp.example.test",
        "webhook_provider": "mailgun",
        "webhook_signing_key": "signing-key",
    },
    "sendgrid outbound": {**IMAP, "outbound": "sendgrid", "smtp_server": None, "sendgrid_api_key": "SG.key"},
    "oauth": {
        **IMAP,
        "password": None,
        "smtp_password": None,
        "oauth_enabled": True,
        "oauth_client_id": "client-1",
        "oauth_client_secret": "client-secret",
        "oauth_refresh_token": ["refresh-a", "refresh-b"],
    },
}


@pytest.fixture
def api(make_service: Callable[..., Service]) -> Api:
    return Api(make_service(start=False))


def secrets_of(api: Api, connection_id: int) -> list[tuple[str, ...]]:
    decrypt = api.service.secrets.decrypt
    with api.service.db.read() as session:
        connection = api.service.connections.get(session, connection_id)
        return [
            tuple(
                decrypt(value) if value else ""
                for value in (
                    b.password_enc,
                    b.smtp_password_enc,
                    b.oauth_client_secret_enc,
                    b.oauth_refresh_token_enc,
                    connection.sendgrid_api_key_enc,
                    connection.webhook_signing_key_enc,
                )
            )
            for b in connection.mailboxes
        ]


@pytest.mark.parametrize("mode", list(MODES))
def test_the_shown_connection_can_be_sent_back_unchanged(api: Api, mode: str) -> None:
    created = api.post("/connections", {k: v for k, v in MODES[mode].items() if v is not None}, expect=201)
    shown = api.get(f"/connections/{created['id']}")
    stored = secrets_of(api, created["id"])
    body = {key: value for key, value in shown.items() if key not in READ_ONLY}

    response = api.client.patch(f"/api/v1/connections/{created['id']}", json=body)

    assert response.status_code == 200, response.text
    again = api.get(f"/connections/{created['id']}")
    assert {k: v for k, v in again.items() if k != "updated_at"} == {
        k: v for k, v in shown.items() if k != "updated_at"
    }
    assert secrets_of(api, created["id"]) == stored


def test_an_empty_webhook_provider_means_none(api: Api) -> None:
    created = api.post("/connections", {k: v for k, v in IMAP.items() if v is not None}, expect=201)
    response = api.client.patch(f"/api/v1/connections/{created['id']}", json={"webhook_provider": ""})
    assert response.status_code == 200, response.text
    assert response.json()["webhook_provider"] == ""
    hook = {**MODES["webhook"], "name": "Hook2", "webhook_provider": ""}
    refused = api.client.post("/api/v1/connections", json=hook)
    assert refused.status_code == 422
    assert refused.json()["field"] == "webhook_provider"


def test_pop3_spellings_with_different_values_are_still_refused(api: Api) -> None:
    created = api.post("/connections", {k: v for k, v in MODES["pop3"].items() if v is not None}, expect=201)
    response = api.client.patch(
        f"/api/v1/connections/{created['id']}", json={"pop3_server": "pop.example.test", "imap_server": "other.test"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "pop3_server"
    assert "different value" in response.json()["detail"]
