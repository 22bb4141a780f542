"""Test a connection ("Test connection"): every step from DNS to the folder, timed and named.

:func:`probe_connection` checks each mailbox of a connection the way an admin would debug it by hand,
one step at a time, and says for every step whether it passed, how long it took and what it found:

- incoming, by the connection's mode: DNS resolution, TCP connect, TLS handshake and certificate
  (implicit TLS, or after the STARTTLS upgrade), sign-in, and the folder (EXAMINEd, so nothing in the
  mailbox changes). Forwarding and webhook connections have no incoming server: "not applicable".
- outgoing, by the connection's outbound kind: DNS, TCP, TLS and sign-in of the SMTP server.
- with ``roundtrip``: a probe mail sent from the mailbox to itself the way replies go out, waited for in
  the folder (IMAP SEARCH on its ``X-Postroom-Probe`` header) or the POP3 maildrop and deleted again;
  for forwarding and webhook connections waited for in the raw store, where the provider pushes it.
- with ``send_to``: a test mail from each mailbox to an address the admin names, through the connection's
  outbound way (SMTP or SendGrid) — "Test SMTP": what a customer will receive.

A failing step names the problem in the words of :mod:`postroom.tls` and the server (refused,
timed out, unreachable, the certificate's fault, the server's answer to the password), and the steps
after it in the same part are skipped, so that the first failure is the one to fix. The probe never
changes the connection's status, works on a stopped connection, and writes one line to the
connection log. No step detail and no log line contains a secret.

The step functions are looked up by mode (:data:`INCOMING_PROBES`, :data:`ROUNDTRIP_PROBES`) and by
outbound kind (:data:`OUTGOING_PROBES`); a new protocol adds its function to the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import secrets as _random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import aiosmtplib
import httpx
import structlog
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from postroom.channels.accounts import (
    MailboxAuth,
    imap_account,
    mailbox_auth,
    mailbox_mail,
    pop3_account,
    sendgrid_account,
    smtp_account,
)
from postroom.channels.logs import ConnectionEventLog
from postroom.errors import (
    ChannelError,
    ConnectError,
    DeliveryError,
    FolderError,
    InvalidSetting,
    NotFound,
    PostroomError,
    ProtocolError,
    TlsError,
)
from postroom.mail.addresses import parse_address_list
from postroom.mail.compose import compose
from postroom.mail.model import Address, ComposedMail, OutgoingMail
from postroom.sources import imap
from postroom.sources.base import ImapAccount
from postroom.sources.imap import ImapSession
from postroom.sources.pop3 import Pop3Account, Pop3Client, Pop3Session
from postroom.store.db import Database
from postroom.store.models import Connection, ConnectionMode, Mailbox, OutboundKind, RawBody, RawMessage, utcnow
from postroom.store.secretbox import SecretBox
from postroom.tls import network_error
from postroom.transports import sendgrid, smtp
from postroom.transports.base import SendResult, SmtpAccount

__all__ = [
    "DEFAULT_TIMEOUT",
    "INCOMING_PROBES",
    "OUTGOING_PROBES",
    "PROBE_HEADER",
    "ROUNDTRIP_PROBES",
    "PartProbe",
    "ProbeReport",
    "ProbeStep",
    "ProbeTarget",
    "StepRecorder",
    "check_reachable",
    "describe_tls",
    "imap_incoming",
    "imap_roundtrip",
    "parse_test_recipient",
    "pop3_incoming",
    "pop3_roundtrip",
    "probe_connection",
    "pushed_roundtrip",
    "send_test_mail",
    "smtp_outgoing",
]

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT: Final = 20.0
PROBE_HEADER: Final = "X-Postroom-Probe"
# A certificate this close to its end still works, but the admin should hear of it now.
_EXPIRY_WARNING: Final = timedelta(days=14)
# The roundtrip asks the folder for the probe mail at growing intervals: fast on a quick server,
# without hammering a slow one.
_POLL_FIRST: Final = 0.05
_POLL_MAX: Final = 1.0
# Raw messages of a connection looked at per poll of a pushed roundtrip: those stored since the send.
_PUSHED_SEARCH_LIMIT: Final = 500
# Failures named in the summary; the steps themselves list all of them.
_SUMMARY_FAILURES: Final = 3

Part = Literal["incoming", "outgoing", "roundtrip"]


# ── the report ─────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class ProbeStep:
    """One checked step. ``skipped`` steps did not apply or could not run; they are not failures."""

    mailbox: str
    part: Part
    protocol: str  # "IMAP", "SMTP", … ; empty when the part does not apply
    name: str  # dns, tcp, tls, signin, folder; send, arrival, cleanup
    ok: bool
    milliseconds: float
    detail: str
    error: str | None = None  # what decided a failure: the error class, e.g. "AuthenticationError"
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "mailbox": self.mailbox,
            "part": self.part,
            "protocol": self.protocol,
            "name": self.name,
            "ok": self.ok,
            "skipped": self.skipped,
            "milliseconds": round(self.milliseconds, 1),
            "detail": self.detail,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class ProbeReport:
    connection_id: int
    connection: str
    mode: str
    outbound: str
    roundtrip: bool
    started_at: datetime
    milliseconds: float
    steps: tuple[ProbeStep, ...]

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    @property
    def failures(self) -> list[ProbeStep]:
        return [step for step in self.steps if not step.ok]

    @property
    def summary(self) -> str:
        checked = [step for step in self.steps if not step.skipped]
        mailboxes = len({step.mailbox for step in self.steps})
        failures = self.failures
        if not failures:
            arrivals = [s.detail for s in self.steps if s.name == "arrival" and not s.skipped]
            tail = f"; {arrivals[0]}" if len(arrivals) == 1 else ""
            return f"all {len(checked)} checks passed for {mailboxes} mailbox(es){tail}"
        named = "; ".join(
            f"{step.mailbox} {step.part} {step.protocol} {step.name}: {step.detail}"
            for step in failures[:_SUMMARY_FAILURES]
        )
        more = f"; and {len(failures) - _SUMMARY_FAILURES} more" if len(failures) > _SUMMARY_FAILURES else ""
        return f"{len(failures)} of {len(checked)} checks failed: {named}{more}"

    def step(self, mailbox: str, part: Part, name: str) -> ProbeStep | None:
        """The step of one mailbox and part by name, or None when it was not reached."""
        return next((s for s in self.steps if s.mailbox == mailbox and s.part == part and s.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "connection_id": self.connection_id,
            "connection": self.connection,
            "mode": self.mode,
            "outbound": self.outbound,
            "roundtrip": self.roundtrip,
            "ok": self.ok,
            "summary": self.summary,
            "started_at": self.started_at.isoformat(),
            "milliseconds": round(self.milliseconds, 1),
            "steps": [step.to_json() for step in self.steps],
        }


class _StepFailed(PostroomError):
    """A step failed for a reason no protocol error names (the probe mail never arrived); stays in this module."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(detail)


class StepRecorder:
    """Runs the steps of one part of one mailbox in order, timing each; after a failure the rest are skipped.

    A step is a callable that returns what it found (the detail) or raises. Every detail passes
    through ``scrub``, which removes the connection's secrets: a server that echoes a password
    must not get it into the report.
    """

    def __init__(
        self, into: list[ProbeStep], mailbox: str, part: Part, protocol: str, scrub: Callable[[str], str]
    ) -> None:
        self._into = into
        self.mailbox = mailbox
        self.part = part
        self.protocol = protocol
        self._scrub = scrub
        self.failed_step: str | None = None

    @property
    def failed(self) -> bool:
        return self.failed_step is not None

    def run(self, name: str, action: Callable[[], str], *, protocol: str | None = None) -> bool:
        """Run one step unless an earlier one failed; whether it passed. ``protocol`` overrides the part's."""
        if self.failed_step is not None:
            self.skip(name, f"not run: {self.failed_step} failed", protocol=protocol)
            return False
        started = time.perf_counter()
        error: str | None = None
        try:
            detail = action()
        except ChannelError as failure:
            detail, error = failure.detail, type(failure).__name__
        except DeliveryError as failure:
            detail, error = str(failure), type(failure).__name__
        except _StepFailed as failure:
            detail, error = failure.detail, failure.code
        except Exception as failure:
            # A bug, not a server problem: it must still show up as the step it broke, not as a crash.
            log.exception("probe.step_crashed", mailbox=self.mailbox, part=self.part, step=name)
            detail, error = f"internal error: {type(failure).__name__}: {failure}", "InternalError"
        elapsed = (time.perf_counter() - started) * 1000
        self._add(name, ok=error is None, milliseconds=elapsed, detail=detail, error=error, protocol=protocol)
        if error is not None:
            self.failed_step = name
        return error is None

    def skip(self, name: str, detail: str, *, protocol: str | None = None) -> None:
        """Record a step that does not apply here (or cannot run); not a failure."""
        self._add(name, ok=True, milliseconds=0.0, detail=detail, error=None, skipped=True, protocol=protocol)

    def _add(
        self,
        name: str,
        *,
        ok: bool,
        milliseconds: float,
        detail: str,
        error: str | None,
        skipped: bool = False,
        protocol: str | None = None,
    ) -> None:
        self._into.append(
            ProbeStep(
                mailbox=self.mailbox,
                part=self.part,
                protocol=self.protocol if protocol is None else protocol,
                name=name,
                ok=ok,
                milliseconds=milliseconds,
                detail=self._scrub(detail),
                error=error,
                skipped=skipped,
            )
        )


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One mailbox to probe, with its accounts (secrets decrypted) built while the session was open."""

    connection: Connection  # detached: loaded with its mailboxes, read-only here
    mailbox: Mailbox
    imap: ImapAccount  # the incoming server; POP3 keeps its server in the same fields (store/models.py)
    smtp: SmtpAccount
    auth: MailboxAuth = field(repr=False)
    secrets: SecretBox = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    send_to: Address | None = None  # where the outgoing part sends a test mail, when the admin asks for one
    db: Database | None = field(default=None, repr=False)  # where pushed mail is looked for (forwarding, webhook)

    @property
    def address(self) -> str:
        return self.mailbox.address


PartProbe = Callable[[ProbeTarget, StepRecorder], None]
"""Checks one part of one mailbox, recording its steps (the recorder's protocol is set by the caller)."""


# ── protocol-independent steps: DNS, TCP, the TLS description ────────────────────────────────


def check_reachable(steps: StepRecorder, account: str, host: str, port: int, timeout: float) -> None:
    """The ``dns`` and ``tcp`` steps: resolve ``host``, then open (and close) a TCP connection to it."""
    found: list[tuple[Any, ...]] = []
    protocol = steps.protocol

    def resolve() -> str:
        found.extend(_resolve(protocol, account, host, port, timeout))
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        if addresses == [host]:
            return f"{host} is an IP address"
        return f"{host} resolves to {', '.join(addresses)}"

    steps.run("dns", resolve)
    steps.run("tcp", lambda: _tcp_connect(protocol, account, host, port, found, timeout))


def _resolve(protocol: str, account: str, host: str, port: int, timeout: float) -> list[tuple[Any, ...]]:
    if not host:
        raise ConnectError(protocol, account, "no server host name is set")
    outcome: list[list[tuple[Any, ...]] | OSError] = []

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as error:
            outcome.append(error)

    # getaddrinfo() has no timeout of its own: an unreachable resolver blocks for all of its retries
    # (resolv.conf "timeout" × "attempts" × nameservers). The lookup runs in a thread we stop waiting
    # for; it ends on its own when the resolver gives up.
    thread = threading.Thread(target=lookup, name=f"probe-dns-{host}", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise ConnectError(protocol, account, f"DNS lookup of {host} timed out after {timeout:g} s")
    result = outcome[0]
    if isinstance(result, OSError):
        raise network_error(protocol, account, f"{host}:{port}", result)
    if not result:
        raise ConnectError(protocol, account, f"{host} resolves to no address")
    return result


def _tcp_connect(
    protocol: str, account: str, host: str, port: int, addresses: Sequence[tuple[Any, ...]], timeout: float
) -> str:
    last: OSError | None = None
    where = f"{host}:{port}"
    # Every address in the resolver's order, as a client library would (RFC 6724 sorts them).
    for family, kind, proto, _name, sockaddr in addresses:
        where = f"{sockaddr[0]}:{sockaddr[1]}"
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(sockaddr)
            except OSError as error:
                last = error
                continue
        return f"connected to {sockaddr[0]} port {sockaddr[1]}"
    if last is None:
        raise ConnectError(protocol, account, f"{host} resolves to no address")
    raise _tcp_error(protocol, account, where, last, timeout)


def _tcp_error(protocol: str, account: str, where: str, error: OSError, timeout: float) -> ChannelError:
    if isinstance(error, ConnectionRefusedError):
        return ConnectError(
            protocol, account, f"connection refused by {where}: nothing listens on that port, or a firewall rejects it"
        )
    if isinstance(error, TimeoutError):
        return ConnectError(
            protocol,
            account,
            f"connection to {where} timed out after {timeout:g} s: a firewall may drop it, or the port is wrong",
        )
    if error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return ConnectError(protocol, account, f"{where} is unreachable: {error.strerror}")
    return network_error(protocol, account, where, error)


def describe_tls(connection: ssl.SSLSocket | ssl.SSLObject, validated: bool, how: str) -> str:
    """What the handshake established: version, the certificate's names and end, whether it was checked."""
    parts = [f"{how} {connection.version() or 'TLS'}"]
    der = connection.getpeercert(binary_form=True)
    if der:
        certificate = x509.load_der_x509_certificate(der)
        until = certificate.not_valid_after_utc
        parts.append(
            f"certificate for {_common_name(certificate.subject)} issued by {_common_name(certificate.issuer)},"
            f" valid until {until:%Y-%m-%d}"
        )
        left = until - datetime.now(UTC)
        if left < _EXPIRY_WARNING:
            parts.append(f"it expires in {max(left.days, 0)} day(s)")
    # Without validation the connection is encrypted but anyone in the path could present this
    # certificate; the admin chose that, the report says it plainly.
    parts.append("verified: trusted issuer, matching name" if validated else "NOT verified: validation is off")
    return "; ".join(parts)


def _common_name(name: x509.Name) -> str:
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(common[0].value) if common else name.rfc4514_string()


# ── IMAP ───────────────────────────────────────────────────────────────────────────────────────


class _ImapProbe:
    """The incoming steps on one IMAP connection; sources/imap.py does the talking and names the errors."""

    def __init__(self, account: ImapAccount, auth: MailboxAuth, *, oauth: bool = False) -> None:
        self.account = account
        self.auth = auth
        self.method = " (XOAUTH2)" if oauth else ""
        self.client: Any = None

    def secure(self) -> str:
        """Connect and secure (implicit TLS or STARTTLS); describe the TLS session."""
        account = self.account
        self.client = imap.connect(account)
        sock = self.client.socket()
        if not isinstance(sock, ssl.SSLSocket):
            raise TlsError(imap.PROTOCOL, account.address, f"{account.host}:{account.port} did not switch to TLS")
        how = "STARTTLS upgrade to" if account.encryption == "starttls" else "implicit"
        return describe_tls(sock, account.validate_certificate, how)

    def sign_in(self) -> str:
        if self.client is None:
            self.client = imap.connect(self.account)
        imap.sign_in(self.client, self.account, self.auth.imap)
        return f"signed in as {self.account.login}{self.method}"

    def examine(self) -> str:
        # EXAMINE, not SELECT (RFC 3501 §6.3.2): a test must not clear \Recent or change anything else.
        try:
            folder = imap.select_folder(self.client, self.account, readonly=True)
        except FolderError as error:
            # The step's detail stands alone in the report, so it says what it is about.
            raise FolderError(error.protocol, error.account, f"folder {error.detail}") from error
        return f"{folder.name} holds {folder.exists} message(s) (UIDVALIDITY {folder.uidvalidity}); examined read-only"

    def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            imap.logout(client)


def imap_incoming(target: ProbeTarget, steps: StepRecorder) -> None:
    """DNS, TCP, TLS, sign-in and folder of the mailbox's IMAP server, on one connection after the TCP check."""
    account = replace(target.imap, timeout=target.timeout)
    check_reachable(steps, account.address, account.host, account.port, target.timeout)
    probe = _ImapProbe(account, target.auth, oauth=target.connection.oauth_enabled)
    try:
        if account.encryption == "none":
            steps.skip("tls", "off: the connection is not encrypted and the password travels in plain text")
        else:
            steps.run("tls", probe.secure)
        steps.run("signin", probe.sign_in)
        steps.run("folder", probe.examine)
    finally:
        probe.close()


def _wait_for_probe(sent_clock: float, timeout: float, look: Callable[[], str | None], not_arrived: str) -> str:
    """Ask ``look`` at growing intervals until it finds the probe or time is up; what ``look`` said.

    ``look`` says where it found the probe, with ``{delay}`` where the time since the send goes (filled in
    by plain replacement: a folder name may hold braces). ``not_arrived`` is the failure's detail.
    """
    deadline = sent_clock + timeout
    interval = _POLL_FIRST
    while True:
        found = look()
        if found is not None:
            return found.replace("{delay}", f"{time.monotonic() - sent_clock:.2f} s after it was sent")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _StepFailed("NotArrived", not_arrived)
        time.sleep(min(interval, remaining))
        interval = min(interval * 2, _POLL_MAX)


def _not_arrived(token: str, where: str, timeout: float, hint: str) -> str:
    return (
        f"the probe mail ({PROBE_HEADER}: {token}) did not {where} within {timeout:g} s: {hint};"
        " if it comes later, Postroom ignores it as its own"
    )


def imap_roundtrip(target: ProbeTarget, steps: StepRecorder) -> None:
    """Send a probe mail to the mailbox itself, wait for it in the folder, then delete it."""
    token = _random.token_hex(8)
    account = replace(target.imap, timeout=target.timeout)
    sent_at: list[float] = []
    found: list[int] = []

    def send() -> str:
        mail = _roundtrip_mail(
            target,
            token,
            "it checks that mail sent from this\naddress arrives in its mailbox."
            " It is deleted as soon as it has arrived.",
        )
        where, result = _send(target, mail)
        sent_at.append(time.monotonic())
        return f"{where} accepted it: {result.reply}; {PROBE_HEADER}: {token}"

    opened: list[ImapSession] = []

    def look() -> str | None:
        # NOOP first: a server reports mail that arrived meanwhile in the answer to a command
        # (RFC 3501 §7.3.1); SEARCH then sees it.
        opened[0].poll()
        uids = opened[0].search_header(PROBE_HEADER, token)
        if not uids:
            return None
        found.extend(uids)
        return f"arrived in {account.folder} {{delay}} (UID {uids[0]})"

    def arrival() -> str:
        opened.append(ImapSession.open(account, target.auth.imap))
        hint = f"mail to {target.mailbox.address} may be delivered elsewhere, filtered or delayed"
        not_arrived = _not_arrived(token, f"arrive in {account.folder}", target.timeout, hint)
        return _wait_for_probe(sent_at[0], target.timeout, look, not_arrived)

    def cleanup() -> str:
        if not opened[0].delete(found):
            return "flagged \\Deleted; the server lacks UIDPLUS (RFC 4315), so its EXPUNGE is left to the user"
        left = opened[0].search_header(PROBE_HEADER, token)
        if left:
            raise ProtocolError(
                imap.PROTOCOL, account.address, f"UID {', '.join(map(str, left))} still there after UID EXPUNGE"
            )
        return f"deleted UID {', '.join(map(str, found))} (\\Deleted, UID EXPUNGE)"

    try:
        steps.run("send", send, protocol=_outbound_label(target))
        steps.run("arrival", arrival)
        steps.run("cleanup", cleanup)
    finally:
        for session in opened:
            session.close()


def pop3_incoming(target: ProbeTarget, steps: StepRecorder) -> None:
    """DNS, TCP, TLS and sign-in (with the maildrop's size) of the mailbox's POP3 server."""
    account = replace(pop3_account(target.connection, target.mailbox, target.secrets), timeout=target.timeout)
    check_reachable(steps, account.address, account.host, account.port, target.timeout)

    def secure() -> str:
        described: list[str] = []

        # Pop3Session.open() connects and secures exactly as the source does, then hands the client to
        # its authenticator: this one only looks at the TLS session and signs in to nothing.
        def inspect(client: Pop3Client, _account: Pop3Account) -> None:
            sock = client.sock
            if not isinstance(sock, ssl.SSLSocket):
                raise TlsError("POP3", account.address, f"{account.host}:{account.port} did not switch to TLS")
            how = "STLS upgrade to" if account.encryption == "starttls" else "implicit"
            described.append(describe_tls(sock, account.validate_certificate, how))
            raise _Inspected

        with contextlib.suppress(_Inspected):
            Pop3Session.open(account, inspect)
        return described[0]

    def sign_in() -> str:
        session = Pop3Session.open(account, target.auth.pop3)
        try:
            drop = session.maildrop
            method = " (XOAUTH2)" if target.connection.oauth_enabled else ""
            return f"signed in as {account.login}{method}; the maildrop holds {drop.count} message(s)"
        finally:
            session.close()

    if account.encryption == "none":
        steps.skip("tls", "off: the connection is not encrypted and the password travels in plain text")
    else:
        steps.run("tls", secure)
    steps.run("signin", sign_in)


class _Inspected(Exception):
    """Ends a session once the TLS check has seen what it needed."""


# ── SMTP ───────────────────────────────────────────────────────────────────────────────────────


def smtp_outgoing(target: ProbeTarget, steps: StepRecorder) -> None:
    """DNS, TCP, TLS and sign-in of the mailbox's SMTP server (transports/smtp does the talking)."""
    account = replace(target.smtp, timeout=target.timeout)
    check_reachable(steps, account.address, account.host, account.port, target.timeout)
    mode = smtp.encryption_for(account)
    if mode == "none":
        steps.skip("tls", "off: the connection is not encrypted and the password travels in plain text")
    else:
        how = "STARTTLS upgrade to" if mode == "starttls" else "implicit"
        steps.run("tls", lambda: asyncio.run(_smtp_tls(account, how)))

    def sign_in() -> str:
        asyncio.run(smtp.check_login(account, authenticate=target.auth.smtp))
        if target.connection.oauth_enabled:
            return f"signed in as {account.login} (XOAUTH2)"
        if not account.password:
            return "no password set: the server took the session without a sign-in"
        return f"signed in as {account.login}"

    steps.run("signin", sign_in)


async def _smtp_tls(account: SmtpAccount, how: str) -> str:
    described: list[str] = []

    # check_login() connects and secures exactly as sending does, then hands the client to its
    # authenticator: this one only looks at the TLS session, and check_login() says EHLO and QUIT.
    async def inspect(client: aiosmtplib.SMTP, _account: SmtpAccount) -> None:
        tls = client.get_transport_info("ssl_object")
        if not isinstance(tls, ssl.SSLObject | ssl.SSLSocket):
            raise TlsError(smtp.PROTOCOL, account.address, f"{account.host}:{account.port} did not switch to TLS")
        described.append(describe_tls(tls, account.validate_certificate, how))

    await smtp.check_login(account, authenticate=inspect)
    return described[0]


def sendgrid_outgoing(target: ProbeTarget, steps: StepRecorder) -> None:
    """DNS and TCP of the SendGrid API, then the API key: accepted, and allowed to send mail."""
    account = replace(sendgrid_account(target.connection, target.mailbox, target.secrets), timeout=target.timeout)
    url = httpx.URL(account.base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    check_reachable(steps, account.address, url.host, port, target.timeout)

    def sign_in() -> str:
        scopes = asyncio.run(sendgrid.check(account))
        return f"the API key is accepted at {account.base_url} and may send mail ({len(scopes)} scope(s))"

    steps.run("signin", sign_in)


def pop3_roundtrip(target: ProbeTarget, steps: StepRecorder) -> None:
    """Send a probe mail to the mailbox itself, wait for it in the maildrop, then delete it (DELE, QUIT).

    A POP3 server shows new mail only to a new session (RFC 1939 §8: the maildrop is fixed at sign-in), so
    the arrival step signs in again at growing intervals. Only messages that were not in the maildrop
    before the send are read (by UIDL, else by number), so a large mailbox is not downloaded. A running
    connection may import the probe first (and, with ``delete_after_import``, remove it): finding it in
    the raw store proves the arrival just as well.
    """
    token = _random.token_hex(8)
    account = replace(pop3_account(target.connection, target.mailbox, target.secrets), timeout=target.timeout)
    marker = f"{PROBE_HEADER}: {token}".encode()
    mail = _roundtrip_mail(
        target,
        token,
        "it checks that mail sent from this\naddress arrives in its mailbox. It is deleted as soon as it has arrived.",
    )
    before: list[set[str] | int] = []
    sent: list[tuple[float, datetime]] = []
    found: list[tuple[Pop3Session, int]] = []

    def known_messages() -> set[str] | int:
        session = Pop3Session.open(account, target.auth.pop3)
        try:
            uidls = session.uidls()
            return set(uidls.values()) if uidls is not None else session.maildrop.count
        finally:
            session.quit()

    def send() -> str:
        before.append(known_messages())
        since = utcnow() - timedelta(seconds=1)
        where, result = _send(target, mail)
        sent.append((time.monotonic(), since))
        return f"{where} accepted it: {result.reply}; {PROBE_HEADER}: {token}"

    def look(checked: set[str]) -> str | None:
        session = Pop3Session.open(account, target.auth.pop3)
        kept = False
        try:
            uidls = session.uidls()
            known = before[0]
            if uidls is not None and isinstance(known, set):
                new = [(n, uid) for n, uid in sorted(uidls.items()) if uid not in known and uid not in checked]
            else:
                first = known + 1 if isinstance(known, int) else 1
                new = [(n, str(n)) for n in range(first, session.maildrop.count + 1) if str(n) not in checked]
            for number, uid in new:
                checked.add(uid)
                head = session.retrieve(number).split(b"\r\n\r\n", 1)[0]
                if marker in head:
                    found.append((session, number))
                    kept = True
                    return f"message {number}"
        finally:
            if not kept:
                session.quit()
        return None

    def arrival() -> str:
        sent_clock, since = sent[0]
        checked: set[str] = set()

        def look_anywhere() -> str | None:
            where = look(checked)
            if where is None and target.db is not None:
                raw_id = _find_pushed(target.db, target.connection.id, since, mail.message_id, marker, set())
                if raw_id is not None:
                    where = f"the running connection had already imported it (raw message {raw_id})"
            return None if where is None else f"arrived {{delay}}: {where}"

        hint = f"mail to {target.mailbox.address} may be delivered elsewhere, filtered or delayed"
        not_arrived = _not_arrived(token, "arrive in the maildrop", target.timeout, hint)
        return _wait_for_probe(sent_clock, target.timeout, look_anywhere, not_arrived)

    def cleanup() -> str:
        if not found:
            return "nothing to delete: the running connection took it from the server"
        session, number = found.pop()
        try:
            session.delete([number])
        except BaseException:
            session.close()
            raise
        session.quit()  # the server removes what DELE marked only at QUIT (RFC 1939 §6)
        return f"deleted message {number} (DELE, QUIT)"

    try:
        steps.run("send", send, protocol=_outbound_label(target))
        steps.run("arrival", arrival)
        steps.run("cleanup", cleanup)
    finally:
        for session, _ in found:
            session.close()


def pushed_roundtrip(target: ProbeTarget, steps: StepRecorder) -> None:
    """Send a probe mail to the support address and wait for it to be pushed back to Postroom.

    For forwarding (the mail provider forwards to our SMTP listener) and webhook connections (the provider
    posts it to our endpoint) this is the only check that the forwarding rule or the provider's route
    really delivers to this connection: the probe is looked for in the raw store, where the listener or
    the webhook commits what it received. Forwarders usually keep the Message-ID; one that writes a new
    one still carries the token in the bytes, so recent raw messages of the connection are searched too.
    The probe stays in the raw store, where the pipeline ignores it as Postroom's own mail (its
    ``X-Postroom-Loop`` marker, from our own address), so no conversation is made of it.
    """
    db = target.db
    if db is None:
        steps.skip("roundtrip", "not run: the probe has no database to look for the mail in")
        return
    token = _random.token_hex(8)
    how = _NO_INCOMING_SERVER.get(target.connection.mode, "the mail arrives at Postroom")
    mail = _roundtrip_mail(
        target,
        token,
        "it checks that mail sent to this address reaches Postroom.\nPostroom ignores it when it arrives.",
    )
    sent: list[tuple[float, datetime]] = []

    def send() -> str:
        # A second's margin: the store stamps arrival with its own clock, which may round differently.
        since = utcnow() - timedelta(seconds=1)
        where, result = _send(target, mail)
        sent.append((time.monotonic(), since))
        return f"{where} accepted it: {result.reply}; {PROBE_HEADER}: {token}"

    def arrival() -> str:
        sent_clock, since = sent[0]
        searched: set[int] = set()

        def look() -> str | None:
            raw_id = _find_pushed(db, target.connection.id, since, mail.message_id, token.encode(), searched)
            return None if raw_id is None else f"reached Postroom {{delay}} (raw message {raw_id}): {how}"

        hint = f"check that mail to {target.mailbox.address} is forwarded to {_push_address(target)}"
        return _wait_for_probe(
            sent_clock, target.timeout, look, _not_arrived(token, "reach Postroom", target.timeout, hint)
        )

    steps.run("send", send, protocol=_outbound_label(target))
    steps.run("arrival", arrival)


def _find_pushed(
    db: Database, connection_id: int, since: datetime, message_id: str, token: bytes, searched: set[int]
) -> int | None:
    """The raw message of this connection that is the probe: by Message-ID, else by the token in its bytes."""
    with db.read() as session:
        rows = session.execute(
            select(RawMessage.id, RawMessage.header_message_id)
            .where(RawMessage.connection_id == connection_id, RawMessage.received_at >= since)
            .order_by(RawMessage.id)
            .limit(_PUSHED_SEARCH_LIMIT)
        ).all()
        for raw_id, header_message_id in rows:
            if header_message_id == message_id:
                return int(raw_id)
        unseen = [int(raw_id) for raw_id, _ in rows if raw_id not in searched]
        for raw_id in unseen:
            data = session.scalar(select(RawBody.data).where(RawBody.raw_id == raw_id))
            searched.add(raw_id)
            if data is not None and token in data:
                return raw_id
    return None


def _push_address(target: ProbeTarget) -> str:
    if target.connection.mode is ConnectionMode.WEBHOOK:
        return "Postroom's webhook URL (the provider's inbound route)"
    return f"the connection's receiving address ({target.connection.inbound_key}@…)"


def _roundtrip_mail(target: ProbeTarget, token: str, what: str) -> ComposedMail:
    """A probe mail from the mailbox to itself, marked with ``token`` in :data:`PROBE_HEADER`."""
    mailbox = target.mailbox
    return compose(
        OutgoingMail(
            from_=Address(mailbox.address, mailbox.email_name),
            to=(Address(mailbox.address),),
            subject=f"Postroom connection test {token}",
            text=f"Postroom sent this message to test the connection: {what}\n",
            # RFC 3834 §5: no auto-responder should answer a machine's test mail. compose() also adds
            # the X-Postroom-Loop marker, so the pipeline ignores the mail if a running source imports it.
            auto_submitted=True,
            extra_headers=((PROBE_HEADER, token),),
        )
    )


def _send(target: ProbeTarget, mail: ComposedMail) -> tuple[str, SendResult]:
    """Send ``mail`` the way the connection's replies go out (SMTP or SendGrid): where to, and the answer."""
    if target.connection.outbound is OutboundKind.SENDGRID:
        account = replace(sendgrid_account(target.connection, target.mailbox, target.secrets), timeout=target.timeout)
        return account.base_url, asyncio.run(sendgrid.send(account, mail.raw, mail.envelope_from, mail.recipients))
    outgoing = replace(target.smtp, timeout=target.timeout)
    return f"{outgoing.host}:{outgoing.port}", asyncio.run(smtp.send(outgoing, mail, authenticate=target.auth.smtp))


def _outbound_label(target: ProbeTarget) -> str:
    found = OUTGOING_PROBES.get(target.connection.outbound)
    return found[0] if found else target.connection.outbound.value


def send_test_mail(target: ProbeTarget) -> str:
    """Send a test mail from the mailbox to ``target.send_to`` the way replies go out; what the server said."""
    assert target.send_to is not None
    mailbox = target.mailbox
    token = _random.token_hex(8)
    mail = compose(
        mailbox_mail(
            target.connection,
            mailbox,
            to=(target.send_to,),
            subject=f"Postroom test message from {mailbox.address}",
            text=(
                f"Postroom sent this message to test sending from {mailbox.address} (connection"
                f" {target.connection.name!r}).\nIf it reached you, replies to customers will go out the same way,"
                " with the same name, signature and format.\n"
            ),
            # RFC 3834 §5: a test mail is machine-made; no auto-responder should answer it.
            auto_submitted=True,
            extra_headers=((PROBE_HEADER, token),),
        )
    )
    recipient = target.send_to.email
    where, result = _send(target, mail)
    if result.refused:
        reply = next(iter(result.refused.values()))
        raise _StepFailed("RecipientRefused", f"{where} refused {recipient}: {reply}")
    return f"{where} accepted the test mail to {recipient}: {result.reply}; {PROBE_HEADER}: {token}"


# ── what applies to which connection ──────────────────────────────────────────────────────────

INCOMING_PROBES: dict[ConnectionMode, tuple[str, PartProbe]] = {
    ConnectionMode.IMAP: ("IMAP", imap_incoming),
    ConnectionMode.POP3: ("POP3", pop3_incoming),
}
OUTGOING_PROBES: dict[OutboundKind, tuple[str, PartProbe]] = {
    OutboundKind.SMTP: ("SMTP", smtp_outgoing),
    OutboundKind.SENDGRID: ("SendGrid", sendgrid_outgoing),
}
# A roundtrip needs to see the mailbox's folder; the outbound side is SMTP (see _roundtrip_applies).
ROUNDTRIP_PROBES: dict[ConnectionMode, tuple[str, PartProbe]] = {
    ConnectionMode.IMAP: ("IMAP", imap_roundtrip),
    ConnectionMode.POP3: ("POP3", pop3_roundtrip),
    # The probe is sent to the support address and looked for where the provider pushes it.
    ConnectionMode.FORWARDING: ("SMTP", pushed_roundtrip),
    ConnectionMode.WEBHOOK: ("webhook", pushed_roundtrip),
}
_NO_INCOMING_SERVER = {
    ConnectionMode.FORWARDING: "forwarded mail arrives on Postroom's own SMTP listener",
    ConnectionMode.WEBHOOK: "the provider posts incoming mail to Postroom's webhook URL",
}


def probe_connection(
    db: Database,
    secrets: SecretBox,
    connection_id: int,
    *,
    roundtrip: bool = False,
    send_to: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ProbeReport:
    """Check every mailbox of a connection step by step; raise NotFound for an unknown connection.

    ``timeout`` bounds each network step (DNS, connect, every server answer) and the roundtrip's wait
    for its probe mail. ``send_to`` (one address) also sends a test mail there from every mailbox. The
    connection's status is not touched; one line goes to its log.
    """
    recipient = parse_test_recipient(send_to) if send_to is not None else None
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    with db.read() as session:
        connection = session.scalar(
            select(Connection).where(Connection.id == connection_id).options(selectinload(Connection.mailboxes))
        )
        if connection is None:
            raise NotFound(f"no connection {connection_id}")
        targets: list[ProbeTarget] = []
        found_secrets: list[str] = []
        for box in connection.mailboxes:
            auth = mailbox_auth(connection, box, secrets, db)
            found_secrets.extend(auth.secrets)
            targets.append(
                ProbeTarget(
                    connection=connection,
                    mailbox=box,
                    imap=imap_account(connection, box, secrets),
                    smtp=smtp_account(box, secrets),
                    auth=auth,
                    secrets=secrets,
                    timeout=timeout,
                    send_to=recipient,
                    db=db,
                )
            )
            found_secrets.extend((targets[-1].imap.password, targets[-1].smtp.password))
    events = ConnectionEventLog(db, connection_id, [s for s in found_secrets if s])

    steps: list[ProbeStep] = []
    try:
        for target in targets:
            _probe_mailbox(target, steps, events.scrub, roundtrip=roundtrip)
    finally:
        for target in targets:
            target.auth.close()
    report = ProbeReport(
        connection_id=connection.id,
        connection=connection.name,
        mode=connection.mode.value,
        outbound=connection.outbound.value,
        roundtrip=roundtrip,
        started_at=started_at,
        milliseconds=(time.perf_counter() - started) * 1000,
        steps=tuple(steps),
    )
    kind = "connection test" + (" with roundtrip" if roundtrip else "")
    if recipient is not None:
        kind += f" with a test mail to {recipient.email}"
    events("info" if report.ok else "warning", "probe", f"{kind}: {report.summary}")
    return report


def parse_test_recipient(value: str) -> Address:
    """The one address a test mail goes to; :class:`InvalidSetting` naming ``send_to`` otherwise."""
    parsed = parse_address_list(value)
    if len(parsed) != 1 or "@" not in parsed[0].email or " " in parsed[0].email:
        raise InvalidSetting("send_to", f"{value!r} is not one email address")
    return parsed[0]


def _probe_mailbox(target: ProbeTarget, into: list[ProbeStep], scrub: Callable[[str], str], *, roundtrip: bool) -> None:
    connection = target.connection
    address = target.address

    incoming = INCOMING_PROBES.get(connection.mode)
    if incoming is None:
        reason = _NO_INCOMING_SERVER.get(connection.mode, f"mode {connection.mode.value} reads no mailbox")
        incoming_steps = StepRecorder(into, address, "incoming", "", scrub)
        incoming_steps.skip("incoming", f"not applicable: {reason}")
    else:
        incoming_steps = StepRecorder(into, address, "incoming", incoming[0], scrub)
        incoming[1](target, incoming_steps)

    outgoing = OUTGOING_PROBES.get(connection.outbound)
    if outgoing is None:
        outgoing_steps = StepRecorder(into, address, "outgoing", connection.outbound.value, scrub)
        outgoing_steps.skip("outgoing", f"{connection.outbound.value} is not checked yet")
    else:
        outgoing_steps = StepRecorder(into, address, "outgoing", outgoing[0], scrub)
        outgoing[1](target, outgoing_steps)
        if target.send_to is not None:
            outgoing_steps.run("test_mail", lambda: send_test_mail(target))

    if not roundtrip:
        return
    probe = ROUNDTRIP_PROBES.get(connection.mode)
    steps = StepRecorder(into, address, "roundtrip", probe[0] if probe else "", scrub)
    if probe is None or outgoing is None:
        steps.skip("roundtrip", f"not applicable: no roundtrip for mode {connection.mode.value}")
    elif incoming_steps.failed or outgoing_steps.failed:
        steps.skip("roundtrip", "not run: the incoming or outgoing checks failed")
    else:
        probe[1](target, steps)
