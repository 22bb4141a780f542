"""Reading one IMAP folder: fetch by UID, store, then acknowledge; IDLE for new mail.

:class:`ImapSource` owns the IMAP side of one mailbox. It fetches raw bytes by UID above the cursor the
:class:`~postroom.sources.base.RawSink` committed last (RFC 3501 §2.3.1.1), hands them over in batches
and only after the sink returned sets ``\\Seen`` (when the account says so). It never parses mail: a
message that looks broken is stored like any other and judged later by the pipeline.

``run()`` is the long-running loop of a mailbox worker: connect, catch up, then wait for mail with IDLE
(RFC 2177) or, when the server lacks IDLE, by polling; reconnect with exponential backoff and jitter.
It reports its state through ``on_status`` (see :class:`SourceStatus`) and writes the per-connection
log through ``log(level, event, message)``. Events: ``connect``, ``signed_in``, ``imported``,
``uidvalidity_changed``, ``empty_body``, ``error``, ``retry``, ``stopped``. Nothing logged contains a
password.

Every response of the server is turned into a typed value in :class:`ImapSession`; nothing beyond
that class sees IMAPClient's tuples.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from postroom.errors import (
    AuthenticationError,
    ChannelError,
    ConnectError,
    FolderError,
    ProtocolError,
    TlsError,
)
from postroom.mail.peek import peek_message_id
from postroom.sources.base import (
    Backoff,
    EventLog,
    FetchedMail,
    ImapAccount,
    ImapCursor,
    MailboxLog,
    RawSink,
    StatusCallback,
    ignore_status,
    run_with_backoff,
)
from postroom.tls import client_context, network_error

__all__ = [
    "FolderState",
    "ImapAuthenticator",
    "ImapSession",
    "ImapSource",
    "connect",
    "logout",
    "password_login",
    "select_folder",
    "server_text",
    "sign_in",
    "translate_errors",
]

PROTOCOL: Final = "imap"
SEEN: Final = "\\Seen"
DELETED: Final = "\\Deleted"
_FETCH_ITEMS: Final = ("BODY.PEEK[]", "FLAGS", "INTERNALDATE")
_MESSAGE_ID_ITEM: Final = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
# How long an IDLE wait may last before the loop looks at the stop event again.
_STOP_CHECK: Final = 0.5
# After a catch-up, IDLE is briefly left once more to ask whether mail slipped in meanwhile.
_CONFIRM_AFTER: Final = 1.0
# A session that stayed up this long ends a run of failures; one that drops sooner continues it, so
# that a server which accepts and then drops every connection still shows up as failing.
_STABLE_AFTER: Final = 60.0
# LOGOUT on the way out must not keep stop() waiting on a server that is gone.
_LOGOUT_TIMEOUT: Final = 2.0
# RFC 3501 §9: UIDs are 32-bit unsigned (nz-number).
_MAX_UID: Final = 2**32 - 1
_BYTES_REPR = re.compile(r"""^b(['"])(.*)\1$""", re.DOTALL)


ImapAuthenticator = Callable[[Any, ImapAccount], None]
"""Signs in on a connected IMAPClient. The seam for XOAUTH2: pass one that calls ``oauth2_login``."""


def password_login(client: Any, account: ImapAccount) -> None:
    """Sign in with the account's password.

    AUTHENTICATE PLAIN carries UTF-8 (RFC 4616) where imaplib's LOGIN cannot send a non-ASCII
    password, so PLAIN is used whenever the server offers it (RFC 3501 §6.2.2).
    """
    if client.has_capability("AUTH=PLAIN"):
        client.plain_login(account.login, account.password)
    elif not (account.login + account.password).isascii():
        raise AuthenticationError(
            PROTOCOL, account.address, "the server offers no AUTH=PLAIN, which a non-ASCII login or password needs"
        )
    else:
        client.login(account.login, account.password)


@dataclass(frozen=True, slots=True)
class FolderState:
    """The SELECT response that matters to us (RFC 3501 §6.3.1)."""

    name: str
    uidvalidity: int
    exists: int
    uidnext: int | None


@dataclass(frozen=True, slots=True)
class _Untagged:
    """One untagged server response, e.g. ``* 3 EXISTS`` → (3, "EXISTS", "")."""

    number: int | None
    keyword: str
    text: str


class ImapSession:
    """One signed-in IMAP connection with the account's folder selected.

    Every method converts the server's answer into typed values and every failure into the
    :class:`~postroom.errors.ChannelError` leaf that names the account.
    """

    def __init__(self, account: ImapAccount, client: Any, folder: FolderState) -> None:
        self.account = account
        self.folder = folder
        self._client = client
        self._idling = False
        with self._errors():
            self.idle_supported: bool = bool(client.has_capability("IDLE"))

    @classmethod
    def open(cls, account: ImapAccount, authenticate: ImapAuthenticator = password_login) -> ImapSession:
        """Connect, secure the connection as configured, sign in and select the folder."""
        client = connect(account)
        try:
            sign_in(client, account, authenticate)
            session = cls(account, client, select_folder(client, account))
            # The SELECT answer's EXISTS is no news: the first sync looks at everything anyway.
            session.take_news()
            return session
        except BaseException:
            _close_quietly(client)
            raise

    # ── reading ────────────────────────────────────────────────────────────────────────────────

    def search_after(self, last_uid: int, *, unread_only: bool = False) -> list[int]:
        """UIDs greater than ``last_uid`` (only \\Seen-less ones with ``unread_only``), ascending."""
        if last_uid >= _MAX_UID:
            return []
        criteria: list[str] = ["UID", f"{last_uid + 1}:*"]
        if unread_only:
            criteria.insert(0, "UNSEEN")
        with self._errors():
            found = self._client.search(criteria)
        # RFC 3501 §6.4.8: "n:*" always includes the highest UID, even when it is below n.
        return sorted(uid for uid in (int(u) for u in found) if uid > last_uid)

    def fetch(self, uids: Sequence[int]) -> list[FetchedMail]:
        """The raw bytes, flags and INTERNALDATE of ``uids``, in UID order; never sets \\Seen.

        BODY.PEEK[] rather than BODY[] (RFC 3501 §6.4.5): fetching must not mark mail as read
        before it is stored. UIDs expunged meanwhile are missing from the result.
        """
        if not uids:
            return []
        with self._errors():
            response = self._client.fetch(list(uids), list(_FETCH_ITEMS))
        mails: list[FetchedMail] = []
        for uid in uids:
            data = response.get(uid)
            if data is None:
                continue
            raw = data.get(b"BODY[]")
            internal_date = data.get(b"INTERNALDATE")
            mails.append(
                FetchedMail(
                    uid=uid,
                    # A server that cannot render a message answers NIL; storing it empty lets the
                    # pipeline quarantine it visibly instead of blocking the mailbox behind it.
                    raw=bytes(raw) if raw is not None else b"",
                    flags=tuple(_text(flag) for flag in data.get(b"FLAGS", ())),
                    internal_date=internal_date if isinstance(internal_date, datetime) else None,
                )
            )
        return mails

    def fetch_message_ids(self, uids: Sequence[int]) -> dict[int, str | None]:
        """The Message-ID of each of ``uids`` (None when a message has none), without \\Seen."""
        if not uids:
            return {}
        with self._errors():
            response = self._client.fetch(list(uids), [_MESSAGE_ID_ITEM])
        result: dict[int, str | None] = {}
        for uid, data in response.items():
            header = next((v for k, v in data.items() if bytes(k).startswith(b"BODY[HEADER")), None)
            result[int(uid)] = peek_message_id(bytes(header)) if header else None
        return result

    def take_news(self) -> bool:
        """Whether the server announced new mail (EXISTS/RECENT) alongside our commands so far.

        RFC 3501 §7 lets a server report new messages in the untagged answer to any command, and
        it reports each arrival once. imaplib files such reports away; this reads and forgets them
        (with every other unsolicited response, which would otherwise pile up over a long session).
        """
        responses = self._client._imap.untagged_responses
        news = "EXISTS" in responses or "RECENT" in responses
        responses.clear()
        return news

    def poll(self) -> bool:
        """NOOP (RFC 3501 §6.1.2, "a periodic poll for new messages"); whether new mail was announced."""
        with self._errors():
            self._client.noop()
        return self.take_news()

    def mark_seen(self, uids: Sequence[int]) -> None:
        """Set \\Seen on ``uids``; .SILENT because we need no FETCH answer (RFC 3501 §6.4.6)."""
        if uids:
            with self._errors():
                self._client.add_flags(list(uids), [SEEN], silent=True)

    def search_header(self, name: str, value: str) -> list[int]:
        """UIDs of the messages whose header ``name`` contains ``value`` (RFC 3501 §6.4.4), ascending."""
        with self._errors():
            found = self._client.search(["HEADER", name, value])
        return sorted(int(uid) for uid in found)

    def delete(self, uids: Sequence[int]) -> bool:
        """Flag ``uids`` \\Deleted and expunge exactly those; False when the server cannot (no UIDPLUS).

        UID EXPUNGE (RFC 4315 §2.1) removes only the given messages. Without UIDPLUS they stay flagged:
        a plain EXPUNGE (RFC 3501 §6.4.3) would also remove whatever else the user marked \\Deleted.
        """
        if not uids:
            return True
        with self._errors():
            self._client.add_flags(list(uids), [DELETED], silent=True)
            if not self._client.has_capability("UIDPLUS"):
                return False
            self._client.uid_expunge(list(uids))
        return True

    # ── waiting ────────────────────────────────────────────────────────────────────────────────

    def idle_start(self) -> None:
        try:
            with self._errors():
                self._client.idle()
        except ProtocolError as error:
            # A BYE that crosses our IDLE command arrives as its "unexpected response".
            if "BYE" in error.detail:
                raise ConnectError(
                    PROTOCOL, self.account.address, f"server closed the session: {error.detail}"
                ) from error
            raise
        self._idling = True

    def idle_wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s in IDLE; True when the folder may have new mail.

        A readable socket that yields no complete response means the server closed the connection
        (IMAPClient swallows that EOF); True makes the caller end IDLE, which then fails loudly.
        """
        with self._errors():
            sock = self._client.socket()
            pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
            if not pending and not _readable(sock, timeout):
                return False
            events = [_untagged(response) for response in self._client.idle_check(timeout=0)]
        for event in events:
            if event.keyword == "BYE":
                raise ConnectError(PROTOCOL, self.account.address, f"server closed the session: {event.text}")
        return not events or any(event.keyword in ("EXISTS", "RECENT") for event in events)

    def idle_done(self) -> None:
        if self._idling:
            self._idling = False
            with self._errors():
                self._client.idle_done()

    def close(self) -> None:
        """LOGOUT when the connection is healthy; otherwise just close the socket."""
        if self._idling:
            # DONE under the short timeout that LOGOUT gets, for the same reason.
            with contextlib.suppress(Exception):
                self._client.socket().settimeout(_LOGOUT_TIMEOUT)
            with contextlib.suppress(Exception):
                self._client.idle_done()
        logout(self._client)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        with translate_errors(self.account, _endpoint(self.account)):
            yield


class ImapSource:
    """The IMAP side of one mailbox: check the sign-in, catch up once, or run until stopped.

    ``on_status`` receives a :class:`SourceStatus` at every state change of :meth:`run`;
    ``authenticate`` signs in on a connected client (password by default; XOAUTH2 plugs in here);
    ``backoff`` spaces out reconnection attempts; a session that stayed signed in for ``stable_after``
    seconds ends a run of failures, so an outage after a long IDLE starts again at the first delay.
    """

    def __init__(
        self,
        account: ImapAccount,
        sink: RawSink,
        log: EventLog,
        *,
        on_status: StatusCallback = ignore_status,
        authenticate: ImapAuthenticator = password_login,
        backoff: Backoff | None = None,
        stable_after: float = _STABLE_AFTER,
    ) -> None:
        self.account = account
        self._sink = sink
        # Every line names the mailbox: a connection's log interleaves the lines of all its mailboxes.
        self._log: EventLog = MailboxLog(log, PROTOCOL, account.address)
        self._on_status = on_status
        self._authenticate = authenticate
        self._backoff = backoff or Backoff()
        self._stable_after = stable_after
        # Set while run() runs, so that a long catch-up ends between batches when asked to stop.
        self._stop: threading.Event | None = None

    def check_login(self) -> None:
        """Connect, sign in and select the folder, then log out; raise the ChannelError leaf on failure."""
        self._open().close()

    def sync_once(self) -> int:
        """Connect, import everything new, disconnect; return how many mails the sink took as new."""
        session = self._open()
        try:
            return self._catch_up(session)
        finally:
            session.close()

    def run(self, stop: threading.Event) -> None:
        """Import mail until ``stop`` is set (noticed within about half a second while waiting).

        A command in flight finishes first, bounded by ``account.timeout``. Failures of the server
        or of the sink (any :class:`PostroomError`) are retried with backoff; anything else is a bug
        and propagates after ``on_status`` was told STOPPED.
        """
        self._stop = stop
        try:
            run_with_backoff(
                lambda running: self._session(stop, running),
                stop,
                log=self._log,
                on_status=self._on_status,
                backoff=self._backoff,
                stable_after=self._stable_after,
                stopped=f"stopped reading {self.account.folder}",
            )
        finally:
            self._stop = None

    # ── internals ──────────────────────────────────────────────────────────────────────────────

    def _open(self) -> ImapSession:
        account = self.account
        self._log(
            "info",
            "connect",
            f"connecting to {account.host}:{account.port} (encryption {account.encryption})",
        )
        session = ImapSession.open(account, self._authenticate)
        folder = session.folder
        self._log(
            "info",
            "signed_in",
            f"signed in as {account.login}; {folder.name} holds {folder.exists} messages"
            f" (UIDVALIDITY {folder.uidvalidity}); {'IDLE' if session.idle_supported else 'polling'}",
        )
        return session

    def _session(self, stop: threading.Event, running: Callable[[], None]) -> None:
        session = self._open()
        try:
            self._catch_up(session)
            running()
            self._watch(session, stop)
        finally:
            session.close()

    def _watch(self, session: ImapSession, stop: threading.Event) -> None:
        if session.idle_supported:
            self._watch_idle(session, stop)
        else:
            self._watch_polling(session, stop)

    def _watch_polling(self, session: ImapSession, stop: threading.Event) -> None:
        # Without IDLE, every check_interval: a UID SEARCH for what is new and a NOOP to learn of
        # anything that arrived meanwhile. The SEARCH runs even when the NOOP reported nothing,
        # because the poll is also the safety net for servers that report sloppily.
        while not stop.wait(self.account.check_interval):
            self._catch_up(session)

    def _watch_idle(self, session: ImapSession, stop: threading.Event) -> None:
        account = self.account
        session.idle_start()
        now = time.monotonic()
        renew_at = now + account.idle_renew
        poll_at = now + account.check_interval
        # run() caught up just before: confirm once that nothing slipped in before IDLE began.
        confirm_at: float | None = now + _CONFIRM_AFTER
        while not stop.is_set():
            now = time.monotonic()
            deadline = min(renew_at, poll_at, confirm_at if confirm_at is not None else renew_at)
            woke = session.idle_wait(max(0.0, min(_STOP_CHECK, deadline - now)))
            now = time.monotonic()
            if woke or now >= poll_at:
                # New mail (or the safety-net poll): leave IDLE at once and fetch, so that pickup
                # costs the round trips of DONE, SEARCH and FETCH and nothing more.
                session.idle_done()
                self._catch_up(session)
                session.idle_start()
                now = time.monotonic()
                renew_at = now + account.idle_renew
                poll_at = now + account.check_interval
                confirm_at = now + _CONFIRM_AFTER
            elif confirm_at is not None and now >= confirm_at:
                # Dovecot never announces, in IDLE, mail that arrived between the NOOP of the last
                # catch-up and the start of IDLE; one NOOP a moment later finds it.
                session.idle_done()
                confirm_at = None
                if session.poll():
                    self._catch_up(session)
                    confirm_at = time.monotonic() + _CONFIRM_AFTER
                session.idle_start()
            elif now >= renew_at:
                # RFC 2177 §3: servers may drop a client idle for 30 minutes; re-issue well before.
                session.idle_done()
                session.idle_start()
                renew_at = time.monotonic() + account.idle_renew
        session.idle_done()

    def _catch_up(self, session: ImapSession) -> int:
        """Sync, then ask with NOOP whether mail arrived meanwhile, until none did.

        A message that arrives while we sync is announced once, in the answer to whichever command
        comes next; Dovecot does not mention it again in the IDLE that follows. Without the NOOP a
        message landing during a sync (which includes the sink's commit) would wait for the next
        poll. What remains is the moment between the NOOP's answer and IDLE, which
        :meth:`_watch_idle` closes with one more NOOP shortly after.
        """
        imported = self._sync(session)
        while not self._stopping() and session.poll():
            imported += self._sync(session)
        return imported

    def _sync(self, session: ImapSession) -> int:
        folder = session.folder
        cursor = self._sink.load_cursor()
        if cursor is not None and cursor.uidvalidity != folder.uidvalidity:
            return self._resync(session, cursor)
        last_uid = cursor.last_uid if cursor is not None else 0
        uids = session.search_after(last_uid, unread_only=self.account.unread_only)
        imported = 0
        for batch in _batches(uids, self.account.batch_size):
            if self._stopping():
                break
            mails = session.fetch(batch)
            imported += self._store(session, mails, ImapCursor(folder.uidvalidity, batch[-1]))
        if imported:
            self._log("info", "imported", f"{imported} mails imported from {folder.name}")
        return imported

    def _resync(self, session: ImapSession, old: ImapCursor) -> int:
        """Import what the sink does not know after a UIDVALIDITY change (RFC 3501 §2.3.1.1).

        The old UIDs mean nothing any more, so messages are matched by Message-ID: only those whose
        Message-ID the sink has never stored (or that have none) are fetched and imported. Each batch
        commits the new cursor, so an interrupted resynchronisation continues where it stopped.
        """
        folder = session.folder
        self._log(
            "warning",
            "uidvalidity_changed",
            f"UIDVALIDITY of {folder.name} changed from {old.uidvalidity} to {folder.uidvalidity};"
            " matching messages by Message-ID",
        )
        uids = session.search_after(0, unread_only=self.account.unread_only)
        imported = 0
        skipped = 0
        for batch in _batches(uids, self.account.batch_size):
            if self._stopping():
                break
            message_ids = session.fetch_message_ids(batch)
            known = self._sink.known_message_ids([mid for mid in message_ids.values() if mid])
            wanted = [uid for uid in batch if uid in message_ids and message_ids[uid] not in known]
            skipped += len(batch) - len(wanted)
            mails = session.fetch(wanted)
            # The cursor moves over the whole batch, skipped messages included: they are stored.
            imported += self._store(session, mails, ImapCursor(folder.uidvalidity, batch[-1]))
        if not uids:
            # Record the new UIDVALIDITY even for an empty folder, or every sync would resync again.
            self._sink.store([], ImapCursor(folder.uidvalidity, 0))
        self._log("info", "imported", f"{imported} mails imported from {folder.name}; {skipped} already known")
        return imported

    def _stopping(self) -> bool:
        # Every batch commits its cursor, so stopping between two loses nothing.
        return self._stop is not None and self._stop.is_set()

    def _store(self, session: ImapSession, mails: Sequence[FetchedMail], cursor: ImapCursor) -> int:
        for mail in mails:
            if not mail.raw:
                self._log("warning", "empty_body", f"the server returned no content for UID {mail.uid}")
        # The sink commits bytes and cursor together; only after it returned may the server learn
        # that we have the mail (DESIGN §1: nothing is acknowledged that is not stored).
        new = self._sink.store(mails, cursor)
        if self.account.mark_as_read:
            session.mark_seen([mail.uid for mail in mails if SEEN not in mail.flags])
        return new


def _batches(uids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    step = max(1, size)
    for start in range(0, len(uids), step):
        yield uids[start : start + step]


def _folder_state(account: ImapAccount, selected: dict[bytes, Any]) -> FolderState:
    uidvalidity = selected.get(b"UIDVALIDITY")
    if not isinstance(uidvalidity, int):
        # RFC 3501 §6.3.1 makes UIDVALIDITY mandatory; without it no cursor can be trusted.
        raise ProtocolError(PROTOCOL, account.address, f"SELECT {account.folder!r} returned no UIDVALIDITY")
    uidnext = selected.get(b"UIDNEXT")
    exists = selected.get(b"EXISTS")
    return FolderState(
        name=account.folder,
        uidvalidity=uidvalidity,
        exists=exists if isinstance(exists, int) else 0,
        uidnext=uidnext if isinstance(uidnext, int) else None,
    )


def _untagged(response: tuple[Any, ...]) -> _Untagged:
    if response and isinstance(response[0], int):
        keyword = _text(response[1]) if len(response) > 1 else ""
        return _Untagged(response[0], keyword.upper(), " ".join(_text(part) for part in response[2:]))
    keyword = _text(response[0]) if response else ""
    return _Untagged(None, keyword.upper(), " ".join(_text(part) for part in response[1:]))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _readable(sock: Any, timeout: float) -> bool:
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(timeout * 1000))


def _endpoint(account: ImapAccount) -> str:
    return f"{account.host}:{account.port}"


def _close_quietly(client: Any) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone; closing must not fail
        with contextlib.suppress(Exception):
            client.shutdown()


# ── one connection step by step (ImapSession.open, and the probe, which times each step) ────────


def connect(account: ImapAccount) -> Any:
    """An IMAPClient connected to the account's server and secured as configured; not signed in yet."""
    endpoint = _endpoint(account)
    context = client_context(account.validate_certificate) if account.encryption != "none" else None
    with translate_errors(account, endpoint):
        client = IMAPClient(
            account.host,
            account.port,
            ssl=account.encryption == "ssl",
            ssl_context=context,
            timeout=account.timeout,
        )
    try:
        with translate_errors(account, endpoint):
            # IMAPClient turns on imaplib's protocol trace, which costs five times the throughput and
            # would log the SASL response (the password, base64-encoded) at debug level.
            client._imap.debug = 0
            # imaplib writes a SASL response and its CRLF separately; with Nagle's algorithm the
            # second write waits for a delayed ACK, 40 ms on every sign-in and continuation.
            client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Timezone-aware INTERNALDATE values instead of local naive ones.
            client.normalise_times = False
            if account.encryption == "starttls":
                # RFC 3501 §6.2.1: only a server that announces STARTTLS may be asked for it;
                # going on in plain text would send the password unencrypted.
                if not client.has_capability("STARTTLS"):
                    raise TlsError(PROTOCOL, account.address, f"{endpoint} does not offer STARTTLS")
                client.starttls(context)
        return client
    except BaseException:
        _close_quietly(client)
        raise


def sign_in(client: Any, account: ImapAccount, authenticate: ImapAuthenticator = password_login) -> None:
    """Sign in on a connected client; a refusal is an AuthenticationError in the server's words."""
    with translate_errors(account, _endpoint(account)):
        try:
            authenticate(client, account)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as error:
            raise AuthenticationError(PROTOCOL, account.address, server_text(error)) from error


def select_folder(client: Any, account: ImapAccount, *, readonly: bool = False) -> FolderState:
    """SELECT the account's folder, or EXAMINE it with ``readonly`` (RFC 3501 §6.3.2: nothing changes)."""
    with translate_errors(account, _endpoint(account)):
        try:
            selected = client.select_folder(account.folder, readonly=readonly)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as error:
            raise FolderError(PROTOCOL, account.address, f"{account.folder!r}: {server_text(error)}") from error
    return _folder_state(account, selected)


def logout(client: Any) -> None:
    """LOGOUT, waiting at most a moment for a server that is gone; then the socket is closed either way."""
    with contextlib.suppress(Exception):
        client.socket().settimeout(_LOGOUT_TIMEOUT)
    _close_quietly(client)


def server_text(error: BaseException) -> str:
    """The server's words from an IMAPClient/imaplib error, without Python's b'...' wrapping."""
    text = str(error.args[0]) if error.args else str(error)
    match = _BYTES_REPR.match(text)
    return match.group(2) if match else text


@contextlib.contextmanager
def translate_errors(account: ImapAccount, endpoint: str) -> Iterator[None]:
    """Turn IMAPClient, imaplib and socket failures into the ChannelError leaf naming the account."""
    try:
        yield
    except ChannelError:
        raise
    except LoginError as error:
        raise AuthenticationError(PROTOCOL, account.address, server_text(error)) from error
    except IMAPClientAbortError as error:
        raise ConnectError(PROTOCOL, account.address, f"connection to {endpoint} lost: {server_text(error)}") from error
    except IMAPClientError as error:
        raise ProtocolError(PROTOCOL, account.address, server_text(error)) from error
    except OSError as error:
        raise network_error(PROTOCOL, account.address, endpoint, error) from error
