"""Test connection against real peers: Dovecot (IMAP) and aiosmtpd (SMTP) on loopback.

Every step is asserted on what the peers really did: the server's own words for a refused password,
the kernel's refusal for a closed port, the local resolver for a ``.invalid`` name (RFC 6761 §6.4),
OpenSSL's verdict on an untrusted certificate, Dovecot's answer for a missing folder.
"""

from __future__ import annotations

import asyncio
import email
import json
import smtplib
import socket
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select

from postroom.channels.probe import PROBE_HEADER, ProbeReport, probe_connection
from postroom.errors import InvalidSetting, NotFound
from postroom.helpdesk.connections import ConnectionInput, ConnectionService
from postroom.service import Service
from postroom.sources.smtp_listener import SmtpListener
from postroom.store.db import Database
from postroom.store.migrate import upgrade
from postroom.store.models import Connection, ConnectionLog, ConnectionStatus, Conversation, RawMessage
from postroom.store.secretbox import SecretBox
from postroom.testing.database import sqlite_url
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.smtp import RecordingHandler, SmtpTestServer
from support import connection_body, wait_until

INCOMING = ["dns", "tcp", "tls", "signin", "folder"]
OUTGOING = ["dns", "tcp", "tls", "signin"]


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    # Most cases are about the network, not the database: SQLite alone keeps them quick.
    database = Database(sqlite_url(tmp_path))
    upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def smtp(make_smtp_server: Callable[..., SmtpTestServer]) -> SmtpTestServer:
    """A STARTTLS submission server that requires AUTH, like a provider's port 587."""
    return make_smtp_server("starttls", auth_required=True)


def create(db: Database, secrets: SecretBox, body: dict[str, Any]) -> int:
    with db.write() as session:
        return ConnectionService(secrets).create(session, ConnectionInput(**body)).id


def names(report: ProbeReport, address: str, part: str) -> list[str]:
    return [s.name for s in report.steps if s.mailbox == address and s.part == part]


def step(report: ProbeReport, address: str, part: str, name: str) -> Any:
    found = report.step(address, part, name)  # type: ignore[arg-type]
    assert found is not None, f"no {part} step {name}: {report.to_json()}"
    return found


@pytest.fixture
def closed_port() -> Iterator[int]:
    # Bound but not listening: the kernel answers a SYN with RST, i.e. "connection refused", and no
    # other test can take the port meanwhile.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_every_step_passes_and_the_connection_is_left_as_it_was(
    db: Database, secrets: SecretBox, dovecot: DovecotServer, dovecot_user: MailUser, smtp: SmtpTestServer
) -> None:
    connection_id = create(db, secrets, connection_body(dovecot, dovecot_user, smtp))
    dovecot.append(dovecot_user, b"Subject: one\r\n\r\nbody\r\n")

    report = probe_connection(db, secrets, connection_id, timeout=5)

    address = dovecot_user.address
    assert report.ok, report.to_json()
    assert names(report, address, "incoming") == INCOMING
    assert names(report, address, "outgoing") == OUTGOING
    assert not any(s.skipped for s in report.steps)
    assert all(s.milliseconds > 0 for s in report.steps)
    assert step(report, address, "incoming", "dns").detail == "127.0.0.1 is an IP address"
    assert step(report, address, "incoming", "tcp").detail == f"connected to 127.0.0.1 port {dovecot.ports.imaps}"
    imap_tls = step(report, address, "incoming", "tls").detail
    assert imap_tls.startswith("implicit TLSv1.")
    assert "certificate for localhost issued by Postroom test CA" in imap_tls
    assert "verified" in imap_tls
    smtp_tls = step(report, address, "outgoing", "tls").detail
    assert smtp_tls.startswith("STARTTLS upgrade to TLSv1.")
    assert step(report, address, "incoming", "signin").detail == f"signed in as {address}"
    assert step(report, address, "incoming", "folder").detail.startswith("INBOX holds 1 message(s)")
    assert step(report, address, "outgoing", "signin").detail == f"signed in as {address}"
    assert report.summary == "all 9 checks passed for 1 mailbox(es)"
    # The SMTP server saw a real sign-in, and nothing was sent.
    assert any(a.login == address and a.success for a in smtp.handler.sign_ins)
    assert smtp.messages == []
    # EXAMINE changed nothing: the mail is still unread.
    assert dovecot.flags(dovecot_user) == {1: frozenset()}

    with db.read() as session:
        connection = session.get(Connection, connection_id)
        assert connection is not None
        assert connection.status is ConnectionStatus.STOPPED
        assert connection.status_message == ""
        logs = session.scalars(select(ConnectionLog).where(ConnectionLog.connection_id == connection_id)).all()
    assert [(row.level, row.event) for row in logs] == [("info", "probe")]
    assert logs[0].message == "connection test: all 9 checks passed for 1 mailbox(es)"


def test_a_wrong_password_fails_the_sign_in_with_the_servers_words_after_the_earlier_steps_passed(
    sqlite_db: Database, secrets: SecretBox, dovecot: DovecotServer, dovecot_user: MailUser, smtp: SmtpTestServer
) -> None:
    wrong = "Wrong-Password-123"
    body = connection_body(dovecot, dovecot_user, smtp, password=wrong)
    connection_id = create(sqlite_db, secrets, body)

    report = probe_connection(sqlite_db, secrets, connection_id, timeout=5)

    address = dovecot_user.address
    assert not report.ok
    for name in ("dns", "tcp", "tls"):
        assert step(report, address, "incoming", name).ok
    signin = step(report, address, "incoming", "signin")
    assert not signin.ok
    assert signin.error == "AuthenticationError"
    assert signin.detail == "[AUTHENTICATIONFAILED] Authentication failed."
    folder = step(report, address, "incoming", "folder")
    assert folder.skipped and folder.detail == "not run: signin failed"
    smtp_signin = step(report, address, "outgoing", "signin")
    assert smtp_signin.error == "AuthenticationError"
    assert smtp_signin.detail.startswith("535")
    assert report.summary.startswith("2 of 8 checks failed: ")
    assert "[AUTHENTICATIONFAILED]" in report.summary
    with sqlite_db.read() as session:
        line = session.scalars(select(ConnectionLog).where(ConnectionLog.connection_id == connection_id)).one()
    assert (line.level, line.event) == ("warning", "probe")
    # Neither the password tried nor the real one appears anywhere.
    for secret in (wrong, dovecot_user.password):
        assert secret not in json.dumps(report.to_json())
        assert secret not in line.message


def test_a_refused_port_fails_the_tcp_step(
    sqlite_db: Database,
    secrets: SecretBox,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp: SmtpTestServer,
    closed_port: int,
) -> None:
    connection_id = create(sqlite_db, secrets, connection_body(dovecot, dovecot_user, smtp, imap_port=closed_port))

    report = probe_connection(sqlite_db, secrets, connection_id, timeout=5)

    address = dovecot_user.address
    assert step(report, address, "incoming", "dns").ok
    tcp = step(report, address, "incoming", "tcp")
    assert not tcp.ok
    assert tcp.error == "ConnectError"
    assert tcp.detail.startswith(f"connection refused by 127.0.0.1:{closed_port}")
    assert [s.skipped for s in report.steps if s.part == "incoming"] == [False, False, True, True, True]
    # The outgoing side is checked on its own and is fine.
    assert all(s.ok for s in report.steps if s.part == "outgoing")


def test_an_unresolvable_host_fails_the_dns_step(
    sqlite_db: Database, secrets: SecretBox, dovecot: DovecotServer, dovecot_user: MailUser, smtp: SmtpTestServer
) -> None:
    # RFC 6761 §6.4: names under .invalid never resolve; resolvers answer so without asking anyone.
    host = "imap.postroom.invalid"
    connection_id = create(sqlite_db, secrets, connection_body(dovecot, dovecot_user, smtp, imap_server=host))

    report = probe_connection(sqlite_db, secrets, connection_id, timeout=5)

    dns = step(report, dovecot_user.address, "incoming", "dns")
    assert not dns.ok
    assert dns.error == "ConnectError"
    assert dns.detail.startswith(f"cannot resolve {host}:")
    assert step(report, dovecot_user.address, "incoming", "tcp").detail == "not run: dns failed"


@pytest.mark.parametrize("encryption", ["ssl", "starttls"])
def test_an_untrusted_certificate_fails_the_tls_step_naming_the_problem(
    sqlite_db: Database,
    secrets: SecretBox,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp: SmtpTestServer,
    encryption: str,
) -> None:
    port = dovecot.ports.imaps if encryption == "ssl" else dovecot.ports.imap
    body = connection_body(
        dovecot,
        dovecot_user,
        smtp,
        imap_server=dovecot.untrusted_host,
        imap_port=port,
        imap_encryption=encryption,
        validate_certificate=True,
    )
    connection_id = create(sqlite_db, secrets, body)

    report = probe_connection(sqlite_db, secrets, connection_id, timeout=5)

    address = dovecot_user.address
    assert step(report, address, "incoming", "tcp").ok
    tls = step(report, address, "incoming", "tls")
    assert not tls.ok
    assert tls.error == "TlsError"
    assert tls.detail == f"certificate of 127.0.0.2:{port} rejected: self-signed certificate"
    assert step(report, address, "incoming", "signin").skipped


def test_validation_off_accepts_the_untrusted_certificate_and_says_so(
    sqlite_db: Database, secrets: SecretBox, dovecot: DovecotServer, dovecot_user: MailUser, smtp: SmtpTestServer
) -> None:
    body = connection_body(dovecot, dovecot_user, smtp, imap_server=dovecot.untrusted_host, validate_certificate=False)
    connection_id = create(sqlite_db, secrets, body)

    report = probe_connection(sqlite_db, secrets, connection_id, timeout=5)

    assert step(report, dovecot_user.address, "incoming", "folder").ok
    tls = step(report, dovecot_user.address, "incoming", "tls").detail
    assert "certificate for untrusted.localhost issued by untrusted.localhost" in tls
    assert tls.endswith("NOT verified: validation is off")


def test_a_missing_folder_fails_the_folder_step(
    sqlite_db: Database, secrets: SecretBox, dovecot: DovecotServer, dovecot_user: MailUser, smtp: SmtpTestServer
) -> None:
    connection_id = create(sqlite_db, secrets, connection_body(dovecot, dovecot_user, smtp, imap_mailbox="Tickets"))

    report = probe_connection(sqlite_db, secrets, connection_id, timeout=5)

    folder = step(report, dovecot_user.address, "incoming", "folder")
    assert not folder.ok
    assert folder.error == "FolderError"
    assert folder.detail.startswith("folder 'Tickets': ")
    assert "doesn't exist" in folder.detail
    assert step(report, dovecot_user.address, "incoming", "signin").ok


def test_plain_text_servers_skip_tls_and_say_the_password_is_exposed(
    sqlite_db: Database,
    secrets: SecretBox,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    make_smtp_server: Callable[..., SmtpTestServer],
) -> None:
    smtp = make_smtp_server("plain", auth_required=True)
    body = connection_body(dovecot, dovecot_user, smtp, imap_port=dovecot.ports.imap, imap_encryption="none")
    connection_id = create(sqlite_db, secrets, body)

    report = probe_connection(sqlite_db, secrets, connection_id, timeout=5)

    assert report.ok, report.to_json()
    for part in ("incoming", "outgoing"):
        tls = step(report, dovecot_user.address, part, "tls")
        assert tls.skipped
        assert "password travels in plain text" in tls.detail


class RelayToDovecot(RecordingHandler):
    """Accepts mail like the recording handler, then delivers it into a Dovecot mailbox (as an MTA would)."""

    def __init__(self, dovecot: DovecotServer, user: MailUser) -> None:
        super().__init__()
        self.dovecot = dovecot
        self.user = user

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            raw = envelope.original_content or b""
            data = raw if isinstance(raw, bytes) else raw.encode()
            # Delivery before the 250, as an LMTP hand-off would; off the server's event loop.
            await asyncio.get_running_loop().run_in_executor(None, self.dovecot.append, self.user, data)
        return reply


def test_roundtrip_sends_finds_and_deletes_the_probe_mail(
    db: Database,
    secrets: SecretBox,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    make_smtp_server: Callable[..., SmtpTestServer],
) -> None:
    smtp = make_smtp_server("starttls", auth_required=True, handler=RelayToDovecot(dovecot, dovecot_user))
    connection_id = create(db, secrets, connection_body(dovecot, dovecot_user, smtp, email_name="Support"))
    kept = dovecot.append(dovecot_user, b"Subject: a customer's mail\r\n\r\nkeep me\r\n")

    report = probe_connection(db, secrets, connection_id, roundtrip=True, timeout=5)

    address = dovecot_user.address
    assert report.ok, report.to_json()
    assert names(report, address, "roundtrip") == ["send", "arrival", "cleanup"]
    assert [s.protocol for s in report.steps if s.part == "roundtrip"] == ["SMTP", "IMAP", "IMAP"]
    assert step(report, address, "roundtrip", "send").detail.startswith(f"127.0.0.1:{smtp.port} accepted it: 250")
    arrival = step(report, address, "roundtrip", "arrival").detail
    assert arrival.startswith("arrived in INBOX ") and "s after it was sent (UID 2)" in arrival
    assert step(report, address, "roundtrip", "cleanup").detail == "deleted UID 2 (\\Deleted, UID EXPUNGE)"
    assert report.summary == f"all 12 checks passed for 1 mailbox(es); {arrival}"

    sent = email.message_from_bytes(smtp.wait_for(1)[0].raw, policy=policy.default)
    token = sent[PROBE_HEADER]
    assert sent["Subject"] == f"Postroom connection test {token}"
    assert sent["From"] == f"Support <{address}>"
    assert sent["To"] == address
    assert sent["X-Postroom-Loop"] == address  # the pipeline ignores it if a running source imports it
    assert sent["Auto-Submitted"] == "auto-generated"
    # The inbox is as it was: the customer's mail untouched, the probe mail gone.
    assert dovecot.flags(dovecot_user) == {kept: frozenset()}
    with dovecot.imap(dovecot_user, "INBOX") as client:
        assert client.search(["HEADER", PROBE_HEADER, token]) == []
    with db.read() as session:
        line = session.scalars(select(ConnectionLog).where(ConnectionLog.connection_id == connection_id)).one()
    assert line.message.startswith("connection test with roundtrip: all 12 checks passed")


def test_roundtrip_reports_a_probe_mail_that_never_arrives(
    sqlite_db: Database, secrets: SecretBox, dovecot: DovecotServer, dovecot_user: MailUser, smtp: SmtpTestServer
) -> None:
    # The SMTP server accepts but delivers nowhere, as when mail to the address goes to another mailbox.
    connection_id = create(sqlite_db, secrets, connection_body(dovecot, dovecot_user, smtp))

    report = probe_connection(sqlite_db, secrets, connection_id, roundtrip=True, timeout=1)

    address = dovecot_user.address
    assert step(report, address, "roundtrip", "send").ok
    arrival = step(report, address, "roundtrip", "arrival")
    assert not arrival.ok
    assert arrival.error == "NotArrived"
    assert "did not arrive in INBOX within 1 s" in arrival.detail
    assert 1000 <= arrival.milliseconds < 3000
    assert step(report, address, "roundtrip", "cleanup").skipped
    assert len(smtp.wait_for(1)) == 1


def test_roundtrip_is_not_run_when_a_part_failed(
    sqlite_db: Database, secrets: SecretBox, dovecot: DovecotServer, dovecot_user: MailUser, smtp: SmtpTestServer
) -> None:
    connection_id = create(sqlite_db, secrets, connection_body(dovecot, dovecot_user, smtp, imap_mailbox="Nope"))

    report = probe_connection(sqlite_db, secrets, connection_id, roundtrip=True, timeout=5)

    skipped = step(report, dovecot_user.address, "roundtrip", "roundtrip")
    assert skipped.skipped
    assert skipped.detail == "not run: the incoming or outgoing checks failed"
    assert smtp.messages == []


def test_forwarding_has_no_incoming_server_and_checks_only_smtp(
    sqlite_db: Database, secrets: SecretBox, smtp: SmtpTestServer, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    body = connection_body(dovecot, dovecot_user, smtp, mode="forwarding", imap_server=None, imap_port=None)
    connection_id = create(sqlite_db, secrets, body)

    report = probe_connection(sqlite_db, secrets, connection_id, timeout=5)

    assert report.ok, report.to_json()
    incoming = step(report, dovecot_user.address, "incoming", "incoming")
    assert incoming.skipped
    assert incoming.detail.startswith("not applicable: forwarded mail arrives on Postroom's own SMTP listener")
    assert names(report, dovecot_user.address, "outgoing") == OUTGOING


def test_a_forwarding_roundtrip_names_the_receiving_address_when_nothing_is_forwarded(
    sqlite_db: Database, secrets: SecretBox, smtp: SmtpTestServer, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    # The SMTP server accepts the probe for the support address but forwards nothing to Postroom.
    body = connection_body(dovecot, dovecot_user, smtp, mode="forwarding", imap_server=None, imap_port=None)
    connection_id = create(sqlite_db, secrets, body)

    report = probe_connection(sqlite_db, secrets, connection_id, roundtrip=True, timeout=0.5)

    assert names(report, dovecot_user.address, "roundtrip") == ["send", "arrival"]
    arrival = step(report, dovecot_user.address, "roundtrip", "arrival")
    assert arrival.error == "NotArrived"
    assert f"check that mail to {dovecot_user.address} is forwarded to the connection's receiving address" in (
        arrival.detail
    )
    assert len(smtp.wait_for(1)) == 1


class ForwardToListener(RecordingHandler):
    """The support address's mail server with a forwarding rule: every accepted mail goes on to Postroom."""

    def __init__(self, listener: SmtpListener, forward_to: list[str]) -> None:
        super().__init__()
        self.listener = listener
        self.forward_to = forward_to

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            data = envelope.original_content or b""
            # Forwarded as Gmail does: same bytes, new envelope, the original recipient in a header.
            forwarded = f"X-Forwarded-To: {envelope.rcpt_tos[0]}\r\n".encode() + data
            await asyncio.get_running_loop().run_in_executor(None, self._forward, forwarded)
        return reply

    def _forward(self, data: bytes) -> None:
        with smtplib.SMTP(self.listener.host, self.listener.port, timeout=10) as client:
            client.sendmail("forwarder@company.example", self.forward_to, data)


def test_a_forwarding_roundtrip_sees_the_probe_reach_the_listener_and_makes_no_conversation(
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    make_smtp_server: Callable[..., SmtpTestServer],
) -> None:
    service = make_service()
    listener = service.start_listener()
    assert listener is not None
    forward_to: list[str] = []
    smtp = make_smtp_server("starttls", auth_required=True, handler=ForwardToListener(listener, forward_to))
    body = connection_body(dovecot, dovecot_user, smtp, mode="forwarding", imap_server=None, imap_port=None)
    with service.db.write() as session:
        connection = service.connections.create(session, ConnectionInput(**body))
        connection_id = connection.id
        address = service.connections.inbound_address(connection)
    assert address is not None
    forward_to.append(address)

    report = probe_connection(service.db, service.secrets, connection_id, roundtrip=True, timeout=10)

    assert report.ok, report.to_json()
    assert names(report, dovecot_user.address, "roundtrip") == ["send", "arrival"]
    arrival = step(report, dovecot_user.address, "roundtrip", "arrival").detail
    assert (
        arrival.startswith("reached Postroom ") and "forwarded mail arrives on Postroom's own SMTP listener" in arrival
    )
    # The probe is Postroom's own mail: the pipeline ignores it.
    raw = wait_until(lambda: _settled_raw(service.db, connection_id), timeout=10)
    assert raw == [("ignored", 0)]


def _settled_raw(db: Database, connection_id: int) -> list[tuple[str, int]] | None:
    with db.read() as session:
        rows = session.execute(
            select(RawMessage.status, RawMessage.message_pk).where(RawMessage.connection_id == connection_id)
        ).all()
        conversations = session.scalar(select(func.count(Conversation.id)))
    if not rows or any(status.value == "pending" or status.value == "processing" for status, _ in rows):
        return None
    return [(status.value, conversations or 0) for status, _ in rows]


def test_send_to_sends_a_test_mail_from_every_mailbox_through_smtp(
    sqlite_db: Database, secrets: SecretBox, smtp: SmtpTestServer, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    # Forwarding has no folder to see a roundtrip arrive in: the test mail is its check of sending.
    body = connection_body(
        dovecot,
        dovecot_user,
        smtp,
        mode="forwarding",
        imap_server=None,
        imap_port=None,
        email_name="Acme Support",
        reply_to="help@acme.example",
        smtp_signature="Kind regards,\n{{ sender_name }} <{{ sender_email }}>",
        message_content_type="text/html",
    )
    connection_id = create(sqlite_db, secrets, body)

    report = probe_connection(sqlite_db, secrets, connection_id, send_to="Ann <ann@customer.example>", timeout=5)

    assert report.ok, report.to_json()
    address = dovecot_user.address
    assert names(report, address, "outgoing") == [*OUTGOING, "test_mail"]
    detail = step(report, address, "outgoing", "test_mail").detail
    assert detail.startswith(f"127.0.0.1:{smtp.port} accepted the test mail to ann@customer.example: 250")
    [received] = smtp.wait_for(1)
    assert received.recipients == ("ann@customer.example",)
    assert received.login == address  # sent as replies are: signed in as the mailbox
    sent = email.message_from_bytes(received.raw, policy=policy.default)
    assert sent["From"] == f"Acme Support <{address}>"
    assert sent["To"] == "Ann <ann@customer.example>"
    assert sent["Reply-To"] == "help@acme.example"
    assert sent["Auto-Submitted"] == "auto-generated"
    assert sent[PROBE_HEADER] in detail
    # What a customer would get: the connection's signature, filled in, and its HTML alternative.
    plain = sent.get_body(("plain",))
    html = sent.get_body(("html",))
    assert plain is not None and html is not None
    assert f"Kind regards,\nAcme Support <{address}>" in plain.get_content().replace("\r\n", "\n")
    assert "Kind regards" in html.get_content()
    with sqlite_db.read() as session:
        line = session.scalars(select(ConnectionLog).where(ConnectionLog.connection_id == connection_id)).one()
    assert line.message.startswith("connection test with a test mail to ann@customer.example: all 5 checks passed")


def test_a_refused_test_recipient_fails_the_test_mail_step_with_the_servers_words(
    sqlite_db: Database, secrets: SecretBox, smtp: SmtpTestServer, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    connection_id = create(sqlite_db, secrets, connection_body(dovecot, dovecot_user, smtp))
    smtp.refuse_recipient("nobody@customer.example")

    report = probe_connection(sqlite_db, secrets, connection_id, send_to="nobody@customer.example", timeout=5)

    failed = step(report, dovecot_user.address, "outgoing", "test_mail")
    assert not failed.ok
    assert "nobody@customer.example" in failed.detail and "550" in failed.detail, failed.detail
    assert smtp.messages == []


def test_send_to_is_not_tried_when_the_sign_in_failed(
    sqlite_db: Database, secrets: SecretBox, smtp: SmtpTestServer, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    body = connection_body(dovecot, dovecot_user, smtp, smtp_password="Not-The-Password-1")
    connection_id = create(sqlite_db, secrets, body)

    report = probe_connection(sqlite_db, secrets, connection_id, send_to="ann@customer.example", timeout=5)

    assert not step(report, dovecot_user.address, "outgoing", "signin").ok
    skipped = step(report, dovecot_user.address, "outgoing", "test_mail")
    assert skipped.skipped and skipped.detail == "not run: signin failed"


@pytest.mark.parametrize("value", ["", "not an address", "a@b.example, c@d.example"])
def test_send_to_must_be_one_address(sqlite_db: Database, secrets: SecretBox, value: str) -> None:
    with pytest.raises(InvalidSetting, match="send_to"):
        probe_connection(sqlite_db, secrets, 1, send_to=value)


def test_pop3_is_probed_through_tls_and_sign_in(
    sqlite_db: Database, secrets: SecretBox, smtp: SmtpTestServer, dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    dovecot.append(dovecot_user, make_mail("Waiting", sender="a@customer.example"))
    body = connection_body(dovecot, dovecot_user, smtp, mode="pop3", imap_port=dovecot.ports.pop3s)
    connection_id = create(sqlite_db, secrets, body)

    report = probe_connection(sqlite_db, secrets, connection_id, timeout=5)

    assert report.ok, report.to_json()
    incoming = [(s.protocol, s.name, s.skipped) for s in report.steps if s.part == "incoming"]
    assert incoming == [
        ("POP3", "dns", False),
        ("POP3", "tcp", False),
        ("POP3", "tls", False),
        ("POP3", "signin", False),
    ]
    assert "holds 1 message" in step(report, dovecot_user.address, "incoming", "signin").detail
    assert "verified" in step(report, dovecot_user.address, "incoming", "tls").detail

    wrong = create(sqlite_db, secrets, {**body, "name": "Wrong", "password": "not-it"})
    failed = probe_connection(sqlite_db, secrets, wrong, timeout=5)
    signin = step(failed, dovecot_user.address, "incoming", "signin")
    assert not signin.ok
    assert signin.error == "AuthenticationError"


def test_a_pop3_roundtrip_finds_the_probe_in_the_maildrop_and_deletes_only_it(
    db: Database,
    secrets: SecretBox,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    make_smtp_server: Callable[..., SmtpTestServer],
) -> None:
    smtp = make_smtp_server("starttls", auth_required=True, handler=RelayToDovecot(dovecot, dovecot_user))
    kept = dovecot.append(dovecot_user, make_mail("A customer's mail", sender="a@customer.example"))
    body = connection_body(dovecot, dovecot_user, smtp, mode="pop3", imap_port=dovecot.ports.pop3s)
    connection_id = create(db, secrets, body)

    report = probe_connection(db, secrets, connection_id, roundtrip=True, timeout=5)

    assert report.ok, report.to_json()
    address = dovecot_user.address
    assert [(s.protocol, s.name) for s in report.steps if s.part == "roundtrip"] == [
        ("SMTP", "send"),
        ("POP3", "arrival"),
        ("POP3", "cleanup"),
    ]
    assert "s after it was sent: message 2" in step(report, address, "roundtrip", "arrival").detail
    assert step(report, address, "roundtrip", "cleanup").detail == "deleted message 2 (DELE, QUIT)"
    # The maildrop is as it was: the customer's mail untouched, the probe gone.
    assert dovecot.flags(dovecot_user) == {kept: frozenset()}


def test_every_mailbox_of_a_connection_is_probed(
    sqlite_db: Database, secrets: SecretBox, dovecot: DovecotServer, smtp: SmtpTestServer
) -> None:
    first, second = dovecot.add_user(), dovecot.add_user()
    smtp.add_user(second.address, second.password)
    body = connection_body(dovecot, first, smtp)
    body["address"] = [first.address, second.address]
    body["password"] = [first.password, "not-the-password"]
    connection_id = create(sqlite_db, secrets, body)

    report = probe_connection(sqlite_db, secrets, connection_id, timeout=5)

    assert all(s.ok for s in report.steps if s.mailbox == first.address)
    assert step(report, second.address, "incoming", "signin").error == "AuthenticationError"
    assert report.summary.startswith(f"2 of 17 checks failed: {second.address} incoming IMAP signin: ")


def test_an_unknown_connection_is_not_found(sqlite_db: Database, secrets: SecretBox) -> None:
    with pytest.raises(NotFound):
        probe_connection(sqlite_db, secrets, 4242)
