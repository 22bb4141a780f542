"""Webhook connections end to end: created through the API, posted to by "the provider", answered over SMTP.

A whole Postroom process driven through its API (FastAPI's TestClient). The providers cannot be reached
from a test, so the test plays their part exactly as documented: Mailgun signs ``timestamp + token`` with
HMAC-SHA256 under the domain's webhook signing key, SendGrid signs ``timestamp + body`` with ECDSA P-256
(a key pair generated here; the connection stores its public key). The SMTP peer is a real aiosmtpd
server that requires AUTH.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from postroom.service import Service
from postroom.sources.webhooks import SENDGRID_SIGNATURE_HEADER, SENDGRID_TIMESTAMP_HEADER
from postroom.store.models import Connection
from postroom.testing.mails import make_mail
from postroom.testing.sendgrid import SendgridTestServer
from postroom.testing.smtp import SmtpTestServer
from support import Api, wait_until

ADDRESS = "support@company.example"
MAILGUN_KEY = "key-" + secrets.token_hex(16)


class SendgridSigner:
    """SendGrid's side of a signed Inbound Parse webhook: an ECDSA P-256 key pair."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()  # base64 DER, as SendGrid shows it

    def headers(self, body: bytes) -> dict[str, str]:
        stamp = str(int(time.time()))
        signature = self.private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {SENDGRID_SIGNATURE_HEADER: base64.b64encode(signature).decode(), SENDGRID_TIMESTAMP_HEADER: stamp}


def multipart(fields: dict[str, str | bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body (every field a part without filename, as both providers post) and its type."""
    request = httpx.Request("POST", "http://provider.test/", files={k: (None, v) for k, v in fields.items()})
    return request.read(), request.headers["content-type"]


def sendgrid_post(raw: bytes) -> tuple[bytes, str]:
    """SendGrid Inbound Parse with "POST the raw, full MIME message": the mail in ``email``, the envelope as JSON."""
    return multipart(
        {"email": raw, "to": ADDRESS, "envelope": json.dumps({"to": [ADDRESS], "from": "ada@customer.example"})}
    )


def mailgun_proof(key: str = MAILGUN_KEY) -> dict[str, str]:
    """What proves a Mailgun post's origin: a timestamp, a one-time token and their HMAC (not the body)."""
    stamp, token = str(int(time.time())), secrets.token_hex(25)
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": stamp, "token": token, "signature": signature}


def mailgun_post(raw: bytes, key: str = MAILGUN_KEY, proof: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A Mailgun route's forward() to a URL ending in "mime": the mail in ``body-mime``, signed."""
    return multipart(
        {"body-mime": raw, "recipient": ADDRESS, "sender": "ada@customer.example", **(proof or mailgun_proof(key))}
    )


def webhook_body(provider: str, signing_key: str, smtp: SmtpTestServer, **overrides: Any) -> dict[str, Any]:
    """A webhook connection whose mailbox sends over ``smtp``, which learns the mailbox's credentials."""
    password = secrets.token_urlsafe(12)
    smtp.add_user(ADDRESS, password)
    body: dict[str, Any] = {
        "name": f"{provider} inbound",
        "mode": "webhook",
        "address": ADDRESS,
        "password": password,
        "webhook_provider": provider,
        "webhook_signing_key": signing_key,
        "smtp_server": smtp.host,
        "smtp_port": smtp.port,
        "smtp_encryption": "none",
    }
    body.update(overrides)
    return body


def provider_client(api: Api) -> TestClient:
    """The same application without the admin's token: the provider's signature is the only authentication."""
    return TestClient(api.client.app)


def log_events(api: Api, connection_id: int) -> list[str]:
    return [entry["event"] for entry in api.items(f"/connections/{connection_id}/logs")]


def raw_count(api: Api) -> int:
    return len(api.items("/raw-messages"))


@pytest.mark.parametrize("provider", ["mailgun", "sendgrid"])
def test_a_signed_post_becomes_a_conversation_and_an_unsigned_one_is_refused(
    make_service: Callable[..., Service], smtp_server: SmtpTestServer, provider: str
) -> None:
    api = Api(make_service())
    signer = SendgridSigner()
    key = MAILGUN_KEY if provider == "mailgun" else signer.public_key
    created = api.post("/connections", webhook_body(provider, key, smtp_server), expect=201)
    path = created["webhook_path"]
    assert path.startswith(f"/api/v1/inbound/{provider}/")
    assert created["webhook_signing_key"] == "********"
    raw = make_mail("Parcel lost", sender="Ada <ada@customer.example>", to=ADDRESS)
    body, content_type = mailgun_post(raw) if provider == "mailgun" else sendgrid_post(raw)
    signature = signer.headers(body) if provider == "sendgrid" else {}
    http = provider_client(api)

    if provider == "mailgun":
        unsigned_body, unsigned_type = multipart({"body-mime": raw, "recipient": ADDRESS})
        unsigned = http.post(path, content=unsigned_body, headers={"content-type": unsigned_type})
    else:
        unsigned = http.post(path, content=body, headers={"content-type": content_type})
    assert unsigned.status_code == 401, unsigned.text
    assert "unsigned" in unsigned.json()["detail"]
    assert raw_count(api) == 0

    signed = http.post(path, content=body, headers={"content-type": content_type, **signature})
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "stored"

    # The connection was never started: posted mail is accepted and processed all the same.
    conversation = wait_until(lambda: api.conversations(connection_id=created["id"]), timeout=10)[0]
    assert conversation["subject"] == "Parcel lost"
    [stored] = api.items("/raw-messages")
    assert stored["origin"] == "webhook"


def test_a_mailgun_proof_replayed_with_another_mail_after_a_restart_is_refused(
    db_url: str,  # SQLite and PostgreSQL; before make_service, so that the schema outlives the services
    make_service: Callable[..., Service],
    smtp_server: SmtpTestServer,
) -> None:
    # Mailgun signs the timestamp and token, not the body: whoever captured a post holds a proof that
    # fits any mail until its token has been seen, by every process and across restarts.
    first = make_service(db_url)
    api = Api(first)
    created = api.post("/connections", webhook_body("mailgun", MAILGUN_KEY, smtp_server), expect=201)
    path = created["webhook_path"]
    proof = mailgun_proof()
    genuine, content_type = mailgun_post(make_mail("Parcel lost", sender="Ada <ada@customer.example>"), proof=proof)
    assert provider_client(api).post(path, content=genuine, headers={"content-type": content_type}).status_code == 200
    wait_until(lambda: api.conversations(connection_id=created["id"]), timeout=10)
    first.close()

    restarted = make_service(db_url, data_dir=first.settings.data_dir)
    api = Api(restarted)
    forged, content_type = mailgun_post(
        make_mail("Urgent: wire the money today", sender="CEO <ceo@bank.test>", to=ADDRESS), proof=proof
    )
    replayed = provider_client(api).post(path, content=forged, headers={"content-type": content_type})

    # 401 as for a forged signature: not Mailgun's own post, whose retries Mailgun gives up after 8 hours.
    assert replayed.status_code == 401, replayed.text
    assert "token was used before" in replayed.json()["detail"]
    assert raw_count(api) == 1
    assert [c["subject"] for c in api.conversations()] == ["Parcel lost"]
    # A new post, with its own token, still gets through after the restart.
    fresh, content_type = mailgun_post(make_mail("Still lost", sender="Ada <ada@customer.example>", to=ADDRESS))
    assert provider_client(api).post(path, content=fresh, headers={"content-type": content_type}).status_code == 200


def test_start_on_a_webhook_connection_checks_smtp_and_replies_go_out(
    db_url: str,  # SQLite and PostgreSQL; before make_service, so that the schema outlives the service
    make_service: Callable[..., Service],
    smtp_server: SmtpTestServer,
) -> None:
    api = Api(make_service(db_url))
    created = api.post("/connections", webhook_body("mailgun", MAILGUN_KEY, smtp_server), expect=201)
    connection_id = created["id"]

    api.post(f"/connections/{connection_id}/start")
    api.wait_status(connection_id, "RUNNING")

    # Nothing to read: Start signed in to SMTP only, with the mailbox's password.
    assert [(a.login, a.success) for a in smtp_server.handler.sign_ins] == [(ADDRESS, True)]
    entries = api.items(f"/connections/{connection_id}/logs")
    messages = [e["message"] for e in entries]
    assert "starting: signing in to 1 mailbox(es) over SMTP" in messages
    assert "running: mail arrives by webhook" in messages

    body, content_type = mailgun_post(make_mail("Refund?", sender="Bo <bo@customer.example>", to=ADDRESS))
    response = provider_client(api).post(created["webhook_path"], content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    conversation = wait_until(lambda: api.conversations(connection_id=connection_id), timeout=10)[0]
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Refunded, Bo."}, 201)

    [delivered] = smtp_server.wait_for(1, timeout=10)
    assert delivered.login == ADDRESS
    assert delivered.recipients == ("bo@customer.example",)
    wait_until(
        lambda: api.get(f"/conversations/{conversation['id']}")["messages"][-1]["delivery_status"] == "sent",
        timeout=10,
    )
    # A webhook mailbox has no IMAP folder to file the copy in: nothing is attempted, nothing fails.
    # (The "sent" line is written just after the status, so it is waited for too.)
    events = wait_until(lambda: "sent" in (e := log_events(api, connection_id)) and e)
    assert not any(event.startswith("sent_folder") for event in events)


def test_a_wrong_smtp_password_on_a_webhook_connection_stops_start(
    make_service: Callable[..., Service], smtp_server: SmtpTestServer
) -> None:
    api = Api(make_service())
    body = webhook_body("mailgun", MAILGUN_KEY, smtp_server)
    body["password"] = "not-the-password"
    created = api.post("/connections", body, expect=201)

    api.post(f"/connections/{created['id']}/start")
    failed = api.wait_status(created["id"], "ERROR")

    assert failed["status_message"].startswith(f"SMTP {ADDRESS}: authentication failed")
    assert "not-the-password" not in failed["status_message"]


def test_a_post_that_meets_an_unusable_stored_key_is_told_in_the_connection_log(
    make_service: Callable[..., Service], smtp_server: SmtpTestServer
) -> None:
    # A key saved before keys were checked on save: every post is 503, and the admin reads why in the
    # connection's log (QA: it was only on the service log), once, not once per post.
    service = make_service()
    api = Api(service)
    signer = SendgridSigner()
    created = api.post("/connections", webhook_body("sendgrid", signer.public_key, smtp_server), expect=201)
    with service.db.write() as session:
        row = session.get(Connection, created["id"])
        assert row is not None
        row.webhook_signing_key_enc = service.secrets.encrypt("not-a-key")
    body, content_type = sendgrid_post(make_mail("Lost", sender="Ada <ada@customer.example>", to=ADDRESS))
    http = provider_client(api)

    for _ in range(2):
        response = http.post(
            created["webhook_path"], content=body, headers={"content-type": content_type, **signer.headers(body)}
        )
        assert response.status_code == 503, response.text
        assert "not-a-key" not in response.text

    told = [e for e in api.items(f"/connections/{created['id']}/logs") if e["event"] == "webhook_misconfigured"]
    assert len(told) == 1, told
    assert told[0]["level"] == "error"
    assert told[0]["message"].startswith("SendGrid webhook: webhook_signing_key: is not a public key")
    assert raw_count(api) == 0


def test_start_of_two_mailboxes_over_sendgrid_names_both(
    make_service: Callable[..., Service], smtp_server: SmtpTestServer
) -> None:
    # QA: "signing in to 1 mailbox(es) over SendGrid" for two mailboxes, and errors named the first only.
    api = Api(make_service())
    addresses = f"{ADDRESS}, sales@company.example"
    with SendgridTestServer() as sendgrid_api:
        body = webhook_body(
            "mailgun",
            MAILGUN_KEY,
            smtp_server,
            address=addresses,
            outbound="sendgrid",
            sendgrid_api_key=sendgrid_api.api_key,
            sendgrid_api_url=sendgrid_api.url,
        )
        good = api.post("/connections", body, expect=201)
        bad = api.post(
            "/connections", {**body, "name": "wrong key", "sendgrid_api_key": "SG.wrong-key-123"}, expect=201
        )
        for created in (good, bad):
            api.post(f"/connections/{created['id']}/start")
        api.wait_status(good["id"], "RUNNING")
        failed = api.wait_status(bad["id"], "ERROR")
        url = sendgrid_api.url

    messages = [e["message"] for e in api.items(f"/connections/{good['id']}/logs")]
    assert "starting: signing in to 2 mailbox(es) over SendGrid" in messages
    assert f"SendGrid {ADDRESS}, sales@company.example: signed in to {url}" in messages
    assert failed["status_message"].startswith(f"SendGrid {ADDRESS}, sales@company.example: authentication failed")
