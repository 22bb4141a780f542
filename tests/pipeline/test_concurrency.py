"""Pipeline workers side by side on a real PostgreSQL: ordered locking, so no deadlock between them.

Each batch takes every advisory lock its stages will need at the start of its transaction, in
ascending order (``Batch.lock_all``). The tests run runners in threads on batches that share
senders, Message-IDs and threads, and check that no transaction had to be redone because of a lock
conflict (``PipelineRunner.conflict_retries``), besides what the mail became.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from postroom.channels.sink import MailboxSink
from postroom.helpdesk.connections import ConnectionInput, ConnectionService
from postroom.jobs.locks import lock_key
from postroom.pipeline.context import Batch, Context, NamedStage, PipelineServices
from postroom.pipeline.default import DEFAULT_STAGES
from postroom.pipeline.runner import PipelineRunner, RunnerLimits
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.store.blobs import LocalBlobStore
from postroom.store.db import Database
from postroom.store.models import Contact, Conversation, Message, RawMessage, RawStatus
from postroom.store.secretbox import SecretBox
from postroom.testing.mails import make_mail
from support import wait_until

# PostgreSQL only: SQLite has a single writer, nothing to order (skipped where the other PostgreSQL tests skip).
pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)

KEY = b"k" * 32


class Queue:
    """One connection's raw store, filled without processing, and runners to drain it."""

    def __init__(self, db: Database, secrets: SecretBox, tmp_path: Path) -> None:
        self.db = db
        with db.write() as session:
            connection = ConnectionService(secrets).create(
                session,
                # Grouping by contact: every mail of a sender meets the others of that sender (rule 4).
                ConnectionInput(
                    name="Support",
                    address="support@example.test",
                    password="pw",
                    imap_server="i",
                    smtp_server="s",
                    grouping="contact",
                ),
            )
            self.connection_id, mailbox_id = connection.id, connection.mailboxes[0].id
        self.sink = MailboxSink(db, self.connection_id, mailbox_id, on_stored=lambda count: None)
        self.blobs = LocalBlobStore(tmp_path / "blobs")
        self.uid = 0
        # Unique to this test: the advisory lock keys of tests running beside it on the same server differ.
        self.tag = uuid.uuid4().hex[:8]

    def address(self, who: str) -> str:
        return f"{who}-{self.tag}@customer.example"

    def store(self, mails: Sequence[bytes]) -> list[int]:
        fetched = []
        for raw in mails:
            self.uid += 1
            fetched.append(FetchedMail(uid=self.uid, raw=raw))
        self.sink.store(fetched, ImapCursor(uidvalidity=1, last_uid=self.uid))
        with self.db.read() as session:
            return list(session.scalars(select(RawMessage.id).order_by(RawMessage.id)))[-len(mails) :]

    def runner(self, name: str, limits: RunnerLimits) -> PipelineRunner:
        services = PipelineServices(blobs=self.blobs, reply_token_key=KEY)
        return PipelineRunner(self.db, services, worker_id=name, workers=1, limits=limits)


@pytest.fixture
def queue(db: Database, secrets: SecretBox, tmp_path: Path) -> Queue:
    return Queue(db, secrets, tmp_path)


def _run_in_threads(jobs: Sequence[Callable[[], object]]) -> None:
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            job()
        except BaseException as exc:  # reported by the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), "a pipeline worker hangs"
    assert not errors, errors


def _waiting_on_advisory_lock(db: Database, numbers: set[int]) -> bool:
    """Whether some transaction waits for one of these advisory locks (pg_locks splits the bigint in two)."""
    with db.read() as session:
        rows = session.execute(
            text("SELECT classid::bigint, objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        ).all()
    waiting = {_signed((high << 32) | low) for high, low in rows}
    return bool(waiting & numbers)


def _signed(unsigned: int) -> int:
    return unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned


def _held_advisory_locks(db: Database) -> set[int]:
    with db.read() as session:
        rows = session.execute(
            text("SELECT classid::bigint, objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted")
        ).all()
    return {_signed((high << 32) | low) for high, low in rows}


def test_two_workers_meeting_the_same_customers_in_opposite_order_do_not_deadlock(queue: Queue) -> None:
    # Worker one gets Ada's mail then Bo's, worker two Bo's then Ada's. Taking locks mail by mail,
    # each would hold one customer's keys and wait for the other's (PostgreSQL would abort one).
    # A stage after ``thread`` holds each worker's first mail until the other worker has got as
    # far or waits for a lock, so that the two transactions overlap every time.
    ada, bo = f"Ada <{queue.address('ada')}>", f"Bo <{queue.address('bo')}>"
    first = queue.store([make_mail("Ada 1", sender=ada), make_mail("Bo 1", sender=bo)])
    second = queue.store([make_mail("Bo 2", sender=bo), make_mail("Ada 2", sender=ada)])
    keys = {
        lock_key(f"{kind}:{address}")
        for address in (queue.address("ada"), queue.address("bo"))
        # Grouping by contact threads under a key per connection (rule 4 looks across its mailboxes).
        for kind in ("contact", f"thread:c{queue.connection_id}")
    }
    arrived = {name: threading.Event() for name in ("one", "two")}
    overlapped: list[bool] = []

    def meet(name: str, other: str) -> NamedStage:
        def wait_for_the_other(ctx: Context) -> None:
            if arrived[name].is_set():
                return
            arrived[name].set()
            overlapped.append(
                bool(
                    wait_until(lambda: arrived[other].is_set() or _waiting_on_advisory_lock(queue.db, keys), timeout=20)
                )
            )

        return NamedStage("meet", wait_for_the_other)

    runners = {name: queue.runner(name, RunnerLimits(parse_processes=0)) for name in ("one", "two")}
    after_thread = [s.name for s in DEFAULT_STAGES].index("thread") + 1
    for name, other in (("one", "two"), ("two", "one")):
        runners[name].stages = (*DEFAULT_STAGES[:after_thread], meet(name, other), *DEFAULT_STAGES[after_thread:])
    assert runners["one"].claim_ids(first) == first
    assert runners["two"].claim_ids(second) == second

    _run_in_threads([lambda: runners["one"].process_batch(first), lambda: runners["two"].process_batch(second)])

    assert overlapped == [True, True]
    assert runners["one"].conflict_retries == runners["two"].conflict_retries == 0
    with queue.db.read() as session:
        assert set(session.scalars(select(RawMessage.status))) == {RawStatus.DONE}
        # One conversation per customer, holding both of that customer's mails.
        per_contact = session.execute(
            select(Contact.email, func.count(Message.id))
            .join(Conversation, Conversation.contact_id == Contact.id)
            .join(Message, Message.conversation_id == Conversation.id)
            .group_by(Contact.email)
        ).all()
        assert sorted(per_contact) == [(queue.address("ada"), 2), (queue.address("bo"), 2)]
        assert session.scalar(select(func.count()).select_from(Conversation)) == 2


def test_many_workers_on_shared_senders_message_ids_and_threads(queue: Queue) -> None:
    # Twelve customers write 96 mails; 16 of them come twice (a second mailbox, a forwarding rule),
    # the copy in another part of the queue, so the two copies land in different workers' batches.
    senders = [f"Customer {i} <{queue.address(f'c{i}')}>" for i in range(12)]
    originals = [
        make_mail(f"Order {i}", sender=senders[(i * 7) % len(senders)], message_id=f"m{i}-{queue.tag}@customer.example")
        for i in range(80)
    ]
    mails = originals[:40] + originals[60:68] + originals[40:] + originals[:8]
    queue.store(mails)
    # Three runners with small batches: one parses in its thread, two in parser processes.
    runners = [
        queue.runner("a", RunnerLimits(claim_batch=8, parse_processes=0)),
        queue.runner("b", RunnerLimits(claim_batch=8, parse_processes=1, pool_from_batch=2)),
        queue.runner("c", RunnerLimits(claim_batch=12, parse_processes=0)),
    ]
    try:
        _run_in_threads([runner.drain for runner in runners])
    finally:
        for runner in runners:
            runner.stop()

    assert [runner.conflict_retries for runner in runners] == [0, 0, 0]
    with queue.db.read() as session:
        counted = session.execute(select(RawMessage.status, func.count()).group_by(RawMessage.status))
        statuses = {status: count for status, count in counted}
        assert statuses == {RawStatus.DONE: 80, RawStatus.DUPLICATE: 16}
        # Every Message-ID imported once.
        counts = session.execute(select(Message.message_id, func.count()).group_by(Message.message_id)).all()
        assert len(counts) == 80
        assert {count for _, count in counts} == {1}
        # No references between the mails: each customer's mail joins that customer's one open conversation.
        per_contact = dict(
            session.execute(
                select(Contact.email, func.count(func.distinct(Conversation.id)))
                .join(Conversation, Conversation.contact_id == Contact.id)
                .group_by(Contact.email)
            ).all()
        )
        assert per_contact == {queue.address(f"c{i}"): 1 for i in range(12)}


def test_locks_are_taken_in_ascending_order(queue: Queue, db: Database) -> None:
    # Another transaction holds the middle key: the batch must have the lowest and wait for the
    # middle one, never hold the highest before it has the middle one.
    names = sorted((f"order-{queue.tag}-{i}" for i in range(3)), key=lock_key)
    low, middle, high = (lock_key(name) for name in names)
    blocker_holds = threading.Event()
    release = threading.Event()

    def blocker() -> None:
        with db.write() as session:
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": middle})
            blocker_holds.set()
            release.wait(20)

    def locker() -> None:
        with db.write() as session:
            Batch.open(session).lock_all(reversed(names))

    holder = threading.Thread(target=blocker)
    holder.start()
    assert blocker_holds.wait(10)
    waiter = threading.Thread(target=locker)
    waiter.start()
    try:
        wait_until(lambda: _waiting_on_advisory_lock(db, {middle}), timeout=10)
        held = _held_advisory_locks(db)
        assert low in held
        assert high not in held
    finally:
        release.set()
        holder.join(10)
        waiter.join(10)
    assert not waiter.is_alive()


def test_a_lock_taken_in_a_rolled_back_savepoint_is_taken_again(queue: Queue, db: Database) -> None:
    # PostgreSQL releases what a rolled-back savepoint locked; the batch must not think it still holds it.
    key = f"savepoint-{queue.tag}"
    number = lock_key(key)
    with db.write() as session:
        batch = Batch.open(session)
        with pytest.raises(RuntimeError), batch.savepoint():
            batch.lock(key)
            assert number in _locks_of(session)
            raise RuntimeError("this message fails")
        assert number not in batch.held
        assert number not in _locks_of(session)
        batch.lock(key)
        assert number in _locks_of(session)
        with batch.savepoint():
            batch.lock(key)  # held already: nothing to take, and kept after the savepoint
        assert number in batch.held


def _locks_of(session: Session) -> set[int]:
    rows = session.execute(
        text(
            "SELECT classid::bigint, objid::bigint FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
        )
    ).all()
    return {_signed((high << 32) | low) for high, low in rows}
