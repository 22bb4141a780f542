"""The connections API: validation with clear errors, masked secrets, changes, deletion, auth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from postroom.service import Service
from support import Api

BODY: dict[str, Any] = {
    "name": "Support",
    "address": "support@example.test",
    "password": "s3cret-pass",
    "imap_server": "imap.example.test",
    "smtp_server": "smtp.example.test",
}


@pytest.fixture
def api(make_service: Callable[..., Service]) -> Api:
    # No workers: these tests are about the API and the stored settings only.
    return Api(make_service(start=False))


def test_defaults_are_those_of_the_issue_and_secrets_are_masked(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    assert created["status"] == "STOPPED"
    assert created["mode"] == "imap"
    assert created["imap_port"] == "993"
    assert created["imap_encryption"] == "ssl"
    assert created["smtp_port"] == "587"
    assert created["smtp_encryption"] == "auto"
    assert created["imap_mailbox"] == "INBOX"
    assert created["validate_certificate"] == "true"
    assert created["check_interval"] == 15
    assert created["mark_as_read"] is True
    assert created["unread_only"] is False
    assert created["message_content_type"] == "text/plain"
    assert created["max_attachment_bytes"] == 10_485_760
    assert created["password"] == "********"
    assert "s3cret-pass" not in api.client.get(f"/api/v1/connections/{created['id']}").text


def test_patch_keeps_a_masked_secret_and_changes_the_rest(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    response = api.client.patch(
        f"/api/v1/connections/{created['id']}",
        json={"password": "********", "imap_port": 1993, "email_name": "Example Support", "check_interval": "30, 20"},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["imap_port"] == "1993"
    assert changed["email_name"] == "Example Support"
    assert changed["check_interval"] == 20  # several values: the smallest (seed 003)
    with api.service.db.read() as session:
        connection = api.service.connections.get(session, created["id"])
        assert api.service.secrets.decrypt(connection.mailboxes[0].password_enc) == "s3cret-pass"


def test_several_mailboxes_take_positional_values_with_the_last_repeating(api: Api) -> None:
    body = {
        **BODY,
        "address": "sales@example.test, support@example.test, billing@example.test",
        "email_name": "Sales, Support",
        "password": ["pw-1", "pw,2", "pw-3"],
        "imap_mailbox": "INBOX",
    }
    created = api.post("/connections", body, expect=201)
    boxes = created["mailboxes"]
    assert [b["address"] for b in boxes] == ["sales@example.test", "support@example.test", "billing@example.test"]
    assert [b["email_name"] for b in boxes] == ["Sales", "Support", "Support"]
    assert [b["imap_server"] for b in boxes] == ["imap.example.test"] * 3
    with api.service.db.read() as session:
        stored = api.service.connections.get(session, created["id"]).mailboxes
        assert [api.service.secrets.decrypt(b.password_enc) for b in stored] == ["pw-1", "pw,2", "pw-3"]


def test_seed_variable_names_are_accepted(api: Api) -> None:
    created = api.post(
        "/connections",
        {**BODY, "env": {"EMAIL_NAME": "Helpdesk", "IMAP_MAILBOX": "Support", "EMAIL_MAX_ATTACHMENT_BYTES": "0"}},
        expect=201,
    )
    assert created["email_name"] == "Helpdesk"
    assert created["imap_mailbox"] == "Support"
    assert created["max_attachment_bytes"] == 0


def test_other_spellings_of_encryption_are_understood(api: Api) -> None:
    created = api.post(
        "/connections", {**BODY, "imap_encryption": "StartTLS", "smtp_encryption": "SSL/TLS"}, expect=201
    )
    assert created["imap_encryption"] == "starttls"
    assert created["smtp_encryption"] == "ssl"


@pytest.mark.parametrize(
    ("settings", "imap", "smtp"),
    [
        # Seed 002's Gmail guide: IMAP 993 "SSL", SMTP 587 "TLS" — the latter is STARTTLS.
        ({"imap_encryption": "TLS", "smtp_encryption": "TLS"}, ("ssl", "993"), ("starttls", "587")),
        (
            {"imap_encryption": "tls", "imap_port": 993, "smtp_encryption": "tls", "smtp_port": 465},
            ("ssl", "993"),
            ("ssl", "465"),
        ),
        (
            {"imap_encryption": "TLS", "imap_port": 143, "smtp_encryption": "TLS", "smtp_port": 25},
            ("starttls", "143"),
            ("starttls", "25"),
        ),
        ({"imap_encryption": "TCP", "smtp_encryption": "None", "smtp_port": 25}, ("none", "143"), ("none", "25")),
    ],
)
def test_a_bare_tls_means_starttls_on_upgrade_ports_and_implicit_tls_elsewhere(
    api: Api, settings: dict[str, Any], imap: tuple[str, str], smtp: tuple[str, str]
) -> None:
    created = api.post("/connections", {**BODY, **settings}, expect=201)
    assert (created["imap_encryption"], created["imap_port"]) == imap
    assert (created["smtp_encryption"], created["smtp_port"]) == smtp


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"imap_port": 70000}, "imap_port", "port range"),
        ({"smtp_port": "abc"}, "smtp_port", "not a port"),
        ({"imap_encryption": "quantum"}, "imap_encryption", "unknown encryption"),
        ({"address": "not-an-address"}, "address", "not an email address"),
        ({"password": ""}, "password", "required"),
        ({"message_content_type": "text/markdown"}, "message_content_type", "text/plain"),
        ({"check_interval": 0}, "check_interval", "outside"),
        ({"address": "a@x.test, b@x.test", "email_name": "A, B, C"}, "email_name", "3 values for 2"),
        ({"env": {"NO_SUCH_VARIABLE": "1"}}, "env.NO_SUCH_VARIABLE", "unknown variable"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(
    api: Api, change: dict[str, Any], field: str, words: str
) -> None:
    response = api.client.post("/api/v1/connections", json={**BODY, **change})
    assert response.status_code == 422, response.text
    detail = response.json()
    assert detail["field"] == field
    assert words in detail["detail"]


def test_names_are_unique(api: Api) -> None:
    api.post("/connections", BODY, expect=201)
    response = api.client.post("/api/v1/connections", json={**BODY, "address": "other@example.test"})
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_delete_needs_the_name_as_confirmation(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    wrong = api.client.delete(f"/api/v1/connections/{created['id']}", params={"confirm": "support"})
    assert wrong.status_code == 409
    missing = api.client.delete(f"/api/v1/connections/{created['id']}")
    assert missing.status_code == 422
    done = api.client.delete(f"/api/v1/connections/{created['id']}", params={"confirm": "Support"})
    assert done.status_code == 204
    assert api.client.get(f"/api/v1/connections/{created['id']}").status_code == 404


def test_start_and_stop_without_a_worker(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    started = api.post(f"/connections/{created['id']}/start")
    assert started["status"] == "STARTING"
    assert started["enabled"] is True
    stopped = api.post(f"/connections/{created['id']}/stop")
    assert stopped["status"] == "STOPPED"
    assert stopped["enabled"] is False


def test_every_endpoint_needs_a_valid_token(api: Api) -> None:
    anonymous = api.client.get("/api/v1/connections", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    wrong = api.client.get("/api/v1/connections", headers={"Authorization": "Bearer pr_nope"})
    assert wrong.status_code == 401
    assert api.client.get("/health").status_code == 200
    assert api.client.get("/docs").status_code == 200
    paths = api.client.get("/openapi.json").json()["paths"]
    assert "/api/v1/connections/{connection_id}/start" in paths
    assert "/api/v1/conversations/{conversation_id}/messages" in paths
