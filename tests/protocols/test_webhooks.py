"""Inbound webhooks: SendGrid Inbound Parse and Mailgun routes, signed, unsigned and forged.

The payload parsing and signature checks are tried directly on request bytes that httpx encodes as the
providers do; the endpoints are driven over HTTP (FastAPI's TestClient) against a real Postroom process,
and a signed post must end as a raw message of the right mailbox (and, with workers, a conversation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets as random
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from postroom.api.app import create_app
from postroom.api.routes import inbound
from postroom.channels.inbound import WebhookReplays
from postroom.errors import InvalidSetting, MalformedWebhook, WebhookSignatureInvalid, WebhookTooLarge
from postroom.helpdesk.connections import ConnectionInput
from postroom.service import Service
from postroom.sources.webhooks import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    load_sendgrid_key,
    mailgun_replay_key,
    parse_form,
    parse_mailgun,
    parse_sendgrid,
    sendgrid_replay_key,
    verify_mailgun,
    verify_sendgrid,
)
from postroom.store.db import Database
from postroom.store.models import Connection, Conversation, Mailbox, RawBody, RawMessage, WebhookReplay, utcnow
from postroom.testing.mails import make_mail
from support import wait_until

MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
ADDRESSES = "support@company.example, sales@company.example"


# ── what the providers send ────────────────────────────────────────────────────────────────────


class SendGridSigner:
    """SendGrid's side of a signed Inbound Parse webhook: an ECDSA P-256 key pair."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()  # as SendGrid shows it

    def headers(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        stamp = timestamp or str(int(time.time()))
        signature = self.private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {SENDGRID_SIGNATURE_HEADER: base64.b64encode(signature).decode(), SENDGRID_TIMESTAMP_HEADER: stamp}


def form(fields: dict[str, str | bytes], *, urlencoded: bool = False) -> tuple[bytes, str]:
    """A form body and its Content-Type, encoded by httpx the way a provider's client encodes it."""
    if urlencoded:
        # URL encoding carries text: the (UTF-8) mail is percent-encoded as such.
        text = {k: v.decode() if isinstance(v, bytes) else v for k, v in fields.items()}
        request = httpx.Request("POST", "http://provider.test/", data=text)
    else:
        # Every field a form-data part, without filename (the way SendGrid sends the "email" field).
        request = httpx.Request("POST", "http://provider.test/", files={k: (None, v) for k, v in fields.items()})
    return request.read(), request.headers["content-type"]


def sendgrid_form(raw: bytes, to: list[str], sender: str = "ada@customer.example") -> tuple[bytes, str]:
    return form(
        {
            "email": raw,
            "to": ", ".join(to),
            "from": f"Ada <{sender}>",
            "envelope": json.dumps({"to": to, "from": sender}),
            "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8"}),
            "sender_ip": "192.0.2.10",
        }
    )


def mailgun_fields(
    raw: bytes | None, *, key: str = MAILGUN_KEY, timestamp: str | None = None, token: str | None = None
) -> dict[str, str | bytes]:
    stamp = timestamp or str(int(time.time()))
    token = token or random.token_hex(25)
    fields: dict[str, str | bytes] = {
        "recipient": "sales@company.example",
        "sender": "ada@customer.example",
        "timestamp": stamp,
        "token": token,
        "signature": hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest(),
    }
    if raw is not None:
        fields["body-mime"] = raw
    return fields


# ── parsing and signatures, without HTTP ───────────────────────────────────────────────────────


def test_sendgrid_raw_post_is_parsed_to_the_mail_and_its_envelope() -> None:
    raw = make_mail(to="support@company.example") + b"\r\n\xc3\xa9 8-bit stays as it came\r\n"
    body, content_type = sendgrid_form(raw, ["sales@company.example"])

    mail = parse_sendgrid(body, content_type, 1_000_000)

    assert mail.raw == raw
    assert mail.recipients == ("sales@company.example",)
    assert mail.envelope_from == "ada@customer.example"


def test_sendgrid_without_envelope_falls_back_to_to_and_refuses_parsed_mode() -> None:
    body, content_type = form({"email": make_mail(), "to": "Support <support@company.example>"})
    assert parse_sendgrid(body, content_type, 1_000_000).recipients == ("support@company.example",)

    # "POST the raw, full MIME message" off: SendGrid sends text/html/attachments fields, no "email".
    body, content_type = form({"text": "hello", "to": "support@company.example"})
    with pytest.raises(MalformedWebhook, match="raw, full MIME"):
        parse_sendgrid(body, content_type, 1_000_000)
    with pytest.raises(MalformedWebhook, match="expected a form"):
        parse_sendgrid(b"{}", "application/json", 1_000_000)
    with pytest.raises(MalformedWebhook, match="boundary"):
        parse_sendgrid(body, "multipart/form-data", 1_000_000)
    with pytest.raises(WebhookTooLarge):
        parse_sendgrid(*sendgrid_form(make_mail(body="x" * 2000), ["a@b.example"]), 1000)


def test_sendgrid_signature_signed_unsigned_forged_tampered_and_wrong_key() -> None:
    signer = SendGridSigner()
    body, _ = sendgrid_form(make_mail(), ["support@company.example"])
    headers = signer.headers(body)
    signature, stamp = headers[SENDGRID_SIGNATURE_HEADER], headers[SENDGRID_TIMESTAMP_HEADER]

    verify_sendgrid(signer.public_key, body, signature, stamp)
    pem = load_sendgrid_key(signer.public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verify_sendgrid(pem.decode(), body, signature, stamp)

    with pytest.raises(WebhookSignatureInvalid, match="unsigned"):
        verify_sendgrid(signer.public_key, body, None, None)
    forged = SendGridSigner().headers(body, stamp)[SENDGRID_SIGNATURE_HEADER]
    with pytest.raises(WebhookSignatureInvalid, match="does not match"):
        verify_sendgrid(signer.public_key, body, forged, stamp)
    with pytest.raises(WebhookSignatureInvalid):
        verify_sendgrid(signer.public_key, body + b"x", signature, stamp)
    with pytest.raises(WebhookSignatureInvalid):
        verify_sendgrid(signer.public_key, body, signature, str(int(stamp) + 1))
    with pytest.raises(WebhookSignatureInvalid):
        verify_sendgrid(signer.public_key, body, "not base64!", stamp)
    with pytest.raises(WebhookSignatureInvalid, match="away from our clock"):
        verify_sendgrid(signer.public_key, body, signature, stamp, now=int(stamp) + 3600, max_age=900)
    # The window applies by default and either way (a clock ahead of ours is as suspect as one behind).
    with pytest.raises(WebhookSignatureInvalid, match="away from our clock"):
        verify_sendgrid(signer.public_key, body, signature, stamp, now=int(stamp) + 16 * 60)
    with pytest.raises(WebhookSignatureInvalid, match="away from our clock"):
        verify_sendgrid(signer.public_key, body, signature, stamp, now=int(stamp) - 16 * 60)
    nan_headers = signer.headers(body, "nan")
    with pytest.raises(WebhookSignatureInvalid, match="away from our clock"):
        verify_sendgrid(signer.public_key, body, nan_headers[SENDGRID_SIGNATURE_HEADER], "nan")

    with pytest.raises(InvalidSetting):
        verify_sendgrid("bm90IGEga2V5", body, signature, stamp)
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    other_curve = base64.b64encode(
        p384.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    with pytest.raises(InvalidSetting, match="P-256"):
        verify_sendgrid(other_curve, body, signature, stamp)


@pytest.mark.parametrize("urlencoded", [False, True])
def test_mailgun_post_parsed_and_verified(urlencoded: bool) -> None:
    raw = make_mail(to="support@company.example")
    now = time.time()
    post = parse_mailgun(*form(mailgun_fields(raw), urlencoded=urlencoded))

    verify_mailgun(MAILGUN_KEY, post.timestamp, post.token, post.signature, now=now)
    mail = post.mail(1_000_000)

    assert mail.raw == raw
    assert mail.recipients == ("sales@company.example",)
    assert mail.envelope_from == "ada@customer.example"


def test_mailgun_signature_forged_stale_and_unsigned() -> None:
    now = time.time()
    post = parse_mailgun(*form(mailgun_fields(make_mail(), key="another-key")))
    with pytest.raises(WebhookSignatureInvalid, match="does not match"):
        verify_mailgun(MAILGUN_KEY, post.timestamp, post.token, post.signature, now=now)

    stale = parse_mailgun(*form(mailgun_fields(make_mail(), timestamp=str(int(now) - 16 * 60))))
    with pytest.raises(WebhookSignatureInvalid, match="away from our clock"):
        verify_mailgun(MAILGUN_KEY, stale.timestamp, stale.token, stale.signature, now=now)

    with pytest.raises(WebhookSignatureInvalid, match="unsigned"):
        verify_mailgun(MAILGUN_KEY, None, "token", "signature")
    with pytest.raises(InvalidSetting):
        verify_mailgun("", post.timestamp, post.token, post.signature)

    # A route URL that does not end in "mime" gets parsed fields and no body-mime.
    parsed_mode = parse_mailgun(*form(mailgun_fields(None)))
    with pytest.raises(MalformedWebhook, match="mime"):
        parsed_mode.mail(1_000_000)


def test_replay_keys_name_the_proof_and_fit_the_table() -> None:
    signer = SendGridSigner()
    body = b"the body"
    signature = signer.headers(body, "1700000000")[SENDGRID_SIGNATURE_HEADER]
    # ECDSA is malleable: (r, n - s) verifies as well, so a replay under that twin must meet the same key.
    r, s_value = decode_dss_signature(base64.b64decode(signature))
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    twin = base64.b64encode(encode_dss_signature(r, order - s_value)).decode()
    verify_sendgrid(signer.public_key, body, twin, "1700000000", now=1700000000)

    assert sendgrid_replay_key(twin) == sendgrid_replay_key(signature)
    assert sendgrid_replay_key(signature).key.startswith("sendgrid:")
    assert sendgrid_replay_key(signer.headers(body, "1700000000")[SENDGRID_SIGNATURE_HEADER]) != sendgrid_replay_key(
        signature
    )
    token = random.token_hex(25)
    assert mailgun_replay_key(token).key == f"mailgun:{token}"
    long = mailgun_replay_key("t" * 500)
    assert len(long.key) <= 200 and long.key.startswith("mailgun:sha256:")
    assert all(len(k.key) <= 200 for k in (sendgrid_replay_key(signature), long))


def test_replay_keys_are_claimed_once_in_the_database_and_kept_twice_the_window(db: Database) -> None:
    # Two objects on one database stand for two processes (or one before and after a restart).
    first, second = WebhookReplays(db, max_age=60), WebhookReplays(db, max_age=60)
    key = mailgun_replay_key(random.token_hex(25))

    with db.write() as session:
        first.claim(session, key)
    with pytest.raises(WebhookSignatureInvalid, match="token was used before"), db.write() as session:
        second.claim(session, key)

    # A claim whose transaction fails (the mail could not be stored) leaves the key unused.
    other = mailgun_replay_key(random.token_hex(25))
    with pytest.raises(RuntimeError), db.write() as session:
        second.claim(session, other)
        raise RuntimeError("the store failed")
    with db.write() as session:
        first.claim(session, other)

    # Pruning drops keys older than twice the window (a post stamped a window ahead stays valid until a
    # window behind), and keeps younger ones; it runs at most once per interval unless forced.
    with db.write() as session:
        session.execute(insert(WebhookReplay), [{"key": "mailgun:old", "seen_at": utcnow() - timedelta(seconds=121)}])
        session.execute(insert(WebhookReplay), [{"key": "mailgun:young", "seen_at": utcnow() - timedelta(seconds=100)}])
    assert first.prune() == 1
    assert first.prune() == 0
    with db.read() as session:
        assert set(session.scalars(select(WebhookReplay.key))) == {key.key, other.key, "mailgun:young"}


def test_form_fields_keep_binary_values_and_skip_parts_without_a_name() -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="email"\r\n\r\n'.encode()
        + b"\x00\xff\r\nbinary\r\n"
        + f"\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n".encode()
        + f'--{boundary}\r\nContent-Disposition: form-data; name="to"\r\n\r\nx@y.example\r\n--{boundary}--\r\n'.encode()
    )
    fields = parse_form("sendgrid", body, f'multipart/form-data; boundary="{boundary}"')

    assert fields.fields == (("email", b"\x00\xff\r\nbinary\r\n"), ("to", b"x@y.example"))


# ── the HTTP endpoints on a real Postroom process ──────────────────────────────────────────────


def app_for(service: Service) -> FastAPI:
    app = create_app(service)
    paths = {getattr(route, "path", "") for route in app.routes}
    if "/api/v1/inbound/sendgrid/{key}" not in paths:
        # Until the lead mounts the router in api/app.py, mount it the way it will be: no bearer token.
        app.include_router(inbound.router, prefix="/api/v1")
    return app


def webhook_connection(service: Service, provider: str, signing_key: str, name: str | None = None) -> str:
    with service.db.write() as session:
        connection = service.connections.create(
            session,
            ConnectionInput(
                name=name or f"{provider} inbound",
                mode="webhook",
                webhook_provider=provider,  # type: ignore[arg-type]
                webhook_signing_key=signing_key,
                address=ADDRESSES,
                smtp_server="127.0.0.1",
            ),
        )
        assert connection.inbound_key is not None
        return connection.inbound_key


def stored(service: Service) -> list[tuple[str, str, str, bytes]]:
    """(origin, mailbox address, dedupe key, bytes) of every raw message."""
    with service.db.read() as session:
        rows = session.execute(
            select(RawMessage.origin, Mailbox.address, RawMessage.dedupe_key, RawBody.data)
            .join(Mailbox, Mailbox.id == RawMessage.mailbox_id)
            .join(RawBody, RawBody.raw_id == RawMessage.id)
            .order_by(RawMessage.id)
        ).all()
    return [(r.origin, r.address, r.dedupe_key, r.data) for r in rows]


@pytest.fixture
def quiet_service(make_service: Callable[..., Service]) -> Service:
    # No workers: these tests look at what is stored, before the pipeline would process it.
    return make_service(start=False)


@pytest.fixture
def http(quiet_service: Service) -> TestClient:
    return TestClient(app_for(quiet_service))


def test_sendgrid_signed_post_is_stored_once_on_the_envelope_mailbox(quiet_service: Service, http: TestClient) -> None:
    signer = SendGridSigner()
    key = webhook_connection(quiet_service, "sendgrid", signer.public_key)
    raw = make_mail(to="support@company.example", message_id="sg-1@customer.example")
    body, content_type = sendgrid_form(raw, ["sales@company.example"])

    first = http.post(
        f"/api/v1/inbound/sendgrid/{key}", content=body, headers={"content-type": content_type, **signer.headers(body)}
    )
    # SendGrid retries the same mail (say our first 200 was lost on the way): stored once all the same.
    again = http.post(
        f"/api/v1/inbound/sendgrid/{key}", content=body, headers={"content-type": content_type, **signer.headers(body)}
    )

    assert first.status_code == 200, first.text
    assert first.json()["status"] == "stored"
    assert again.status_code == 200 and again.json() == first.json()
    assert stored(quiet_service) == [("webhook", "sales@company.example", "mid:sg-1@customer.example", raw)]


def test_sendgrid_unsigned_forged_and_unknown_posts_are_refused(quiet_service: Service, http: TestClient) -> None:
    signer = SendGridSigner()
    key = webhook_connection(quiet_service, "sendgrid", signer.public_key)
    mailgun_key = webhook_connection(quiet_service, "mailgun", MAILGUN_KEY)
    body, content_type = sendgrid_form(make_mail(), ["support@company.example"])
    url = f"/api/v1/inbound/sendgrid/{key}"

    unsigned = http.post(url, content=body, headers={"content-type": content_type})
    forged = http.post(url, content=body, headers={"content-type": content_type, **SendGridSigner().headers(body)})
    tampered = http.post(
        url,
        content=body.replace(b"arrived", b"ARRIVED"),
        headers={"content-type": content_type, **signer.headers(body)},
    )
    unknown = http.post(
        "/api/v1/inbound/sendgrid/0123456789abcdef01234567",
        content=body,
        headers={"content-type": content_type, **signer.headers(body)},
    )
    other_provider = http.post(
        f"/api/v1/inbound/sendgrid/{mailgun_key}",
        content=body,
        headers={"content-type": content_type, **signer.headers(body)},
    )

    assert (unsigned.status_code, forged.status_code, tampered.status_code) == (401, 401, 401)
    assert "unsigned" in unsigned.json()["detail"]
    assert "does not match" in forged.json()["detail"]
    assert (unknown.status_code, other_provider.status_code) == (404, 404)
    assert unknown.json() == other_provider.json()
    # No bearer token was asked for, and nothing was stored.
    assert stored(quiet_service) == []


def test_sendgrid_posts_outside_the_window_and_replays_are_refused(quiet_service: Service, http: TestClient) -> None:
    signer = SendGridSigner()
    key = webhook_connection(quiet_service, "sendgrid", signer.public_key)
    url = f"/api/v1/inbound/sendgrid/{key}"
    window = quiet_service.settings.webhook_max_age_seconds
    body, content_type = sendgrid_form(make_mail(message_id="sg-old@customer.example"), ["support@company.example"])

    def post(headers: dict[str, str]) -> httpx.Response:
        return http.post(url, content=body, headers={"content-type": content_type, **headers})

    # Correctly signed, but signed too long ago (or too far ahead): a captured post kept for later.
    old = post(signer.headers(body, str(int(time.time() - window - 60))))
    ahead = post(signer.headers(body, str(int(time.time() + window + 60))))
    fresh_headers = signer.headers(body)
    fresh = post(fresh_headers)
    # The very same post again: refused by its signature, not merely dropped as a known Message-ID.
    replayed = post(fresh_headers)

    assert (old.status_code, ahead.status_code) == (401, 401), (old.text, ahead.text)
    assert "away from our clock" in old.json()["detail"]
    assert fresh.status_code == 200, fresh.text
    assert replayed.status_code == 401 and "signature was used before" in replayed.json()["detail"]
    assert [row[2] for row in stored(quiet_service)] == ["mid:sg-old@customer.example"]


def test_sendgrid_bad_payload_400_and_oversized_413(quiet_service: Service, http: TestClient) -> None:
    signer = SendGridSigner()
    key = webhook_connection(quiet_service, "sendgrid", signer.public_key)
    url = f"/api/v1/inbound/sendgrid/{key}"
    parsed_mode, content_type = form({"text": "hello", "to": "support@company.example"})
    limit = quiet_service.settings.smtp_max_message_bytes
    huge = b"x" * (2 * limit + 2 * 1024 * 1024)

    bad = http.post(url, content=parsed_mode, headers={"content-type": content_type, **signer.headers(parsed_mode)})
    # Refused for its size before anything else is looked at (it is not even signed).
    too_big = http.post(url, content=huge, headers={"content-type": content_type})

    assert bad.status_code == 400 and "raw, full MIME" in bad.json()["detail"]
    assert too_big.status_code == 413
    assert stored(quiet_service) == []


def test_a_broken_stored_key_is_a_server_problem_not_the_callers(quiet_service: Service, http: TestClient) -> None:
    # A key is checked when it is saved; one stored before that check (or damaged since) is met here.
    key = webhook_connection(quiet_service, "sendgrid", SendGridSigner().public_key)
    with quiet_service.db.write() as session:
        session.execute(
            update(Connection)
            .where(Connection.inbound_key == key)
            .values(webhook_signing_key_enc=quiet_service.secrets.encrypt("this is not a public key"))
        )
    body, content_type = sendgrid_form(make_mail(), ["support@company.example"])

    response = http.post(
        f"/api/v1/inbound/sendgrid/{key}",
        content=body,
        headers={"content-type": content_type, **SendGridSigner().headers(body)},
    )

    # 5xx: SendGrid keeps the mail and retries while the admin fixes the key; the caller learns nothing.
    assert response.status_code == 503
    assert "key" not in response.json()["detail"]


@pytest.mark.parametrize("urlencoded", [False, True])
def test_mailgun_signed_post_is_stored_and_a_replayed_token_refused(
    quiet_service: Service, http: TestClient, urlencoded: bool
) -> None:
    key = webhook_connection(quiet_service, "mailgun", MAILGUN_KEY)
    raw = make_mail(to="support@company.example", message_id="mg-1@customer.example")
    body, content_type = form(mailgun_fields(raw), urlencoded=urlencoded)

    # Mailgun posts raw MIME only to a URL ending in "mime".
    response = http.post(f"/api/v1/inbound/mailgun/{key}/mime", content=body, headers={"content-type": content_type})
    replay = http.post(f"/api/v1/inbound/mailgun/{key}", content=body, headers={"content-type": content_type})

    assert response.status_code == 200, response.text
    assert replay.status_code == 401 and "used before" in replay.json()["detail"]
    assert stored(quiet_service) == [("webhook", "sales@company.example", "mid:mg-1@customer.example", raw)]


def test_mailgun_forged_stale_and_parsed_mode_posts_are_refused(quiet_service: Service, http: TestClient) -> None:
    key = webhook_connection(quiet_service, "mailgun", MAILGUN_KEY)
    url = f"/api/v1/inbound/mailgun/{key}"

    def post(fields: dict[str, str | bytes]) -> httpx.Response:
        body, content_type = form(fields)
        return http.post(url, content=body, headers={"content-type": content_type})

    forged = post(mailgun_fields(make_mail(), key="guessed-key"))
    stale = post(mailgun_fields(make_mail(), timestamp=str(int(time.time()) - 3600)))
    unsigned = post({"body-mime": make_mail(), "recipient": "support@company.example"})
    parsed_mode = post(mailgun_fields(None))
    # A post refused for its content does not use up its token: a corrected retry would be accepted.
    token = random.token_hex(25)
    first = post(mailgun_fields(None, token=token))

    assert [r.status_code for r in (forged, stale, unsigned)] == [401, 401, 401]
    assert parsed_mode.status_code == 400 and first.status_code == 400
    assert post(mailgun_fields(make_mail(), token=token)).status_code == 200
    assert len(stored(quiet_service)) == 1


def test_webhook_mail_becomes_a_conversation_on_the_right_mailbox(make_service: Callable[..., Service]) -> None:
    service = make_service()
    http = TestClient(app_for(service))
    signer = SendGridSigner()
    key = webhook_connection(service, "sendgrid", signer.public_key)
    raw = make_mail("Where is my parcel?", to="sales@company.example")
    body, content_type = sendgrid_form(raw, ["sales@company.example"])

    response = http.post(
        f"/api/v1/inbound/sendgrid/{key}", content=body, headers={"content-type": content_type, **signer.headers(body)}
    )
    assert response.status_code == 200, response.text

    def conversations() -> list[Any]:
        with service.db.read() as session:
            return list(session.execute(select(Conversation.subject, Mailbox.address).join(Mailbox)).all())

    assert wait_until(conversations, timeout=10) == [("Where is my parcel?", "sales@company.example")]
