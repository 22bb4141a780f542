"""One test per outgoing setting of a connection, proving that the setting changes what is sent.

Whole Postroom processes send through real aiosmtpd servers (and file into a real Dovecot); each test
compares connections with the setting on and off, or with two values, and asserts on what the SMTP
server received: the session's encryption, the headers and bodies, the moment it arrived.

Where each connection setting is proven (``tests/integration`` unless a path says otherwise):

========================================== ============================================================
setting                                    test
========================================== ============================================================
mode imap / pop3 / forwarding / webhook    test_imap_to_conversations, test_pop3_connection,
                                           test_forwarding, protocols/test_webhooks
outbound smtp / sendgrid                   test_outbox_transports (SendGrid replies, nothing over SMTP)
address (several)                          test_setting_effects: several_addresses_each_answer_from_…
password                                   test_imap_to_conversations: bad_settings (wrong-password)
username                                   test_setting_effects: username_is_the_sign_in_name_…
imap_server/imap_port                      every IMAP test; bad_settings (wrong-imap-port)
imap_encryption, pop3_encryption           test_setting_effects: incoming_encryption_decides_…
pop3_server/pop3_port                      test_pop3_connection
delete_after_import                        test_pop3_connection (kept by default, deleted when on)
validate_certificate                       test_setting_effects: validate_certificate_refuses_…
imap_mailbox                               test_setting_effects: imap_mailbox_reads_that_folder_…
smtp_server/smtp_port                      every reply test; bad_settings (wrong-smtp-port)
smtp_encryption (auto by port)             here: smtp_encryption_auto_follows_the_port
smtp_username/smtp_password                test_setting_effects: smtp_username_and_password_…
save_to_sent                               test_outbox_transports: reply_over_smtp_is_…_filed, save_to_sent_off
sent_folder                                here: sent_folder_names_the_folder_…
email_name                                 test_imap_to_conversations: reply_is_threaded (From name)
reply_to                                   here: reply_to_is_the_reply_to_of_replies
smtp_signature (plain, placeholders)       test_imap_to_conversations: reply_is_threaded
smtp_signature (HTML)                      here: an_html_signature_…
message_content_type                       test_outbox: html_content_type_sends_both_alternatives
check_interval                             test_setting_effects: check_interval_is_how_often_…
mark_as_read                               test_imap_to_conversations: imported_mail_is_marked_seen_…
unread_only                                test_setting_effects: unread_only_leaves_mail_…
max_attachment_bytes                       test_setting_effects: max_attachment_bytes_skips_…
response_delay_min/max                     here: response_delay_holds_the_mail_…
env                                        test_setting_effects: env_takes_the_seed_variable_names_…
========================================== ============================================================
"""

from __future__ import annotations

import email
import errno
import os
import secrets
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.smtp import SmtpMode, SmtpTestServer
from support import Api, connection_body, wait_until

_ENCRYPTION = {"plain": "none", "starttls": "starttls", "ssl": "ssl"}


# ── helpers ────────────────────────────────────────────────────────────────────────────────────


def forwarding_body(smtp: SmtpTestServer, **overrides: Any) -> dict[str, Any]:
    """A connection that only sends (mail would come in through the SMTP listener): no IMAP needed."""
    address = f"desk-{secrets.token_hex(4)}@postroom.test"
    password = secrets.token_urlsafe(12)
    smtp.add_user(address, password)
    body: dict[str, Any] = {
        "name": f"Desk {address}",
        "mode": "forwarding",
        "address": address,
        "password": password,
        "smtp_server": smtp.host,
        "smtp_port": smtp.port,
        "smtp_encryption": _ENCRYPTION[smtp.mode],
    }
    body.update(overrides)
    return body


def start(api: Api, body: dict[str, Any]) -> int:
    created = api.post("/connections", body, expect=201)
    api.post(f"/connections/{created['id']}/start")
    api.wait_status(created["id"], "RUNNING")
    return int(created["id"])


def write_first(api: Api, connection_id: int, text: str = "Hello there.", author: str = "Alice") -> dict[str, Any]:
    """The agent writes first (POST /conversations); returns the new conversation."""
    body = {"connection_id": connection_id, "to": "Cy <cy@customer.example>", "subject": "News", "text": text}
    conversation: dict[str, Any] = api.post("/conversations", {**body, "author": author}, expect=201)
    return conversation


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body((subtype,))
    assert body is not None, f"no text/{subtype} part"
    return str(body.get_content())


def last_message(api: Api, conversation_id: int) -> dict[str, Any]:
    message: dict[str, Any] = api.get(f"/conversations/{conversation_id}")["messages"][-1]
    return message


def folder_raws(dovecot: DovecotServer, user: MailUser, folder: str) -> list[bytes]:
    with dovecot.imap(user) as client:
        client.select_folder(folder, readonly=True)
        response = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
    return [bytes(data[b"BODY[]"]) for _, data in sorted(response.items())]


def imap_conversation(
    api: Api, dovecot: DovecotServer, user: MailUser, smtp: SmtpTestServer, **settings: Any
) -> dict[str, Any]:
    """A running IMAP connection for ``user`` and the conversation a customer's mail opened on it."""
    connection_id = start(api, connection_body(dovecot, user, smtp, **settings))
    dovecot.append(user, make_mail("Invoice question", sender="Cy <cy@customer.example>"))
    conversation: dict[str, Any] = wait_until(lambda: api.conversations(connection_id=connection_id))[0]
    return conversation


# ── how the SMTP session is secured ────────────────────────────────────────────────────────────


def _server_on(make: Callable[..., SmtpTestServer], mode: SmtpMode, port: int) -> SmtpTestServer:
    # 127.0.0.2 is loopback too and in the test certificate; nothing else binds the submission ports
    # there (the transport tests use 127.0.0.1), so parallel workers do not collide.
    try:
        return make(mode, host=DovecotServer.untrusted_host, port=port, auth_required=True)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            pytest.skip(f"port {port} on 127.0.0.2 is in use on this machine")
        raise


def test_smtp_encryption_auto_follows_the_port(api: Api, make_smtp_server: Callable[..., SmtpTestServer]) -> None:
    if os.geteuid() != 0:
        pytest.skip("binding ports 25, 465 and 587 needs root")
    servers = {
        587: _server_on(make_smtp_server, "starttls", 587),  # RFC 6409 submission + STARTTLS (RFC 3207)
        465: _server_on(make_smtp_server, "ssl", 465),  # RFC 8314 implicit TLS
        25: _server_on(make_smtp_server, "plain", 25),
    }
    ids = {}
    for port, server in servers.items():
        body = forwarding_body(server)
        del body["smtp_encryption"]  # the default, "auto"
        ids[port] = start(api, body)
        assert api.get(f"/connections/{ids[port]}")["smtp_encryption"] == "auto"
    # The same submission port with encryption "none" never upgrades, and this server insists on it.
    forced = forwarding_body(servers[587], smtp_encryption="none")
    created = api.post("/connections", forced, expect=201)
    api.post(f"/connections/{created['id']}/start")
    refused = api.wait_status(created["id"], "ERROR")["status_message"]
    assert refused.startswith(f"SMTP {forced['address']}: ")

    for connection_id in ids.values():
        write_first(api, connection_id)
    received = {port: server.wait_for(1)[0] for port, server in servers.items()}
    assert received[587].tls is True
    assert received[465].tls is True
    assert received[25].tls is False
    assert all(r.login is not None for r in received.values())


# ── what the mail says ─────────────────────────────────────────────────────────────────────────


def test_reply_to_is_the_reply_to_of_replies(api: Api, dovecot: DovecotServer, smtp_server: SmtpTestServer) -> None:
    with_reply_to, without = dovecot.add_user(), dovecot.add_user()
    first = imap_conversation(api, dovecot, with_reply_to, smtp_server, reply_to="answers@example.test")
    second = imap_conversation(api, dovecot, without, smtp_server)
    api.post(f"/conversations/{first['id']}/messages", {"text": "Answer elsewhere."}, 201)
    api.post(f"/conversations/{second['id']}/messages", {"text": "Answer here."}, 201)

    sent = {m.envelope_from: parsed(m.raw) for m in smtp_server.wait_for(2)}
    assert sent[with_reply_to.address]["Reply-To"] == "answers@example.test"
    # The reply still comes from the mailbox; only where answers go changes.
    assert sent[with_reply_to.address]["From"].addresses[0].addr_spec == with_reply_to.address
    assert sent[without.address]["Reply-To"] is None
    assert last_message(api, first["id"])["reply_to"] == [{"email": "answers@example.test", "name": ""}]


def test_an_html_signature_is_html_in_html_mail_and_text_in_plain_mail(api: Api, smtp_server: SmtpTestServer) -> None:
    signature = '<p>Regards, <b>{{ sender_name }}</b><br><a href="mailto:{{ sender_email }}">write to us</a></p>'
    html = start(api, forwarding_body(smtp_server, smtp_signature=signature, message_content_type="text/html"))
    plain = start(api, forwarding_body(smtp_server, smtp_signature=signature))
    bare = start(api, forwarding_body(smtp_server))
    addresses = {}
    for connection_id in (html, plain, bare):
        addresses[connection_id] = api.get(f"/connections/{connection_id}")["address"]
        write_first(api, connection_id, "See you.", author="Ann & Bo")
    sent = {m.envelope_from: parsed(m.raw) for m in smtp_server.wait_for(3)}

    rich = sent[addresses[html]]
    assert rich.get_content_type() == "multipart/alternative"
    rich_html = part(rich, "html")
    # The placeholders are filled, escaped for HTML, and the signature's markup is kept.
    assert "<b>Ann &amp; Bo</b>" in rich_html
    assert f'href="mailto:{addresses[html]}"' in rich_html
    rich_text = part(rich, "plain")
    assert "Ann & Bo" in rich_text
    assert "<b>" not in rich_text

    text_only = sent[addresses[plain]]
    assert text_only.get_content_type() == "text/plain"
    body = part(text_only, "plain")
    # RFC 3676 §4.3 separator, then the signature as text: no tags, placeholders filled.
    assert "See you.\n\n-- \nRegards, Ann & Bo" in body.replace("\r\n", "\n")
    assert "<" not in body

    unsigned = part(sent[addresses[bare]], "plain")
    assert "-- " not in unsigned
    assert unsigned.strip() == "See you."


# ── when it goes out ───────────────────────────────────────────────────────────────────────────


def test_response_delay_holds_the_mail_in_the_outbox_until_it_is_due(api: Api, smtp_server: SmtpTestServer) -> None:
    delayed = start(api, forwarding_body(smtp_server, response_delay_min=2.0, response_delay_max=2.5))
    instant = start(api, forwarding_body(smtp_server))
    delayed_from = api.get(f"/connections/{delayed}")["address"]

    queued_at = time.monotonic()
    held = write_first(api, delayed)
    write_first(api, instant)
    [first] = smtp_server.wait_for(1)
    assert first.envelope_from != delayed_from
    assert time.monotonic() - queued_at < 1.5
    # While it waits, the reply is queued (not sending, not failed), and nothing went out for it.
    assert last_message(api, held["id"])["delivery_status"] == "queued"

    second = smtp_server.wait_for(2, timeout=6.0)[1]
    waited = time.monotonic() - queued_at
    assert second.envelope_from == delayed_from
    assert 2.0 <= waited < 3.5  # between min and max, plus an outbox poll and a loaded machine's slack
    wait_until(lambda: last_message(api, held["id"])["delivery_status"] == "sent")


# ── where the copy is filed ────────────────────────────────────────────────────────────────────


def test_sent_folder_names_the_folder_the_copy_is_filed_in(
    api: Api, dovecot: DovecotServer, smtp_server: SmtpTestServer
) -> None:
    named, default = dovecot.add_user(), dovecot.add_user()
    for user in (named, default):
        dovecot.create_folder(user, "Answered")
    first = imap_conversation(api, dovecot, named, smtp_server, sent_folder="Answered")
    second = imap_conversation(api, dovecot, default, smtp_server)
    api.post(f"/conversations/{first['id']}/messages", {"text": "Filed in Answered."}, 201)
    api.post(f"/conversations/{second['id']}/messages", {"text": "Filed in Sent."}, 201)
    delivered = {m.envelope_from: m.raw for m in smtp_server.wait_for(2)}

    assert wait_until(lambda: folder_raws(dovecot, named, "Answered"), timeout=10) == [delivered[named.address]]
    assert wait_until(lambda: folder_raws(dovecot, default, "Sent"), timeout=10) == [delivered[default.address]]
    # Each copy went to one folder only: the named one replaces the \Sent one (RFC 6154), it does not add to it.
    assert folder_raws(dovecot, named, "Sent") == []
    assert folder_raws(dovecot, default, "Answered") == []


def test_without_an_author_the_signature_names_the_mailbox_not_the_api_token(
    api: Api, smtp_server: SmtpTestServer
) -> None:
    body = forwarding_body(smtp_server, email_name="Example Support", smtp_signature="{{ sender_name }}")
    connection_id = start(api, body)
    # No author: an integration posting through the API without naming an agent.
    api.post(
        "/conversations",
        {"connection_id": connection_id, "to": "cy@customer.example", "subject": "News", "text": "Hi."},
        expect=201,
    )
    text = part(parsed(smtp_server.wait_for(1)[0].raw), "plain").replace("\r\n", "\n")
    signature = text.split("\n-- \n", 1)[1].strip()
    # support.Api's token is named "tests"; a customer must never see a token's name.
    assert signature == "Example Support"
