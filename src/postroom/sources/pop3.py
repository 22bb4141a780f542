"""Reading one POP3 maildrop: list unique-ids, retrieve what is new, store, then (if asked) delete.

:class:`Pop3Source` owns the POP3 side of one mailbox. POP3 has no flags and no folder, and a server
shows a session the maildrop as it was when the session began (RFC 1939 §8), so every check is a
session of its own: sign in, ``UIDL``, ``RETR`` the messages whose unique-id the :class:`Pop3Sink`
has not stored, hand them over in batches, and only after the sink committed a batch ``DELE`` it
(when the account says so); ``QUIT`` commits the deletions (RFC 1939 §6).

The unique-ids are the cursor (RFC 1939 §7: a server keeps a message's unique-id across sessions):
the sink stores each under ``pop3:<uidl>`` and answers which ones it holds, so nothing is imported
twice, whether the mail stays on the server or a session dropped between the commit and ``QUIT``
(the deletions were then not committed and the stored messages are deleted on the next check).

``run()`` polls every ``check_interval`` and reconnects with backoff, reporting its state through
``on_status`` and writing the per-connection log through ``log(level, event, message)``. Events:
``connect``, ``signed_in``, ``no_uidl``, ``imported``, ``deleted``, ``empty_body``, ``error``,
``retry``, ``stopped``. Nothing logged contains a password or token.

Every answer of the server becomes a typed value in :class:`Pop3Session`; nothing beyond that class
sees poplib's byte strings.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import poplib
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from postroom.errors import (
    AuthenticationError,
    ChannelError,
    ConnectError,
    ProtocolError,
    TlsError,
)
from postroom.sources.base import (
    Backoff,
    EventLog,
    MailboxLog,
    StatusCallback,
    ignore_status,
    run_with_backoff,
    xoauth2_string,
)
from postroom.tls import client_context, network_error

__all__ = [
    "Maildrop",
    "Pop3Account",
    "Pop3Authenticator",
    "Pop3Client",
    "Pop3Encryption",
    "Pop3Session",
    "Pop3Sink",
    "Pop3Source",
    "content_uidl",
    "password_login",
    "xoauth2_login",
]

PROTOCOL: Final = "pop3"
# QUIT on the way out must not keep stop() waiting on a server that is gone.
_QUIT_TIMEOUT: Final = 2.0
# RETR is read in pieces of at most this size, so that no line length limit applies to mail: poplib's
# own reader refuses lines over 2048 octets, which real mail (unwrapped HTML, base64) has.
_READ_CHUNK: Final = 64 * 1024
# A batch is stored once it holds this many octets, whatever batch_size says: bounded memory.
_BATCH_BYTES: Final = 32 * 1024 * 1024
# RFC 5034 §4: an AUTH command with its initial response must fit in 255 octets (CRLF included).
_AUTH_LINE_MAX: Final = 255
# RFC 2449 §8 and RFC 3206: response codes that say "not now" rather than "not these credentials".
_TEMPORARY_CODES: Final = frozenset({"IN-USE", "LOGIN-DELAY", "SYS/TEMP"})
_RESPONSE_CODE = re.compile(r"^-ERR \[([A-Z0-9/-]+)")
_BYTES_REPR = re.compile(r"""^b(['"])(.*)\1$""", re.DOTALL)

Pop3Encryption = Literal["ssl", "starttls", "none"]


@dataclass(frozen=True, slots=True)
class Pop3Account:
    """Everything needed to read one POP3 maildrop. ``address`` names it in logs and errors."""

    address: str
    host: str
    port: int = 995
    encryption: Pop3Encryption = "ssl"
    validate_certificate: bool = True
    username: str = ""
    password: str = field(default="", repr=False)
    delete_after_import: bool = False
    check_interval: float = 15.0  # seconds between checks (a new session each time)
    timeout: float = 30.0  # socket timeout for connect and commands
    batch_size: int = 100  # messages per store transaction (fewer when they are large, see _BATCH_BYTES)

    @property
    def login(self) -> str:
        return self.username or self.address


class Pop3Sink(Protocol):
    """Where a POP3 source puts what it retrieved. Implemented on the database by the channel runtime."""

    def stored_uidls(self, uidls: Sequence[str]) -> set[str]:
        """Which of these unique-ids this mailbox has already stored."""
        ...

    def store_pop3(self, mails: Sequence[tuple[str, bytes]]) -> int:
        """Commit ``(uidl, raw)`` pairs in one transaction; return how many were new.

        Pairs whose unique-id is already stored are skipped. When this returns, the bytes are durable
        and the source may delete them from the server.
        """
        ...


@dataclass(frozen=True, slots=True)
class Maildrop:
    """The STAT answer (RFC 1939 §5): messages in the maildrop and their size in octets."""

    count: int
    size: int


class Pop3Client(poplib.POP3):
    """poplib's client and the two things it lacks: SASL ``AUTH`` (RFC 5034) and RETR as raw bytes."""

    def retr_bytes(self, number: int) -> bytes:
        """The message as the server sent it, byte-stuffing undone (RFC 1939 §3), line ends kept."""
        self._command(f"RETR {number}")
        parts: list[bytes] = []
        at_line_start = True
        while True:
            piece = self.file.readline(_READ_CHUNK)
            if not piece:
                raise ConnectionResetError("the server closed the connection during RETR")
            if at_line_start:
                if piece in (b".\r\n", b".\n"):
                    break
                if piece.startswith(b"."):
                    piece = piece[1:]
            parts.append(piece)
            # A line longer than one piece continues in the next, which is not a line start.
            at_line_start = piece.endswith(b"\n")
        return b"".join(parts)

    def sasl(self, mechanism: str, response: bytes) -> bytes:
        """``AUTH mechanism`` with one client response (RFC 5034 §4); return the server's +OK line.

        The response goes on the command line when it fits in 255 octets, otherwise after the
        server's empty challenge, as RFC 5034 §4 requires (OAuth tokens are usually longer).
        Raises :class:`poplib.error_proto` with the server's -ERR line when it refuses.
        """
        encoded = base64.b64encode(response).decode("ascii")
        # RFC 5034 §4: "=" stands for an empty initial response on the command line.
        command = f"AUTH {mechanism} {encoded or '='}"
        if len(command) + 2 <= _AUTH_LINE_MAX:
            reply = self._command(command)
        else:
            reply = self._command(f"AUTH {mechanism}")
            if not _is_challenge(reply):
                raise poplib.error_proto(reply)
            reply = self._command(encoded)
        if _is_challenge(reply):
            # A refused XOAUTH2 token comes back as a challenge holding the error (a JSON document);
            # the empty response ends the exchange, and the server then answers -ERR.
            reply = self._command("")
        if not reply.startswith(b"+OK"):
            raise poplib.error_proto(reply)
        return reply

    def _command(self, line: str) -> bytes:
        """Send one command line; return the status line (+OK or a ``+`` challenge), raise on -ERR."""
        self.sock.sendall(line.encode("utf-8") + b"\r\n")
        reply = self.file.readline(_READ_CHUNK)
        if not reply:
            raise ConnectionResetError("the server closed the connection")
        reply = reply.rstrip(b"\r\n")
        if not reply.startswith(b"+"):
            raise poplib.error_proto(reply)
        return reply


class _Pop3SslClient(Pop3Client, poplib.POP3_SSL):
    """:class:`Pop3Client` over implicit TLS (RFC 8314)."""


Pop3Authenticator = Callable[[Pop3Client, Pop3Account], None]
"""Signs in on a connected client; raises ``poplib.error_proto`` with the -ERR line when refused."""


def password_login(client: Pop3Client, account: Pop3Account) -> None:
    """USER and PASS (RFC 1939 §7); poplib sends them as UTF-8."""
    if any(c in account.login + account.password for c in "\r\n"):
        # A line break would end the command and turn the rest into a command of its own.
        raise AuthenticationError(PROTOCOL, account.address, "the login or password contains a line break")
    client.user(account.login)
    client.pass_(account.password)


def xoauth2_login(token: Callable[[], str]) -> Pop3Authenticator:
    """An authenticator for ``AUTH XOAUTH2`` (RFC 5034 SASL with Google's and Microsoft's XOAUTH2).

    ``token`` returns a current access token when called (it may refresh one); it is called once per
    sign-in, so a token that expired between two checks is replaced.
    """

    def authenticate(client: Pop3Client, account: Pop3Account) -> None:
        client.sasl("XOAUTH2", xoauth2_string(account.login, token()).encode())

    return authenticate


def content_uidl(raw: bytes) -> str:
    """The stand-in unique-id of a message on a server without UIDL: a hash of its bytes.

    At 71 characters it is longer than any real unique-id may be (RFC 1939 §7: 1 to 70), so the
    two kinds never collide in the sink.
    """
    return "sha256:" + hashlib.sha256(raw).hexdigest()


class Pop3Session:
    """One signed-in POP3 session (TRANSACTION state, RFC 1939 §5).

    Every method converts the server's answer into typed values and every failure into the
    :class:`~postroom.errors.ChannelError` leaf that names the account.
    """

    def __init__(self, account: Pop3Account, client: Pop3Client, maildrop: Maildrop) -> None:
        self.account = account
        self.maildrop = maildrop
        self._client = client
        self._closed = False

    @classmethod
    def open(cls, account: Pop3Account, authenticate: Pop3Authenticator = password_login) -> Pop3Session:
        """Connect, secure the connection as configured, sign in and read STAT."""
        endpoint = f"{account.host}:{account.port}"
        context = client_context(account.validate_certificate) if account.encryption != "none" else None
        with _translate_errors(account, endpoint):
            client: Pop3Client
            if account.encryption == "ssl":
                client = _Pop3SslClient(account.host, account.port, timeout=account.timeout, context=context)
            else:
                client = Pop3Client(account.host, account.port, timeout=account.timeout)
        try:
            with _translate_errors(account, endpoint):
                if account.encryption == "starttls":
                    # RFC 2595 §4: only a server that lists STLS in CAPA may be asked for it; going on
                    # in plain text would send the password unencrypted.
                    if "STLS" not in _capabilities(client):
                        raise TlsError(PROTOCOL, account.address, f"{endpoint} does not offer STLS")
                    client.stls(context)
                try:
                    authenticate(client, account)
                except poplib.error_proto as error:
                    raise _refused(account, _server_text(error)) from error
                count, size = client.stat()
            return cls(account, client, Maildrop(count, size))
        except BaseException:
            _close_quietly(client)
            raise

    # ── reading ────────────────────────────────────────────────────────────────────────────────

    def uidls(self) -> dict[int, str] | None:
        """Message-number → unique-id for the whole maildrop (RFC 1939 §7); None without UIDL."""
        with self._errors():
            try:
                _response, lines, _octets = self._client.uidl()
            except poplib.error_proto as error:
                text = _server_text(error)
                if text.startswith("-ERR") and text != "-ERR EOF":
                    # UIDL is optional in RFC 1939; a server without it answers -ERR.
                    return None
                raise
        found: dict[int, str] = {}
        for line in lines:
            parts = line.split()
            if len(parts) != 2 or not parts[0].isdigit():
                raise ProtocolError(PROTOCOL, self.account.address, f"unexpected UIDL line {_text(line)!r}")
            found[int(parts[0])] = _text(parts[1])
        return found

    def retrieve(self, number: int) -> bytes:
        with self._errors():
            return self._client.retr_bytes(number)

    def delete(self, numbers: Sequence[int]) -> None:
        """Mark messages deleted; the server removes them only at QUIT (RFC 1939 §6)."""
        with self._errors():
            for number in numbers:
                self._client.dele(number)

    def quit(self) -> None:
        """QUIT: the server removes the messages marked deleted and ends the session (RFC 1939 §6)."""
        self._closed = True
        try:
            with self._errors():
                self._client.quit()
        finally:
            with contextlib.suppress(Exception):
                self._client.close()

    def close(self) -> None:
        """QUIT if the session is still open (deleting only what was stored), or just drop the socket."""
        if not self._closed:
            self._closed = True
            _close_quietly(self._client)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        with _translate_errors(self.account, f"{self.account.host}:{self.account.port}"):
            yield


class Pop3Source:
    """The POP3 side of one mailbox: check the sign-in, import once, or run until stopped.

    ``on_status`` receives a :class:`SourceStatus` at every state change of :meth:`run`;
    ``authenticate`` signs in on a connected client (USER/PASS by default; :func:`xoauth2_login`
    plugs OAuth in); ``backoff`` spaces out reconnection attempts.
    """

    def __init__(
        self,
        account: Pop3Account,
        sink: Pop3Sink,
        log: EventLog,
        *,
        on_status: StatusCallback = ignore_status,
        authenticate: Pop3Authenticator = password_login,
        backoff: Backoff | None = None,
    ) -> None:
        self.account = account
        self._sink = sink
        # Every line names the mailbox: a connection's log interleaves the lines of all its mailboxes.
        self._log: EventLog = MailboxLog(log, PROTOCOL, account.address)
        self._on_status = on_status
        self._authenticate = authenticate
        self._backoff = backoff or Backoff()
        # Set while run() runs, so that a long import ends between messages when asked to stop.
        self._stop: threading.Event | None = None

    def check_login(self) -> None:
        """Connect and sign in, then QUIT; raise the ChannelError leaf on failure."""
        self._open(announce=True).close()

    def sync_once(self) -> int:
        """Connect, import everything new (deleting it if asked), QUIT; return how many were new."""
        return self._check(announce=True)

    def run(self, stop: threading.Event) -> None:
        """Check every ``check_interval`` until ``stop`` is set.

        A command in flight finishes first, bounded by ``account.timeout``. Failures of the server
        or of the sink (any :class:`PostroomError`) are retried with backoff; anything else is a bug
        and propagates after ``on_status`` was told STOPPED. Each check is a session of its own, so
        one that succeeds ends a run of failures.
        """
        self._stop = stop
        try:
            run_with_backoff(
                lambda running: self._poll(stop, running),
                stop,
                log=self._log,
                on_status=self._on_status,
                backoff=self._backoff,
                stable_after=0.0,  # each check is a session of its own: one that succeeds ends a run of failures
                stopped="stopped checking the POP3 maildrop",
            )
        finally:
            self._stop = None

    # ── internals ──────────────────────────────────────────────────────────────────────────────

    def _poll(self, stop: threading.Event, running: Callable[[], None]) -> None:
        # Routine checks log only what they did; the first check after a start or a failure also logs
        # the sign-in, so that the log shows when the server became reachable again.
        self._check(announce=True)
        running()
        while not stop.wait(self.account.check_interval):
            self._check(announce=False)

    def _open(self, *, announce: bool) -> Pop3Session:
        account = self.account
        if announce:
            self._log(
                "info",
                "connect",
                f"connecting to {account.host}:{account.port} (encryption {account.encryption})",
            )
        session = Pop3Session.open(account, self._authenticate)
        if announce:
            drop = session.maildrop
            self._log(
                "info",
                "signed_in",
                f"signed in as {account.login}; the maildrop holds {drop.count} messages ({drop.size} octets)",
            )
        return session

    def _check(self, *, announce: bool) -> int:
        session = self._open(announce=announce)
        try:
            imported, deleted = self._sync(session, announce=announce)
            # Deletions take effect only now (RFC 1939 §6); were the session to drop before, the
            # messages stay on the server, and being stored they are deleted on the next check.
            session.quit()
        finally:
            session.close()
        if imported:
            self._log("info", "imported", f"{imported} mails imported")
        if deleted:
            self._log("info", "deleted", f"{deleted} mails deleted from the server")
        return imported

    def _sync(self, session: Pop3Session, *, announce: bool) -> tuple[int, int]:
        """Store what is new; mark what is stored deleted when asked. Return (imported, marked deleted)."""
        uidls = session.uidls()
        if uidls is not None and len(set(uidls.values())) != len(uidls):
            # Two messages under one unique-id would let the second be taken for stored (and be
            # deleted unread); the server breaks RFC 1939 §7, so its unique-ids are not trusted.
            if announce:
                self._log("warning", "no_uidl", "the server gave two messages the same UIDL; comparing contents")
            uidls = None
        if uidls is None:
            # Without UIDL nothing tells new from known but the bytes: every message is retrieved on
            # each check and the sink recognises those it stored by a hash of their content.
            if announce:
                self._log("warning", "no_uidl", "the server offers no UIDL; every check downloads every message")
            wanted: list[tuple[int, str | None]] = [(number, None) for number in range(1, session.maildrop.count + 1)]
            stored: list[int] = []
        else:
            known = self._sink.stored_uidls(list(uidls.values()))
            wanted = [(number, uidl) for number, uidl in sorted(uidls.items()) if uidl not in known]
            stored = sorted(number for number, uidl in uidls.items() if uidl in known)
        delete = self.account.delete_after_import
        deleted = 0
        if delete and stored:
            # Stored in an earlier session that ended before its QUIT: safe to delete now.
            session.delete(stored)
            deleted += len(stored)
        imported = 0
        batch: list[tuple[int, str, bytes]] = []
        batch_bytes = 0
        for number, uidl in wanted:
            if self._stopping():
                break
            raw = session.retrieve(number)
            if not raw:
                self._log("warning", "empty_body", f"the server returned no content for message {number}")
            batch.append((number, uidl or content_uidl(raw), raw))
            batch_bytes += len(raw)
            if len(batch) >= max(1, self.account.batch_size) or batch_bytes >= _BATCH_BYTES:
                imported += self._store(session, batch)
                deleted += len(batch) if delete else 0
                batch, batch_bytes = [], 0
        if batch:
            imported += self._store(session, batch)
            deleted += len(batch) if delete else 0
        return imported, deleted

    def _store(self, session: Pop3Session, batch: Sequence[tuple[int, str, bytes]]) -> int:
        # The sink commits first; only then may the server learn that the mail can go (DESIGN §1:
        # nothing is acknowledged that is not stored).
        new = self._sink.store_pop3([(uidl, raw) for _number, uidl, raw in batch])
        if self.account.delete_after_import:
            session.delete([number for number, _uidl, _raw in batch])
        return new

    def _stopping(self) -> bool:
        # Every batch commits on its own, so stopping between two messages loses nothing.
        return self._stop is not None and self._stop.is_set()


def _capabilities(client: Pop3Client) -> set[str]:
    try:
        return set(client.capa())
    except poplib.error_proto:
        # CAPA is RFC 2449; a server without it announces nothing, STLS included.
        return set()


def _is_challenge(reply: bytes) -> bool:
    # RFC 5034 §4: a continuation is "+" followed by a space and base64 (possibly empty).
    return reply == b"+" or reply.startswith(b"+ ")


def _refused(account: Pop3Account, text: str) -> ChannelError:
    """The error for an -ERR to USER, PASS or AUTH: the credentials, unless the code says "not now"."""
    if text == "-ERR EOF":
        return ConnectError(PROTOCOL, account.address, "the server closed the connection during sign-in")
    match = _RESPONSE_CODE.match(text)
    if match is not None and match.group(1) in _TEMPORARY_CODES:
        # RFC 2449 §8.1: IN-USE means another session holds the maildrop lock; LOGIN-DELAY and
        # RFC 3206's SYS/TEMP also pass with time. None of them is the admin's to fix.
        return ProtocolError(PROTOCOL, account.address, text)
    return AuthenticationError(PROTOCOL, account.address, text)


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _server_text(error: BaseException) -> str:
    """The server's words from a poplib error (bytes or str), without Python's b'...' wrapping."""
    arg = error.args[0] if error.args else str(error)
    text = _text(arg) if isinstance(arg, bytes) else str(arg)
    match = _BYTES_REPR.match(text)
    return match.group(2) if match else text


def _close_quietly(client: Pop3Client) -> None:
    try:
        client.sock.settimeout(_QUIT_TIMEOUT)
        client.quit()
    except Exception:  # noqa: BLE001 - the connection may already be gone; closing must not fail
        with contextlib.suppress(Exception):
            client.close()


@contextlib.contextmanager
def _translate_errors(account: Pop3Account, endpoint: str) -> Iterator[None]:
    """Turn poplib and socket failures into the ChannelError leaf naming the account."""
    try:
        yield
    except ChannelError:
        raise
    except poplib.error_proto as error:
        text = _server_text(error)
        if text == "-ERR EOF":
            # poplib's words for a connection the server closed.
            raise ConnectError(PROTOCOL, account.address, f"connection to {endpoint} lost") from error
        raise ProtocolError(PROTOCOL, account.address, text) from error
    except OSError as error:
        raise network_error(PROTOCOL, account.address, endpoint, error) from error
