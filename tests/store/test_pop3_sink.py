"""MailboxSink's POP3 side on SQLite and PostgreSQL: unique-ids as dedupe keys, and a real Dovecot end to end."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from postroom.channels.sink import LOOKUP_CHUNK, MailboxSink
from postroom.helpdesk.connections import ConnectionInput, ConnectionService
from postroom.sources.pop3 import Pop3Account, Pop3Source
from postroom.store.db import Database
from postroom.store.models import Mailbox, RawBody, RawMessage, RawStatus
from postroom.store.secretbox import SecretBox
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.memory import MemoryEventLog


def mailbox_of(db: Database, connection_id: int) -> int:
    with db.read() as session:
        return int(session.scalars(select(Mailbox.id).where(Mailbox.connection_id == connection_id)).one())


def make_sink(db: Database, connection_id: int, woken: list[int] | None = None) -> MailboxSink:
    calls = woken if woken is not None else []
    return MailboxSink(db, connection_id, mailbox_of(db, connection_id), calls.append)


def raw_rows(db: Database) -> list[tuple[str, str, str | None, int, RawStatus, bytes]]:
    with db.read() as session:
        rows = session.execute(
            select(
                RawMessage.dedupe_key,
                RawMessage.origin,
                RawMessage.header_message_id,
                RawMessage.size,
                RawMessage.status,
                RawBody.data,
            )
            .join(RawBody, RawBody.raw_id == RawMessage.id)
            .order_by(RawMessage.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_store_pop3_commits_new_mail_under_its_unique_id(db: Database, connection_id: int) -> None:
    woken: list[int] = []
    sink = make_sink(db, connection_id, woken)
    with_id = make_mail("with id", message_id="one@customer.example")
    without_id = make_mail("without id", with_message_id=False)

    assert sink.store_pop3([("UID-1", with_id), ("UID-2", without_id)]) == 2

    assert raw_rows(db) == [
        ("pop3:UID-1", "pop3", "one@customer.example", len(with_id), RawStatus.PENDING, with_id),
        ("pop3:UID-2", "pop3", None, len(without_id), RawStatus.PENDING, without_id),
    ]
    # The pipeline is woken once per commit, with the number of new mails.
    assert woken == [2]


def test_store_pop3_skips_what_is_stored_and_repeats_in_one_batch(db: Database, connection_id: int) -> None:
    woken: list[int] = []
    sink = make_sink(db, connection_id, woken)
    first = make_mail("first")
    sink.store_pop3([("UID-1", first)])

    new = sink.store_pop3([("UID-1", first), ("UID-2", make_mail("second")), ("UID-2", make_mail("again"))])
    nothing = sink.store_pop3([("UID-1", first)])

    assert (new, nothing) == (1, 0)
    assert [row[0] for row in raw_rows(db)] == ["pop3:UID-1", "pop3:UID-2"]
    # The first of a repeated unique-id is the one kept.
    assert b"Subject: second" in raw_rows(db)[1][5]
    assert woken == [1, 1]


def test_stored_uidls_answers_for_this_mailbox_only(db: Database, connection_id: int, secrets: SecretBox) -> None:
    sink = make_sink(db, connection_id)
    uidls = [f"UID-{n}" for n in range(LOOKUP_CHUNK + 20)]
    sink.store_pop3([(uidl, make_mail(uidl)) for uidl in uidls[::2]])
    with db.write() as session:
        other = ConnectionService(secrets).create(
            session,
            ConnectionInput(
                name="Other",
                address="other@example.test",
                password="pw",
                imap_server="127.0.0.1",
                smtp_server="127.0.0.1",
            ),
        )
        other_id = other.id

    # More unique-ids than one lookup takes: the sink asks in chunks.
    assert sink.stored_uidls([*uidls, "never-seen"]) == set(uidls[::2])
    assert make_sink(db, other_id).stored_uidls(uidls) == set()
    assert sink.stored_uidls([]) == set()


@pytest.mark.parametrize("delete_after_import", [False, True])
def test_pop3_source_on_the_database(
    db: Database,
    connection_id: int,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    delete_after_import: bool,
) -> None:
    raws = [make_mail(f"mail {n}") for n in range(3)]
    dovecot.append_all(dovecot_user, raws)
    account = Pop3Account(
        address=dovecot_user.address,
        host=dovecot.host,
        port=dovecot.ports.pop3s,
        username=dovecot_user.name,
        password=dovecot_user.password,
        delete_after_import=delete_after_import,
    )
    sink = make_sink(db, connection_id)

    assert Pop3Source(account, sink, MemoryEventLog()).sync_once() == 3
    # A second process on the same database finds everything stored.
    assert Pop3Source(account, make_sink(db, connection_id), MemoryEventLog()).sync_once() == 0

    assert [row[5] for row in raw_rows(db)] == raws
    maildir = dovecot.maildir(dovecot_user)
    left = [f for sub in ("new", "cur") for f in (maildir / sub).iterdir()]
    assert len(left) == (0 if delete_after_import else 3)
