"""The forwarding-mode SMTP listener against real SMTP clients (smtplib, aiosmtplib) on loopback.

The first part swaps in small in-memory resolver and sink implementations to pin the protocol down
(refusals at RCPT, size limits, 250 only after the commit, 451 on a failed store, STARTTLS with the test
CA's certificate, postmaster, recipient and session limits); the second part runs the database
implementations of :mod:`postroom.channels.inbound` on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import select as selectors
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import select

from postroom.channels.inbound import POSTMASTER_NOTE, ForwardingResolver, InboundRawSink, inbound_dedupe_key
from postroom.errors import StoreError
from postroom.helpdesk.connections import ConnectionInput, ConnectionService, generate_inbound_key
from postroom.service import Service
from postroom.settings import Settings
from postroom.sources.base import InboundMail
from postroom.sources.smtp_listener import (
    MAX_RECIPIENTS,
    InboundTarget,
    PostmasterTarget,
    SessionLimits,
    SmtpListener,
    trace_fields,
)
from postroom.store.db import Database
from postroom.store.models import Connection, ConnectionMode, Mailbox, RawBody, RawMessage, RawStatus
from postroom.store.secretbox import SecretBox
from postroom.testing.certs import Certificates
from postroom.testing.mails import make_mail
from support import wait_until

DOMAIN = "inbound.postroom.test"
KNOWN = f"aaaa1111bbbb2222cccc3333@{DOMAIN}"
OTHER = f"dddd4444eeee5555ffff6666@{DOMAIN}"
LIMIT = 64 * 1024


# ── test implementations of the two seams ─────────────────────────────────────────────────────


class Directory:
    """A RecipientResolver over a fixed table; raises when told to, as a database that is down would."""

    def __init__(self, table: dict[str, InboundTarget]) -> None:
        self.table = {address.lower(): target for address, target in table.items()}
        self.down = False

    def resolve(self, address: str) -> InboundTarget | None:
        if self.down:
            raise StoreError("database unavailable")
        return self.table.get(address.lower())


@dataclass
class Stored:
    target: InboundTarget | PostmasterTarget
    data: bytes
    envelope_from: str
    recipients: tuple[str, ...]
    trace: bytes


@dataclass
class MemorySink:
    """An InboundSink in memory, that can fail the next stores or hold them until released."""

    stored: list[Stored] = field(default_factory=list)
    failures: int = 0
    gate: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)

    def store(self, target: InboundTarget, mail: InboundMail, *, trace: bytes = b"") -> int:
        return self._keep(target, mail, trace)

    def store_postmaster(self, mail: InboundMail, *, trace: bytes = b"") -> int:
        return self._keep(PostmasterTarget(), mail, trace)

    def _keep(self, target: InboundTarget | PostmasterTarget, mail: InboundMail, trace: bytes) -> int:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        if self.failures:
            self.failures -= 1
            raise StoreError("disk full")
        self.stored.append(Stored(target, trace + mail.raw, mail.envelope_from, mail.recipients, trace))
        return len(self.stored)


@pytest.fixture
def directory() -> Directory:
    return Directory({KNOWN: InboundTarget(1), OTHER: InboundTarget(2)})


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def make_listener() -> Iterator[Callable[..., SmtpListener]]:
    started: list[SmtpListener] = []

    def make(resolver: Any, sink: Any, **options: Any) -> SmtpListener:
        options.setdefault("max_message_bytes", LIMIT)
        options.setdefault("hostname", "mx.postroom.test")
        options.setdefault("domain", DOMAIN)
        listener = SmtpListener("127.0.0.1", 0, resolver, sink, **options).start()
        started.append(listener)
        return listener

    yield make
    for listener in started:
        listener.stop()


@pytest.fixture
def listener(make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink) -> SmtpListener:
    return make_listener(directory, sink)


def client(listener: SmtpListener, source: str = "127.0.0.1") -> smtplib.SMTP:
    # Any 127/8 address is loopback on Linux: another source address is another client IP.
    smtp = smtplib.SMTP(
        "127.0.0.1", listener.port, local_hostname="relay.company.example", timeout=10, source_address=(source, 0)
    )
    smtp.ehlo()
    return smtp


def trusting_the_test_ca(certs: Certificates) -> ssl.SSLContext:
    """What a validating sender uses: the system's defaults, with the test CA as the only trusted root."""
    return ssl.create_default_context(cafile=str(certs.ca_file))


# ── recipients ─────────────────────────────────────────────────────────────────────────────────


def test_known_recipient_is_stored_with_a_trace_header_and_250_names_the_stored_id(
    listener: SmtpListener, sink: MemorySink
) -> None:
    raw = make_mail(to="support@company.example")
    with client(listener) as smtp:
        assert smtp.mail("ada@customer.example")[0] == 250
        assert smtp.rcpt(KNOWN) == (250, b"2.1.5 OK")
        code, reply = smtp.data(raw)

    assert (code, reply) == (250, b"2.0.0 queued as 1")
    [stored] = sink.stored
    assert stored.target == InboundTarget(1)
    assert stored.envelope_from == "ada@customer.example"
    assert stored.recipients == (KNOWN,)
    # RFC 5321 §4.4: Return-Path and Received in front, the mail itself unchanged behind them.
    assert stored.data.startswith(
        b"Return-Path: <ada@customer.example>\r\nReceived: from relay.company.example ([127.0.0.1])"
    )
    assert b"by mx.postroom.test (Postroom) with ESMTP id " in stored.trace
    assert f"for <{KNOWN}>;".encode() in stored.trace
    assert stored.data.endswith(raw) and stored.data == stored.trace + raw


def test_unknown_recipient_is_refused_at_rcpt_before_any_data(listener: SmtpListener, sink: MemorySink) -> None:
    stranger = f"nobody@{DOMAIN}"
    with client(listener) as smtp:
        smtp.mail("ada@customer.example")
        assert smtp.rcpt(stranger) == (550, f"5.1.1 <{stranger}>: no such recipient here".encode())
        # No accepted recipient: DATA is refused, nothing was transferred.
        assert smtp.docmd("DATA")[0] == 503

    assert sink.stored == []


def test_mixed_recipients_unknown_refused_known_delivered(listener: SmtpListener, sink: MemorySink) -> None:
    with client(listener) as smtp:
        refused = smtp.sendmail("ada@customer.example", [KNOWN, "someone@elsewhere.example"], make_mail())

    assert refused == {"someone@elsewhere.example": (550, b"5.1.1 <someone@elsewhere.example>: no such recipient here")}
    assert [s.recipients for s in sink.stored] == [(KNOWN,)]


def test_a_failing_lookup_is_temporary(listener: SmtpListener, directory: Directory, sink: MemorySink) -> None:
    directory.down = True
    with client(listener) as smtp:
        smtp.mail("ada@customer.example")
        code, reply = smtp.rcpt(KNOWN)

    # 4xx: the sending MTA keeps the mail and tries again; a 5xx here would bounce it.
    assert code == 451 and reply.startswith(b"4.3.0 ")
    assert sink.stored == []


def test_recipients_of_different_connections_get_one_copy_each(listener: SmtpListener, sink: MemorySink) -> None:
    raw = make_mail()
    second_alias = KNOWN.upper()  # same connection, spelled differently
    with client(listener) as smtp:
        smtp.mail("ada@customer.example")
        for rcpt in (KNOWN, OTHER, second_alias):
            assert smtp.rcpt(rcpt)[0] == 250
        code, reply = smtp.data(raw)

    assert (code, reply) == (250, b"2.0.0 queued as 1,2")
    by_target = {s.target.connection_id: s for s in sink.stored if isinstance(s.target, InboundTarget)}
    assert set(by_target) == {1, 2}
    assert by_target[1].recipients == (KNOWN, second_alias)
    assert by_target[2].recipients == (OTHER,)
    # Several recipients: the Received field does not list them (RFC 5321 §7.6).
    assert b"for <" not in by_target[1].trace
    assert f"for <{OTHER}>".encode() in by_target[2].trace
    assert all(s.data.endswith(raw) for s in sink.stored)


def test_null_sender_bounces_are_accepted(listener: SmtpListener, sink: MemorySink) -> None:
    with client(listener) as smtp:
        assert smtp.docmd("MAIL FROM:<>")[0] == 250
        assert smtp.rcpt(KNOWN)[0] == 250
        assert smtp.data(make_mail())[0] == 250

    assert sink.stored[0].data.startswith(b"Return-Path: <>\r\n")


def test_trace_fields_keep_client_text_from_changing_their_structure() -> None:
    trace = trace_fields(
        envelope_from="a@b.example> (x)",
        recipients=["k@inbound.example"],
        helo="evil (comment); by fake\tname",
        peer=("2001:db8::1", 25, 0, 0),
        hostname="mx.postroom.test",
        esmtp=False,
        tls=False,
        queue_id="q1",
        now=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )

    assert trace == (
        b"Return-Path: <a@b.examplex>\r\n"
        b"Received: from evilcommentbyfakename ([IPv6:2001:db8::1])\r\n"
        b"\tby mx.postroom.test (Postroom) with SMTP id q1\r\n"
        b"\tfor <k@inbound.example>; Wed, 01 May 2024 12:00:00 +0000\r\n"
    )


# ── size limits (RFC 1870, RFC 3463 5.3.4) ────────────────────────────────────────────────────


def test_size_is_announced_and_an_oversized_mail_from_is_refused(listener: SmtpListener, sink: MemorySink) -> None:
    with client(listener) as smtp:
        assert smtp.has_extn("size") and smtp.esmtp_features["size"] == str(LIMIT)
        code, reply = smtp.mail("ada@customer.example", [f"SIZE={LIMIT + 1}"])
        assert code == 552 and reply.startswith(b"5.3.4 ")
        assert smtp.mail("ada@customer.example", [f"SIZE={LIMIT // 2}"])[0] == 250

    assert sink.stored == []


def test_data_beyond_the_limit_is_refused_after_data(listener: SmtpListener, sink: MemorySink) -> None:
    big = make_mail(body=("x" * 70 + "\n") * (LIMIT // 70 + 10))
    with client(listener) as smtp:
        smtp.mail("ada@customer.example")  # no SIZE given: the limit can only be found after the data
        smtp.rcpt(KNOWN)
        code, reply = smtp.data(big)
        assert code == 552 and reply.startswith(b"5.3.4 ")
        # The session goes on: a mail within the limit is still welcome.
        assert smtp.sendmail("ada@customer.example", [KNOWN], make_mail()) == {}

    assert len(sink.stored) == 1


# ── 250 only after the commit; 451 when the store fails ───────────────────────────────────────


def test_250_is_sent_only_after_the_sink_returned(listener: SmtpListener, sink: MemorySink) -> None:
    sink.gate = threading.Event()
    replies: list[tuple[int, str]] = []

    async def deliver() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=listener.port, timeout=10, start_tls=False) as smtp:
            await smtp.mail("ada@customer.example")
            await smtp.rcpt(KNOWN)
            response = await smtp.data(make_mail())
            replies.append((response.code, response.message))

    thread = threading.Thread(target=asyncio.run, args=(deliver(),))
    thread.start()
    try:
        assert sink.entered.wait(10)
        # The store is under way and not committed: the client must still be waiting for its reply.
        thread.join(0.3)
        assert thread.is_alive() and replies == []
    finally:
        sink.gate.set()
        thread.join(10)

    assert replies == [(250, "2.0.0 queued as 1")]


def test_a_failed_store_answers_451_and_the_retry_is_stored(listener: SmtpListener, sink: MemorySink) -> None:
    sink.failures = 1
    raw = make_mail()
    with client(listener) as smtp, pytest.raises(smtplib.SMTPDataError) as refused:
        smtp.sendmail("ada@customer.example", [KNOWN], raw)

    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error.startswith(b"4.3.0 ")
    assert sink.stored == []

    # The sending MTA kept the mail (4xx) and tries again: nothing was lost.
    with client(listener) as smtp:
        assert smtp.sendmail("ada@customer.example", [KNOWN], raw) == {}
    assert [s.data.endswith(raw) for s in sink.stored] == [True]


def test_aiosmtplib_send_message_with_starttls(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink, certs: Certificates
) -> None:
    listener = make_listener(directory, sink, tls_context=certs.server_context())
    raw = make_mail()

    async def deliver() -> tuple[dict[str, Any], str]:
        context = ssl.create_default_context(cafile=str(certs.ca_file))
        errors, message = await aiosmtplib.send(
            raw,
            sender="ada@customer.example",
            recipients=[KNOWN],
            hostname="127.0.0.1",
            port=listener.port,
            start_tls=True,
            tls_context=context,
            timeout=10,
        )
        return dict(errors), message

    errors, message = asyncio.run(deliver())

    assert errors == {} and message == "2.0.0 queued as 1"
    # RFC 3848: ESMTPS says the mail came over TLS.
    assert b" with ESMTPS id " in sink.stored[0].trace


# ── STARTTLS (RFC 3207) ───────────────────────────────────────────────────────────────────────


def test_starttls_with_smtplib_validates_the_certificate_against_the_test_ca(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink, certs: Certificates
) -> None:
    listener = make_listener(directory, sink, tls_context=certs.server_context())
    raw = make_mail()
    with client(listener) as smtp:
        assert smtp.has_extn("starttls")
        assert smtp.starttls(context=trusting_the_test_ca(certs))[0] == 220
        # The certificate chained to the test CA and named the address we dialled (hostname checked).
        tls = smtp.sock
        assert isinstance(tls, ssl.SSLSocket)
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        certificate = tls.getpeercert()
        assert certificate and (("commonName", "Postroom test CA"),) in certificate["issuer"]
        # RFC 3207 §4.2: the client starts over with EHLO; the server no longer offers STARTTLS.
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
        assert smtp.sendmail("ada@customer.example", [KNOWN], raw) == {}

    [stored] = sink.stored
    assert b" with ESMTPS id " in stored.trace and stored.data.endswith(raw)


def test_a_sender_that_does_not_trust_the_certificate_refuses_it(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink, certs: Certificates
) -> None:
    # Proof that the test above validates something: the untrusted self-signed certificate fails.
    listener = make_listener(directory, sink, tls_context=certs.server_context(untrusted=True))
    with client(listener) as smtp, pytest.raises(ssl.SSLCertVerificationError):
        smtp.starttls(context=trusting_the_test_ca(certs))

    assert sink.stored == []


def test_starttls_offered_but_not_required_plain_text_is_still_accepted(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink, certs: Certificates
) -> None:
    listener = make_listener(directory, sink, tls_context=certs.server_context())
    with client(listener) as smtp:
        assert smtp.has_extn("starttls")
        assert smtp.sendmail("ada@customer.example", [KNOWN], make_mail()) == {}

    # Plain text: the Received line must not claim TLS (RFC 3848).
    assert b" with ESMTP id " in sink.stored[0].trace


def test_required_tls_refuses_mail_before_starttls_with_530(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink, certs: Certificates
) -> None:
    listener = make_listener(directory, sink, tls_context=certs.server_context(), require_tls=True)
    with client(listener) as smtp:
        assert smtp.mail("ada@customer.example") == (530, b"5.7.0 Must issue a STARTTLS command first")
        assert smtp.docmd("RCPT", f"TO:<{KNOWN}>")[0] == 530
        assert smtp.noop()[0] == 250  # RFC 3207 §4: NOOP, EHLO, STARTTLS and QUIT stay allowed
        smtp.starttls(context=trusting_the_test_ca(certs))
        smtp.ehlo()
        assert smtp.sendmail("ada@customer.example", [KNOWN], make_mail()) == {}

    [stored] = sink.stored
    assert b" with ESMTPS id " in stored.trace


def test_no_auth_is_offered_or_accepted_before_or_after_starttls(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink, certs: Certificates
) -> None:
    # QA: after STARTTLS the listener offered aiosmtpd's AUTH LOGIN PLAIN and answered every try 535.
    # A receiving MX has no one to sign in: no AUTH in EHLO, and AUTH itself is "not implemented".
    listener = make_listener(directory, sink, tls_context=certs.server_context())
    with client(listener) as smtp:
        assert not smtp.has_extn("auth")
        smtp.starttls(context=trusting_the_test_ca(certs))
        smtp.ehlo()
        assert not smtp.has_extn("auth")
        assert smtp.esmtp_features.keys() >= {"size", "8bitmime"}
        code, text = smtp.docmd("AUTH", "PLAIN AGFkYQBzZWNyZXQ=")
        assert (code, text.split(b" ")[0]) == (502, b"5.5.1")
        assert "auth" not in smtp.docmd("HELP")[1].decode().lower()
        # The session goes on: the mail is delivered, and the Received line still names the client.
        assert smtp.sendmail("ada@customer.example", [KNOWN], make_mail()) == {}

    assert b"Received: from relay.company.example " in sink.stored[0].trace


def test_the_greeting_names_the_configured_host_and_no_library_version(listener: SmtpListener) -> None:
    smtp = smtplib.SMTP(timeout=10)
    try:
        code, greeting = smtp.connect("127.0.0.1", listener.port)
        assert (code, greeting) == (220, b"mx.postroom.test Postroom ESMTP")
        code, reply = smtp.ehlo("relay.company.example")
        assert code == 250 and reply.splitlines()[0] == b"mx.postroom.test"
    finally:
        smtp.close()


def test_require_tls_without_a_certificate_is_a_programming_error(directory: Directory, sink: MemorySink) -> None:
    with pytest.raises(ValueError, match="tls_context"):
        SmtpListener("127.0.0.1", 0, directory, sink, require_tls=True)


# ── postmaster (RFC 5321 §4.5.1) ──────────────────────────────────────────────────────────────


def test_postmaster_is_accepted_in_any_case_and_without_a_domain(
    listener: SmtpListener, directory: Directory, sink: MemorySink
) -> None:
    # The postmaster does not depend on the connections: even with the lookup down it receives mail.
    directory.down = True
    raw = make_mail(to=f"postmaster@{DOMAIN}", subject="Your server sends us spam")
    with client(listener) as smtp:
        assert smtp.sendmail("abuse@isp.example", [f"PostMaster@{DOMAIN.upper()}"], raw) == {}
        # RFC 5321 §4.1.1.3: "RCPT TO:<Postmaster>" without a domain must be accepted.
        assert smtp.sendmail("abuse@isp.example", ["Postmaster"], raw) == {}
        smtp.mail("abuse@isp.example")
        assert smtp.rcpt("postmaster@elsewhere.example")[0] == 451  # not ours: asks the (down) resolver

    assert [(s.target, s.recipients) for s in sink.stored] == [
        (PostmasterTarget(), (f"PostMaster@{DOMAIN.upper()}",)),
        (PostmasterTarget(), ("Postmaster",)),
    ]
    assert all(s.data.endswith(raw) and s.envelope_from == "abuse@isp.example" for s in sink.stored)


def test_postmaster_of_every_inbound_domain_is_accepted(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink
) -> None:
    listener = make_listener(directory, sink, domain=(DOMAIN, "old-inbound.example"))
    with client(listener) as smtp:
        smtp.mail("abuse@isp.example")
        assert smtp.rcpt("postmaster@old-inbound.example")[0] == 250
        assert smtp.rcpt(f"postmaster@{DOMAIN}")[0] == 250
        assert smtp.rcpt("postmaster@elsewhere.example")[0] == 550

    assert listener.handler.domains == (DOMAIN, "old-inbound.example")


def test_postmaster_of_another_domain_is_refused_and_mixed_recipients_get_a_copy_each(
    listener: SmtpListener, sink: MemorySink
) -> None:
    with client(listener) as smtp:
        smtp.mail("ada@customer.example")
        assert smtp.rcpt("postmaster@elsewhere.example")[0] == 550
        assert smtp.rcpt(f"postmaster@{DOMAIN}")[0] == 250
        assert smtp.rcpt(KNOWN)[0] == 250
        assert smtp.data(make_mail())[0] == 250

    assert {s.target for s in sink.stored} == {PostmasterTarget(), InboundTarget(1)}


# ── recipient and session limits ──────────────────────────────────────────────────────────────


def test_more_than_100_recipients_get_452_and_the_first_100_are_delivered(
    listener: SmtpListener, sink: MemorySink
) -> None:
    raw = make_mail()
    with client(listener) as smtp:
        smtp.mail("ada@customer.example")
        for _ in range(MAX_RECIPIENTS):
            assert smtp.rcpt(KNOWN)[0] == 250
        # RFC 5321 §4.5.3.1.10: 452 (not 552), so that the client sends the rest in another transaction.
        code, reply = smtp.rcpt(OTHER)
        assert code == 452 and reply.startswith(b"4.5.3 Too many recipients")
        assert smtp.data(raw)[0] == 250
        # The next transaction starts from zero.
        assert smtp.sendmail("ada@customer.example", [OTHER], raw) == {}

    assert [(s.target, len(s.recipients)) for s in sink.stored] == [(InboundTarget(1), 100), (InboundTarget(2), 1)]


def test_sessions_over_the_limits_get_421_at_connect(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink
) -> None:
    listener = make_listener(directory, sink, limits=SessionLimits(max_sessions=3, max_sessions_per_ip=2))
    # aiosmtpd's start() proves the server up with a connection of its own; wait until it is gone.
    wait_until(lambda: listener.open_sessions == 0)
    first, second = client(listener), client(listener)
    assert listener.open_sessions == 2
    try:
        # A third session from the same address: refused instead of greeted (RFC 5321 §3.8).
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            client(listener)
        assert refused.value.smtp_code == 421
        assert refused.value.smtp_error == b"4.7.0 Too many connections from your address, try again later"
        # Another address still gets in, up to the overall limit.
        with client(listener, source="127.0.0.2") as other:
            with pytest.raises(smtplib.SMTPConnectError) as full:
                client(listener, source="127.0.0.3")
            assert full.value.smtp_code == 421
            assert full.value.smtp_error == b"4.7.0 Too many connections, try again later"
            # The sessions admitted work as ever.
            assert other.sendmail("ada@customer.example", [KNOWN], make_mail()) == {}
    finally:
        first.quit()

    # A session that ended frees its place (the server learns it asynchronously: retry until it has).
    def third_session() -> bool:
        try:
            client(listener).quit()
        except smtplib.SMTPConnectError:
            return False
        return True

    wait_until(third_session, timeout=10, interval=0.05)
    second.quit()
    assert len(sink.stored) == 1
    # Refused sessions were never counted, ended ones are released: back to none.
    wait_until(lambda: listener.open_sessions == 0)


def test_a_starttls_session_counts_once_and_is_released_once(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink, certs: Certificates
) -> None:
    listener = make_listener(
        directory, sink, tls_context=certs.server_context(), limits=SessionLimits(max_sessions_per_ip=1)
    )

    def deliver() -> bool:
        try:
            with client(listener) as smtp:
                # The TLS layer announces itself as a new connection; it must not count as a second one.
                smtp.starttls(context=trusting_the_test_ca(certs))
                smtp.ehlo()
                assert smtp.sendmail("ada@customer.example", [KNOWN], make_mail()) == {}
        except smtplib.SMTPConnectError:
            return False  # the previous session is not released yet
        return True

    for _ in range(3):
        wait_until(deliver, timeout=10, interval=0.05)

    assert len(sink.stored) == 3
    wait_until(lambda: listener.open_sessions == 0)


# ── sessions that hold their place without delivering mail ─────────────────────────────────────

IDLE_421 = b"421 4.4.2 Timeout waiting for the client, closing connection\r\n"
TIME_421 = b"421 4.7.0 Session time limit exceeded, closing connection\r\n"
JUNK_421 = b"421 4.7.0 Too many commands without delivering mail, closing connection\r\n"


class RawClient:
    """SMTP on a bare socket, for clients that misbehave in ways smtplib would not (trickling, idling)."""

    def __init__(self, listener: SmtpListener) -> None:
        self.sock = socket.create_connection(("127.0.0.1", listener.port), timeout=10)
        self.greeting = self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str) -> bytes:
        self.send(line.encode("ascii") + b"\r\n")
        return self.reply()

    def reply(self) -> bytes:
        """One whole reply (every line of a multi-line one); b"" when the server has closed."""
        lines = b""
        while True:
            line = self._line()
            lines += line
            if not line or line[3:4] != b"-":
                return lines

    def _line(self) -> bytes:
        line = b""
        while not line.endswith(b"\n"):
            try:
                byte = self.sock.recv(1)
            except ConnectionResetError:
                return line
            if not byte:
                return line
            line += byte
        return line

    def answered_within(self, seconds: float) -> bool:
        """Whether the server sent something (a reply, or its close) within ``seconds``."""
        return bool(selectors.select([self.sock], [], [], seconds)[0])

    def close(self) -> None:
        self.sock.close()


def test_a_client_that_loops_on_noop_is_closed_after_the_junk_limit(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink
) -> None:
    listener = make_listener(directory, sink, limits=SessionLimits(junk_commands=5))
    wait_until(lambda: listener.open_sessions == 0)

    looping = RawClient(listener)
    try:
        assert looping.command("EHLO relay.company.example").startswith(b"250-")  # the first junk command
        for _ in range(4):
            assert looping.command("NOOP") == b"250 OK\r\n"
        # RFC 5321 §3.8: the 421 names the reason, and the server closes.
        assert looping.command("NOOP") == JUNK_421
        assert looping.reply() == b""
    finally:
        looping.close()
    wait_until(lambda: listener.open_sessions == 0)

    # A sender that delivers starts counting afresh with each mail, and refusals count like NOOP.
    with client(listener) as smtp:  # EHLO: 1
        assert smtp.noop()[0] == smtp.noop()[0] == 250  # 3
        assert smtp.sendmail("ada@customer.example", [KNOWN], make_mail()) == {}  # delivered: 0
        assert smtp.mail("ada@customer.example")[0] == 250
        assert smtp.rcpt(f"nobody@{DOMAIN}")[0] == 550  # 1
        assert smtp.rset()[0] == 250  # 2
        for _ in range(3):
            assert smtp.noop()[0] == 250  # 5
        assert smtp.noop() == (421, JUNK_421[4:-2])
    assert len(sink.stored) == 1


def test_a_client_silent_for_the_idle_time_gets_421_and_is_closed(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink
) -> None:
    listener = make_listener(directory, sink, limits=SessionLimits(idle_seconds=0.5))
    wait_until(lambda: listener.open_sessions == 0)
    silent = RawClient(listener)
    try:
        started = time.monotonic()
        assert silent.reply() == IDLE_421
        assert 0.4 < time.monotonic() - started < 5
        assert silent.reply() == b""
    finally:
        silent.close()
    wait_until(lambda: listener.open_sessions == 0)


def test_a_session_past_its_time_gets_421_and_its_place_goes_to_a_real_sender(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink
) -> None:
    # One place, taken by a client that is never idle (a NOOP every 0.2 s) and far from the junk limit.
    listener = make_listener(directory, sink, limits=SessionLimits(max_sessions=1, session_seconds=1.0))
    wait_until(lambda: listener.open_sessions == 0)
    slow = RawClient(listener)
    try:
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            client(listener)
        assert refused.value.smtp_code == 421  # the real sender waits meanwhile
        reply = b"250 OK\r\n"
        while reply == b"250 OK\r\n" and time.monotonic() - started < 10:
            # Send only while the server has said nothing: after its 421 the next NOOP would meet a closed socket.
            reply = slow.reply() if slow.answered_within(0.2) else slow.command("NOOP")
        assert reply == TIME_421
        assert 0.9 < time.monotonic() - started < 5
        assert slow.reply() == b""
    finally:
        slow.close()

    # The place is free again (the server learns of the close asynchronously: retry until it has).
    def deliver() -> bool:
        try:
            with client(listener) as smtp:
                assert smtp.sendmail("ada@customer.example", [KNOWN], make_mail()) == {}
        except smtplib.SMTPConnectError:
            return False
        return True

    wait_until(deliver, timeout=10, interval=0.05)
    assert len(sink.stored) == 1


def test_a_slow_large_mail_is_not_cut_by_the_idle_time_the_junk_limit_or_the_session_time(
    make_listener: Callable[..., SmtpListener], directory: Directory, sink: MemorySink
) -> None:
    # The transfer lasts 2.25 s: longer than the idle time counted from the DATA command, than the session
    # time, and it has far more lines than the junk limit allows commands.
    limits = SessionLimits(idle_seconds=1.0, session_seconds=1.5, junk_commands=2)
    listener = make_listener(directory, sink, limits=limits)
    lines = [f"line {n} of a large mail".encode() for n in range(900)]
    raw = b"Subject: large\r\nMessage-ID: <large@customer.example>\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    sender = RawClient(listener)
    try:
        assert sender.command("EHLO relay.company.example").startswith(b"250-")
        assert sender.command("MAIL FROM:<ada@customer.example>").startswith(b"250")
        assert sender.command(f"RCPT TO:<{KNOWN}>").startswith(b"250")
        assert sender.command("DATA").startswith(b"354")
        chunk = len(raw) // 9 + 1
        for start in range(0, len(raw), chunk):
            sender.send(raw[start : start + chunk])
            time.sleep(0.25)
        assert sender.command(".") == b"250 2.0.0 queued as 1\r\n"
        # The session time ran out during the transfer: the session ends after the mail's reply.
        assert sender.reply() == TIME_421
        assert sender.reply() == b""
    finally:
        sender.close()
    assert sink.stored[0].data.endswith(raw)


def test_session_time_settings_reach_the_listener(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        smtp_bind="127.0.0.1:0",
        smtp_idle_seconds=7,
        smtp_session_seconds=8,
        smtp_junk_commands=9,
    )
    service = Service(settings)
    try:
        listener = service.start_listener()
        assert listener is not None
        assert listener.limits == SessionLimits(idle_seconds=7, session_seconds=8, junk_commands=9)
    finally:
        service.close()
    defaults = Settings(data_dir=tmp_path)
    assert (defaults.smtp_idle_seconds, defaults.smtp_session_seconds, defaults.smtp_junk_commands) == (300, 600, 100)
    assert SessionLimits() == SessionLimits(idle_seconds=300, session_seconds=600, junk_commands=100)
    with pytest.raises(ValueError):
        SessionLimits(session_seconds=0)


# ── the database implementations (SQLite and PostgreSQL) ──────────────────────────────────────


def forwarding_connection(db: Database, secrets: SecretBox, name: str = "Forwarded") -> tuple[int, str, list[int]]:
    with db.write() as session:
        connection = ConnectionService(secrets, DOMAIN).create(
            session,
            ConnectionInput(
                name=name,
                mode="forwarding",
                address="support@company.example, sales@company.example",
                smtp_server="127.0.0.1",
            ),
        )
        key = connection.inbound_key
        assert key is not None
        return connection.id, key, [box.id for box in connection.mailboxes]


def raw_rows(db: Database) -> list[tuple[int, int | None, str, str, bytes]]:
    with db.read() as session:
        return [
            (row.id, row.mailbox_id, row.dedupe_key, row.origin, row.data)
            for row in session.execute(
                select(RawMessage.id, RawMessage.mailbox_id, RawMessage.dedupe_key, RawMessage.origin, RawBody.data)
                .join(RawBody, RawBody.raw_id == RawMessage.id)
                .order_by(RawMessage.id)
            )
        ]


def test_forwarding_resolver_knows_only_forwarding_keys_of_its_domain(db: Database, secrets: SecretBox) -> None:
    connection_id, key, _ = forwarding_connection(db, secrets)
    resolver = ForwardingResolver(db, DOMAIN.upper())

    assert resolver.resolve(f"{key}@{DOMAIN}") == InboundTarget(connection_id)
    # Domains compare without case (RFC 5321 §2.4); our keys are lower-case, a folded one still matches.
    assert resolver.resolve(f"{key.upper()}@{DOMAIN.upper()}.") == InboundTarget(connection_id)
    assert resolver.resolve(f"{key}@elsewhere.example") is None
    assert resolver.resolve(f"{generate_inbound_key()}@{DOMAIN}") is None
    assert resolver.resolve(f"@{DOMAIN}") is None
    assert resolver.resolve("not-an-address") is None

    # A key of a connection that is not in forwarding mode does not receive mail here.
    with db.write() as session:
        row = session.get(Connection, connection_id)
        assert row is not None
        row.mode = ConnectionMode.WEBHOOK
    assert resolver.resolve(f"{key}@{DOMAIN}") is None


def test_forwarding_resolver_accepts_every_inbound_domain(db: Database, secrets: SecretBox) -> None:
    # QA: after POSTROOM_INBOUND_DOMAIN changed, forwarding rules naming the old address bounced.
    connection_id, key, _ = forwarding_connection(db, secrets)
    resolver = ForwardingResolver(db, ("new-inbound.example", "Old-Inbound.example."))

    assert resolver.resolve(f"{key}@new-inbound.example") == InboundTarget(connection_id)
    assert resolver.resolve(f"{key}@OLD-inbound.example") == InboundTarget(connection_id)
    assert resolver.resolve(f"{key}@{DOMAIN}") is None  # not in the list: refused (550 5.1.1)


def test_generated_keys_are_lower_case_random_and_long() -> None:
    keys = {generate_inbound_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) >= 20 and k == k.lower() and k.isalnum() for k in keys)


def test_two_forwarded_copies_over_smtp_are_stored_once_on_the_original_mailbox(
    db: Database, secrets: SecretBox, make_listener: Callable[..., SmtpListener]
) -> None:
    connection_id, key, (support_id, sales_id) = forwarding_connection(db, secrets)
    woken: list[int] = []
    listener = make_listener(ForwardingResolver(db, DOMAIN), InboundRawSink(db, "smtp", on_stored=woken.append))
    address = f"{key}@{DOMAIN}"
    # Two forwarding rules deliver the same mail (one Message-ID) with different trace headers.
    base = make_mail(to="sales@company.example", message_id="order-17@customer.example")
    first = b"Delivered-To: sales@company.example\r\n" + base
    second = b"X-Forwarded-For: sales@company.example " + address.encode() + b"\r\n" + base

    with client(listener) as smtp:
        assert smtp.sendmail("ada@customer.example", [address], first) == {}
        assert smtp.sendmail("ada@customer.example", [address], second) == {}

    [(raw_id, mailbox_id, dedupe_key, origin, data)] = raw_rows(db)
    assert (mailbox_id, dedupe_key, origin) == (sales_id, "mid:order-17@customer.example", "smtp")
    assert data.startswith(b"Return-Path: <ada@customer.example>\r\nReceived: ") and data.endswith(first)
    assert woken == [1]
    with db.read() as session:
        assert session.scalar(select(RawMessage.connection_id).where(RawMessage.id == raw_id)) == connection_id
        assert session.scalar(select(Mailbox.address).where(Mailbox.id == support_id)) == "support@company.example"


def test_mail_without_message_id_is_keyed_by_its_bytes_not_by_our_trace(
    db: Database, secrets: SecretBox, make_listener: Callable[..., SmtpListener]
) -> None:
    _, key, (support_id, _) = forwarding_connection(db, secrets)
    listener = make_listener(ForwardingResolver(db, DOMAIN), InboundRawSink(db, "smtp"))
    raw = make_mail(to="someone@else.example", with_message_id=False)

    # The same bytes delivered twice (a sender retrying after a lost 250) get different trace headers.
    for _ in range(2):
        with client(listener) as smtp:
            assert smtp.sendmail("", [f"{key}@{DOMAIN}"], raw) == {}

    [(_, mailbox_id, dedupe_key, _, _)] = raw_rows(db)
    # No header names one of the mailboxes: the first one receives it.
    assert mailbox_id == support_id
    assert dedupe_key == inbound_dedupe_key(raw) and dedupe_key.startswith("sha256:")


def test_sink_prefers_the_envelope_recipient_and_honours_an_explicit_mailbox(db: Database, secrets: SecretBox) -> None:
    connection_id, _, (support_id, sales_id) = forwarding_connection(db, secrets)
    sink = InboundRawSink(db, "webhook")
    raw = make_mail(to="support@company.example")

    def mail(*recipients: str) -> InboundMail:
        return InboundMail(raw=raw, recipients=recipients, envelope_from="ada@customer.example")

    first = sink.store(InboundTarget(connection_id), mail("SALES@company.example"))
    again = sink.store(InboundTarget(connection_id), mail("sales@company.example"))
    other = sink.store(InboundTarget(connection_id, support_id), mail())

    assert first == again != other
    assert [(row[0], row[1]) for row in raw_rows(db)] == [(first, sales_id), (other, support_id)]


def test_a_very_long_message_id_still_fits_the_key() -> None:
    raw = make_mail(message_id="x" * 990 + "@customer.example")
    key = inbound_dedupe_key(raw)
    assert len(key) <= 1000 and key.startswith("mid-sha256:")


def test_postmaster_mail_is_kept_for_the_admin_without_a_connection(
    db: Database, secrets: SecretBox, make_listener: Callable[..., SmtpListener]
) -> None:
    forwarding_connection(db, secrets)
    woken: list[int] = []
    listener = make_listener(ForwardingResolver(db, DOMAIN), InboundRawSink(db, "smtp", on_stored=woken.append))
    raw = make_mail(to=f"postmaster@{DOMAIN}", message_id="complaint-1@isp.example")

    # A sender retrying after a lost 250 delivers it twice: it is kept once.
    for _ in range(2):
        with client(listener) as smtp:
            assert smtp.sendmail("abuse@isp.example", [f"postmaster@{DOMAIN}"], raw) == {}

    with db.read() as session:
        [row] = session.scalars(select(RawMessage).where(RawMessage.connection_id.is_(None))).all()
        body = session.get(RawBody, row.id)
        assert body is not None
        data = body.data
    assert (row.mailbox_id, row.origin, row.status, row.error) == (None, "smtp", RawStatus.IGNORED, POSTMASTER_NOTE)
    assert row.header_message_id == "complaint-1@isp.example"
    assert row.dedupe_key == "postmaster:mid:complaint-1@isp.example"
    assert data.startswith(b"Return-Path: <abuse@isp.example>\r\nReceived: ") and data.endswith(raw)
    # Nothing for the pipeline to do: it is not woken, and "ignored" is never claimed.
    assert woken == []
