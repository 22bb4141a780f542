"""A real SMTP server for tests (aiosmtpd in a thread) that records mail and fails on request.

:class:`SmtpTestServer` listens on a free loopback port in one of three modes: ``plain``,
``starttls`` (RFC 3207; AUTH only after it, as RFC 4954 §4 advises) or ``ssl`` (implicit TLS,
RFC 8314). With ``users`` it offers AUTH PLAIN and LOGIN against that table. It records every message
it accepted (:class:`ReceivedMessage`) and can be told to fail: reply ``451 4.3.0`` to the next DATA,
refuse one recipient with ``550 5.1.1``, drop the connection at a given command. That is enough to
test a transport's retry decisions against a real server rather than a mock.

More AUTH mechanisms plug in by subclassing :class:`RecordingHandler`: aiosmtpd offers every
handler method named ``auth_<MECHANISM>`` (for example ``async def auth_XOAUTH2(self, server, args)``
returning an ``aiosmtpd.smtp.AuthResult``); pass an instance as ``handler``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections import deque
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from postroom.testing.certs import Certificates
from postroom.transports.base import SmtpAccount, SmtpEncryption

__all__ = ["ReceivedMessage", "RecordingHandler", "SmtpMode", "SmtpTestServer"]


class _DropAiosmtpdNoise(logging.Filter):
    """aiosmtpd logs a deprecation warning for its own use of Session.login_data on every AUTH."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_DropAiosmtpdNoise())

SmtpMode = Literal["plain", "starttls", "ssl"]
Command = Literal["MAIL", "RCPT", "DATA"]

_TEMPORARY_DATA = "451 4.3.0 Temporary failure, please try again later"
_UNKNOWN_USER = "550 5.1.1 No such user here"


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message the server accepted."""

    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes = field(repr=False)
    mail_options: tuple[str, ...] = ()
    login: str | None = None  # who had signed in, None when unauthenticated
    tls: bool = False  # whether the session was encrypted (STARTTLS or implicit TLS)


@dataclass(frozen=True, slots=True)
class AuthAttempt:
    mechanism: str
    login: str
    success: bool


class RecordingHandler:
    """The aiosmtpd handler: records accepted messages and plays the scripted failures.

    Scripts are set from the test's thread and read on the server's; one lock guards both.
    """

    # No attribute may start with "auth_": aiosmtpd offers every such member as an AUTH mechanism.

    def __init__(self) -> None:
        self.messages: list[ReceivedMessage] = []
        self.sign_ins: list[AuthAttempt] = []
        self.users: dict[str, str] = {}
        # Enforced here rather than by aiosmtpd, which cannot see implicit TLS and then warns on
        # every connection that AUTH is required without TLS.
        self.require_auth = False
        self._changed = threading.Condition()
        self._mail_replies: deque[str] = deque()
        self._data_replies: deque[str] = deque()
        self._refused: dict[str, str] = {}
        self._drops: dict[str, int] = {}

    # ── scripting (test thread) ────────────────────────────────────────────────────────────────

    def fail_next_mail(self, count: int = 1, reply: str = "451 4.3.2 Please try again later") -> None:
        with self._changed:
            self._mail_replies.extend([reply] * count)

    def fail_next_data(self, count: int = 1, reply: str = _TEMPORARY_DATA) -> None:
        with self._changed:
            self._data_replies.extend([reply] * count)

    def refuse_recipient(self, address: str, reply: str = _UNKNOWN_USER) -> None:
        with self._changed:
            self._refused[address.lower()] = reply

    def drop_connection(self, at: Command, count: int = 1) -> None:
        """Close the connection instead of answering the next ``count`` ``at`` commands."""
        with self._changed:
            self._drops[at] = self._drops.get(at, 0) + count

    def reset(self) -> None:
        with self._changed:
            self.messages.clear()
            self.sign_ins.clear()
            self._mail_replies.clear()
            self._data_replies.clear()
            self._refused.clear()
            self._drops.clear()

    def add_user(self, login: str, password: str) -> None:
        with self._changed:
            self.users[login] = password

    def received(self) -> list[ReceivedMessage]:
        """A copy of the messages accepted so far."""
        with self._changed:
            return list(self.messages)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.messages) >= count, timeout):
                raise TimeoutError(f"expected {count} messages within {timeout} s, got {len(self.messages)}")
            return list(self.messages)

    # ── aiosmtpd hooks (server thread) ─────────────────────────────────────────────────────────

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self._take_drop("MAIL", server):
            return "421 4.3.2 Closing"
        if self.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        with self._changed:
            if self._mail_replies:
                return self._mail_replies.popleft()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self._take_drop("RCPT", server):
            return "421 4.3.2 Closing"
        with self._changed:
            refusal = self._refused.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._take_drop("DATA", server):
            return "421 4.3.2 Closing"
        with self._changed:
            if self._data_replies:
                return self._data_replies.popleft()
            raw = envelope.original_content or b""
            login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            transport = server.transport
            self.messages.append(
                ReceivedMessage(
                    envelope_from=envelope.mail_from or "",
                    recipients=tuple(envelope.rcpt_tos),
                    raw=raw if isinstance(raw, bytes) else raw.encode(),
                    mail_options=tuple(envelope.mail_options),
                    login=login,
                    tls=transport is not None and transport.get_extra_info("sslcontext") is not None,
                )
            )
            self._changed.notify_all()
        return "250 2.0.0 OK: queued"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """aiosmtpd's authenticator for the built-in PLAIN and LOGIN mechanisms."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        with self._changed:
            expected = self.users.get(login)
            success = expected is not None and expected.encode() == auth_data.password
            self.sign_ins.append(AuthAttempt(mechanism, login, success))
        return AuthResult(success=success, handled=False, auth_data=auth_data)

    def _take_drop(self, command: Command, server: SMTP) -> bool:
        with self._changed:
            if self._drops.get(command, 0) <= 0:
                return False
            self._drops[command] -= 1
        transport = server.transport
        if isinstance(transport, asyncio.Transport):
            # abort(): no goodbye, as when a server crashes or a network path dies mid-transaction.
            transport.abort()
        elif transport is not None:
            transport.close()
        return True


class _Controller(Controller):
    """aiosmtpd's threaded Controller on a socket we bound ourselves, so that port 0 works race-free."""

    def __init__(self, handler: RecordingHandler, sock: socket.socket, **kwargs: Any) -> None:
        self._listen_socket = sock
        host, port = sock.getsockname()[:2]
        super().__init__(handler, hostname=host, port=port, **kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._listen_socket, ssl=self.ssl_context)


class SmtpTestServer:
    """An SMTP server on loopback; start()/stop() or use as a context manager."""

    def __init__(
        self,
        *,
        mode: SmtpMode = "plain",
        certs: Certificates | None = None,
        untrusted: bool = False,
        users: Mapping[str, str] | None = None,
        auth_required: bool | None = None,
        handler: RecordingHandler | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        hostname: str = "smtp.postroom.test",
    ) -> None:
        if mode != "plain" and certs is None:
            raise ValueError(f"mode {mode!r} needs certificates")
        self.mode = mode
        self.handler = handler or RecordingHandler()
        self.handler.users.update(users or {})
        self._certs = certs
        self._untrusted = untrusted
        self.handler.require_auth = bool(users) if auth_required is None else auth_required
        self._bind = (host, port)
        self._hostname = hostname
        self._controller: _Controller | None = None
        self.host = host
        self.port = port

    def start(self) -> SmtpTestServer:
        # proto=IPPROTO_TCP, as getaddrinfo would give: asyncio sets TCP_NODELAY only on sockets that
        # say so, and without it every multi-line reply waits 40 ms for a delayed ACK (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(self._bind)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        tls = self._certs.server_context(untrusted=self._untrusted) if self._certs is not None else None
        offer_auth = bool(self.handler.users) or self.handler.require_auth
        controller = _Controller(
            self.handler,
            sock,
            ssl_context=tls if self.mode == "ssl" else None,
            tls_context=tls if self.mode == "starttls" else None,
            require_starttls=self.mode == "starttls",
            authenticator=self.handler.authenticate if offer_auth else None,
            # AUTH only after STARTTLS (RFC 4954 §4). aiosmtpd cannot see implicit TLS, so it is told
            # not to insist; over plain text AUTH is allowed because a test asked for plain mode.
            auth_require_tls=self.mode == "starttls",
            server_hostname=self._hostname,
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ── what tests use ─────────────────────────────────────────────────────────────────────────

    @property
    def messages(self) -> list[ReceivedMessage]:
        return self.handler.received()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Wait until ``count`` messages were accepted; return all of them."""
        return self.handler.wait_for(count, timeout)

    def fail_next_data(self, count: int = 1, reply: str = _TEMPORARY_DATA) -> None:
        self.handler.fail_next_data(count, reply)

    def fail_next_mail(self, count: int = 1, reply: str = "451 4.3.2 Please try again later") -> None:
        self.handler.fail_next_mail(count, reply)

    def refuse_recipient(self, address: str, reply: str = _UNKNOWN_USER) -> None:
        self.handler.refuse_recipient(address, reply)

    def drop_connection(self, at: Command, count: int = 1) -> None:
        self.handler.drop_connection(at, count)

    def add_user(self, login: str, password: str) -> None:
        """Accept another login from now on (AUTH must be offered: pass users or auth_required)."""
        self.handler.add_user(login, password)

    def reset(self) -> None:
        """Forget messages, sign-in attempts and scripts (users stay)."""
        self.handler.reset()

    def smtp_account(self, address: str = "support@postroom.test", **changes: Any) -> SmtpAccount:
        """An :class:`SmtpAccount` for this server, signed in as its first user when it has users."""
        encryption: SmtpEncryption = {"plain": "none", "starttls": "starttls", "ssl": "ssl"}[self.mode]  # type: ignore[assignment]
        login, password = next(iter(self.handler.users.items()), ("", ""))
        account = SmtpAccount(
            address=address,
            host=self.host,
            port=self.port,
            encryption=encryption,
            username=login,
            password=password,
            timeout=5.0,
            local_hostname="client.postroom.test",
        )
        return replace(account, **changes)
