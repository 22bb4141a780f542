"""One test per incoming or sign-in setting of a connection, proving that the setting changes what happens.

Every test creates its connections through the API of a whole Postroom process, with the setting on and
off (or with two values), against real peers on loopback: Dovecot for IMAP and POP3, aiosmtpd for SMTP.
What is asserted is what the peers saw or what the mailbox became: which mail was imported, which login
the server was asked for, whether the session was encrypted, how soon a poll found new mail.

Settings proven elsewhere are not repeated here (see the table in ``test_setting_effects_outbound.py``);
the outgoing ones (Reply-To, signatures, response delay, SMTP encryption by port, Sent folder) are there.
"""

from __future__ import annotations

import base64
import email
import secrets
import time
from collections.abc import Callable
from email import policy
from typing import Any

import pytest

from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.smtp import SmtpTestServer
from support import Api, connection_body, wait_until

# A Dovecot user whose server announces no IDLE (passwd-file userdb field, see tests/dovecot/dovecot.conf.in):
# the source then finds new mail only by polling, every check_interval seconds.
NO_IDLE = {"imap_capability": "IMAP4rev1"}


# ── helpers ────────────────────────────────────────────────────────────────────────────────────


def create(api: Api, body: dict[str, Any]) -> int:
    created = api.post("/connections", body, expect=201)
    api.post(f"/connections/{created['id']}/start")
    return int(created["id"])


def start(api: Api, body: dict[str, Any]) -> int:
    """Create, start and wait until the connection signed in everywhere."""
    connection_id = create(api, body)
    api.wait_status(connection_id, "RUNNING")
    return connection_id


def subjects(api: Api, connection_id: int) -> set[str]:
    return {c["subject"] for c in api.conversations(connection_id=connection_id)}


def wait_subjects(api: Api, connection_id: int, expected: set[str], timeout: float = 5.0) -> None:
    wait_until(lambda: subjects(api, connection_id) == expected, timeout)


def customer(tag: str) -> str:
    # A sender per mail: mail of one contact on one mailbox would thread into one conversation.
    return f"Customer {tag} <{tag}@customer.example>"


def reply_and_receive(api: Api, smtp: SmtpTestServer, conversation_id: int, text: str = "On it.") -> Any:
    """Post an agent's reply and return the last message the SMTP server accepted, with its login."""
    before = len(smtp.messages)
    api.post(f"/conversations/{conversation_id}/messages", {"text": text, "author": "Alice"}, 201)
    return smtp.wait_for(before + 1)[-1]


def login_lines(dovecot: DovecotServer, login: str, service: str = "imap-login") -> list[str]:
    """Dovecot's successful-login lines for ``login``; each ends with ``TLS`` or ``secured`` (plain on loopback)."""
    marker = f"Login: user=<{login}>"
    return [line for line in dovecot.log_text().splitlines() if f"{service}:" in line and marker in line]


def with_attachment(subject: str, sender: str, payload: bytes) -> bytes:
    encoded = base64.encodebytes(payload).decode().replace("\n", "\r\n")
    return (
        f"From: {sender}\r\nTo: support@postroom.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{secrets.token_hex(8)}@customer.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nThe file you asked for.\r\n"
        '--B\r\nContent-Type: application/pdf; name="report.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        f"{encoded}--B--\r\n"
    ).encode()


# ── which mail is imported ─────────────────────────────────────────────────────────────────────


def test_unread_only_leaves_mail_that_was_already_read(
    api: Api, dovecot: DovecotServer, smtp_server: SmtpTestServer
) -> None:
    on, off = dovecot.add_user(), dovecot.add_user()
    for user in (on, off):
        dovecot.append(user, make_mail("read by a colleague", sender=customer("seen")), flags=[r"\Seen"])
        dovecot.append(user, make_mail("still unread", sender=customer("unseen")))
    # mark_as_read off on both, so that only the setting under test touches \Seen.
    only_unread = start(api, connection_body(dovecot, on, smtp_server, unread_only=True, mark_as_read=False))
    everything = start(api, connection_body(dovecot, off, smtp_server, unread_only=False, mark_as_read=False))

    wait_subjects(api, everything, {"read by a colleague", "still unread"})
    wait_subjects(api, only_unread, {"still unread"})
    time.sleep(0.3)  # a wrongly imported read mail would show up by now
    assert subjects(api, only_unread) == {"still unread"}
    # Not stored and then dropped either: the read mail was never taken from the server.
    assert len(api.items("/raw-messages", connection_id=only_unread)) == 1


def test_imap_mailbox_reads_that_folder_and_not_the_inbox(
    api: Api, dovecot: DovecotServer, smtp_server: SmtpTestServer
) -> None:
    tickets, default = dovecot.add_user(), dovecot.add_user()
    for user in (tickets, default):
        dovecot.create_folder(user, "Tickets")
        dovecot.append(user, make_mail("in the inbox", sender=customer("inbox")))
        dovecot.append(user, make_mail("in tickets", sender=customer("tickets")), folder="Tickets")
    from_tickets = start(api, connection_body(dovecot, tickets, smtp_server, imap_mailbox="Tickets"))
    from_inbox = start(api, connection_body(dovecot, default, smtp_server))

    wait_subjects(api, from_tickets, {"in tickets"})
    wait_subjects(api, from_inbox, {"in the inbox"})
    # The folder that was read is marked read; the other one is untouched.
    assert set(dovecot.flags(tickets, folder="Tickets").values()) == {frozenset({r"\Seen"})}
    assert set(dovecot.flags(tickets).values()) == {frozenset()}
    time.sleep(0.3)
    assert subjects(api, from_tickets) == {"in tickets"}


def test_max_attachment_bytes_skips_larger_files_with_the_reason_and_zero_means_no_limit(
    api: Api, dovecot: DovecotServer, smtp_server: SmtpTestServer
) -> None:
    payload = b"%PDF-1.4 " + bytes(range(256)) * 20  # 5129 bytes
    limited, unlimited = dovecot.add_user(), dovecot.add_user()
    for user in (limited, unlimited):
        dovecot.append(user, with_attachment("the report", customer("files"), payload))
    small = start(api, connection_body(dovecot, limited, smtp_server, max_attachment_bytes=1000))
    none = start(api, connection_body(dovecot, unlimited, smtp_server, max_attachment_bytes=0))

    def attachment(connection_id: int) -> dict[str, Any]:
        [conversation] = wait_until(lambda: api.conversations(connection_id=connection_id))
        [found] = api.get(f"/conversations/{conversation['id']}")["messages"][0]["attachments"]
        return dict(found)

    skipped = attachment(small)
    assert skipped["filename"] == "report.pdf"
    assert skipped["stored"] is False
    assert skipped["size"] == len(payload)
    assert skipped["skipped_reason"] == "larger than 1000 bytes"
    assert api.client.get(f"/api/v1/attachments/{skipped['id']}").status_code != 200

    kept = attachment(none)
    assert kept["stored"] is True
    assert kept["skipped_reason"] is None
    assert api.client.get(f"/api/v1/attachments/{kept['id']}").content == payload


# ── how often, and over what ───────────────────────────────────────────────────────────────────


def test_check_interval_is_how_often_a_mailbox_without_idle_is_polled(
    api: Api, dovecot: DovecotServer, smtp_server: SmtpTestServer
) -> None:
    fast_user, slow_user = dovecot.add_user(settings=NO_IDLE), dovecot.add_user(settings=NO_IDLE)
    for user in (fast_user, slow_user):
        dovecot.append(user, make_mail("first", sender=customer("first")))
    fast = start(api, connection_body(dovecot, fast_user, smtp_server, check_interval=1))
    slow = start(api, connection_body(dovecot, slow_user, smtp_server, check_interval=3600))
    wait_subjects(api, fast, {"first"})
    wait_subjects(api, slow, {"first"})
    assert any("polling" in e["message"] for e in api.items(f"/connections/{fast}/logs") if e["event"] == "signed_in")
    # Let both sources finish the catch-up after the first mail and settle into waiting for the next poll.
    time.sleep(0.5)

    appended = time.monotonic()
    for user in (fast_user, slow_user):
        dovecot.append(user, make_mail("second", sender=customer("second")))
    wait_subjects(api, fast, {"first", "second"}, timeout=4.0)
    # One interval plus the pipeline, with slack for a loaded machine; the default 15 s could not make it.
    assert time.monotonic() - appended < 3.5
    # Without IDLE and with an hour between polls, nothing finds the second mail meanwhile.
    time.sleep(max(0.0, 2.0 - (time.monotonic() - appended)))
    assert subjects(api, slow) == {"first"}


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_incoming_encryption_decides_whether_the_session_is_tls(
    api: Api, dovecot: DovecotServer, smtp_server: SmtpTestServer, protocol: str
) -> None:
    plain_user, tls_user = dovecot.add_user(), dovecot.add_user()
    # Both on the server's plain-text port, which offers STARTTLS: only the setting decides. No mail is
    # appended, because the test helper signs in over plain text itself: every login of these users is ours.
    port = dovecot.ports.imap if protocol == "imap" else dovecot.ports.pop3
    for user, encryption in ((plain_user, "none"), (tls_user, "starttls")):
        body = connection_body(dovecot, user, smtp_server, imap_port=port, imap_encryption=encryption)
        if protocol == "pop3":
            for field in ("imap_server", "imap_port", "imap_encryption"):
                del body[field]
            body.update(mode="pop3", pop3_server=dovecot.host, pop3_port=port, pop3_encryption=encryption)
        start(api, body)

    service = f"{protocol}-login"
    # The sign-in check at Start, then the source's own session.
    plain_logins = wait_until(lambda: (found := login_lines(dovecot, plain_user.name, service))[1:] and found)
    tls_logins = wait_until(lambda: (found := login_lines(dovecot, tls_user.name, service))[1:] and found)
    # Dovecot ends a login line with "TLS" for an encrypted session, "secured" for plain text on loopback.
    assert {line.rsplit(", ", 2)[-2] for line in plain_logins} == {"secured"}, plain_logins
    assert {line.rsplit(", ", 2)[-2] for line in tls_logins} == {"TLS"}, tls_logins


def test_validate_certificate_refuses_an_untrusted_certificate_only_when_on(
    api: Api,
    dovecot: DovecotServer,
    smtp_server: SmtpTestServer,
    make_smtp_server: Callable[..., SmtpTestServer],
) -> None:
    untrusted_smtp = make_smtp_server("starttls", untrusted=True, auth_required=True)
    imap_refused, smtp_refused, accepted = dovecot.add_user(), dovecot.add_user(), dovecot.add_user()
    # 127.0.0.2 presents a self-signed certificate on Dovecot's ports; the SMTP server presents one too.
    untrusted_imap = {"imap_server": dovecot.untrusted_host}

    first = create(
        api, connection_body(dovecot, imap_refused, smtp_server, validate_certificate=True, **untrusted_imap)
    )
    second = create(api, connection_body(dovecot, smtp_refused, untrusted_smtp, validate_certificate=True))
    dovecot.append(accepted, make_mail("over untrusted TLS", sender=customer("tls")))
    third = create(
        api, connection_body(dovecot, accepted, untrusted_smtp, validate_certificate=False, **untrusted_imap)
    )

    imap_error = api.wait_status(first, "ERROR")["status_message"]
    assert imap_error.startswith(f"IMAP {imap_refused.address}: TLS failed: ")
    assert "self-signed certificate" in imap_error
    smtp_error = api.wait_status(second, "ERROR")["status_message"]
    assert smtp_error.startswith(f"SMTP {smtp_refused.address}: TLS failed")
    assert "certificate" in smtp_error

    # Off: the same certificates are accepted on both sides; mail comes in and the reply goes out over TLS.
    api.wait_status(third, "RUNNING")
    [conversation] = wait_until(lambda: api.conversations(connection_id=third))
    sent = reply_and_receive(api, untrusted_smtp, conversation["id"])
    assert sent.tls is True
    assert sent.login == accepted.address


# ── who signs in ───────────────────────────────────────────────────────────────────────────────


def test_username_is_the_sign_in_name_for_imap_and_smtp(
    api: Api, dovecot: DovecotServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    # A mailbox whose login is not its address, as with many hosted providers.
    token = secrets.token_hex(4)
    login = dovecot.add_user(f"agent-{token}")
    address = f"helpdesk-{token}@postroom.test"
    smtp = make_smtp_server("plain", users={login.name: login.password})
    dovecot.append(login, make_mail("signed in by name", sender=customer("name")))
    settings = {
        "address": address,
        "password": login.password,
        "imap_server": dovecot.host,
        "imap_port": dovecot.ports.imaps,
        "imap_encryption": "ssl",
        "smtp_server": smtp.host,
        "smtp_port": smtp.port,
        "smtp_encryption": "none",
    }

    # Without a username the address is the login, which this server does not know.
    by_address = create(api, {"name": "By address", **settings})
    refused = api.wait_status(by_address, "ERROR")["status_message"]
    assert refused.startswith(f"IMAP {address}: authentication failed")
    assert login.password not in refused
    api.post(f"/connections/{by_address}/stop")

    by_name = start(api, {"name": "By name", **settings, "username": login.name})
    [conversation] = wait_until(lambda: api.conversations(connection_id=by_name))
    assert conversation["subject"] == "signed in by name"
    sent = reply_and_receive(api, smtp, conversation["id"])
    # SMTP signs in with the same username (no smtp_username given); the mail is still from the address.
    assert sent.login == login.name
    assert sent.envelope_from == address
    assert login_lines(dovecot, login.name)


def test_smtp_username_and_password_sign_in_to_smtp_while_imap_keeps_its_own(
    api: Api, dovecot: DovecotServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    relay_login, relay_password = f"relay-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    # The SMTP server knows only the relay account, not the mailboxes' own logins.
    smtp = make_smtp_server("plain", users={relay_login: relay_password})
    shared, separate = dovecot.add_user(), dovecot.add_user()

    def body(user: MailUser, **extra: Any) -> dict[str, Any]:
        return {
            "name": f"Relay {user.address}",
            "address": user.address,
            "password": user.password,
            "imap_server": dovecot.host,
            "imap_port": dovecot.ports.imaps,
            "smtp_server": smtp.host,
            "smtp_port": smtp.port,
            "smtp_encryption": "none",
            **extra,
        }

    # Without them SMTP signs in with the IMAP credentials, and this server refuses them.
    same = create(api, body(shared))
    refused = api.wait_status(same, "ERROR")["status_message"]
    assert refused.startswith(f"SMTP {shared.address}: authentication failed")
    assert {a.login for a in smtp.handler.sign_ins} == {shared.address}

    dovecot.append(separate, make_mail("relay me", sender=customer("relay")))
    own = start(api, body(separate, smtp_username=relay_login, smtp_password=relay_password))
    [conversation] = wait_until(lambda: api.conversations(connection_id=own))
    sent = reply_and_receive(api, smtp, conversation["id"])
    assert sent.login == relay_login
    assert sent.envelope_from == separate.address
    # IMAP still signed in as the mailbox itself.
    assert login_lines(dovecot, separate.name)
    assert not login_lines(dovecot, relay_login)
    logs = " ".join(e["message"] for e in api.items(f"/connections/{own}/logs"))
    assert relay_password not in logs


# ── several mailboxes, and the seed's variable names ───────────────────────────────────────────


def test_several_addresses_each_answer_from_the_mailbox_the_customer_wrote_to(
    api: Api, dovecot: DovecotServer, smtp_server: SmtpTestServer
) -> None:
    sales, billing = dovecot.add_user(), dovecot.add_user()
    smtp_server.add_user(billing.address, billing.password)
    body = connection_body(
        dovecot,
        sales,
        smtp_server,
        address=f"{sales.address}, {billing.address}",
        password=[sales.password, billing.password],
        email_name="Sales Team, Billing Team",
    )
    connection_id = start(api, body)
    dovecot.append(sales, make_mail("a quote please", sender=customer("buyer")))
    dovecot.append(billing, make_mail("wrong invoice", sender=customer("payer")))
    wait_subjects(api, connection_id, {"a quote please", "wrong invoice"})

    by_subject = {c["subject"]: c["id"] for c in api.conversations(connection_id=connection_id)}
    for subject, user, name in (
        ("a quote please", sales, "Sales Team"),
        ("wrong invoice", billing, "Billing Team"),
    ):
        received = reply_and_receive(api, smtp_server, by_subject[subject])
        sent = email.message_from_bytes(received.raw, policy=policy.default)
        # Each mailbox signs in and sends as itself, with its own display name.
        assert received.login == user.address
        assert received.envelope_from == user.address
        assert sent["From"].addresses[0].addr_spec == user.address
        assert sent["From"].addresses[0].display_name == name
    # Both mailboxes were read, each with its own login.
    assert login_lines(dovecot, sales.name)
    assert login_lines(dovecot, billing.name)


def test_env_takes_the_seed_variable_names_and_they_take_effect(
    api: Api, dovecot: DovecotServer, smtp_server: SmtpTestServer
) -> None:
    user = dovecot.add_user(settings=NO_IDLE)
    dovecot.create_folder(user, "Tickets")
    dovecot.append(user, make_mail("in the inbox", sender=customer("inbox")))
    dovecot.append(user, with_attachment("with a file", customer("file"), b"x" * 5000), folder="Tickets")
    env = {
        "IMAP_MAILBOX": "Tickets",
        "CHECK_INTERVAL": "1",
        "EMAIL_MAX_ATTACHMENT_BYTES": "1000",
        "EMAIL_NAME": "Helpdesk Team",
        "MESSAGE_CONTENT_TYPE": "text/html",
        "SMTP_SIGNATURE": "{{ sender_name }} at {{ sender_email }}",
    }
    body = connection_body(dovecot, user, smtp_server, env=env)
    del body["check_interval"]  # an explicit field would win over the variable
    connection_id = start(api, body)

    # IMAP_MAILBOX and EMAIL_MAX_ATTACHMENT_BYTES.
    [conversation] = wait_until(lambda: api.conversations(connection_id=connection_id))
    assert conversation["subject"] == "with a file"
    [attachment] = api.get(f"/conversations/{conversation['id']}")["messages"][0]["attachments"]
    assert attachment["skipped_reason"] == "larger than 1000 bytes"

    # CHECK_INTERVAL: without IDLE, only a poll within a second or so finds the next mail.
    time.sleep(0.5)
    dovecot.append(user, make_mail("polled soon", sender=customer("poll")), folder="Tickets")
    wait_subjects(api, connection_id, {"with a file", "polled soon"}, timeout=4.0)

    # EMAIL_NAME, MESSAGE_CONTENT_TYPE and SMTP_SIGNATURE shape the reply.
    sent = email.message_from_bytes(
        reply_and_receive(api, smtp_server, conversation["id"], "Thanks.").raw, policy=policy.default
    )
    assert sent["From"].addresses[0].display_name == "Helpdesk Team"
    assert sent.get_content_type() == "multipart/alternative"
    plain = sent.get_body(("plain",))
    assert plain is not None
    assert f"Alice at {user.address}" in plain.get_content()
    assert subjects(api, connection_id) == {"with a file", "polled soon"}
