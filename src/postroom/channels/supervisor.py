"""The supervisor: runs the connections this worker holds a lease on, as the database says they should be.

Every ``poll_seconds`` (and at once when woken in-process) it compares what the database asks for
(``enabled``, ``revision``) with what runs here: starts connections, restarts them when their settings
changed or the admin pressed Start again, stops them on Stop or delete, renews leases, and lets go of
connections whose lease another worker took (DESIGN §4). A start that failed for a temporary reason
(server unreachable) is tried again with backoff; one that failed for a permanent reason (password
refused) waits for the admin.

Stopping a runner never blocks the supervisor: under its lock the runner is only signalled (after
which it writes no status, so STOPPED is written at once) and set aside; a runner of the same
connection starts again only once the stopped one stores no more mail (or after ``stop_grace``).
Nothing waits for a runner while holding the lock, so one connection's hung server does not delay
the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import select

from postroom.channels.runner import ConnectionRunner, RunnerPolicy, set_connection_status
from postroom.jobs import leases
from postroom.store.db import Database
from postroom.store.models import Connection, ConnectionStatus
from postroom.store.secretbox import SecretBox

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SupervisorPolicy:
    poll_seconds: float = 1.0
    lease_seconds: float = 30.0
    restart_first_delay: float = 5.0  # after a temporary start failure
    restart_max_delay: float = 300.0
    # How long a stopped runner's readers get to finish their round before the connection may start
    # again anyway (and how long shutdown waits for them).
    stop_grace: float = 15.0


class Supervisor:
    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        *,
        worker_id: str,
        on_stored: Callable[[int], None],
        policy: SupervisorPolicy = SupervisorPolicy(),
        runner_policy: RunnerPolicy = RunnerPolicy(),
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.worker_id = worker_id
        self.on_stored = on_stored
        self.policy = policy
        self.runner_policy = runner_policy
        self.runners: dict[int, ConnectionRunner] = {}
        # Runners signalled to stop whose readers may still be finishing: id → [(runner, give up at)].
        self._stopping: dict[int, list[tuple[ConnectionRunner, float]]] = {}
        self._failed_starts: dict[int, tuple[int, int, float]] = {}  # id → (revision, failures, retry_at)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        with self._lock:
            held = list(self.runners)
            for connection_id in held:
                self._stop_runner(connection_id, status=None, release=False)
            stopping = [runner for runners in self._stopping.values() for runner, _ in runners]
            self._stopping.clear()
        # Outside the lock, all at once: each runner had its signal already.
        deadline = time.monotonic() + self.policy.stop_grace
        for runner in stopping:
            if not runner.wait_quiet(max(0.0, deadline - time.monotonic())):
                log.warning("supervisor.runner_did_not_stop", connection_id=runner.connection_id)
        # Only now may another worker take the connections over: our readers are done with them.
        for connection_id in held:
            leases.release(self.db, leases.connection_lease(connection_id), self.worker_id)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                with self._lock:
                    self.reconcile()
            except Exception:
                log.exception("supervisor.reconcile_failed")
            self._wake.wait(self.policy.poll_seconds)

    def reconcile(self) -> None:
        with self.db.read() as session:
            wanted = {
                row.id: row
                for row in session.execute(select(Connection.id, Connection.enabled, Connection.revision)).all()
            }
        for connection_id in list(self._stopping):
            self._still_stopping(connection_id)  # forget the stopped runners that are done
        for connection_id in list(self.runners):
            row = wanted.get(connection_id)
            if row is None or not row.enabled:
                self._stop_runner(connection_id, status=ConnectionStatus.STOPPED if row is not None else None)
        for connection_id, row in wanted.items():
            if not row.enabled:
                continue
            if not leases.acquire(
                self.db, leases.connection_lease(connection_id), self.worker_id, self.policy.lease_seconds
            ):
                if connection_id in self.runners:
                    log.warning("supervisor.lease_lost", connection_id=connection_id)
                    self._stop_runner(connection_id, status=None, release=False)
                continue
            runner = self.runners.get(connection_id)
            if runner is not None and runner.revision == row.revision and not runner.finished.is_set():
                continue
            if (
                runner is not None
                and runner.revision == row.revision
                and runner.finished.is_set()
                and not self._should_retry(runner)
            ):
                continue
            if runner is not None:
                self._stop_runner(connection_id, status=None, release=False)
            if self._still_stopping(connection_id):
                continue  # started at a later round, once the previous runner has let go
            self._start_runner(connection_id, row.revision)

    def _still_stopping(self, connection_id: int) -> bool:
        """Whether a stopped runner of this connection may still store mail (two readers of one
        mailbox would fetch the same mail twice); forgets those that are done or out of time."""
        now = time.monotonic()
        left = [
            (runner, give_up_at)
            for runner, give_up_at in self._stopping.get(connection_id, [])
            if not runner.quiet and now < give_up_at
        ]
        for runner, give_up_at in self._stopping.get(connection_id, []):
            if not runner.quiet and now >= give_up_at:
                log.warning("supervisor.runner_did_not_stop", connection_id=connection_id)
        if left:
            self._stopping[connection_id] = left
        else:
            self._stopping.pop(connection_id, None)
        return bool(left)

    def _should_retry(self, runner: ConnectionRunner) -> bool:
        error = runner.startup_error
        if error is None or not error.temporary:
            # Stopped on its own for good (or failed permanently): wait for the admin's next Start.
            return False
        revision, failures, retry_at = self._failed_starts.get(runner.connection_id, (runner.revision, 0, 0.0))
        now = time.monotonic()
        if retry_at == 0.0 or revision != runner.revision:
            failures += 1
            delay = min(self.policy.restart_max_delay, self.policy.restart_first_delay * 2 ** (failures - 1))
            self._failed_starts[runner.connection_id] = (runner.revision, failures, now + delay)
            return False
        if now < retry_at:
            return False
        self._failed_starts[runner.connection_id] = (runner.revision, failures, 0.0)
        return True

    def _start_runner(self, connection_id: int, revision: int) -> None:
        previous = self._failed_starts.get(connection_id)
        if previous is not None and previous[0] != revision:
            del self._failed_starts[connection_id]
        runner = ConnectionRunner(
            self.db,
            self.secrets,
            connection_id,
            revision,
            on_stored=self.on_stored,
            policy=self.runner_policy,
        )
        self.runners[connection_id] = runner
        runner.start()

    def _stop_runner(self, connection_id: int, *, status: ConnectionStatus | None, release: bool = True) -> None:
        """Signal the runner and set it aside (never wait for it here: the caller holds the lock)."""
        runner = self.runners.pop(connection_id, None)
        self._failed_starts.pop(connection_id, None)
        if runner is not None:
            # After this the runner writes no status: the one written below is the last word.
            runner.signal_stop()
            if not runner.quiet:
                give_up_at = time.monotonic() + self.policy.stop_grace
                self._stopping.setdefault(connection_id, []).append((runner, give_up_at))
        if status is not None:
            set_connection_status(self.db, connection_id, None, status, "")
        if release:
            leases.release(self.db, leases.connection_lease(connection_id), self.worker_id)
