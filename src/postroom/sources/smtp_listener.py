"""Postroom's own SMTP listener: mail forwarded to a generated address arrives here (forwarding mode).

The listener is a receiving MTA on aiosmtpd, and it follows the house rule "accept fast, process later"
(DESIGN §6.3): a recipient nobody here knows is refused at RCPT, before any data is sent; an accepted
message is committed to the raw store, with a trace header prepended, and only then is ``250`` returned.
What happens when the store fails decides whether mail is lost, so the reply is ``451 4.3.0`` and the
sending MTA keeps the message and retries (RFC 5321 §4.2.5, §4.5.4.1): nothing is acknowledged that is not
stored.

Two small seams keep the protocol apart from the database (DESIGN §6.6): a :class:`RecipientResolver`
says which connection an address belongs to, and an :class:`InboundSink` stores the bytes. Their database
implementations live in :mod:`postroom.channels.inbound`; tests use the real ones or their own.

What a receiving MTA on the Internet owes its peers lives here too, because SMTP decides it:

- STARTTLS (RFC 3207) when a TLS context is given, optionally required before MAIL (``530 5.7.0``);
- mail to ``postmaster`` is accepted whatever the connections are (RFC 5321 §4.5.1) and handed to the
  sink's :meth:`InboundSink.store_postmaster`;
- at most :data:`MAX_RECIPIENTS` recipients per transaction (``452 4.5.3``) and a cap on concurrent
  sessions, overall and per client address (:class:`SessionLimits`, ``421 4.7.0`` at connect);
- no session holds its place for ever (:class:`SessionLimits` again): a client silent for the idle time
  gets ``421 4.4.2``, one that sends too many commands without delivering mail (NOOP, RSET, refused
  commands…, like Postfix's ``smtpd_junk_command_limit``) or outlasts the session time gets ``421 4.7.0``,
  and the session is closed (RFC 5321 §3.8), which frees its place.

Replies carry enhanced status codes (RFC 3463), including the refusals that aiosmtpd writes without one.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import ssl
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Protocol

import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from postroom.sources.base import InboundMail

log = structlog.get_logger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 26_214_400
# What the greeting says after the host name (RFC 5321 §4.3.1 "220 <domain> <text>"). ESMTP there is
# what clients have looked for since RFC 1869; aiosmtpd's own text named the library and its version,
# which tells an attacker what to try and a sender nothing.
IDENT = "Postroom ESMTP"
# RFC 5321 §4.5.1: "postmaster" is reserved in every domain, case-insensitively, and §4.1.1.3 adds that
# "RCPT TO:<Postmaster>" without a domain must be accepted too.
POSTMASTER = "postmaster"
# RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients; more in one transaction is refused
# with 452, after which the client sends the rest in another transaction.
MAX_RECIPIENTS = 100
# aiosmtpd's own refusals lack an enhanced status code (RFC 3463). For size, §3.4 names 5.3.4 "message
# too big for system": the first is its reply to MAIL FROM with a SIZE parameter above the limit (RFC 1870
# §6.2), the second its reply after DATA when the data grew beyond it. Before STARTTLS when TLS is
# required, RFC 3207 §4 prescribes the 530 text and RFC 3463 §3.8 calls 5.7.0 "other security status".
_ENHANCED_REFUSALS = {
    "552 Error: message size exceeds fixed maximum message size": (
        "552 5.3.4 Message size exceeds fixed maximum message size"
    ),
    "552 Error: Too much mail data": "552 5.3.4 Message size exceeds fixed maximum message size",
    "530 Must issue a STARTTLS command first": "530 5.7.0 Must issue a STARTTLS command first",
}
_NO_AUTH = "502 5.5.1 AUTH not available: this server only receives mail for its own addresses"
_TEMPORARY_STORE = "451 4.3.0 Temporary failure storing the message, please try again later"
_TEMPORARY_LOOKUP = "451 4.3.0 Temporary failure looking up the recipient, please try again later"
_TOO_MANY_RECIPIENTS = f"452 4.5.3 Too many recipients (at most {MAX_RECIPIENTS} per message)"
# RFC 5321 §3.8: a server that must refuse a session answers 421 instead of its greeting and closes;
# the sender keeps the mail and tries again later. RFC 3463 §3.8: 4.7.0, a temporary policy refusal.
_TOO_MANY_SESSIONS = "421 4.7.0 Too many connections, try again later"
_TOO_MANY_FROM_YOU = "421 4.7.0 Too many connections from your address, try again later"
# A session that ends by our limits is told why before the close (RFC 5321 §3.8 allows the 421 at any time,
# also unasked): an MTA then retries its mail later. RFC 3463 §3.5: 4.4.2 "bad connection" for a client
# that went silent (Postfix says the same), 4.7.0 for our policy limits.
_IDLE_TIMEOUT = "421 4.4.2 Timeout waiting for the client, closing connection"
_SESSION_TOO_LONG = "421 4.7.0 Session time limit exceeded, closing connection"
_TOO_MANY_JUNK = "421 4.7.0 Too many commands without delivering mail, closing connection"
# What may appear of client-supplied text (EHLO name, addresses) inside our trace header: no CR, LF,
# parentheses or semicolons, which would change its structure (RFC 5321 §4.4).
_UNSAFE_TRACE = re.compile(r"[^\x21-\x7e]|[();]")


@dataclass(frozen=True, slots=True)
class InboundTarget:
    """Where an accepted recipient's mail goes: a connection, and its mailbox when the address says so.

    ``mailbox_id`` None lets the sink pick the mailbox from the mail's headers (a forwarding address
    serves every mailbox of its connection).
    """

    connection_id: int
    mailbox_id: int | None = None


@dataclass(frozen=True, slots=True)
class PostmasterTarget:
    """The target of mail to ``postmaster``, which belongs to the installation, not to a connection."""


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """How many SMTP sessions the listener serves at once, and how long and idly each may go on.

    The defaults are those of ``POSTROOM_SMTP_MAX_SESSIONS``, ``POSTROOM_SMTP_MAX_SESSIONS_PER_IP``,
    ``POSTROOM_SMTP_IDLE_SECONDS``, ``POSTROOM_SMTP_SESSION_SECONDS`` and ``POSTROOM_SMTP_JUNK_COMMANDS``.
    A session over either count is answered ``421 4.7.0`` at connect: the sender retries later, so a
    busy listener delays mail but never loses it. The other three end a session that holds its place
    without delivering mail, with a 421 that says which (see the module):

    - ``idle_seconds``: no command, and no bytes of a mail being transferred, for this long
      (RFC 5321 §4.5.3.2.7 asks at least 5 minutes of a server);
    - ``session_seconds``: the session's whole length. A mail being transferred when it is up is not cut
      (the sender would send it all again, and hit the same wall): it may finish within one more such
      span, the session closes after its reply. So a legitimate mail that takes less than this to send
      always arrives, and a client that trickles its data holds a place at most twice this long;
    - ``junk_commands``: commands that deliver nothing (NOOP, VRFY, RSET, HELP, HELO/EHLO, and every
      refused command) since the session began or its last mail was accepted; the lines of a mail are
      no commands, so a large mail never counts.
    """

    max_sessions: int = 100
    max_sessions_per_ip: int = 20
    idle_seconds: float = 300.0
    session_seconds: float = 600.0
    junk_commands: int = 100

    def __post_init__(self) -> None:
        if min(self.max_sessions, self.max_sessions_per_ip, self.junk_commands) < 1:
            raise ValueError("session counts must be at least 1")
        if min(self.idle_seconds, self.session_seconds) <= 0:
            raise ValueError("session times must be positive")


class RecipientResolver(Protocol):
    """Which connection (if any) receives mail for an envelope recipient address."""

    def resolve(self, address: str) -> InboundTarget | None:
        """The target of ``address``, or None when nobody here receives mail for it."""
        ...


class InboundSink(Protocol):
    """Commits received bytes to the raw store (DESIGN §1)."""

    def store(self, target: InboundTarget, mail: InboundMail, *, trace: bytes = b"") -> int:
        """Commit ``trace + mail.raw`` for ``target`` and return the raw message's id once it is durable.

        ``trace`` (our Return-Path and Received fields) is stored in front of the mail but kept out of
        the dedupe key, so that a retried delivery of the same bytes is recognised. A mail already
        stored under the same key is not stored again; its id is returned.
        """
        ...

    def store_postmaster(self, mail: InboundMail, *, trace: bytes = b"") -> int:
        """Commit mail to ``postmaster`` (RFC 5321 §4.5.1) where an admin can read it; return its id.

        Same promise as :meth:`store`: durable when this returns, stored once per dedupe key.
        """
        ...


def _clean(text: str, limit: int = 255) -> str:
    return _UNSAFE_TRACE.sub("", text)[:limit]


def _clean_address(address: str) -> str:
    # An address goes between angle brackets (RFC 5321 §4.1.2 Path), so it may hold none itself.
    return _clean(address, 320).replace("<", "").replace(">", "")


def trace_fields(
    *,
    envelope_from: str,
    recipients: Sequence[str],
    helo: str | None,
    peer: Any,
    hostname: str,
    esmtp: bool,
    tls: bool,
    queue_id: str,
    now: datetime | None = None,
) -> bytes:
    """The Return-Path and Received fields a final-delivery server prepends (RFC 5321 §4.4).

    The protocol is named as RFC 3848 registers it (SMTP, ESMTP, ESMTPS). The ``for`` clause names the
    recipient only when there is exactly one, because listing several would show every recipient the
    others' addresses (RFC 5321 §7.6).
    """
    ip = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
    if ":" in ip:
        # RFC 5321 §4.1.3: an IPv6 address literal is tagged as such.
        ip = f"IPv6:{ip}"
    helo_name = _clean(helo or "") or "unknown"
    protocol = ("ESMTP" if esmtp else "SMTP") + ("S" if tls else "")
    sender = "" if envelope_from in ("", "<>") else _clean_address(envelope_from)
    stamp = format_datetime(now or datetime.now(UTC))
    received = f"Received: from {helo_name} ([{_clean(ip, 64)}])\r\n\tby {_clean(hostname)} (Postroom)"
    received += f" with {protocol} id {queue_id}"
    if len(recipients) == 1:
        received += f"\r\n\tfor <{_clean_address(recipients[0])}>"
    received += f"; {stamp}\r\n"
    return f"Return-Path: <{sender}>\r\n{received}".encode("ascii", "replace")


class ForwardingHandler:
    """The aiosmtpd handler: resolve at RCPT, store at DATA, answer with enhanced status codes."""

    def __init__(
        self,
        resolver: RecipientResolver,
        sink: InboundSink,
        hostname: str,
        domain: str | Iterable[str] | None = None,
    ) -> None:
        self.resolver = resolver
        self.sink = sink
        self.hostname = hostname
        names = [] if domain is None else [domain] if isinstance(domain, str) else list(domain)
        # Every domain the listener receives mail for has its postmaster (RFC 5321 §4.5.1).
        self.domains = tuple(dict.fromkeys(n.strip().lower().rstrip(".") for n in names if n.strip()))
        # The targets accepted so far in each open transaction. aiosmtpd makes a new Envelope after
        # DATA and on RSET, so a transaction that ends any way takes its entry with it.
        self._targets: weakref.WeakKeyDictionary[Envelope, dict[InboundTarget | PostmasterTarget, list[str]]] = (
            weakref.WeakKeyDictionary()
        )

    def is_postmaster(self, address: str) -> bool:
        """``Postmaster`` alone or ``postmaster@<one of our domains>``, in any case (RFC 5321 §4.1.1.3, §4.5.1)."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at:
            return domain.lower() == POSTMASTER
        return local.lower() == POSTMASTER and domain.lower().rstrip(".") in self.domains

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        """aiosmtpd's EHLO reply without AUTH: a receiving MX has no one to sign in (see ``_ListenerSmtp``)."""
        # With this hook aiosmtpd leaves recording the client's name to it; the Received line uses it.
        session.host_name = hostname
        return [line for line in responses if not line[4:].upper().startswith("AUTH")]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return _TOO_MANY_RECIPIENTS
        target: InboundTarget | PostmasterTarget | None
        if self.is_postmaster(address):
            # Checked before the resolver: the postmaster must receive mail whatever the connections
            # are, and no generated key is "postmaster".
            target = PostmasterTarget()
        else:
            try:
                # The resolver reads the database: off the event loop, so other sessions keep moving.
                target = await asyncio.to_thread(self.resolver.resolve, address)
            except Exception:
                log.exception("smtp_listener.resolve_failed", recipient=address)
                return _TEMPORARY_LOOKUP
        if target is None:
            # RFC 5321 §4.2.2 / RFC 3463 §3.2: 5.1.1 "bad destination mailbox address", said at RCPT so
            # that the sending MTA bounces at once and no data is transferred.
            return f"550 5.1.1 <{address}>: no such recipient here"
        self._targets.setdefault(envelope, {}).setdefault(target, []).append(address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        targets = self._targets.pop(envelope, {})
        raw: bytes = envelope.original_content or b""
        envelope_from = envelope.mail_from or ""
        queue_id = secrets.token_hex(6)
        # aiosmtpd fills session.ssl once the STARTTLS handshake is done (and makes a new session then,
        # RFC 3207 §4.2), so it says whether this transaction came over TLS: the Received line's ESMTPS.
        tls = session.ssl is not None
        stored: list[int] = []
        try:
            # One copy per target: the same mail to two connections belongs to both. When a later copy
            # fails, the 451 makes the sender retry all of them; those already stored are recognised by
            # their dedupe key and not stored twice.
            for target, recipients in targets.items():
                trace = trace_fields(
                    envelope_from=envelope_from,
                    recipients=recipients,
                    helo=session.host_name,
                    peer=session.peer,
                    hostname=self.hostname,
                    esmtp=bool(session.extended_smtp),
                    tls=tls,
                    queue_id=queue_id,
                )
                mail = InboundMail(raw=raw, recipients=tuple(recipients), envelope_from=envelope_from)
                if isinstance(target, PostmasterTarget):
                    stored.append(await asyncio.to_thread(self.sink.store_postmaster, mail, trace=trace))
                else:
                    stored.append(await asyncio.to_thread(self.sink.store, target, mail, trace=trace))
        except Exception:
            log.exception("smtp_listener.store_failed", queue_id=queue_id, size=len(raw))
            return _TEMPORARY_STORE
        if not stored:
            # aiosmtpd refuses DATA without an accepted RCPT, so this means the transaction was lost.
            return "554 5.5.1 No valid recipients"
        log.info("smtp_listener.stored", queue_id=queue_id, raw_ids=stored, size=len(raw))
        return f"250 2.0.0 queued as {','.join(str(i) for i in stored)}"


class _Sessions:
    """The open sessions, in all and per client address, against :class:`SessionLimits`.

    Only the listener's event loop touches it (aiosmtpd calls every protocol callback there), so it
    needs no lock.
    """

    def __init__(self, limits: SessionLimits) -> None:
        self.limits = limits
        self.total = 0
        self.by_ip: Counter[str] = Counter()

    def admit(self, ip: str) -> str | None:
        """Count a new session from ``ip``, or return the 421 reply that refuses it."""
        if self.total >= self.limits.max_sessions:
            return _TOO_MANY_SESSIONS
        if self.by_ip[ip] >= self.limits.max_sessions_per_ip:
            return _TOO_MANY_FROM_YOU
        self.total += 1
        self.by_ip[ip] += 1
        return None

    def release(self, ip: str) -> None:
        self.total -= 1
        self.by_ip[ip] -= 1
        if self.by_ip[ip] <= 0:
            del self.by_ip[ip]


def _junk_command(name: str) -> Callable[[_ListenerSmtp, str], Coroutine[Any, Any, None]]:
    """aiosmtpd's ``smtp_<name>``, counted against the junk limit first; keeps its HELP text."""
    parent = getattr(SMTP, f"smtp_{name}")

    async def command(self: _ListenerSmtp, arg: str) -> None:
        if self.count_junk():
            return
        await parent(self, arg)

    # aiosmtpd's HELP reads the command's syntax from these attributes (its @syntax decorator).
    for attribute in ("__smtp_syntax__", "__smtp_syntax_extended__", "__smtp_syntax_when__"):
        setattr(command, attribute, getattr(parent, attribute, None))
    command.__name__ = f"smtp_{name}"
    return command


class _ListenerSmtp(SMTP):
    """aiosmtpd's SMTP session with enhanced status codes on its refusals, and the session limits.

    aiosmtpd has no hook before its greeting, so the counts are checked where asyncio hands over the
    connection: a session over a limit gets the 421 instead of the greeting and is closed, and never
    reaches aiosmtpd's own state. The times run on the event loop's timers; the junk count sits in the
    commands that deliver nothing and in :meth:`push`, which sees every refusal.
    """

    # Commands that move no mail forward. Postfix's smtpd_junk_command_limit counts NOOP, VRFY, ETRN and
    # RSET (ETRN is unknown here, and aiosmtpd closes after 5 unknown commands); HELP and HELO/EHLO are as
    # idle when repeated. A legitimate session sends EHLO twice at most (again after STARTTLS).
    smtp_NOOP = _junk_command("NOOP")
    smtp_VRFY = _junk_command("VRFY")
    smtp_RSET = _junk_command("RSET")
    smtp_HELP = _junk_command("HELP")
    smtp_HELO = _junk_command("HELO")
    smtp_EHLO = _junk_command("EHLO")

    def __init__(self, handler: ForwardingHandler, sessions: _Sessions, **kwargs: Any) -> None:
        # aiosmtpd's own idle timer is the idle limit; its expiry is answered in _timeout_cb below.
        super().__init__(handler, timeout=sessions.limits.idle_seconds, **kwargs)
        self._sessions = sessions
        self._limits = sessions.limits
        self._counted_ip: str | None = None
        self._refused = False
        # "command" between commands, "receiving" while a mail's lines arrive, "storing" while the
        # handler commits it (our wait, not the client's).
        self._phase = "command"
        self._last_bytes = 0.0
        self._junk = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._overtime = False
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is not None:
            # The TLS layer after STARTTLS reports itself as a new connection: same session, counted.
            super().connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        refusal = self._sessions.admit(ip)
        if refusal is not None:
            self._refused = True
            log.warning("smtp_listener.session_refused", client=ip, reply=refusal, sessions=self._sessions.total)
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(refusal.encode("ascii") + b"\r\n")
            transport.close()
            return
        self._counted_ip = ip
        super().connection_made(transport)
        self._deadline = self.loop.call_later(self._limits.session_seconds, self._session_expired)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        try:
            super().connection_lost(error)
        finally:
            ip, self._counted_ip = self._counted_ip, None
            if ip is not None:
                self._sessions.release(ip)

    def data_received(self, data: bytes) -> None:
        if self._phase == "receiving":
            # The idle limit applies to the transfer too, from the last bytes on: aiosmtpd restarts its
            # timer only per command, so a large mail over a slow link would be cut after idle_seconds.
            self._last_bytes = self.loop.time()
        super().data_received(data)

    def _timeout_cb(self) -> None:
        idle = self._limits.idle_seconds
        if self._phase == "storing":
            # The client waits for our reply (RFC 5321 §4.5.3.2.6 gives it 10 minutes); not its idleness.
            self._reset_timeout(idle)
            return
        if self._phase == "receiving":
            quiet = self.loop.time() - self._last_bytes
            if quiet < idle:
                self._reset_timeout(idle - quiet)
                return
        self._close_with(_IDLE_TIMEOUT, "smtp_listener.session_idle")

    def _session_expired(self) -> None:
        self._deadline = None
        if self._phase == "command":
            self._close_with(_SESSION_TOO_LONG, "smtp_listener.session_too_long")
            return
        # A mail is being transferred or stored: cutting it would waste the transfer, and the sender
        # would retry it whole. It gets one more session length, and the session closes after its reply
        # (smtp_DATA). A client that trickles its data is cut at that second deadline.
        self._overtime = True
        self._deadline = self.loop.call_later(self._limits.session_seconds, self._data_too_long)

    def _data_too_long(self) -> None:
        self._deadline = None
        self._close_with(_SESSION_TOO_LONG, "smtp_listener.data_too_long")

    def count_junk(self) -> bool:
        """Count a command that delivered nothing; past the limit, answer 421 and close (True)."""
        if self._closing:
            return True
        self._junk += 1
        if self._junk <= self._limits.junk_commands:
            return False
        self._close_with(_TOO_MANY_JUNK, "smtp_listener.too_many_junk_commands")
        return True

    def _close_with(self, reply: str, event: str) -> None:
        """Send ``reply`` (a 421) and close the session; its place is freed when the close completes."""
        if self._closing or self.transport is None:
            return
        self._closing = True
        log.warning(event, client=self._counted_ip, reply=reply, junk_commands=self._junk)
        # Written, not pushed: this also runs from timers, outside the session's coroutine. The close
        # sends what is buffered first.
        self._writer.write(reply.encode("ascii") + b"\r\n")
        self.transport.close()

    @syntax("DATA")  # aiosmtpd's HELP lists only commands that carry their syntax
    async def smtp_DATA(self, arg: str) -> None:
        self._phase = "receiving"
        self._last_bytes = self.loop.time()
        try:
            await super().smtp_DATA(arg)
        finally:
            self._phase = "command"
        if self._overtime:
            self._close_with(_SESSION_TOO_LONG, "smtp_listener.session_too_long")
        else:
            # The wait for the next command starts now, not at the DATA command.
            self._reset_timeout()

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        # aiosmtpd calls the DATA hook once the whole mail is read: from there on we are storing it.
        if command != "DATA":
            return await super()._call_handler_hook(command, *args)
        self._phase = "storing"
        status = await super()._call_handler_hook(command, *args)
        if isinstance(status, str) and status.startswith("250"):
            # A mail was delivered: the client does what it came for, so its junk count starts afresh.
            self._junk = 0
        return status

    async def push(self, status: Any) -> None:
        if self._closing:
            # Commands the client sent ahead of our 421 get no answers.
            return
        if isinstance(status, str):
            status = _ENHANCED_REFUSALS.get(status, status)
        await super().push(status)
        if isinstance(status, str) and status[:1] in ("4", "5") and status[3:4] == " ":
            # A refused command delivers nothing either (Postfix counts such errors too): an unknown
            # recipient, a command out of sequence, a bad line.
            self.count_junk()

    async def smtp_AUTH(self, arg: str) -> None:
        # aiosmtpd offers its built-in LOGIN and PLAIN after STARTTLS, and with no authenticator every
        # attempt failed with 535. AUTH is for clients that submit mail (RFC 4954, RFC 6409); this is a
        # receiving MX that takes mail for its own addresses from anyone without a sign-in, so AUTH is
        # neither offered in EHLO (ForwardingHandler.handle_EHLO) nor accepted: 502, "command not
        # implemented" (RFC 5321 §4.2.4).
        await self.push(_NO_AUTH)


class _Controller(Controller):
    """aiosmtpd's threaded Controller on a socket bound beforehand, so that port 0 works race-free."""

    def __init__(self, handler: ForwardingHandler, sock: socket.socket, limits: SessionLimits, **kwargs: Any) -> None:
        self._listen_socket = sock
        self.sessions = _Sessions(limits)
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)

    def factory(self) -> SMTP:
        assert isinstance(self.handler, ForwardingHandler)
        return _ListenerSmtp(self.handler, self.sessions, **self.SMTP_kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._listen_socket, ssl=self.ssl_context)


class SmtpListener:
    """The SMTP listener of forwarding mode, on a thread of its own; start()/stop() or a context manager.

    ``port`` 0 binds a free port, readable from :attr:`port` after :meth:`start`. ``max_message_bytes`` is
    announced as SIZE (RFC 1870) and enforced at MAIL and after DATA. With ``tls_context`` STARTTLS is
    offered (RFC 3207); ``require_tls`` refuses every command but EHLO, NOOP, STARTTLS and QUIT before it
    (``530 5.7.0``, RFC 3207 §4). Off by default: forwarding MTAs use TLS opportunistically, and a public
    MX must not require it (RFC 3207 §4), since refusing plain text bounces mail. ``domain`` is the
    domain (or the domains) whose ``postmaster`` the listener accepts (RFC 5321 §4.5.1); ``limits`` caps
    the sessions and how long and idly each may go on. ``hostname`` is the name in the greeting
    (``220 <hostname> Postroom ESMTP``), the EHLO reply and the Received lines; the greeting names no
    library or version (:data:`IDENT`).
    """

    def __init__(
        self,
        host: str,
        port: int,
        resolver: RecipientResolver,
        sink: InboundSink,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        hostname: str | None = None,
        *,
        tls_context: ssl.SSLContext | None = None,
        require_tls: bool = False,
        domain: str | Iterable[str] | None = None,
        limits: SessionLimits = SessionLimits(),
    ) -> None:
        if require_tls and tls_context is None:
            raise ValueError("require_tls needs a tls_context")
        self.host = host
        self.port = port
        self.hostname = hostname or socket.getfqdn()
        self.max_message_bytes = max_message_bytes
        self.handler = ForwardingHandler(resolver, sink, self.hostname, domain)
        self._tls_context = tls_context
        self._require_tls = require_tls
        self.limits = limits
        self._controller: _Controller | None = None

    def start(self) -> SmtpListener:
        if self._controller is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, as getaddrinfo would give: asyncio sets TCP_NODELAY only on sockets that say so,
        # and without it multi-line replies wait for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        controller = _Controller(
            self.handler,
            sock,
            self.limits,
            server_hostname=self.hostname,
            ident=IDENT,
            data_size_limit=self.max_message_bytes,
            tls_context=self._tls_context,
            require_starttls=self._require_tls,
        )
        try:
            controller.start()
        except BaseException:
            sock.close()
            raise
        self._controller = controller
        log.info(
            "smtp_listener.started",
            host=self.host,
            port=self.port,
            max_message_bytes=self.max_message_bytes,
            starttls=self._tls_context is not None,
            require_tls=self._require_tls,
            max_sessions=self.limits.max_sessions,
            max_sessions_per_ip=self.limits.max_sessions_per_ip,
            idle_seconds=self.limits.idle_seconds,
            session_seconds=self.limits.session_seconds,
            junk_commands=self.limits.junk_commands,
        )
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
            log.info("smtp_listener.stopped", host=self.host, port=self.port)

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def open_sessions(self) -> int:
        """SMTP sessions open now (counted against :class:`SessionLimits`); 0 when stopped."""
        return 0 if self._controller is None else self._controller.sessions.total

    def __enter__(self) -> SmtpListener:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
