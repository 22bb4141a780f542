"""Pop3Source against a real Dovecot: encryption, errors, UIDL cursor, delete-after-store, polling, reconnects.

Two peers are not Dovecot as the shared fixture runs it: a Dovecot of the test's own with an OAuth2
passdb (its token introspection answered by :class:`~postroom.testing.oauth.OAuthTestServer`) for
XOAUTH2, and a scripted POP3 server for what no Dovecot does (no UIDL, a locked maildrop).
"""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from postroom.errors import AuthenticationError, ConnectError, ProtocolError, StoreError, TlsError
from postroom.sources.base import Backoff, SourceState
from postroom.sources.pop3 import Pop3Account, Pop3Encryption, Pop3Source, content_uidl, xoauth2_login
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.memory import MemoryEventLog, StatusRecorder
from postroom.testing.oauth import OAuthTestServer
from support import free_port, running, wait_until

FAST = Backoff(initial=0.05, cap=0.2)

StoreHook = Callable[[Sequence[tuple[str, bytes]]], None]


class MemoryPop3Sink:
    """A Pop3Sink in memory, keyed by unique-id like the raw store; records every hand-over.

    ``before_store`` runs before the commit (raise to make it fail), ``after_store`` after it.
    """

    def __init__(self, *, before_store: StoreHook | None = None, after_store: StoreHook | None = None) -> None:
        self.before_store = before_store
        self.after_store = after_store
        self.handed: list[tuple[str, bytes]] = []
        self.stored: dict[str, bytes] = {}
        self.batches: list[int] = []
        self.lookups = 0  # calls of stored_uidls: one per check of a server with UIDL
        self._changed = threading.Condition()

    def stored_uidls(self, uidls: Sequence[str]) -> set[str]:
        with self._changed:
            self.lookups += 1
            return {uidl for uidl in uidls if uidl in self.stored}

    def store_pop3(self, mails: Sequence[tuple[str, bytes]]) -> int:
        if self.before_store is not None:
            self.before_store(mails)
        with self._changed:
            self.batches.append(len(mails))
            new = 0
            for uidl, raw in mails:
                self.handed.append((uidl, raw))
                if uidl not in self.stored:
                    self.stored[uidl] = raw
                    new += 1
            self._changed.notify_all()
        if self.after_store is not None:
            self.after_store(mails)
        return new

    def raws(self) -> list[bytes]:
        with self._changed:
            return list(self.stored.values())

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.stored) >= count, timeout):
                raise TimeoutError(f"expected {count} stored mails within {timeout} s, got {len(self.stored)}")


def source(
    account: Pop3Account,
    sink: MemoryPop3Sink | None = None,
    events: MemoryEventLog | None = None,
    **options: Any,
) -> Pop3Source:
    return Pop3Source(account, sink or MemoryPop3Sink(), events or MemoryEventLog(), **options)


def on_server(dovecot: DovecotServer, user: MailUser) -> int:
    """How many messages the user's Maildir holds (new and cur), read from the disk, not over POP3."""
    maildir = dovecot.maildir(user)
    return sum(
        1 for sub in ("new", "cur") if (maildir / sub).is_dir() for f in (maildir / sub).iterdir() if f.is_file()
    )


# ── connecting ─────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("encryption", ["ssl", "starttls", "none"])
def test_imports_over_each_encryption(
    dovecot: DovecotServer, dovecot_user: MailUser, encryption: Pop3Encryption
) -> None:
    raws = [make_mail(f"mail {n}") for n in range(3)]
    dovecot.append_all(dovecot_user, raws)
    sink = MemoryPop3Sink()

    # validate_certificate is on (the default): the test CA is trusted through SSL_CERT_FILE.
    imported = source(dovecot.pop3_account(dovecot_user, encryption), sink).sync_once()

    assert imported == 3
    assert sink.raws() == raws
    # Dovecot's unique-ids, not the content hash of the fallback.
    assert not any(uidl.startswith("sha256:") for uidl in sink.stored)
    # Nothing is deleted unless asked.
    assert on_server(dovecot, dovecot_user) == 3


@pytest.mark.parametrize("encryption", ["ssl", "starttls"])
def test_untrusted_certificate_is_rejected_when_validating(
    dovecot: DovecotServer, dovecot_user: MailUser, encryption: Pop3Encryption
) -> None:
    account = dovecot.pop3_account(dovecot_user, encryption, untrusted=True)

    with pytest.raises(TlsError) as caught:
        source(account).check_login()

    assert str(caught.value).startswith(f"POP3 {dovecot_user.address}: TLS failed: certificate")
    assert "self-signed" in caught.value.detail


@pytest.mark.parametrize("encryption", ["ssl", "starttls"])
def test_untrusted_certificate_is_accepted_without_validation(
    dovecot: DovecotServer, dovecot_user: MailUser, encryption: Pop3Encryption
) -> None:
    dovecot.append(dovecot_user, make_mail())
    account = dovecot.pop3_account(dovecot_user, encryption, untrusted=True, validate_certificate=False)

    assert source(account).sync_once() == 1


def test_wrong_password_names_account_and_protocol(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    events = MemoryEventLog()
    account = dovecot.pop3_account(dovecot_user, password="not-the-password")

    with pytest.raises(AuthenticationError) as caught:
        source(account, events=events).check_login()

    assert str(caught.value).startswith(f"POP3 {dovecot_user.address}: authentication failed: -ERR [AUTH]")
    assert not caught.value.temporary
    assert "not-the-password" not in str(caught.value) + events.text()


def test_a_non_ascii_password_signs_in(dovecot: DovecotServer) -> None:
    user = dovecot.add_user(password="Grüße-🔑-пароль")
    dovecot.append(user, make_mail())

    assert source(dovecot.pop3_account(user, "starttls")).sync_once() == 1


def test_a_line_break_in_the_password_is_never_sent(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    account = dovecot.pop3_account(dovecot_user, password="pw\r\nDELE 1")

    with pytest.raises(AuthenticationError, match="line break"):
        source(account).check_login()


def test_refused_port_is_a_connect_error(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    port = free_port()
    account = dovecot.pop3_account(dovecot_user, port=port)

    with pytest.raises(ConnectError) as caught:
        source(account).check_login()

    assert str(caught.value) == f"POP3 {dovecot_user.address}: cannot connect: connection to 127.0.0.1:{port} refused"
    assert caught.value.temporary


def test_unknown_host_is_a_connect_error(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    account = dovecot.pop3_account(dovecot_user, host="no-such-host.invalid")

    with pytest.raises(ConnectError, match=r"cannot resolve no-such-host\.invalid"):
        source(account).check_login()


def test_implicit_tls_on_a_plain_port_is_a_tls_error(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    account = dovecot.pop3_account(dovecot_user, "ssl", port=dovecot.ports.pop3)

    with pytest.raises(TlsError, match="handshake"):
        source(account).check_login()


def test_sign_in_is_logged_without_the_password(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    events = MemoryEventLog()

    source(dovecot.pop3_account(dovecot_user), events=events).check_login()

    assert [r.event for r in events.records] == ["connect", "signed_in"]
    assert dovecot_user.name in events.events("signed_in")[0].message
    assert dovecot_user.password not in events.text()


# ── the UIDL cursor ────────────────────────────────────────────────────────────────────────────


def test_nothing_is_imported_twice_across_syncs_and_reconnects(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    sink = MemoryPop3Sink()
    account = dovecot.pop3_account(dovecot_user)
    dovecot.append_all(dovecot_user, [make_mail(f"first {n}") for n in range(2)])
    src = source(account, sink)

    assert src.sync_once() == 2
    assert src.sync_once() == 0
    dovecot.append(dovecot_user, make_mail("second"))
    # A new source, as after a process restart: only the sink's unique-ids connect the two.
    assert source(account, sink).sync_once() == 1
    assert source(account, sink).sync_once() == 0

    # Known messages are not even retrieved again.
    assert len(sink.handed) == 3
    assert on_server(dovecot, dovecot_user) == 3


def test_batches_are_stored_as_they_go(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    dovecot.append_all(dovecot_user, [make_mail(f"mail {n}") for n in range(5)])
    sink = MemoryPop3Sink()

    assert source(dovecot.pop3_account(dovecot_user, batch_size=2), sink).sync_once() == 5

    assert sink.batches == [2, 2, 1]


def test_mail_is_stored_byte_for_byte(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    # Lines starting with "." are byte-stuffed on the wire (RFC 1939 §3); a line far over poplib's
    # 2048-octet limit must not stop the mailbox; broken bytes are stored as they came.
    long_line = b"x" * 10_000
    raw = (
        b"From: ada@customer.example\r\nSubject: dots\r\nMessage-ID: <dots@customer.example>\r\n\r\n"
        b".leading dot\r\n..two dots\r\n.\r\n" + long_line + b"\r\n\xff\xfe broken\r\nend\r\n"
    )
    dovecot.append(dovecot_user, raw)
    sink = MemoryPop3Sink()

    source(dovecot.pop3_account(dovecot_user), sink).sync_once()

    assert sink.raws() == [raw]


# ── deleting only what is stored, and only when asked ──────────────────────────────────────────


def test_delete_after_import_deletes_only_after_the_sink_stored(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    dovecot.append_all(dovecot_user, [make_mail(f"mail {n}") for n in range(3)])
    on_server_while_storing: list[int] = []
    sink = MemoryPop3Sink(before_store=lambda mails: on_server_while_storing.append(on_server(dovecot, dovecot_user)))
    events = MemoryEventLog()

    imported = source(
        dovecot.pop3_account(dovecot_user, delete_after_import=True, batch_size=2), sink, events
    ).sync_once()

    assert imported == 3
    # Every batch was committed while the server still held every message.
    assert on_server_while_storing == [3, 3]
    assert on_server(dovecot, dovecot_user) == 0
    named = f"POP3 {dovecot.pop3_account(dovecot_user).address}:"
    assert [r.message for r in events.events("deleted")] == [f"{named} 3 mails deleted from the server"]
    assert [r.message for r in events.events("imported")] == [f"{named} 3 mails imported"]


def test_a_failed_store_deletes_nothing(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    dovecot.append_all(dovecot_user, [make_mail(f"mail {n}") for n in range(2)])

    def refuse(mails: Sequence[tuple[str, bytes]]) -> None:
        raise StoreError("database is locked")

    sink = MemoryPop3Sink(before_store=refuse)
    account = dovecot.pop3_account(dovecot_user, delete_after_import=True)
    with pytest.raises(StoreError):
        source(account, sink).sync_once()

    assert on_server(dovecot, dovecot_user) == 2
    # The next attempt, with a working store, gets everything and then deletes it.
    sink.before_store = None
    assert source(account, sink).sync_once() == 2
    assert on_server(dovecot, dovecot_user) == 0


def test_a_session_lost_between_store_and_quit_imports_nothing_twice(
    dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    dovecot.append_all(dovecot_user, [make_mail(f"mail {n}") for n in range(2)])

    def drop_the_session(mails: Sequence[tuple[str, bytes]]) -> None:
        dovecot.kick(dovecot_user)

    sink = MemoryPop3Sink(after_store=drop_the_session)
    account = dovecot.pop3_account(dovecot_user, delete_after_import=True)
    # Dovecot says "-ERR [SYS/TEMP] Server shutting down." and closes; either way, a temporary error.
    with pytest.raises((ConnectError, ProtocolError)) as caught:
        source(account, sink).sync_once()
    assert caught.value.temporary
    # The DELEs never reached a QUIT: the server still holds the stored mails (RFC 1939 §6).
    assert on_server(dovecot, dovecot_user) == 2

    sink.after_store = None
    events = MemoryEventLog()
    assert source(account, sink, events).sync_once() == 0

    assert len(sink.handed) == 2
    assert on_server(dovecot, dovecot_user) == 0
    assert [r.message for r in events.events("deleted")] == [f"POP3 {account.address}: 2 mails deleted from the server"]


# ── running: polling, stop, reconnect ──────────────────────────────────────────────────────────


def test_run_picks_up_new_mail_within_the_check_interval(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    sink, status, events = MemoryPop3Sink(), StatusRecorder(), MemoryEventLog()
    src = source(dovecot.pop3_account(dovecot_user, check_interval=0.3), sink, events, on_status=status)

    with running(src):
        status.wait_for(SourceState.RUNNING)
        appended = time.monotonic()
        dovecot.append(dovecot_user, make_mail("while polling"))
        sink.wait_for(1, timeout=2.0)
        elapsed = time.monotonic() - appended
        # A few more checks, to see what routine checks log.
        checks = sink.lookups
        wait_until(lambda: sink.lookups >= checks + 2)

    assert elapsed < 0.3 + 0.5
    assert len(sink.handed) == 1
    # Routine checks log what they did, not a sign-in every few seconds.
    assert len(events.events("connect")) == 1
    named = f"POP3 {dovecot.pop3_account(dovecot_user).address}:"
    assert [r.message for r in events.events("imported")] == [f"{named} 1 mails imported"]
    # Every line names the mailbox (QA: a connection of two mailboxes could not tell them apart).
    assert all(r.message.startswith(f"{named} ") for r in events.records), [r.message for r in events.records]
    assert events.events("connect")[0].message.startswith(f"{named} connecting to ")


def test_stop_is_prompt_and_reported(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    status, events = StatusRecorder(), MemoryEventLog()
    stop = threading.Event()
    src = source(dovecot.pop3_account(dovecot_user), events=events, on_status=status)
    thread = threading.Thread(target=src.run, args=(stop,))
    thread.start()
    status.wait_for(SourceState.RUNNING)

    asked = time.monotonic()
    stop.set()
    thread.join(3)

    assert not thread.is_alive()
    assert time.monotonic() - asked < 0.5
    assert status.states() == [SourceState.CONNECTING, SourceState.RUNNING, SourceState.STOPPED]
    assert events.records[-1].event == "stopped"


def test_server_down_is_retried_with_backoff_and_recovers(make_dovecot: Callable[[], DovecotServer]) -> None:
    private = make_dovecot()
    user = private.add_user()
    sink, status, events = MemoryPop3Sink(), StatusRecorder(), MemoryEventLog()
    src = source(private.pop3_account(user, check_interval=0.1), sink, events, on_status=status, backoff=FAST)

    with running(src):
        status.wait_for(SourceState.RUNNING)
        private.stop()
        third = status.wait_for(SourceState.RETRYING, where=lambda s: s.failures >= 3)
        private.start()
        status.wait_for(SourceState.RUNNING, after=len(status.statuses) - 1, timeout=3.0)
        private.append(user, make_mail("back again"))
        sink.wait_for(1, timeout=2.0)

    assert isinstance(third.error, ConnectError)
    assert str(third.error).startswith(f"POP3 {user.address}: cannot connect")
    failures = [s.failures for s in status.statuses if s.state is SourceState.RETRYING]
    assert failures[:3] == [1, 2, 3]
    # The recovery is logged with a sign-in, so the log shows when the server came back.
    assert len(events.events("signed_in")) == 2


def test_a_wrong_password_while_running_is_reported_as_permanent(
    dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    status = StatusRecorder()
    src = source(dovecot.pop3_account(dovecot_user, password="wrong"), on_status=status, backoff=FAST)

    with running(src):
        retrying = status.wait_for(SourceState.RETRYING)

    assert isinstance(retrying.error, AuthenticationError)
    assert not retrying.error.temporary


# ── XOAUTH2 (RFC 5034 SASL) against Dovecot's OAuth2 passdb ───────────────────────────────────


@pytest.mark.parametrize("token_bytes", [15, 900], ids=["initial-response", "after-challenge"])
def test_xoauth2_signs_in_with_the_current_token(
    oauth_dovecot: DovecotServer, provider: OAuthTestServer, token_bytes: int
) -> None:
    user = oauth_dovecot.add_user()
    oauth_dovecot.append(user, make_mail("over oauth"))
    # About 20 characters, or 1200: longer than RFC 5034's 255-octet command line, the token must
    # follow the server's challenge.
    provider.token_bytes = token_bytes
    token = provider.issue_access_token(user.name)
    asked: list[str] = []

    def current_token() -> str:
        asked.append("token")
        return token

    account = oauth_dovecot.pop3_account(user, password="")
    sink = MemoryPop3Sink()

    assert source(account, sink, authenticate=xoauth2_login(current_token)).sync_once() == 1
    assert asked == ["token"]


def test_xoauth2_refused_token_is_an_authentication_error(oauth_dovecot: DovecotServer) -> None:
    user = oauth_dovecot.add_user()
    events = MemoryEventLog()
    account = oauth_dovecot.pop3_account(user, password="")

    with pytest.raises(AuthenticationError) as caught:
        source(account, events=events, authenticate=xoauth2_login(lambda: "revoked-token")).check_login()

    assert str(caught.value).startswith(f"POP3 {user.address}: authentication failed")
    assert "revoked-token" not in str(caught.value) + events.text()


# ── servers Dovecot cannot imitate: no UIDL, a locked maildrop ─────────────────────────────────


class ScriptedPop3(socketserver.ThreadingTCPServer):
    """A minimal POP3 server (RFC 1939) on loopback: USER/PASS, STAT, RETR, DELE, QUIT; UIDL refused.

    ``pass_reply`` is the answer to PASS; deletions are applied at QUIT, as RFC 1939 §6 requires.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, messages: list[bytes], pass_reply: bytes = b"+OK signed in") -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedSession)
        self.messages = messages
        self.pass_reply = pass_reply
        self.commands: list[str] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _ScriptedSession(socketserver.StreamRequestHandler):
    server: ScriptedPop3

    def handle(self) -> None:
        deleted: set[int] = set()
        self.wfile.write(b"+OK scripted POP3 ready\r\n")
        for line in self.rfile:
            command, _, argument = line.decode().strip().partition(" ")
            self.server.commands.append(command.upper())
            messages = self.server.messages
            if command.upper() == "USER":
                self.wfile.write(b"+OK\r\n")
            elif command.upper() == "PASS":
                self.wfile.write(self.server.pass_reply + b"\r\n")
                if self.server.pass_reply.startswith(b"-"):
                    return
            elif command.upper() == "STAT":
                self.wfile.write(b"+OK %d %d\r\n" % (len(messages), sum(len(m) for m in messages)))
            elif command.upper() == "RETR":
                raw = messages[int(argument) - 1]
                stuffed = b"".join(b"." + ln if ln.startswith(b".") else ln for ln in raw.splitlines(keepends=True))
                self.wfile.write(b"+OK\r\n" + stuffed + b".\r\n")
            elif command.upper() == "DELE":
                deleted.add(int(argument))
                self.wfile.write(b"+OK\r\n")
            elif command.upper() == "QUIT":
                self.server.messages = [m for n, m in enumerate(messages, 1) if n not in deleted]
                self.wfile.write(b"+OK bye\r\n")
                return
            else:
                self.wfile.write(b"-ERR unknown command\r\n")


@contextmanager
def scripted(messages: list[bytes], **options: Any) -> Iterator[ScriptedPop3]:
    server = ScriptedPop3(messages, **options)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def scripted_account(server: ScriptedPop3, **changes: Any) -> Pop3Account:
    account = Pop3Account(
        address="old@pop.example", host="127.0.0.1", port=server.port, encryption="none", password="pw"
    )
    return replace(account, **changes)


def test_without_uidl_messages_are_told_apart_by_their_content() -> None:
    raws = [make_mail("one"), make_mail("two")]
    with scripted(list(raws)) as server:
        sink, events = MemoryPop3Sink(), MemoryEventLog()
        account = scripted_account(server)

        assert source(account, sink, events).sync_once() == 2
        server.messages.append(make_mail("three"))
        assert source(account, sink).sync_once() == 1

    assert "UIDL" in server.commands
    assert sink.stored == {content_uidl(raw): raw for raw in [*raws, server.messages[2]]}
    assert events.events("no_uidl")


def test_without_uidl_delete_after_import_empties_the_maildrop() -> None:
    with scripted([make_mail("one"), make_mail("two")]) as server:
        sink = MemoryPop3Sink()

        assert source(scripted_account(server, delete_after_import=True), sink).sync_once() == 2

    assert server.messages == []
    assert len(sink.stored) == 2


def test_a_locked_maildrop_is_temporary_not_a_wrong_password() -> None:
    # RFC 2449 §8.1.1: another session (a mail client left open) holds the maildrop.
    with (
        scripted([], pass_reply=b"-ERR [IN-USE] maildrop is locked") as server,
        pytest.raises(ProtocolError) as caught,
    ):
        source(scripted_account(server)).check_login()

    assert caught.value.temporary
    assert str(caught.value) == "POP3 old@pop.example: protocol error: -ERR [IN-USE] maildrop is locked"
