"""The pipeline runner: claim stored raw mail → run the stages → commit, one transaction per message.

Workers on any number of machines can run side by side: claims are rows with an owner and an expiry
(``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's single writer makes a plain select safe).
A stage that raises quarantines the message with its reason; :meth:`PipelineRunner.replay` runs
quarantined messages again.

A worker that dies mid-batch (``kill -9``, out of memory, power) leaves its claims behind; every
running runner looks for expired claims a few times per claim length and puts those messages back in
the queue, so nothing stays ``processing``. ``attempts`` counts claims: a mail whose claim expired
``max_claims`` times is the likely reason its workers died, and is quarantined with that reason
instead of taking the next worker down with it.

On PostgreSQL the stages serialise work on shared keys (a Message-ID, a contact address, a
customer's thread on a mailbox) with advisory locks. Taken message by message, two workers' batches
would take them in different orders and deadlock; so a batch's mail is parsed before its
transaction, and the transaction first takes every key its stages will lock, all at once and in
ascending order (``Batch.lock_all``: ordered acquisition). A key nobody could predict is still taken
when a stage needs it; should that ever deadlock, the batch is done again message by message, and
counted (:attr:`PipelineRunner.conflict_retries`).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.orm import Session, selectinload

from postroom.errors import StageError
from postroom.mail.parse import parse_message
from postroom.pipeline.context import Batch, Context, Event, PipelineServices, RawRow, Stage, predicted_locks
from postroom.pipeline.default import DEFAULT_STAGES
from postroom.pipeline.parse import Prepared, parse_options
from postroom.pipeline.pool import ParsePool
from postroom.store.db import Database
from postroom.store.models import Connection, RawBody, RawMessage, RawStatus, utcnow

log = structlog.get_logger(__name__)


def _default_parse_processes() -> int:
    # One parser process per core; on a single core they would only add copying.
    cores = os.cpu_count() or 1
    return min(cores, 4) if cores > 1 else 0


@dataclass(frozen=True, slots=True)
class RunnerLimits:
    claim_batch: int = 64  # raw messages claimed per transaction
    # A claim not settled after this belongs to a worker that died, and is released (looked for every
    # quarter of it). A batch takes about a second; the margin covers huge mails on a loaded machine,
    # and a batch that still overruns it is at worst processed twice (the dedupe stage keeps one).
    claim_seconds: float = 120.0
    # A mail claimed this many times whose last claim expired unsettled is quarantined rather than
    # released again: it is what keeps killing its workers (a parser blowing up the memory, say).
    max_claims: int = 3
    poll_seconds: float = 1.0  # look for work stored by other processes this often
    # Processes that parse ahead of the transaction (pipeline/pool.py); 0 parses in the worker thread.
    parse_processes: int = field(default_factory=_default_parse_processes)
    # Smaller batches are parsed in the worker thread: one new mail is picked up sooner without the
    # round trip to another process, and a quiet mailbox never starts the pool.
    pool_from_batch: int = 8


class PipelineRunner:
    def __init__(
        self,
        db: Database,
        services: PipelineServices,
        *,
        worker_id: str,
        workers: int = 2,
        stages: Sequence[Stage] = DEFAULT_STAGES,
        on_events: Callable[[list[Event]], None] | None = None,
        limits: RunnerLimits = RunnerLimits(),
    ) -> None:
        self.db = db
        self.services = services
        self.worker_id = worker_id
        self.workers = workers
        self.stages = tuple(stages)
        self.on_events = on_events or (lambda events: None)
        self.limits = limits
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._release_lock = threading.Lock()
        self._next_release = 0.0  # time.monotonic() when the loop next looks for expired claims
        # Transactions given up on because of a lock conflict with another worker (a deadlock, a
        # serialisation failure) and done again: with ordered locking this stays at 0.
        self.conflict_retries = 0
        self._conflicts_lock = threading.Lock()
        # Worker processes read raw bytes from the database themselves, so they must be able to open it.
        pooled = limits.parse_processes > 0 and not db.in_memory
        self._parse_pool = ParsePool(limits.parse_processes, db.url) if pooled else None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self.release_expired_claims()
        self._next_release = time.monotonic() + self.limits.claim_seconds / 4
        for i in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"pipeline-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        if self._parse_pool is not None:
            self._parse_pool.close()

    def wake(self) -> None:
        """New raw mail was stored in this process: start on it now rather than at the next poll."""
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._release_if_due()
            try:
                claimed = self.claim(self.limits.claim_batch)
            except Exception:
                log.exception("pipeline.claim_failed")
                self._stop.wait(self.limits.poll_seconds)
                continue
            if claimed:
                self.process_batch(claimed)
                continue
            with self._wake:
                if self._pending_wakeups == 0 and not self._stop.is_set():
                    self._wake.wait(self.limits.poll_seconds)
                self._pending_wakeups = 0

    def _release_if_due(self) -> None:
        """Release expired claims every quarter claim length: mail a dead worker (of this or another
        process) had claimed comes back while the service runs, not only at the next start. One
        thread of the runner does it; an UPDATE on the few ``processing`` rows is cheap."""
        with self._release_lock:
            now = time.monotonic()
            if now < self._next_release:
                return
            self._next_release = now + self.limits.claim_seconds / 4
        try:
            self.release_expired_claims()
        except Exception:
            log.exception("pipeline.release_expired_claims_failed")

    # -- claims --------------------------------------------------------------------------------

    def claim(self, limit: int) -> list[int]:
        """Take up to ``limit`` pending raw messages for this worker, oldest first."""
        query = select(RawMessage.id).where(RawMessage.status == RawStatus.PENDING).order_by(RawMessage.id).limit(limit)
        return self._claim(query)

    def claim_ids(self, raw_ids: Sequence[int]) -> list[int]:
        """Claim these pending raw messages, if no other worker has; returns the ones now ours."""
        if not raw_ids:
            return []
        return self._claim(
            select(RawMessage.id).where(RawMessage.id.in_(list(raw_ids)), RawMessage.status == RawStatus.PENDING)
        )

    def _claim(self, query: Select[int]) -> list[int]:
        with self.db.write() as session:
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if ids:
                session.execute(
                    update(RawMessage)
                    .where(RawMessage.id.in_(ids))
                    .values(
                        status=RawStatus.PROCESSING,
                        attempts=RawMessage.attempts + 1,
                        claimed_by=self.worker_id,
                        claimed_until=utcnow() + timedelta(seconds=self.limits.claim_seconds),
                    )
                )
        return ids

    def release_expired_claims(self) -> int:
        """Give back messages claimed by workers that died mid-way, so that another worker finishes them.

        Those already claimed ``max_claims`` times are quarantined instead, with the reason; returns
        how many went back to ``pending``. Safe beside other workers doing the same: on PostgreSQL a
        row another transaction released is no longer ``processing`` when the UPDATE re-reads it.
        """
        now = utcnow()
        expired = (RawMessage.status == RawStatus.PROCESSING, RawMessage.claimed_until < now)
        with self.db.write() as session:
            query = (
                select(RawMessage.id, RawMessage.attempts, RawMessage.claimed_by)
                .where(*expired, RawMessage.attempts >= self.limits.max_claims)
                .order_by(RawMessage.id)
            )
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            for raw_id, attempts, owner in session.execute(query).all():
                reason = (
                    f"pipeline: claimed {attempts} times and never finished (the last claim, by worker {owner}, "
                    "expired: the worker stopped or crashed while processing it); replay to try again"
                )
                log.warning("pipeline.quarantined_after_expired_claims", raw_id=raw_id, reason=reason)
                session.execute(
                    update(RawMessage)
                    .where(RawMessage.id == raw_id, *expired)
                    .values(
                        status=RawStatus.QUARANTINED,
                        error=reason,
                        claimed_by=None,
                        claimed_until=None,
                        processed_at=now,
                    )
                )
            result = session.execute(
                update(RawMessage).where(*expired).values(status=RawStatus.PENDING, claimed_by=None, claimed_until=None)
            )
        released = int(getattr(result, "rowcount", 0) or 0)
        if released:
            log.warning("pipeline.expired_claims_released", count=released)
        return released

    # -- processing ----------------------------------------------------------------------------

    def process(self, raw_id: int) -> RawStatus:
        """Run every stage on one raw message in its own transaction; quarantine it when a stage fails."""
        return self.process_batch([raw_id])[raw_id]

    def process_batch(self, raw_ids: Sequence[int]) -> dict[int, RawStatus]:
        """Run the stages on claimed raw messages, each inside a savepoint of one shared transaction.

        Every message is still all-or-nothing (its savepoint), and a failing one is quarantined
        without touching the others; sharing the commit and what was looked up (connections,
        contacts, customer domains) is what makes the pipeline fast (a commit costs more than
        understanding a mail). The raw rows, their bytes and their connections are read before the
        write transaction begins, so that it holds SQLite's write lock only for writing. Should the
        transaction itself fail, each message is done again alone.
        """
        outcomes: dict[int, RawStatus] = {}
        events: list[Event] = []
        try:
            loaded = self._load(raw_ids)
            with self.db.write() as session:
                batch = Batch.open(session)
                contexts: dict[int, Context] = {}
                for raw_id in raw_ids:
                    raw = loaded.raws.get(raw_id)
                    if raw is not None:
                        contexts[raw_id] = self._context(
                            session,
                            batch,
                            raw,
                            loaded.data.get(raw_id),
                            loaded.connections.get(raw.connection_id),
                            loaded.prepared.get(raw_id),
                        )
                # Before any stage: every key the batch will lock, in one ordered acquisition.
                batch.lock_all(self._predicted_locks(contexts.values()))
                settled: list[dict[str, object]] = []
                for raw_id in raw_ids:
                    found = contexts.get(raw_id)
                    if found is None:
                        # Deleted since it was claimed: nothing left to do.
                        outcomes[raw_id] = RawStatus.DONE
                        continue
                    ctx, reason = self._run_stages(batch, found)
                    outcomes[raw_id] = ctx.outcome
                    if ctx.outcome is not RawStatus.QUARANTINED:
                        events.extend(ctx.events)
                    settled.append(
                        {
                            "raw_id": raw_id,
                            "status": ctx.outcome,
                            "error": reason,
                            "message_pk": ctx.message_pk,
                            "now": utcnow(),
                        }
                    )
                # The outcomes are written in the same transaction as what the stages wrote.
                batch.sql.executemany(_SETTLE, settled)
                batch.sql.close()
        except Exception as exc:
            conflict = _transient(exc)
            if conflict:
                with self._conflicts_lock:
                    self.conflict_retries += 1
            if len(raw_ids) == 1 and conflict:
                # Lost a lock race with another worker; nothing was written. Back in the queue.
                log.warning("pipeline.transaction_conflict_requeued", raw_id=raw_ids[0], error=str(exc))
                self._requeue(raw_ids[0])
                return {raw_ids[0]: RawStatus.PENDING}
            if len(raw_ids) == 1:
                log.exception("pipeline.transaction_failed", raw_id=raw_ids[0])
                self._quarantine(raw_ids[0], "commit", sys.exc_info()[1])
                return {raw_ids[0]: RawStatus.QUARANTINED}
            log.warning(
                "pipeline.batch_failed_retrying_one_by_one", size=len(raw_ids), conflict=conflict, error=str(exc)
            )
            outcomes = {}
            for raw_id in raw_ids:
                outcomes.update(self.process_batch([raw_id]))
            return outcomes
        if events:
            try:
                self.on_events(events)
            except Exception:
                log.exception("pipeline.event_subscriber_failed")
        return outcomes

    def _load(self, raw_ids: Sequence[int]) -> _Loaded:
        """The raw rows and the connections (with mailboxes) they came through, read before the
        write transaction; then the batch parsed by the parser processes when it is worth sending
        there, or else the raw bytes, which the parse stage needs."""
        loaded = _Loaded()
        with self.db.read() as session:
            for raw_id, connection_id, mailbox_id, received_at in session.execute(
                select(RawMessage.id, RawMessage.connection_id, RawMessage.mailbox_id, RawMessage.received_at).where(
                    RawMessage.id.in_(list(raw_ids))
                )
            ):
                loaded.raws[raw_id] = RawRow(raw_id, connection_id, mailbox_id, received_at)
            wanted = {raw.connection_id for raw in loaded.raws.values()} - {None}
            if wanted:
                for found in session.scalars(
                    select(Connection).where(Connection.id.in_(wanted)).options(selectinload(Connection.mailboxes))
                ):
                    loaded.connections[found.id] = found
        if self._parse_pool is not None and len(loaded.raws) >= self.limits.pool_from_batch:
            work = [
                (
                    raw.id,
                    parse_options(
                        loaded.connections.get(raw.connection_id), raw.received_at, self.services.reply_token_key
                    ),
                )
                for raw in loaded.raws.values()
            ]
            loaded.prepared = self._parse_pool.prepare(work, self.services.blobs)
        unparsed = [raw_id for raw_id in loaded.raws if raw_id not in loaded.prepared]
        if unparsed:
            with self.db.read() as session:
                for raw_id, data in session.execute(
                    select(RawBody.raw_id, RawBody.data).where(RawBody.raw_id.in_(unparsed))
                ):
                    loaded.data[raw_id] = data
        if not self.db.is_sqlite:
            self._parse_ahead(loaded)
        return loaded

    def _parse_ahead(self, loaded: _Loaded) -> None:
        """Parse here, before the transaction, what the parser processes did not: the transaction
        can only take its locks in order when it knows every mail's Message-ID and sender.

        Nothing is decided here: a mail that does not parse is left to the ``parse`` stage, which
        parses it again inside the transaction and quarantines it with the reason. Its attachment
        files are written by the ``content`` stage, as for a mail parsed there.
        """
        for raw_id, data in list(loaded.data.items()):
            raw = loaded.raws[raw_id]
            options = parse_options(
                loaded.connections.get(raw.connection_id), raw.received_at, self.services.reply_token_key
            )
            try:
                parsed = parse_message(data, options)
            except Exception:  # noqa: BLE001 (the parse stage parses it again and reports why)
                parsed = None
            if parsed is not None:
                loaded.prepared[raw_id] = Prepared(parsed, {})
                del loaded.data[raw_id]

    def _predicted_locks(self, contexts: Iterable[Context]) -> list[str]:
        keys: list[str] = []
        for ctx in contexts:
            try:
                keys.extend(predicted_locks(self.stages, ctx))
            except Exception:  # a key left out is taken by its stage, which reports the error
                log.warning("pipeline.lock_prediction_failed", raw_id=ctx.raw.id, exc_info=True)
        return keys

    def _context(
        self,
        session: Session,
        batch: Batch,
        raw: RawRow,
        data: bytes | None,
        connection: Connection | None,
        prepared: Prepared | None,
    ) -> Context:
        mailbox = next((b for b in connection.mailboxes if b.id == raw.mailbox_id), None) if connection else None
        ctx = Context(session, self.services, raw, connection, mailbox, batch, data)
        if prepared is not None:
            ctx.parsed = prepared.parsed
            ctx.blob_keys = prepared.blob_keys
        return ctx

    def _run_stages(self, batch: Batch, ctx: Context) -> tuple[Context, str]:
        raw = ctx.raw
        current = "load"
        mark = batch.contacts.mark()
        try:
            with batch.savepoint():
                for stage in self.stages:
                    current = stage.name
                    stage(ctx)
                    if ctx.stopped:
                        break
        except Exception as exc:  # whatever a stage raises quarantines the mail; the queue goes on
            if _transient(exc):
                # A deadlock between workers says nothing about the mail: the whole transaction is
                # done again (its messages one by one), rather than the mail being quarantined.
                raise
            # The savepoint rolled back; so must what the batch remembered of this message.
            batch.contacts.forget_since(mark)
            ctx.outcome = RawStatus.QUARANTINED
            ctx.message_pk = None
            reason = _reason(current, exc)
            log.warning("pipeline.quarantined", raw_id=raw.id, reason=reason)
            return ctx, reason
        return ctx, ctx.reason

    @staticmethod
    def _settle(raw: RawMessage, outcome: RawStatus, reason: str) -> None:
        # No ``attempts += 1``: the claim counted the attempt.
        raw.status = outcome
        raw.error = reason
        raw.claimed_by = None
        raw.claimed_until = None
        raw.processed_at = utcnow()

    def _requeue(self, raw_id: int) -> None:
        with self.db.write() as session:
            session.execute(
                update(RawMessage)
                .where(RawMessage.id == raw_id, RawMessage.status == RawStatus.PROCESSING)
                # A lock conflict says nothing about the mail: its claim does not count as an attempt.
                .values(
                    status=RawStatus.PENDING,
                    attempts=RawMessage.attempts - 1,
                    claimed_by=None,
                    claimed_until=None,
                )
            )

    def _quarantine(self, raw_id: int, stage_name: str, exc: BaseException | None) -> None:
        with self.db.write() as session:
            raw = session.get(RawMessage, raw_id)
            if raw is not None:
                self._settle(raw, RawStatus.QUARANTINED, _reason(stage_name, exc))

    def drain(self, max_messages: int | None = None) -> int:
        """Process pending messages in this thread until none is left (for the CLI and tests)."""
        done = 0
        while max_messages is None or done < max_messages:
            ids = self.claim(self.limits.claim_batch)
            if not ids:
                break
            self.process_batch(ids)
            done += len(ids)
        return done

    def replay(self, raw_ids: Sequence[int] | None = None) -> int:
        """Put quarantined messages (all, or the given ones) back in the queue."""
        with self.db.write() as session:
            query = update(RawMessage).where(RawMessage.status == RawStatus.QUARANTINED)
            if raw_ids is not None:
                query = query.where(RawMessage.id.in_(list(raw_ids)))
            result = session.execute(query.values(status=RawStatus.PENDING, error=""))
        self.wake()
        return int(getattr(result, "rowcount", 0) or 0)


@dataclass(eq=False)
class _Loaded:
    raws: dict[int, RawRow] = field(default_factory=dict)
    data: dict[int, bytes] = field(default_factory=dict)
    connections: dict[int | None, Connection] = field(default_factory=dict)
    prepared: dict[int, Prepared] = field(default_factory=dict)


# How a processed raw message is left: its outcome, the reason, and the message it became (``attempts``
# was counted by the claim).
_SETTLE = (
    update(RawMessage)
    .where(RawMessage.id == bindparam("raw_id"))
    .values(
        status=bindparam("status"),
        error=bindparam("error"),
        claimed_by=None,
        claimed_until=None,
        processed_at=bindparam("now"),
        message_pk=func.coalesce(bindparam("message_pk"), RawMessage.message_pk),
    )
)


# Deadlock, serialization failure, lock not available (PostgreSQL SQLSTATEs).
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


def _transient(exc: BaseException) -> bool:
    """Whether a database error came from concurrency (worth doing again), not from the mail."""
    cause = getattr(exc, "orig", None) or exc
    if getattr(cause, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return isinstance(cause, sqlite3.OperationalError) and "database is locked" in str(cause)


def _reason(stage_name: str, exc: BaseException | None) -> str:
    """Why a message was quarantined: the stage and the error, on one line."""
    if isinstance(exc, StageError):
        return str(exc)
    if exc is None:
        return f"{stage_name}: unknown error"
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip().replace("\n", " ")
    return f"{stage_name}: {detail}"
