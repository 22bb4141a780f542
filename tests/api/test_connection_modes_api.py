"""Connection settings beyond plain IMAP: POP3, forwarding, webhooks, SendGrid, OAuth, delays — and their rules."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from postroom.service import Service
from support import Api

BODY: dict[str, Any] = {
    "name": "Support",
    "address": "support@example.test",
    "password": "s3cret-pass",
    "imap_server": "imap.example.test",
    "smtp_server": "smtp.example.test",
}
OAUTH = {
    "oauth_enabled": True,
    "oauth_client_id": "client-1",
    "oauth_client_secret": "client-secret",
    "oauth_refresh_token": "refresh-1",
}


@pytest.fixture
def api(make_service: Callable[..., Service]) -> Api:
    return Api(make_service(start=False))


def refused(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api.client.post("/api/v1/connections", json=body)
    assert response.status_code == 422, response.text
    detail: dict[str, Any] = response.json()
    return detail


def test_pop3_fields_fill_the_incoming_server_with_pop3_default_ports(api: Api) -> None:
    body = {**BODY, "mode": "pop3", "imap_server": None, "pop3_server": "pop.example.test"}
    created = api.post("/connections", body, expect=201)
    assert created["mode"] == "pop3"
    assert created["pop3_server"] == "pop.example.test"
    assert created["pop3_port"] == 995
    assert created["delete_after_import"] is False
    plain = api.post(
        "/connections",
        {**body, "name": "Plain", "address": "b@example.test", "pop3_encryption": "starttls"},
        expect=201,
    )
    assert plain["pop3_port"] == 110
    assert plain["pop3_encryption"] == "starttls"


def test_imap_without_implicit_tls_defaults_to_port_143(api: Api) -> None:
    created = api.post("/connections", {**BODY, "imap_encryption": "starttls"}, expect=201)
    assert created["imap_port"] == 143


def test_forwarding_needs_no_incoming_server_and_gets_a_generated_address(api: Api) -> None:
    body = {"name": "Fwd", "mode": "forwarding", "address": "help@example.test", "smtp_server": "smtp.example.test"}
    first = api.post("/connections", body, expect=201)
    second = api.post("/connections", {**body, "name": "Fwd2"}, expect=201)
    local, _, domain = first["inbound_address"].partition("@")
    assert domain == api.service.settings.inbound_domain
    assert len(local) >= 20
    assert first["inbound_address"] != second["inbound_address"]
    assert first["webhook_path"] is None
    # Switching to IMAP drops the generated address; it needs the IMAP settings then.
    response = api.client.patch(f"/api/v1/connections/{first['id']}", json={"mode": "imap"})
    assert response.status_code == 422
    assert response.json()["field"] == "imap_server"
    switched = api.client.patch(
        f"/api/v1/connections/{first['id']}",
        json={"mode": "imap", "imap_server": "imap.example.test", "password": "pw"},
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["inbound_address"] is None


def test_webhook_mode_needs_a_provider_and_a_signing_key(api: Api) -> None:
    body = {"name": "Hook", "mode": "webhook", "address": "help@example.test", "smtp_server": "smtp.example.test"}
    assert refused(api, body)["field"] == "webhook_provider"
    assert refused(api, {**body, "webhook_provider": "mailgun"})["field"] == "webhook_signing_key"
    created = api.post("/connections", {**body, "webhook_provider": "mailgun", "webhook_signing_key": "k"}, expect=201)
    assert created["webhook_path"].startswith("/api/v1/inbound/mailgun/")
    assert created["webhook_path"].endswith("/mime")
    assert created["webhook_signing_key"] == "********"


def test_a_sendgrid_signing_key_that_is_no_public_key_is_refused_when_saved(api: Api) -> None:
    # QA: "not-a-key" used to be saved (201, RUNNING) and every post was answered 503 afterwards.
    body = {
        "name": "Hook",
        "mode": "webhook",
        "address": "help@example.test",
        "smtp_server": "smtp.example.test",
        "webhook_provider": "sendgrid",
    }
    refusal = refused(api, {**body, "webhook_signing_key": "not-a-key"})
    assert refusal["field"] == "webhook_signing_key"
    assert "not-a-key" not in str(refusal)
    rsa = rsa_public_key()
    assert "P-256" in refused(api, {**body, "webhook_signing_key": rsa})["detail"]
    created = api.post("/connections", {**body, "webhook_signing_key": p256_public_key()}, expect=201)
    # Changing the key, or moving a Mailgun connection to SendGrid with its Mailgun key, is checked too.
    response = api.client.patch(f"/api/v1/connections/{created['id']}", json={"webhook_signing_key": "garbage"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "webhook_signing_key"
    mailgun = api.post(
        "/connections",
        {
            **body,
            "name": "Hook 2",
            "address": "h2@example.test",
            "webhook_provider": "mailgun",
            "webhook_signing_key": "k",
        },
        expect=201,
    )
    response = api.client.patch(f"/api/v1/connections/{mailgun['id']}", json={"webhook_provider": "sendgrid"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "webhook_signing_key"


def p256_public_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return base64.b64encode(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode()


def rsa_public_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def test_sendgrid_outbound_needs_an_api_key_instead_of_smtp(api: Api) -> None:
    body = {**BODY, "outbound": "sendgrid", "smtp_server": None}
    assert refused(api, body)["field"] == "sendgrid_api_key"
    created = api.post("/connections", {**body, "sendgrid_api_key": "SG.secret-key"}, expect=201)
    assert created["outbound"] == "sendgrid"
    assert created["sendgrid_api_key"] == "********"
    assert created["sendgrid_api_url"] == "https://api.sendgrid.com"
    assert "SG.secret-key" not in api.client.get(f"/api/v1/connections/{created['id']}").text
    # SMTP needs its server again when outbound goes back to smtp.
    response = api.client.patch(f"/api/v1/connections/{created['id']}", json={"outbound": "smtp"})
    assert response.json()["field"] == "smtp_server"


def test_oauth_needs_every_credential_per_mailbox_and_no_password(api: Api) -> None:
    body = {**BODY, "password": None, **OAUTH}
    created = api.post("/connections", body, expect=201)
    box = created["mailboxes"][0]
    assert box["oauth_refresh_token"] == "********"
    assert box["oauth_client_secret"] == "********"
    assert box["oauth_token_uri"] == "https://oauth2.googleapis.com/token"
    assert refused(api, {**body, "name": "B", "oauth_client_id": None})["field"] == "oauth_client_id"
    # Several mailboxes: each needs its own refresh token (seed 003), the client may be shared.
    two = {**body, "name": "Two", "address": "a@example.test, b@example.test"}
    assert "one refresh token per mailbox" in refused(api, two)["detail"]
    both = api.post("/connections", {**two, "oauth_refresh_token": ["refresh-a", "refresh-b"]}, expect=201)
    assert [b["oauth_client_id"] for b in both["mailboxes"]] == ["client-1", "client-1"]
    with api.service.db.read() as session:
        boxes = api.service.connections.get(session, both["id"]).mailboxes
        assert [api.service.secrets.decrypt(b.oauth_refresh_token_enc) for b in boxes] == ["refresh-a", "refresh-b"]


def test_password_and_oauth_mailboxes_cannot_share_a_connection(api: Api) -> None:
    mixed = {**BODY, **OAUTH, "name": "Mixed"}
    detail = refused(api, mixed)
    assert detail["field"] == "password"
    assert "cannot share a connection" in detail["detail"]
    stray = refused(api, {**BODY, "oauth_refresh_token": "refresh-1"})
    assert stray["field"] == "oauth_enabled"
    assert refused(api, {**BODY, "password": None})["field"] == "password"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"response_delay_max": 172_801}, "response_delay_max", "outside"),
        ({"response_delay_min": -1}, "response_delay_min", "outside"),
        ({"response_delay_min": 60, "response_delay_max": 30}, "response_delay_min", "larger"),
        ({"delete_after_import": True}, "delete_after_import", "pop3 only"),
        ({"pop3_server": "pop.example.test"}, "pop3_server", "pop3 only"),
        ({"reply_to": "nobody"}, "reply_to", "not an email address"),
        ({"sendgrid_api_url": "ftp://x"}, "sendgrid_api_url", "not an http"),
        ({"mode": "carrier-pigeon"}, "mode", ""),
    ],
)
def test_more_bad_settings_are_refused_with_the_field_named(
    api: Api, change: dict[str, Any], field: str, words: str
) -> None:
    detail = refused(api, {**BODY, **change})
    assert field in str(detail)
    assert words in str(detail)


def test_a_minimum_delay_alone_is_the_delay(api: Api) -> None:
    created = api.post("/connections", {**BODY, "response_delay_min": 30}, expect=201)
    assert (created["response_delay_min"], created["response_delay_max"]) == (30, 30)


def test_a_default_port_follows_a_changed_encryption_and_a_chosen_port_stays(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    # A new encryption is a new destination for the password: it is given again (test_connection_secrets).
    change = {"imap_encryption": "starttls", "password": "pw-again"}
    changed = api.client.patch(f"/api/v1/connections/{created['id']}", json=change).json()
    assert changed["imap_port"] == 143
    custom = api.post("/connections", {**BODY, "name": "Custom", "imap_port": 1993}, expect=201)
    kept = api.client.patch(f"/api/v1/connections/{custom['id']}", json=change).json()
    assert kept["imap_port"] == 1993


def test_a_display_name_with_a_comma_stays_whole_for_one_mailbox(api: Api) -> None:
    created = api.post("/connections", {**BODY, "email_name": "Acme, Inc. Support"}, expect=201)
    assert created["mailboxes"][0]["email_name"] == "Acme, Inc. Support"


def stored_box(api: Api, connection_id: int) -> Any:
    with api.service.db.read() as session:
        return api.service.connections.get(session, connection_id).mailboxes[0]


def test_a_null_removes_the_smtp_password_and_the_mask_keeps_it(api: Api) -> None:
    created = api.post("/connections", {**BODY, "smtp_password": "smtp-only"}, expect=201)
    path = f"/api/v1/connections/{created['id']}"

    kept = api.client.patch(path, json={"smtp_password": "********", "password": "********"})
    assert kept.status_code == 200, kept.text
    assert api.service.secrets.decrypt(stored_box(api, created["id"]).smtp_password_enc) == "smtp-only"

    removed = api.client.patch(path, json={"smtp_password": None})
    assert removed.status_code == 200, removed.text
    assert removed.json()["smtp_password"] == ""
    box = stored_box(api, created["id"])
    assert box.smtp_password_enc == ""  # SMTP signs in with the IMAP password again
    assert api.service.secrets.decrypt(box.password_enc) == "s3cret-pass"


def test_a_required_secret_cannot_be_removed(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    response = api.client.patch(f"/api/v1/connections/{created['id']}", json={"password": None})
    assert response.status_code == 422, response.text
    assert "password" in response.text


def test_switching_to_oauth_drops_the_passwords_and_back_drops_the_grant(api: Api) -> None:
    created = api.post("/connections", {**BODY, "smtp_password": "smtp-only"}, expect=201)
    path = f"/api/v1/connections/{created['id']}"

    to_oauth = api.client.patch(path, json=OAUTH)
    assert to_oauth.status_code == 200, to_oauth.text
    box = stored_box(api, created["id"])
    assert (box.password_enc, box.smtp_password_enc) == ("", "")
    assert api.service.secrets.decrypt(box.oauth_refresh_token_enc) == "refresh-1"

    back = api.client.patch(path, json={"oauth_enabled": False, "password": "new-pass"})
    assert back.status_code == 200, back.text
    box = stored_box(api, created["id"])
    assert (box.oauth_client_id, box.oauth_client_secret_enc, box.oauth_refresh_token_enc) == ("", "", "")
    assert box.oauth_access_token_enc == ""
    assert api.service.secrets.decrypt(box.password_enc) == "new-pass"


def test_switching_back_to_passwords_needs_one(api: Api) -> None:
    created = api.post("/connections", {**BODY, "password": None, **OAUTH}, expect=201)
    response = api.client.patch(f"/api/v1/connections/{created['id']}", json={"oauth_enabled": False})
    assert response.status_code == 422, response.text
    assert "password" in response.text
