"""One running connection: sign in to every mailbox, then read them until stopped.

Start signs in to every mailbox over IMAP and SMTP: status STARTING, then RUNNING, or
ERROR with a message naming the failing account and protocol. While running, lost connections are
retried with backoff by the sources; after ``error_after_failures`` failures in a row (or at once for
a permanent error such as a refused password) the connection shows ERROR with the reason, and goes
back to RUNNING as soon as its mailboxes are read again.

Once stopped (Stop, delete, a new revision, a lost lease) a runner never writes a status again: the
supervisor writes STOPPED right after signalling it, and a sign-in that was hanging when the admin
pressed Stop must not turn that into ERROR when it finally times out. Until its mailbox readers are
started nothing it does stores mail, so a runner stopped while signing in is let go at once, and its
thread ends on its own when the socket gives up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from postroom.channels.logs import ConnectionEventLog
from postroom.channels.plan import ConnectionPlan, plan_connection
from postroom.errors import ChannelError, PostroomError
from postroom.sources.base import SourceState, SourceStatus
from postroom.store.db import Database
from postroom.store.models import Connection, ConnectionStatus, utcnow
from postroom.store.secretbox import SecretBox

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RunnerPolicy:
    error_after_failures: int = 3  # consecutive failed reconnects before a running connection shows ERROR


def set_connection_status(
    db: Database, connection_id: int, revision: int | None, status: ConnectionStatus, message: str
) -> bool:
    """Record a status; ignored when the connection has moved on to another revision meanwhile."""
    with db.write() as session:
        query = update(Connection).where(Connection.id == connection_id)
        if revision is not None:
            query = query.where(Connection.revision == revision)
        result = session.execute(query.values(status=status, status_message=message, status_changed_at=utcnow()))
    return bool(getattr(result, "rowcount", 0))


class ConnectionRunner:
    """Runs one connection at one revision of its settings, in threads of its own."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        connection_id: int,
        revision: int,
        *,
        on_stored: Callable[[int], None],
        policy: RunnerPolicy = RunnerPolicy(),
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.connection_id = connection_id
        self.revision = revision
        self.on_stored = on_stored
        self.policy = policy
        self.stop_event = threading.Event()
        self.startup_error: PostroomError | None = None
        self.finished = threading.Event()
        self._thread: threading.Thread | None = None
        self._sources: list[threading.Thread] = []
        self._source_status: dict[str, SourceStatus] = {}
        self._status_lock = threading.Lock()
        # Held while checking stop_event and writing a status or starting the readers, and while
        # signalling stop: after signal_stop() returns, neither can happen any more.
        self._write_lock = threading.Lock()
        self._log: ConnectionEventLog | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=f"connection-{self.connection_id}", daemon=True)
        self._thread.start()

    def signal_stop(self) -> None:
        """Ask the runner to stop; once this returns it writes no status and starts no reader."""
        with self._write_lock:
            self.stop_event.set()

    @property
    def quiet(self) -> bool:
        """Stopped, and storing no more mail: finished, or stopped before its readers started (a
        sign-in still hanging is left to time out in its daemon thread)."""
        if self.finished.is_set():
            return True
        with self._write_lock:
            return self.stop_event.is_set() and not any(t.is_alive() for t in self._sources)

    def wait_quiet(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.quiet:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.finished.wait(min(remaining, 0.05))
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """Signal stop and wait (at most ``timeout``) until the runner stores no more mail."""
        self.signal_stop()
        return self.wait_quiet(timeout)

    def _set_status(self, status: ConnectionStatus, message: str) -> bool:
        """Record this runner's view of the connection, unless it was stopped or superseded meanwhile."""
        with self._write_lock:
            if self.stop_event.is_set():
                return False
            return set_connection_status(self.db, self.connection_id, self.revision, status, message)

    # -- the connection's main thread ----------------------------------------------------------

    def _main(self) -> None:
        try:
            self._run()
        except Exception as exc:
            # A bug, not a mail-server problem: show it on the connection rather than die silently.
            log.exception("connection.crashed", connection_id=self.connection_id)
            self.startup_error = PostroomError(f"internal error: {type(exc).__name__}: {exc}")
            self._set_status(ConnectionStatus.ERROR, str(self.startup_error))
        finally:
            self.finished.set()

    def _run(self) -> None:
        with self.db.read() as session:
            connection = session.scalar(
                select(Connection)
                .where(Connection.id == self.connection_id)
                .options(selectinload(Connection.mailboxes))
            )
            if connection is None or connection.revision != self.revision:
                return
            plan = self._plan(connection)
        try:
            self._run_plan(plan)
        finally:
            plan.close()

    def _run_plan(self, plan: ConnectionPlan) -> None:
        self._log = events = ConnectionEventLog(self.db, self.connection_id, plan.secrets)
        if not self._set_status(ConnectionStatus.STARTING, ""):
            return
        events("info", "starting", f"starting: signing in to {plan.describe()}")
        sources = [incoming.build(events, self._status_callback(incoming.address)) for incoming in plan.incoming]
        try:
            # The sources' check_login() log their own connect and sign-in lines.
            for source in sources:
                source.check_login()
            for outgoing in plan.outgoing:
                outgoing.check()
                events("info", "signed_in", f"{outgoing.protocol} {outgoing.address}: signed in to {outgoing.endpoint}")
        except ChannelError as exc:
            self.startup_error = exc
            if self.stop_event.is_set():
                # Stopped while signing in: the failure of a sign-in nobody waits for is no error.
                log.info("connection.start_abandoned", connection_id=self.connection_id, error=str(exc))
                return
            events("error", "start_failed", str(exc))
            self._set_status(ConnectionStatus.ERROR, str(exc))
            return
        with self._write_lock:
            if self.stop_event.is_set():
                return
            set_connection_status(self.db, self.connection_id, self.revision, ConnectionStatus.RUNNING, "")
            events("info", "running", "running" if sources else f"running: mail arrives by {plan.mode}")
            for incoming, source in zip(plan.incoming, sources, strict=True):
                thread = threading.Thread(
                    target=source.run,
                    args=(self.stop_event,),
                    name=f"{incoming.protocol.lower()}-{incoming.address}",
                    daemon=True,
                )
                thread.start()
                self._sources.append(thread)
        self.stop_event.wait()
        for thread in self._sources:
            thread.join(15)
        events("info", "stopped", "stopped")

    def _plan(self, connection: Connection) -> ConnectionPlan:
        return plan_connection(
            connection,
            self.secrets,
            db=self.db,
            on_stored=self.on_stored,
        )

    # -- status from the sources ---------------------------------------------------------------

    def _status_callback(self, address: str) -> Callable[[SourceStatus], None]:
        def report(status: SourceStatus) -> None:
            with self._status_lock:
                self._source_status[address] = status
                self._publish_status()

        return report

    def _publish_status(self) -> None:
        failing = [
            s
            for s in self._source_status.values()
            if s.state is SourceState.RETRYING
            and s.error is not None
            and (not s.error.temporary or s.failures >= self.policy.error_after_failures)
        ]
        if failing:
            worst = failing[0]
            message = f"{worst.error} (failed {worst.failures} time(s) in a row; retrying)"
            self._set_status(ConnectionStatus.ERROR, message)
        elif all(s.state is SourceState.RUNNING for s in self._source_status.values()):
            self._set_status(ConnectionStatus.RUNNING, "")
