"""The SMTP transport against a real aiosmtpd: encryption, sign-in, replies as values, failures as data."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from postroom.errors import (
    AuthenticationError,
    ConnectError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    TlsError,
)
from postroom.mail.model import ComposedMail
from postroom.testing.mails import make_mail
from postroom.testing.smtp import RecordingHandler, SmtpTestServer
from postroom.transports.base import SendResult, SmtpAccount, SmtpReply
from postroom.transports.smtp import check_login, encryption_for, parse_reply, send

MakeServer = Callable[..., SmtpTestServer]
USERS = {"agent@postroom.test": "s3cret-pass"}


def composed(*recipients: str, envelope_from: str = "support@postroom.test") -> ComposedMail:
    raw = make_mail("Re: your order", sender=envelope_from, to=", ".join(recipients) or "ada@customer.example")
    return ComposedMail(
        raw=raw,
        message_id="reply-1@postroom.test",
        envelope_from=envelope_from,
        recipients=recipients or ("ada@customer.example",),
        subject="Re: your order",
        references=(),
    )


def deliver(account: SmtpAccount, mail: ComposedMail | None = None) -> SendResult:
    return asyncio.run(send(account, mail or composed()))


# ── encryption and sign-in ─────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("mode", ["plain", "starttls", "ssl"])
def test_sends_with_auth_over_each_encryption(make_smtp_server: MakeServer, mode: str) -> None:
    server = make_smtp_server(mode, users=USERS)
    mail = composed("ada@customer.example", "bob@customer.example")

    result = deliver(server.smtp_account(), mail)

    assert result == SendResult(reply=SmtpReply(250, "OK: queued", "2.0.0"))
    [received] = server.wait_for(1)
    assert received.envelope_from == "support@postroom.test"
    assert received.recipients == ("ada@customer.example", "bob@customer.example")
    assert received.raw.replace(b"\r\n", b"\n") == mail.raw.replace(b"\r\n", b"\n")
    assert received.login == "agent@postroom.test"
    assert received.tls is (mode != "plain")
    assert f"SIZE={len(mail.raw)}" in received.mail_options


def test_sends_without_auth_when_no_password_is_set(smtp_server: SmtpTestServer) -> None:
    deliver(smtp_server.smtp_account())

    [received] = smtp_server.wait_for(1)
    assert received.login is None


def test_refused_sign_in_names_account_and_protocol(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server("starttls", users=USERS)
    account = server.smtp_account(password="wrong-password")

    with pytest.raises(AuthenticationError) as caught:
        deliver(account)

    assert str(caught.value) == (
        "SMTP support@postroom.test: authentication failed: 535 5.7.8 Authentication credentials invalid"
    )
    assert "wrong-password" not in str(caught.value)
    assert server.messages == []


class TemporarilyUnableToSignIn(RecordingHandler):
    """A server whose credential store is down: it answers AUTH with 454 (RFC 4954 §6)."""

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        return AuthResult(success=False, handled=False, message="454 4.7.0 Temporary authentication failure")


def test_a_temporary_authentication_failure_is_retried_not_a_refused_sign_in(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server("starttls", users=USERS, handler=TemporarilyUnableToSignIn())

    with pytest.raises(ConnectError) as caught:
        deliver(server.smtp_account())

    assert "could not check the sign-in now: 454 4.7.0 Temporary authentication failure" in str(caught.value)
    assert caught.value.temporary


def test_check_login_signs_in_and_sends_nothing(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server("ssl", users=USERS)

    asyncio.run(check_login(server.smtp_account()))

    assert [(a.login, a.success) for a in server.handler.sign_ins] == [("agent@postroom.test", True)]
    assert server.messages == []


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_untrusted_certificate_is_rejected_when_validating(make_smtp_server: MakeServer, mode: str) -> None:
    server = make_smtp_server(mode, users=USERS, untrusted=True)

    with pytest.raises(TlsError) as caught:
        asyncio.run(check_login(server.smtp_account()))

    assert str(caught.value).startswith("SMTP support@postroom.test: TLS failed: certificate")
    assert server.handler.sign_ins == []


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_untrusted_certificate_is_accepted_without_validation(make_smtp_server: MakeServer, mode: str) -> None:
    server = make_smtp_server(mode, users=USERS, untrusted=True)

    deliver(server.smtp_account(validate_certificate=False))

    assert server.wait_for(1)[0].tls


def test_starttls_required_but_not_offered_is_a_tls_error(smtp_server: SmtpTestServer) -> None:
    with pytest.raises(TlsError, match="STARTTLS"):
        asyncio.run(check_login(smtp_server.smtp_account(encryption="starttls")))


def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    account = SmtpAccount(address="support@postroom.test", host="127.0.0.1", port=port, encryption="none")

    with pytest.raises(ConnectError) as caught:
        asyncio.run(check_login(account))

    assert str(caught.value) == f"SMTP support@postroom.test: cannot connect: connection to 127.0.0.1:{port} refused"


@pytest.mark.parametrize(
    ("port", "encryption", "expected"),
    [
        (465, "auto", "ssl"),
        (587, "auto", "starttls"),
        (25, "auto", "none"),
        (2525, "auto", "starttls"),
        (8025, "auto", "starttls"),
        (465, "none", "none"),
        (25, "starttls", "starttls"),
        (587, "ssl", "ssl"),
    ],
)
def test_encryption_is_chosen_by_port_unless_set(port: int, encryption: str, expected: str) -> None:
    account = SmtpAccount(address="a@b.example", host="localhost", port=port, encryption=encryption)

    assert encryption_for(account) == expected


def test_auto_encryption_on_another_port_upgrades_with_starttls(make_smtp_server: MakeServer) -> None:
    # Any port but 465 and 25 is submission: STARTTLS (RFC 3207) before the password goes out.
    server = make_smtp_server("starttls", users=USERS)

    deliver(server.smtp_account(encryption="auto"))

    received = server.wait_for(1)[0]
    assert received.tls is True
    assert received.login == "agent@postroom.test"


def test_auto_encryption_never_sends_the_password_in_plain_text_on_another_port(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server("plain", users=USERS)

    with pytest.raises(TlsError, match="STARTTLS"):
        deliver(server.smtp_account(encryption="auto"))

    assert server.handler.sign_ins == []
    assert server.messages == []


@pytest.mark.xdist_group("privileged-smtp-ports")
@pytest.mark.parametrize(("port", "mode"), [(465, "ssl"), (587, "starttls")])
def test_auto_encryption_on_the_submission_ports(make_smtp_server: MakeServer, port: int, mode: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("binding ports 465 and 587 needs root")
    try:
        server = make_smtp_server(mode, users=USERS, port=port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            pytest.skip(f"port {port} is in use on this machine")
        raise

    deliver(server.smtp_account(encryption="auto"))

    assert server.wait_for(1)[0].tls


# ── replies and failures ───────────────────────────────────────────────────────────────────────


def test_451_on_data_is_temporary_and_the_retry_succeeds(smtp_server: SmtpTestServer) -> None:
    smtp_server.fail_next_data(1, "451 4.3.0 Mail server temporarily rejected message")
    account = smtp_server.smtp_account()

    with pytest.raises(TemporaryDeliveryError) as caught:
        deliver(account)
    result = deliver(account)

    assert (caught.value.code, caught.value.enhanced_status) == (451, "4.3.0")
    assert caught.value.temporary
    assert "Mail server temporarily rejected message" in str(caught.value)
    assert result.reply.code == 250
    assert len(smtp_server.wait_for(1)) == 1


def test_550_for_the_only_recipient_is_permanent(smtp_server: SmtpTestServer) -> None:
    smtp_server.refuse_recipient("gone@customer.example")

    with pytest.raises(PermanentDeliveryError) as caught:
        deliver(smtp_server.smtp_account(), composed("gone@customer.example"))

    assert (caught.value.code, caught.value.enhanced_status) == (550, "5.1.1")
    assert caught.value.recipients == ("gone@customer.example",)
    assert not caught.value.temporary
    assert smtp_server.messages == []


def test_partly_refused_recipients_are_listed_in_the_result(smtp_server: SmtpTestServer) -> None:
    smtp_server.refuse_recipient("gone@customer.example")
    smtp_server.refuse_recipient("full@customer.example", "452 4.2.2 Mailbox full")

    result = deliver(
        smtp_server.smtp_account(), composed("ada@customer.example", "gone@customer.example", "full@customer.example")
    )

    assert result.reply.code == 250
    assert result.refused == {
        "gone@customer.example": SmtpReply(550, "No such user here", "5.1.1"),
        "full@customer.example": SmtpReply(452, "Mailbox full", "4.2.2"),
    }
    assert smtp_server.wait_for(1)[0].recipients == ("ada@customer.example",)


def test_every_recipient_refused_with_one_temporary_is_temporary(smtp_server: SmtpTestServer) -> None:
    smtp_server.refuse_recipient("gone@customer.example")
    smtp_server.refuse_recipient("full@customer.example", "452 4.2.2 Mailbox full")

    with pytest.raises(TemporaryDeliveryError) as caught:
        deliver(smtp_server.smtp_account(), composed("gone@customer.example", "full@customer.example"))

    assert caught.value.recipients == ("gone@customer.example", "full@customer.example")


@pytest.mark.parametrize(
    ("reply", "error_type"),
    [("451 4.3.2 Try later", TemporaryDeliveryError), ("553 5.7.1 Sender not allowed", PermanentDeliveryError)],
)
def test_refused_sender_follows_the_reply_class(
    smtp_server: SmtpTestServer, reply: str, error_type: type[Exception]
) -> None:
    smtp_server.fail_next_mail(1, reply)

    with pytest.raises(error_type) as caught:
        deliver(smtp_server.smtp_account())

    assert str(caught.value).endswith(reply)


@pytest.mark.parametrize("at", ["MAIL", "RCPT", "DATA"])
def test_a_dropped_connection_is_temporary(smtp_server: SmtpTestServer, at: str) -> None:
    smtp_server.drop_connection(at)

    with pytest.raises(TemporaryDeliveryError, match="connection lost"):
        deliver(smtp_server.smtp_account())

    assert smtp_server.messages == []


def test_auth_required_but_no_password_is_permanent(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server("starttls", users=USERS)

    with pytest.raises(PermanentDeliveryError) as caught:
        deliver(server.smtp_account(password=""))

    assert (caught.value.code, caught.value.enhanced_status) == (530, "5.7.0")


def test_international_addresses_use_smtputf8(smtp_server: SmtpTestServer) -> None:
    deliver(smtp_server.smtp_account(), composed("jürgen@müller.example"))

    [received] = smtp_server.wait_for(1)
    assert received.recipients == ("jürgen@müller.example",)
    assert "SMTPUTF8" in received.mail_options


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (250, "2.0.0 OK: queued as 1234", SmtpReply(250, "OK: queued as 1234", "2.0.0")),
        (
            550,
            "5.1.1 <x@y>: Recipient address rejected\n5.1.1 see policy",
            SmtpReply(550, "<x@y>: Recipient address rejected\nsee policy", "5.1.1"),
        ),
        (421, "closing connection", SmtpReply(421, "closing connection")),
        # RFC 2034 §3: an enhanced code whose class disagrees with the reply is not one.
        (250, "5.1.1 odd", SmtpReply(250, "5.1.1 odd")),
        (452, "4.02.020 padded", SmtpReply(452, "padded", "4.2.20")),
    ],
)
def test_parse_reply(code: int, text: str, expected: SmtpReply) -> None:
    reply = parse_reply(code, text)

    assert reply == expected
    assert reply.temporary is (400 <= code < 500)
