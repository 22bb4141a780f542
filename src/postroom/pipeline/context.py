"""What a stage is and what it works on."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from postroom.helpdesk.contacts import ContactBook, ContactRow
from postroom.jobs.locks import ADVISORY_XACT_LOCK, ADVISORY_XACT_LOCK_ALL, lock_key
from postroom.mail.model import ParsedMessage
from postroom.store.blobs import BlobStore
from postroom.store.db import SqlCursor
from postroom.store.models import Connection, ConversationStatus, Mailbox, RawBody, RawStatus


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, emitted to subscribers after the transaction that made it commits."""

    kind: str  # conversation.created, message.received, message.sent, message.failed, message.bounced
    conversation_id: int | None = None
    message_id: int | None = None
    connection_id: int | None = None


@dataclass(frozen=True, slots=True)
class PipelineServices:
    """What stages need beyond the database session."""

    blobs: BlobStore
    reply_token_key: bytes


@dataclass(frozen=True, slots=True)
class RawRow:
    """The stored raw message a context works on (its bytes are ``Context.raw_bytes``)."""

    id: int
    connection_id: int | None
    mailbox_id: int | None
    received_at: datetime


@dataclass(slots=True)
class ConversationRow:
    """The conversation a message joins, as the stages need it."""

    id: int
    status: ConversationStatus
    subject: str


@dataclass(eq=False)
class Batch:
    """What the messages of one transaction share: the driver cursor and what was already looked up."""

    session: Session
    sql: SqlCursor
    contacts: ContactBook
    # The advisory locks this transaction holds (their numbers), so that each is taken once.
    held: set[int] = field(default_factory=set, init=False)
    # Those of them taken inside the current message's savepoint: a rollback to it releases them.
    _held_in_savepoint: list[int] | None = field(default=None, init=False)

    @classmethod
    def open(cls, session: Session) -> Batch:
        sql = SqlCursor(session)
        return cls(session, sql, ContactBook(sql))

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """One message's writes, all or nothing, inside the batch's transaction.

        Issued on the driver cursor: through the ORM a savepoint cost 0.2 ms on SQLite and 0.5 ms
        on PostgreSQL, more than the rest of a message's database work; and the ORM only emits it
        once the session itself runs a statement, which the prepared statements bypass. Whatever
        a stage did through the ORM session is flushed inside the savepoint; after a rollback the
        session forgets every object it held, so that nothing rolled back is written later.
        """
        self.sql.execute_sql("SAVEPOINT pipeline_message")
        self._held_in_savepoint = []
        try:
            yield
            if self.session.new or self.session.dirty or self.session.deleted:
                self.session.flush()
        except BaseException:
            self.sql.execute_sql("ROLLBACK TO SAVEPOINT pipeline_message")
            self.sql.execute_sql("RELEASE SAVEPOINT pipeline_message")
            self.session.expunge_all()
            # PostgreSQL released the locks taken since the savepoint (they were the rolled-back
            # subtransaction's); they must be taken again should a later message need them.
            self.held.difference_update(self._held_in_savepoint)
            raise
        finally:
            self._held_in_savepoint = None
        self.sql.execute_sql("RELEASE SAVEPOINT pipeline_message")

    def lock(self, key: str) -> None:
        """Hold ``key`` until the transaction ends (:data:`postroom.jobs.locks.ADVISORY_XACT_LOCK`).

        On PostgreSQL an advisory transaction lock, taken once per transaction: a key the batch
        took ahead (:meth:`lock_all`) costs nothing here. A key nobody predicted is taken now,
        out of the batch's order, which is correct but can deadlock with another worker (the
        runner then redoes the batch). SQLite's single writer already serialises.
        """
        if not self.sql.is_postgresql:
            return
        number = lock_key(key)
        if number in self.held:
            return
        self.sql.first(ADVISORY_XACT_LOCK, {"k": number})
        self.held.add(number)
        if self._held_in_savepoint is not None:
            self._held_in_savepoint.append(number)

    def lock_all(self, keys: Iterable[str]) -> None:
        """Hold all these keys, taken in one statement in ascending order (see :mod:`postroom.jobs.locks`).

        Meant for the start of the transaction, before any message's savepoint: workers that
        take every key they will need at once, each in the same order, cannot deadlock on them.
        """
        if not self.sql.is_postgresql:
            return
        numbers = sorted({lock_key(key) for key in keys} - self.held)
        if not numbers:
            return
        self.sql.all(ADVISORY_XACT_LOCK_ALL, {"keys": numbers})
        self.held.update(numbers)
        if self._held_in_savepoint is not None:
            self._held_in_savepoint.extend(numbers)


@dataclass(eq=False)
class Context:
    """One raw message on its way through the stages, inside one savepoint of the batch's transaction.

    Stages read and write through ``batch.sql`` (prepared statements); ``session`` is there for
    rarely taken paths that are simpler with the ORM, which must flush what they change.
    """

    session: Session
    services: PipelineServices
    raw: RawRow
    connection: Connection | None
    mailbox: Mailbox | None
    batch: Batch
    # The raw bytes when they were loaded with the batch; read on first use otherwise.
    data: bytes | None = None
    parsed: ParsedMessage | None = None
    # Why the runner could not parse the mail ahead (``Type: message``); the parse stage quarantines it.
    parse_failure: str | None = None
    contact: ContactRow | None = None
    conversation: ConversationRow | None = None
    new_conversation: bool = False
    message_pk: int | None = None
    # Attachment files already in the blob store (SHA-256 → key), when the mail was parsed ahead.
    blob_keys: dict[str, str] = field(default_factory=dict)
    outcome: RawStatus = RawStatus.DONE
    reason: str = ""
    stopped: bool = False
    events: list[Event] = field(default_factory=list)

    @property
    def raw_bytes(self) -> bytes:
        if self.data is None:
            self.data = self.batch.sql.scalar(_RAW_BYTES, {"raw_id": self.raw.id}) or b""
        return self.data

    def stop(self, outcome: RawStatus, reason: str) -> None:
        """End the pipeline early for this message (a duplicate, a loop), with the reason recorded."""
        self.outcome = outcome
        self.reason = reason
        self.stopped = True

    def require_parsed(self) -> ParsedMessage:
        if self.parsed is None:
            raise RuntimeError("the parse stage must run before this stage")
        return self.parsed


_RAW_BYTES = select(RawBody.data).where(RawBody.raw_id == bindparam("raw_id"))


class Stage(Protocol):
    """One named step of the pipeline. Raising quarantines the raw message with the error as reason."""

    @property
    def name(self) -> str: ...

    def __call__(self, ctx: Context) -> None: ...


# What a stage will lock for a message, known from the parsed mail before any stage runs.
LockPrediction = Callable[["Context"], Iterable[str]]


@dataclass(frozen=True, slots=True)
class NamedStage:
    name: str
    run: Callable[[Context], None]
    # The keys the stage will pass to ``Batch.lock`` for this context, computed from what is
    # known before the stages run (the raw row, its mailbox, the parsed mail); the runner takes
    # the keys of a whole batch at once, in order, so that workers cannot deadlock on them.
    locks: LockPrediction | None = None

    def __call__(self, ctx: Context) -> None:
        self.run(ctx)


def stage(name: str, *, locks: LockPrediction | None = None) -> Callable[[Callable[[Context], None]], NamedStage]:
    """Declare a function as a pipeline stage: ``@stage("parse")``; ``locks`` predicts its ``Batch.lock`` keys."""

    def wrap(fn: Callable[[Context], None]) -> NamedStage:
        return NamedStage(name, fn, locks)

    return wrap


def predicted_locks(stages: Iterable[Stage], ctx: Context) -> list[str]:
    """Every key the stages will lock for a parsed mail (none before it is parsed: it may not be mail)."""
    if ctx.parsed is None:
        return []
    keys: list[str] = []
    for each in stages:
        if isinstance(each, NamedStage) and each.locks is not None:
            keys.extend(each.locks(ctx))
    return keys
