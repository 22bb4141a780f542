"""The supervisor: runs the connections this worker holds a lease on, as the database says they should be.

Every ``poll_seconds`` (and at once when woken in-process) it compares what the database asks for
(``enabled``, ``revision``) with what runs here: starts connections, restarts them when their settings
changed or the admin pressed Start again, stops them on Stop or delete, renews leases, and lets go of
connections whose lease another worker took (DESIGN §4). A start that failed for a temporary reason
(server unreachable) is tried again with backoff; one that failed for a permanent reason (password
refused) waits for the admin.
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
            for connection_id in list(self.runners):
                self._stop_runner(connection_id, status=None)

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
            self._start_runner(connection_id, row.revision)

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
        runner = self.runners.pop(connection_id, None)
        self._failed_starts.pop(connection_id, None)
        if runner is not None:
            runner.stop()
        if status is not None:
            set_connection_status(self.db, connection_id, None, status, "")
        if release:
            leases.release(self.db, leases.connection_lease(connection_id), self.worker_id)
