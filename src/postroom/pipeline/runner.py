"""The pipeline runner: claim stored raw mail → run the stages → commit, one transaction per message.

Workers on any number of machines can run side by side: claims are rows with an owner and an expiry
(``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's single writer makes a plain select safe).
A stage that raises quarantines the message with its reason; :meth:`PipelineRunner.replay` runs
quarantined messages again.

A worker that dies mid-batch (``kill -9``, out of memory, power) leaves its claims behind. Each
process holds a worker lease (``worker:<id>`` in ``leases``, renewed every 2 s by
:class:`postroom.jobs.leases.WorkerHeartbeat`); every running runner looks every
``release_seconds`` for claims whose owner's lease has expired, or whose owner holds no lease and
whose ``claimed_until`` has passed (:func:`postroom.jobs.leases.claim_abandoned`), and puts those
messages back in the queue, so nothing stays ``processing`` for more than seconds after its worker
died, and a claim of a live worker is never taken from it however slow its mail. ``attempts``
counts claims: a mail whose claim was abandoned ``max_claims`` times is the likely reason its
workers died, and is quarantined with that reason instead of taking the next worker down with it.

Every mail is parsed before the write transaction (by parser processes with a time budget per mail,
:mod:`postroom.pipeline.pool`), never inside it: a transaction holds SQLite's single write lock, and
what it holds up (the SMTP listener's 250, the API) must not wait on a parser. A mail of a batch still
being parsed ``split_seconds`` after the batch began is finished apart, by the runner's ``pipeline-late``
thread, so that the rest of the batch is committed at once and the worker thread claims more.

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
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.orm import Session, selectinload

from postroom.errors import StageError
from postroom.helpdesk.assignment import snoozes_due, wake_snoozed
from postroom.jobs.leases import claim_abandoned
from postroom.mail.html_bounds import DEFAULT_HTML_LIMITS, HtmlLimits
from postroom.pipeline.context import Batch, Context, Event, PipelineServices, RawRow, Stage, predicted_locks
from postroom.pipeline.default import DEFAULT_STAGES
from postroom.pipeline.parse import Prepared, parse_options, prepare
from postroom.pipeline.pool import START_SECONDS, Failed, Outcome, ParsePool, Work
from postroom.store.blobs import LocalBlobStore
from postroom.store.db import Database
from postroom.store.models import Connection, RawBody, RawMessage, RawStatus, utcnow

log = structlog.get_logger(__name__)


def _default_parse_processes() -> int:
    # One parser process per core. One even on a single core: it costs some copying, but only a
    # process can be stopped when a mail runs over its budget.
    return max(1, min(os.cpu_count() or 1, 4))


@dataclass(frozen=True, slots=True)
class RunnerLimits:
    claim_batch: int = 64  # raw messages claimed per transaction
    # A claim of a worker without a worker lease (a runner used on its own, or a process older than
    # the leases) not settled after this belongs to a worker that died, and is released. A worker
    # with a lease keeps its claims while the lease lives and loses them when it expires.
    claim_seconds: float = 120.0
    # How often abandoned claims are looked for (a read; the release is a write only when found).
    release_seconds: float = 1.0
    # A mail claimed this many times whose last claim expired unsettled is quarantined rather than
    # released again: it is what keeps killing its workers (a parser blowing up the memory, say).
    max_claims: int = 3
    poll_seconds: float = 1.0  # look for work stored by other processes this often
    # Processes that parse ahead of the transaction (pipeline/pool.py). 0 parses in the worker thread,
    # still before the transaction and with the HTML bounded, but with no budget enforced.
    parse_processes: int = field(default_factory=_default_parse_processes)
    # Smaller batches are parsed in the worker thread, without the budget; 1 sends every batch to the
    # parser processes, which costs a new mail a few milliseconds of round trip.
    pool_from_batch: int = 1
    # Seconds of parsing a mail may take (POSTROOM_PARSE_BUDGET_SECONDS); over it, its process is
    # killed and the mail parsed again in the bounded degraded mode, marked with the reason.
    parse_budget_seconds: float = 10.0
    # Nesting and length of HTML handed to the sanitiser and the renderer (mail/html_bounds.py).
    html_limits: HtmlLimits = DEFAULT_HTML_LIMITS
    # Mails of a batch still parsing after this are finished apart, by the runner's late thread, so
    # that one slow mail does not hold the rest of its batch. A batch of 64 parses in well under it.
    split_seconds: float = 0.3


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
        # Parser processes read raw bytes from the database themselves when they can open it; an
        # in-memory database is another process's, so then the bytes are sent to them.
        self._parse_pool = (
            ParsePool(
                limits.parse_processes,
                None if db.in_memory else db.url,
                budget_seconds=limits.parse_budget_seconds,
            )
            if limits.parse_processes > 0
            else None
        )
        # Mails whose parsing outlived ``split_seconds``: finished by the late thread when parsed.
        self._late: list[_Late] = []
        self._late_cond = threading.Condition()
        self._late_thread: threading.Thread | None = None
        self._ready_by = 0.0  # time.monotonic() until which workers wait for a parser process to be ready

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self.release_expired_claims()
        self._next_release = time.monotonic() + self._release_interval()
        self._late_thread = threading.Thread(target=self._late_loop, name="pipeline-late", daemon=True)
        self._late_thread.start()
        self._ready_by = time.monotonic() + START_SECONDS
        if self._parse_pool is not None:
            self._parse_pool.warm()
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
        # Mails still parsing come back as "stopped" and are put back in the queue by the late thread.
        if self._parse_pool is not None:
            self._parse_pool.close()
        if self._late_thread is not None:
            with self._late_cond:
                self._late_cond.notify_all()
            self._late_thread.join(timeout)
            self._late_thread = None

    def parser_pids(self) -> list[int]:
        """The parser processes running now (for tests)."""
        return self._parse_pool.pids() if self._parse_pool is not None else []

    def wake(self) -> None:
        """New raw mail was stored in this process: start on it now rather than at the next poll."""
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._release_if_due()
            if self._parse_pool is not None and not self._parse_pool.ready() and time.monotonic() < self._ready_by:
                # Claim nothing before a parser process can take it: claimed mail would wait here for
                # nothing, and were this process to die meanwhile, wait again for its lease to expire.
                # Past ``_ready_by`` (processes that will not start) mail is claimed all the same.
                self._parse_pool.start_processes()
                self._stop.wait(0.05)
                continue
            if self._late_backlog() >= self.limits.claim_batch:
                # The parser processes are behind (starting, or busy with slow mail): claiming more
                # would only keep mail from other workers that could parse it now.
                self._stop.wait(0.05)
                continue
            try:
                claimed = self.claim(self.limits.claim_batch)
            except Exception:
                log.exception("pipeline.claim_failed")
                self._stop.wait(self.limits.poll_seconds)
                continue
            if claimed:
                self._process(claimed, late_apart=True)
                continue
            with self._wake:
                if self._pending_wakeups == 0 and not self._stop.is_set():
                    self._wake.wait(self.limits.poll_seconds)
                self._pending_wakeups = 0

    def _release_interval(self) -> float:
        return min(self.limits.release_seconds, self.limits.claim_seconds / 4)

    def _release_if_due(self) -> None:
        """Release abandoned claims every ``release_seconds``: mail a dead worker (of this or another
        process) had claimed comes back while the service runs, not only at the next start. One
        thread of the runner does it; it reads first and writes only when there is something to release."""
        with self._release_lock:
            now = time.monotonic()
            if now < self._next_release:
                return
            self._next_release = now + self._release_interval()
        try:
            self.release_expired_claims()
        except Exception:
            log.exception("pipeline.release_expired_claims_failed")
        try:
            self.wake_snoozed()
        except Exception:
            log.exception("pipeline.wake_snoozed_failed")

    def wake_snoozed(self) -> list[int]:
        """Reopen the conversations whose snooze ended (one indexed UPDATE, on the same clock as the
        claims: every running pipeline does it, and a conversation is woken once, by whichever is first)."""
        now = utcnow()
        # A read first, as for the claims: a write transaction every second would queue for SQLite's lock.
        with self.db.read() as session:
            if not snoozes_due(session, now):
                return []
        with self.db.write() as session:
            woken = wake_snoozed(session, now)
        if woken:
            self.on_events([Event("conversation.status_changed", conversation_id) for conversation_id in woken])
        return woken

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

        A claim is abandoned when its owner's worker lease expired, or when the owner holds no lease
        and the claim's own expiry passed (:func:`postroom.jobs.leases.claim_abandoned`). Those
        already claimed ``max_claims`` times are quarantined instead, with the reason; returns how
        many went back to ``pending``. Safe beside other workers doing the same: on PostgreSQL a row
        another transaction released is no longer ``processing`` when the UPDATE re-reads it.
        """
        now = utcnow()
        expired = (
            RawMessage.status == RawStatus.PROCESSING,
            claim_abandoned(RawMessage.claimed_by, RawMessage.claimed_until, now),
        )
        with self.db.read() as session:
            if session.scalar(select(RawMessage.id).where(*expired).limit(1)) is None:
                return 0
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
        understanding a mail). The raw rows and their connections are read, and every mail parsed,
        before the write transaction begins, so that it holds SQLite's write lock only for writing.
        Should the transaction itself fail, each message is done again alone. Waits for every mail
        of the batch, however long its parsing takes (within its budget).
        """
        return self._process(raw_ids, late_apart=False)

    def _process(self, raw_ids: Sequence[int], *, late_apart: bool) -> dict[int, RawStatus]:
        loaded = self._load(raw_ids)
        parsing = self._parse(loaded)
        if parsing:
            wait(parsing.values(), timeout=self.limits.split_seconds if late_apart else None)
        late: dict[int, Future[Outcome]] = {}
        outcomes: dict[int, RawStatus] = {}
        for raw_id, future in parsing.items():
            if future.done():
                self._take(loaded, raw_id, future.result(), outcomes)
            else:
                late[raw_id] = future
        ready = [raw_id for raw_id in raw_ids if raw_id not in late and raw_id not in outcomes]
        if ready:
            outcomes.update(self._commit(ready, loaded))
        if late:
            with self._late_cond:
                self._late.extend(_Late(raw_id, future, loaded) for raw_id, future in late.items())
                self._late_cond.notify_all()
            outcomes.update(dict.fromkeys(late, RawStatus.PROCESSING))
        return outcomes

    def _take(self, loaded: _Loaded, raw_id: int, outcome: Outcome, outcomes: dict[int, RawStatus]) -> None:
        """Record what parsing a mail gave; a mail the service stopped parsing goes back to the queue."""
        if isinstance(outcome, Prepared):
            loaded.prepared[raw_id] = outcome
        elif outcome.retry:
            self._requeue(raw_id)
            outcomes[raw_id] = RawStatus.PENDING
        else:
            loaded.failures[raw_id] = outcome.reason

    def _late_backlog(self) -> int:
        with self._late_cond:
            return len(self._late)

    def _late_loop(self) -> None:
        """Finish the mails whose parsing outlived their batch, each in its own transaction, as they come."""
        while True:
            with self._late_cond:
                if not self._late:
                    if self._stop.is_set() and not any(t.is_alive() for t in self._threads):
                        return
                    self._late_cond.wait(0.2)
                    continue
                futures = [item.future for item in self._late]
            wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
            with self._late_cond:
                done = [item for item in self._late if item.future.done()]
                self._late = [item for item in self._late if not item.future.done()]
            for item in done:
                try:
                    outcomes: dict[int, RawStatus] = {}
                    self._take(item.loaded, item.raw_id, item.future.result(), outcomes)
                    if item.raw_id not in outcomes:
                        self._commit([item.raw_id], item.loaded)
                except Exception:
                    log.exception("pipeline.late_mail_failed", raw_id=item.raw_id)

    def _commit(self, raw_ids: Sequence[int], loaded: _Loaded) -> dict[int, RawStatus]:
        """The write transaction of parsed mail: the stages, each message in its savepoint, and the outcomes."""
        outcomes: dict[int, RawStatus] = {}
        events: list[Event] = []
        try:
            with self.db.write() as session:
                batch = Batch.open(session)
                contexts: dict[int, Context] = {}
                for raw_id in raw_ids:
                    raw = loaded.raws.get(raw_id)
                    if raw is not None:
                        ctx = self._context(
                            session,
                            batch,
                            raw,
                            loaded.connections.get(raw.connection_id),
                            loaded.prepared.get(raw_id),
                        )
                        ctx.parse_failure = loaded.failures.get(raw_id)
                        contexts[raw_id] = ctx
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
                outcomes.update(self._commit([raw_id], loaded))
            return outcomes
        if events:
            try:
                self.on_events(events)
            except Exception:
                log.exception("pipeline.event_subscriber_failed")
        return outcomes

    def _load(self, raw_ids: Sequence[int]) -> _Loaded:
        """The raw rows and the connections (with mailboxes) they came through, read before the
        write transaction."""
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
        return loaded

    def _parse(self, loaded: _Loaded) -> dict[int, Future[Outcome]]:
        """Start parsing every mail of the batch, outside any transaction: in the parser processes
        (with the budget) or, with none or a batch too small for them, here.

        The transaction needs every mail parsed before it begins: it takes every key its stages will
        lock (a Message-ID, a sender) at once and in order, and it must not hold the write lock while
        a parser works.
        """
        options = {
            raw.id: parse_options(
                loaded.connections.get(raw.connection_id),
                raw.received_at,
                self.services.reply_token_key,
                self.limits.html_limits,
            )
            for raw in loaded.raws.values()
        }
        pool = self._parse_pool
        if pool is not None and len(options) >= self.limits.pool_from_batch:
            data = self._raw_bytes(list(options)) if pool.database_url is None else {}
            works = [Work(raw_id, each, data.get(raw_id, b"") if data else None) for raw_id, each in options.items()]
            # Files are stored by the parser processes only in a store they share (a directory).
            blobs = self.services.blobs if isinstance(self.services.blobs, LocalBlobStore) else None
            return dict(zip(options, pool.submit(works, blobs), strict=True))
        data = self._raw_bytes(list(options))
        parsed: dict[int, Future[Outcome]] = {}
        for raw_id, each in options.items():
            future: Future[Outcome] = Future()
            try:
                # Files are stored by the content stage, as they are for any mail parsed here.
                future.set_result(prepare(data.get(raw_id, b""), each, None))
            except Exception as exc:  # noqa: BLE001 (the parse stage quarantines it with this reason)
                future.set_result(Failed(_error_text(exc)))
            parsed[raw_id] = future
        return parsed

    def _raw_bytes(self, raw_ids: list[int]) -> dict[int, bytes]:
        if not raw_ids:
            return {}
        with self.db.read() as session:
            query = select(RawBody.raw_id, RawBody.data).where(RawBody.raw_id.in_(raw_ids))
            return {raw_id: data for raw_id, data in session.execute(query)}

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
        connection: Connection | None,
        prepared: Prepared | None,
    ) -> Context:
        mailbox = next((b for b in connection.mailboxes if b.id == raw.mailbox_id), None) if connection else None
        ctx = Context(session, self.services, raw, connection, mailbox, batch)
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
    connections: dict[int | None, Connection] = field(default_factory=dict)
    prepared: dict[int, Prepared] = field(default_factory=dict)
    # Why a mail could not be parsed (``Type: message``), for the parse stage to quarantine it.
    failures: dict[int, str] = field(default_factory=dict)


@dataclass(eq=False)
class _Late:
    """A claimed mail whose parsing outlived its batch, with what its batch loaded."""

    raw_id: int
    future: Future[Outcome]
    loaded: _Loaded


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


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().replace("\n", " ")


def _reason(stage_name: str, exc: BaseException | None) -> str:
    """Why a message was quarantined: the stage and the error, on one line."""
    if isinstance(exc, StageError):
        return str(exc)
    if exc is None:
        return f"{stage_name}: unknown error"
    return f"{stage_name}: {_error_text(exc)}"
