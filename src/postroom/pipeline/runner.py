"""The pipeline runner: claim stored raw mail → run the stages → commit, one transaction per message.

Workers on any number of machines can run side by side: claims are rows with an owner and an expiry
(``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's single writer makes a plain select safe).
A stage that raises quarantines the message with its reason; :meth:`PipelineRunner.replay` runs
quarantined messages again.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, selectinload

from postroom.errors import StageError
from postroom.pipeline.context import Context, Event, PipelineServices, Stage
from postroom.pipeline.default import DEFAULT_STAGES
from postroom.store.db import Database
from postroom.store.models import Connection, RawBody, RawMessage, RawStatus, utcnow

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RunnerLimits:
    claim_batch: int = 32  # raw messages claimed per transaction
    claim_seconds: float = 300.0  # a claim older than this belongs to a dead worker and is released
    poll_seconds: float = 1.0  # look for work stored by other processes this often


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

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self.release_expired_claims()
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

    def wake(self) -> None:
        """New raw mail was stored in this process: start on it now rather than at the next poll."""
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify()

    def _loop(self) -> None:
        while not self._stop.is_set():
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
                        claimed_by=self.worker_id,
                        claimed_until=utcnow() + timedelta(seconds=self.limits.claim_seconds),
                    )
                )
        return ids

    def release_expired_claims(self) -> int:
        """Give back messages claimed by workers that died mid-way, so that another worker finishes them."""
        with self.db.write() as session:
            result = session.execute(
                update(RawMessage)
                .where(RawMessage.status == RawStatus.PROCESSING, RawMessage.claimed_until < utcnow())
                .values(status=RawStatus.PENDING, claimed_by=None, claimed_until=None)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    # -- processing ----------------------------------------------------------------------------

    def process(self, raw_id: int) -> RawStatus:
        """Run every stage on one raw message in its own transaction; quarantine it when a stage fails."""
        return self.process_batch([raw_id])[raw_id]

    def process_batch(self, raw_ids: Sequence[int]) -> dict[int, RawStatus]:
        """Run the stages on claimed raw messages, each inside a savepoint of one shared transaction.

        Every message is still all-or-nothing (its savepoint), and a failing one is quarantined
        without touching the others; sharing the commit and the loaded connections is what makes
        the pipeline fast (a commit costs more than understanding a mail). Should the transaction
        itself fail, each message is done again alone.
        """
        outcomes: dict[int, RawStatus] = {}
        events: list[Event] = []
        try:
            with self.db.write() as session:
                connections: dict[int | None, Connection | None] = {None: None}
                for raw_id in raw_ids:
                    outcome, produced = self._run_stages(session, raw_id, connections)
                    outcomes[raw_id] = outcome
                    events.extend(produced)
        except Exception:
            if len(raw_ids) == 1:
                log.exception("pipeline.transaction_failed", raw_id=raw_ids[0])
                self._quarantine(raw_ids[0], "commit", sys.exc_info()[1])
                return {raw_ids[0]: RawStatus.QUARANTINED}
            log.warning("pipeline.batch_failed_retrying_one_by_one", size=len(raw_ids))
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

    def _run_stages(
        self, session: Session, raw_id: int, connections: dict[int | None, Connection | None]
    ) -> tuple[RawStatus, list[Event]]:
        raw = session.get(RawMessage, raw_id)
        if raw is None:
            return RawStatus.DONE, []
        if raw.connection_id not in connections:
            connections[raw.connection_id] = session.scalar(
                select(Connection).where(Connection.id == raw.connection_id).options(selectinload(Connection.mailboxes))
            )
        connection = connections[raw.connection_id]
        mailbox = next((b for b in connection.mailboxes if b.id == raw.mailbox_id), None) if connection else None
        body = session.get(RawBody, raw_id)
        current = "load"
        try:
            with session.begin_nested():
                ctx = Context(session, self.services, raw, body.data if body else b"", connection, mailbox)
                for stage in self.stages:
                    current = stage.name
                    stage(ctx)
                    if ctx.stopped:
                        break
                self._settle(raw, ctx.outcome, ctx.reason)
        except Exception as exc:  # noqa: BLE001 (whatever a stage raises quarantines; the queue goes on)
            self._settle(raw, RawStatus.QUARANTINED, _reason(current, exc))
            log.warning("pipeline.quarantined", raw_id=raw_id, reason=raw.error)
            return RawStatus.QUARANTINED, []
        return ctx.outcome, ctx.events

    @staticmethod
    def _settle(raw: RawMessage, outcome: RawStatus, reason: str) -> None:
        raw.status = outcome
        raw.error = reason
        raw.attempts += 1
        raw.claimed_by = None
        raw.claimed_until = None
        raw.processed_at = utcnow()

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


def _reason(stage_name: str, exc: BaseException | None) -> str:
    """Why a message was quarantined: the stage and the error, on one line."""
    if isinstance(exc, StageError):
        return str(exc)
    if exc is None:
        return f"{stage_name}: unknown error"
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip().replace("\n", " ")
    return f"{stage_name}: {detail}"
