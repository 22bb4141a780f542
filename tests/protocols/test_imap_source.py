"""ImapSource against a real Dovecot: encryption, errors, acknowledgement order, cursor, IDLE, reconnects."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence

import pytest

from postroom.errors import AuthenticationError, ConnectError, FolderError, StoreError, TlsError
from postroom.mail.peek import peek_message_id
from postroom.sources.base import (
    Backoff,
    FetchedMail,
    ImapAccount,
    ImapCursor,
    MailboxLog,
    SourceState,
    run_with_backoff,
)
from postroom.sources.imap import ImapSource
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.memory import MemoryEventLog, MemorySink, StatusRecorder
from support import free_port, running

FAST = Backoff(initial=0.05, cap=0.2)


def source(
    account: ImapAccount,
    sink: MemorySink | None = None,
    events: MemoryEventLog | None = None,
    **options: object,
) -> ImapSource:
    return ImapSource(account, sink or MemorySink(), events or MemoryEventLog(), **options)  # type: ignore[arg-type]


# ── connecting ─────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("encryption", ["ssl", "starttls", "none"])
def test_imports_over_each_encryption(dovecot: DovecotServer, dovecot_user: MailUser, encryption: str) -> None:
    raws = [make_mail(f"mail {n}") for n in range(3)]
    uids = dovecot.append_all(dovecot_user, raws)
    sink = MemorySink()

    # validate_certificate is on (the default): the test CA is trusted through SSL_CERT_FILE.
    imported = source(dovecot.imap_account(dovecot_user, encryption), sink).sync_once()

    assert imported == 3
    assert [m.raw for m in sink.stored] == raws
    assert [m.uid for m in sink.stored] == uids
    assert sink.cursor == ImapCursor(dovecot.uidvalidity(dovecot_user), uids[-1])


@pytest.mark.parametrize("encryption", ["ssl", "starttls"])
def test_untrusted_certificate_is_rejected_when_validating(
    dovecot: DovecotServer, dovecot_user: MailUser, encryption: str
) -> None:
    account = dovecot.imap_account(dovecot_user, encryption, untrusted=True)

    with pytest.raises(TlsError) as caught:
        source(account).check_login()

    assert str(caught.value).startswith(f"IMAP {dovecot_user.address}: TLS failed: certificate")
    assert "self-signed" in caught.value.detail


@pytest.mark.parametrize("encryption", ["ssl", "starttls"])
def test_untrusted_certificate_is_accepted_without_validation(
    dovecot: DovecotServer, dovecot_user: MailUser, encryption: str
) -> None:
    dovecot.append(dovecot_user, make_mail())
    account = dovecot.imap_account(
        dovecot_user,
        encryption,
        untrusted=True,
        validate_certificate=False,
    )

    assert source(account).sync_once() == 1


def test_wrong_password_names_account_and_protocol(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    events = MemoryEventLog()
    account = dovecot.imap_account(dovecot_user, password="not-the-password")

    with pytest.raises(AuthenticationError) as caught:
        source(account, events=events).check_login()

    assert str(caught.value).startswith(f"IMAP {dovecot_user.address}: authentication failed")
    assert "AUTHENTICATIONFAILED" in caught.value.detail
    assert "not-the-password" not in str(caught.value) + events.text()


def test_a_non_ascii_password_signs_in(dovecot: DovecotServer) -> None:
    user = dovecot.add_user(password="Grüße-🔑-пароль")
    dovecot.append(user, make_mail())

    assert source(dovecot.imap_account(user, "starttls")).sync_once() == 1


def test_wrong_port_is_a_connect_error(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    port = free_port()
    account = dovecot.imap_account(dovecot_user, port=port)

    with pytest.raises(ConnectError) as caught:
        source(account).check_login()

    assert str(caught.value) == f"IMAP {dovecot_user.address}: cannot connect: connection to 127.0.0.1:{port} refused"
    assert caught.value.temporary


def test_implicit_tls_on_a_plain_port_is_a_tls_error(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    account = dovecot.imap_account(dovecot_user, "ssl", port=dovecot.ports.imap)

    with pytest.raises(TlsError, match="handshake"):
        source(account).check_login()


def test_a_server_hanging_up_in_the_tls_handshake_is_a_passing_connect_error(
    dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    # A login process killed or a server restarting closes the socket mid-handshake: retried, unlike
    # a handshake the server answers wrongly (the port/encryption mismatch above), which never heals.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def hang_up() -> None:
            connection, _ = listener.accept()
            connection.recv(1024)  # the ClientHello
            connection.close()

        server = threading.Thread(target=hang_up, daemon=True)
        server.start()
        account = dovecot.imap_account(dovecot_user, "ssl", port=port)

        with pytest.raises(ConnectError, match="closed during the TLS handshake") as caught:
            source(account).check_login()
        server.join(5)

    assert caught.value.temporary


def test_unknown_host_is_a_connect_error(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    account = dovecot.imap_account(dovecot_user, host="no-such-host.invalid")

    with pytest.raises(ConnectError, match=r"cannot resolve no-such-host\.invalid"):
        source(account).check_login()


def test_missing_folder_is_a_folder_error(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    account = dovecot.imap_account(dovecot_user, folder="Support/Missing")

    with pytest.raises(FolderError) as caught:
        source(account).check_login()

    assert str(caught.value).startswith(f"IMAP {dovecot_user.address}: folder unavailable: 'Support/Missing'")


def test_reads_the_configured_folder_only(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    dovecot.create_folder(dovecot_user, "Support")
    dovecot.append(dovecot_user, make_mail("in the inbox"))
    dovecot.append(dovecot_user, make_mail("in support"), folder="Support")
    sink = MemorySink()

    source(dovecot.imap_account(dovecot_user, folder="Support"), sink).sync_once()

    assert sink.subjects() == ["in support"]


def test_sign_in_is_logged_without_the_password(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    events = MemoryEventLog()

    source(dovecot.imap_account(dovecot_user), events=events).check_login()

    assert [r.event for r in events.records] == ["connect", "signed_in"]
    assert dovecot_user.name in events.events("signed_in")[0].message
    assert dovecot_user.password not in events.text()


# ── acknowledging only what is stored ──────────────────────────────────────────────────────────


def test_seen_is_set_only_after_the_sink_stored(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    uids = dovecot.append_all(dovecot_user, [make_mail(f"mail {n}") for n in range(3)])
    flags_while_storing: list[dict[int, frozenset[str]]] = []

    def look_at_server(mails: Sequence[FetchedMail], cursor: ImapCursor) -> None:
        flags_while_storing.append(dovecot.flags(dovecot_user))

    sink = MemorySink(before_store=look_at_server)
    source(dovecot.imap_account(dovecot_user), sink).sync_once()

    assert flags_while_storing == [{uid: frozenset() for uid in uids}]
    assert dovecot.flags(dovecot_user) == {uid: {"\\Seen"} for uid in uids}


def test_failed_store_leaves_mail_unseen_and_the_cursor_in_place(
    dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    uids = dovecot.append_all(dovecot_user, [make_mail(f"mail {n}") for n in range(2)])

    def refuse(mails: Sequence[FetchedMail], cursor: ImapCursor) -> None:
        raise StoreError("database is locked")

    sink = MemorySink(before_store=refuse)
    with pytest.raises(StoreError):
        source(dovecot.imap_account(dovecot_user), sink).sync_once()

    assert dovecot.flags(dovecot_user) == {uid: frozenset() for uid in uids}
    assert sink.cursor is None
    # The next attempt, with a working store, gets everything.
    sink.before_store = None
    assert source(dovecot.imap_account(dovecot_user), sink).sync_once() == 2


def test_mark_as_read_off_leaves_flags_alone(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    uids = dovecot.append_all(dovecot_user, [make_mail(f"mail {n}") for n in range(2)])

    source(dovecot.imap_account(dovecot_user, mark_as_read=False)).sync_once()

    assert dovecot.flags(dovecot_user) == {uid: frozenset() for uid in uids}


def test_a_message_read_by_a_person_first_is_still_imported(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    seen_uid = dovecot.append(dovecot_user, make_mail("already read"), flags=["\\Seen"])
    dovecot.append(dovecot_user, make_mail("unread"))
    sink = MemorySink()

    source(dovecot.imap_account(dovecot_user), sink).sync_once()

    assert sink.subjects() == ["already read", "unread"]
    assert sink.stored[0].uid == seen_uid
    assert "\\Seen" in sink.stored[0].flags


def test_unread_only_skips_messages_already_read(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    dovecot.append(dovecot_user, make_mail("already read"), flags=["\\Seen"])
    dovecot.append(dovecot_user, make_mail("unread"))
    sink = MemorySink()

    source(dovecot.imap_account(dovecot_user, unread_only=True, mark_as_read=False), sink).sync_once()
    source(dovecot.imap_account(dovecot_user, unread_only=True, mark_as_read=False), sink).sync_once()

    # Not even the unread one twice: the cursor holds although nothing was marked read.
    assert len(sink.handed) == 1
    assert sink.subjects() == ["unread"]


def test_a_broken_message_is_stored_as_it_came(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    broken = b"this is not\r\na mail at all \xff\xfe\xc3(\r\n\r\n=?bad?=\r\n"
    dovecot.append(dovecot_user, broken)
    dovecot.append(dovecot_user, make_mail("after it"))
    sink = MemorySink()

    assert source(dovecot.imap_account(dovecot_user), sink).sync_once() == 2

    assert sink.stored[0].raw == broken


# ── the cursor ─────────────────────────────────────────────────────────────────────────────────


def test_cursor_means_nothing_is_fetched_twice_across_restarts(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    sink = MemorySink()
    account = dovecot.imap_account(dovecot_user, mark_as_read=False)
    dovecot.append_all(dovecot_user, [make_mail(f"first {n}") for n in range(2)])
    source(account, sink).sync_once()
    last = dovecot.append(dovecot_user, make_mail("second"))

    # A new source, as after a process restart: only the sink's cursor connects the two.
    assert source(account, sink).sync_once() == 1
    assert source(account, sink).sync_once() == 0

    assert len(sink.handed) == 3
    assert sink.cursor is not None and sink.cursor.last_uid == last


def test_batches_commit_the_cursor_as_they_go(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    uids = dovecot.append_all(dovecot_user, [make_mail(f"mail {n}") for n in range(5)])
    cursors: list[int] = []

    def note(mails: Sequence[FetchedMail], cursor: ImapCursor) -> None:
        cursors.append(cursor.last_uid)
        assert [m.uid for m in mails] == [u for u in uids if u <= cursor.last_uid][-len(mails) :]

    sink = MemorySink(before_store=note)
    source(dovecot.imap_account(dovecot_user, batch_size=2), sink).sync_once()

    assert cursors == [uids[1], uids[3], uids[4]]
    assert len(sink.stored) == 5


def test_uidvalidity_change_imports_nothing_twice(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    sink = MemorySink()
    events = MemoryEventLog()
    account = dovecot.imap_account(dovecot_user, mark_as_read=False, batch_size=2)
    dovecot.append_all(dovecot_user, [make_mail(f"before {n}") for n in range(3)])
    source(account, sink).sync_once()

    new_validity = dovecot.change_uidvalidity(dovecot_user)
    dovecot.append_all(dovecot_user, [make_mail(f"after {n}") for n in range(2)])
    imported = source(account, sink, events).sync_once()

    assert imported == 2
    assert [_subject_of(m) for m in sink.handed] == ["before 0", "before 1", "before 2", "after 0", "after 1"]
    assert sink.cursor is not None and sink.cursor.uidvalidity == new_validity
    assert events.events("uidvalidity_changed")
    # Settled: the next sync under the new UIDVALIDITY finds nothing.
    assert source(account, sink).sync_once() == 0
    assert len(sink.handed) == 5


def test_uidvalidity_change_hands_over_mail_without_message_id_again(
    dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    sink = MemorySink()
    account = dovecot.imap_account(dovecot_user, mark_as_read=False)
    dovecot.append(dovecot_user, make_mail("no id", with_message_id=False))
    source(account, sink).sync_once()
    dovecot.change_uidvalidity(dovecot_user)

    source(account, sink).sync_once()

    # Without a Message-ID nothing tells it apart from new mail; the raw store's hash dedupe keeps
    # it single (DESIGN §1), which the MemorySink imitates.
    assert len(sink.handed) == 2
    assert len(sink.stored) == 1


def test_uidvalidity_change_of_an_empty_folder_is_recorded(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    # The folder was emptied and recreated since the last import under an older UIDVALIDITY.
    current = dovecot.uidvalidity(dovecot_user)
    sink = MemorySink(cursor=ImapCursor(current - 1, 7))

    assert source(dovecot.imap_account(dovecot_user), sink).sync_once() == 0

    assert sink.cursor == ImapCursor(current, 0)


# ── running: IDLE, polling, stop, reconnect ────────────────────────────────────────────────────


def test_append_during_run_is_stored_within_two_seconds(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    sink, status = MemorySink(), StatusRecorder()
    src = source(dovecot.imap_account(dovecot_user), sink, on_status=status)

    with running(src):
        status.wait_for(SourceState.RUNNING)
        appended = time.monotonic()
        dovecot.append(dovecot_user, make_mail("while idling"))
        sink.wait_for(1, timeout=2.0)
        elapsed = time.monotonic() - appended

    assert sink.subjects() == ["while idling"]
    # Dovecot batches inotify events for 0.5 s before it announces them; the rest is ours.
    assert elapsed < 1.5
    assert dovecot.flags(dovecot_user) == {sink.stored[0].uid: {"\\Seen"}}


def test_mail_arriving_during_a_sync_is_not_left_for_the_next_poll(
    dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    # The server announces a message once, here in the answer to the sync's own commands; the IDLE
    # that follows stays silent about it. A 30 s poll would be the only other way to find it.
    dovecot.append(dovecot_user, make_mail("first"))
    arrived_during_store: list[int] = []

    def deliver_another(mails: Sequence[FetchedMail], cursor: ImapCursor) -> None:
        if not arrived_during_store:
            arrived_during_store.append(dovecot.append(dovecot_user, make_mail("during the store")))

    sink = MemorySink(before_store=deliver_another)
    src = source(dovecot.imap_account(dovecot_user, check_interval=30.0), sink)

    with running(src):
        sink.wait_for(2, timeout=2.0)

    assert sink.subjects() == ["first", "during the store"]


def test_stop_is_prompt_and_reported(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    status = StatusRecorder()
    events = MemoryEventLog()
    stop = threading.Event()
    src = source(dovecot.imap_account(dovecot_user), events=events, on_status=status)
    thread = threading.Thread(target=src.run, args=(stop,))
    thread.start()
    status.wait_for(SourceState.RUNNING)

    asked = time.monotonic()
    stop.set()
    thread.join(3)

    assert not thread.is_alive()
    assert time.monotonic() - asked < 1.0
    assert status.states() == [SourceState.CONNECTING, SourceState.RUNNING, SourceState.STOPPED]
    assert events.records[-1].event == "stopped"


def test_polls_when_the_server_offers_no_idle(dovecot: DovecotServer) -> None:
    user = dovecot.add_user(settings={"imap_capability": "IMAP4rev1"})
    sink, status, events = MemorySink(), StatusRecorder(), MemoryEventLog()
    src = source(dovecot.imap_account(user, check_interval=0.2), sink, events, on_status=status)

    with running(src):
        status.wait_for(SourceState.RUNNING)
        dovecot.append(user, make_mail("polled"))
        sink.wait_for(1, timeout=2.0)

    assert "polling" in events.events("signed_in")[0].message
    assert sink.subjects() == ["polled"]


def test_reconnects_after_the_server_drops_the_session(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    sink, status, events = MemorySink(), StatusRecorder(), MemoryEventLog()
    account = dovecot.imap_account(dovecot_user)
    src = source(account, sink, events, on_status=status, backoff=FAST)

    with running(src):
        status.wait_for(SourceState.RUNNING)
        dovecot.kick(dovecot_user)
        retrying = status.wait_for(SourceState.RETRYING)
        status.wait_for(SourceState.RUNNING, after=len(status.statuses) - 1)
        dovecot.append(dovecot_user, make_mail("after the drop"))
        sink.wait_for(1, timeout=2.0)

    assert isinstance(retrying.error, ConnectError)
    assert retrying.failures == 1
    assert retrying.retry_in is not None and retrying.retry_in <= FAST.cap
    assert [r.event for r in events.events("error")] == ["error"]
    # QA: in a connection of two mailboxes "connecting to …", "1 mails imported from INBOX" and
    # "reconnecting in 0.7 s" did not say which. Every line names the mailbox, once, as errors do.
    prefix = f"IMAP {account.address}: "
    assert {r.event for r in events.records} >= {"connect", "signed_in", "error", "retry", "imported", "stopped"}
    assert all(r.message.startswith(prefix) for r in events.records), [r.message for r in events.records]
    assert not any(r.message.count(account.address) > 1 for r in events.records if r.event != "signed_in")
    assert events.events("connect")[0].message.startswith(f"{prefix}connecting to {account.host}:{account.port}")
    assert events.events("retry")[0].message.startswith(f"{prefix}reconnecting in ")
    assert events.events("imported")[0].message == f"{prefix}1 mails imported from INBOX"


def test_a_mailbox_log_names_the_mailbox_once() -> None:
    events = MemoryEventLog()
    named = MailboxLog(events, "imap", "support@company.example")  # type: ignore[arg-type]
    named("info", "connect", "connecting to imap.company.example:993 (encryption ssl)")
    named("error", "error", str(ConnectError("imap", "support@company.example", "dropped")))
    named("error", "error", "OAuth2 support@company.example: re-authorisation required: invalid_grant")
    assert [r.message for r in events.records] == [
        "IMAP support@company.example: connecting to imap.company.example:993 (encryption ssl)",
        "IMAP support@company.example: cannot connect: dropped",
        "OAuth2 support@company.example: re-authorisation required: invalid_grant",
    ]


def test_uidvalidity_change_while_running_imports_nothing_twice(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    sink, status = MemorySink(), StatusRecorder()
    dovecot.append(dovecot_user, make_mail("before"))
    src = source(dovecot.imap_account(dovecot_user), sink, on_status=status, backoff=FAST)

    with running(src):
        sink.wait_for(1)
        status.wait_for(SourceState.RUNNING)
        dovecot.change_uidvalidity(dovecot_user)
        dovecot.append(dovecot_user, make_mail("after"))
        sink.wait_for(2, timeout=3.0)
        # Give a wrongly repeated import the time to happen.
        time.sleep(0.3)

    assert [_subject_of(m) for m in sink.handed] == ["before", "after"]


def test_server_down_is_retried_with_backoff_and_recovers(make_dovecot: Callable[[], DovecotServer]) -> None:
    private = make_dovecot()
    user = private.add_user()
    sink, status = MemorySink(), StatusRecorder()
    src = source(private.imap_account(user), sink, on_status=status, backoff=FAST)

    with running(src):
        status.wait_for(SourceState.RUNNING)
        private.stop()
        third = status.wait_for(SourceState.RETRYING, where=lambda s: s.failures >= 3)
        private.start()
        status.wait_for(SourceState.RUNNING, after=len(status.statuses) - 1, timeout=3.0)
        private.append(user, make_mail("back again"))
        sink.wait_for(1, timeout=2.0)

    assert isinstance(third.error, ConnectError)
    failures = [s.failures for s in status.statuses if s.state is SourceState.RETRYING]
    assert failures[:3] == [1, 2, 3]


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, cap=300.0)

    assert [backoff.delay(n, rand=lambda: 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert [backoff.delay(n, rand=lambda: 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff.delay(10_000, rand=lambda: 1.0) == 300.0


def test_a_session_that_stays_up_ends_a_run_of_failures() -> None:
    # The reconnect loop both sources share, driven by scripted sessions instead of a server: whether
    # each reaches running(), and how long it then stays up before it drops (the last one is stopped).
    stop = threading.Event()
    status, events = StatusRecorder(), MemoryEventLog()
    script = [(False, 0.0), (True, 0.0), (True, 0.08), (True, 0.08)]

    def session(running: Callable[[], None]) -> None:
        reaches_running, stays_up = script.pop(0)
        if reaches_running:
            running()
            time.sleep(stays_up)
        if not script:
            stop.set()
            return
        raise ConnectError("imap", "support@company.example", "dropped")

    quick = Backoff(initial=0.001, cap=0.001)
    run_with_backoff(session, stop, log=events, on_status=status, backoff=quick, stable_after=0.05, stopped="done")

    connecting, running_, retrying, stopped = (
        SourceState.CONNECTING,
        SourceState.RUNNING,
        SourceState.RETRYING,
        SourceState.STOPPED,
    )
    assert [(s.state, s.failures) for s in status.statuses] == [
        (connecting, 0),
        (retrying, 1),
        (connecting, 1),
        (running_, 0),
        (retrying, 2),  # up too briefly: the run of failures goes on
        (connecting, 2),
        (running_, 0),
        (retrying, 1),  # stayed up for stable_after: a new run begins
        (connecting, 1),
        (running_, 0),
        (stopped, 0),
    ]
    assert [r.event for r in events.records].count("retry") == 3
    assert (events.records[-1].event, events.records[-1].message) == ("stopped", "done")


def test_a_bug_in_a_session_propagates_after_stopped_is_reported() -> None:
    status = StatusRecorder()

    def session(running: Callable[[], None]) -> None:
        raise RuntimeError("a bug, not a server problem")

    with pytest.raises(RuntimeError):
        run_with_backoff(
            session, threading.Event(), log=MemoryEventLog(), on_status=status, backoff=FAST, stable_after=0, stopped=""
        )

    assert status.states() == [SourceState.CONNECTING, SourceState.STOPPED]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"Message-ID: <abc@example.com>\r\n\r\n", "abc@example.com"),
        (b"Message-Id:\r\n <folded@example.com>\r\n\r\n", "folded@example.com"),
        (b"Message-ID: no-brackets@example.com\r\n\r\n", "no-brackets@example.com"),
        (b"Subject: none\r\n\r\n", None),
        (b"Message-ID: <>\r\n\r\n", None),
    ],
)
def test_peek_message_id(header: bytes, expected: str | None) -> None:
    assert peek_message_id(header) == expected


def _subject_of(mail: FetchedMail) -> str:
    for line in mail.raw.splitlines():
        if line.startswith(b"Subject: "):
            return line[9:].decode()
    return ""


def test_an_outage_after_a_long_idle_starts_again_at_the_first_delay(
    make_dovecot: Callable[[], DovecotServer],
) -> None:
    # Failures before a session that then stayed signed in (IDLE) must not lengthen the wait of a later outage.
    private = make_dovecot()
    user = private.add_user()
    sink, status = MemorySink(), StatusRecorder()
    slow = Backoff(initial=0.05, cap=30.0)
    src = source(private.imap_account(user), sink, on_status=status, backoff=slow, stable_after=0.5)

    private.stop()
    with running(src):
        status.wait_for(SourceState.RETRYING, where=lambda s: s.failures >= 4, timeout=5.0)
        private.start()
        status.wait_for(SourceState.RUNNING, timeout=10.0)
        time.sleep(0.8)  # a long IDLE, as far as stable_after is concerned
        mark = len(status.statuses)
        private.stop()
        after = status.wait_for(SourceState.RETRYING, after=mark, timeout=5.0)

    assert after.failures == 1
    assert after.retry_in is not None and after.retry_in <= slow.initial
