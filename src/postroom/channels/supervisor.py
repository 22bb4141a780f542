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
the others. A disabled connection ends STOPPED whatever order Stop, Start and settings changes came
in: the worker that ran it (or still holds its lease, or finds it left RUNNING by a dead worker)
writes STOPPED and releases the lease once the stopped runner's readers are done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from sqlalchemy import select

from postroom.channels.runner import ConnectionRunner, RunnerPolicy, set_connection_status
from postroom.jobs import leases
from postroom.store.db import Database
from postroom.store.models import Connection, ConnectionStatus, Lease
from postroom.store.secretbox import SecretBox

log = structlog.get_logger(__name__)

_LEASE_PREFIX = leases.connection_lease(0).removesuffix("0")


@dataclass(frozen=True, slots=True)
class SupervisorPolicy:
    poll_seconds: float = 1.0
    lease_seconds: float = 30.0
    restart_first_delay: float = 5.0  # after a temporary start failure
    restart_max_delay: float = 300.0
    # How long a stopped runner's readers get to finish their round before the connection may start
    # again anyway (and how long shutdown waits for them).
    stop_grace: float = 15.0


@dataclass(slots=True)
class _Backoff:
    """Failed starts of one revision of a connection, kept across its retries."""

    revision: int
    failures: int = 0
    retry_at: float = 0.0
    counted: ConnectionRunner | None = field(default=None, repr=False)  # the runner whose failure was counted last


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
        self._failed_starts: dict[int, _Backoff] = {}
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
            held = set(self.runners) | set(self._stopping)
            for connection_id in list(self.runners):
                self._stop_runner(connection_id)
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
                for row in session.execute(
                    select(Connection.id, Connection.enabled, Connection.revision, Connection.status)
                ).all()
            }
            leased = {
                int(name.removeprefix(_LEASE_PREFIX))
                for name in session.scalars(
                    select(Lease.name).where(Lease.owner == self.worker_id, Lease.name.startswith(_LEASE_PREFIX))
                )
                if name.removeprefix(_LEASE_PREFIX).isdigit()
            }
        for connection_id in list(self._stopping):
            self._still_stopping(connection_id)  # forget the stopped runners that are done
        for connection_id in list(self.runners):
            row = wanted.get(connection_id)
            if row is None or not row.enabled:
                self._stop_runner(connection_id)
        for connection_id in leased | set(self._stopping):
            if connection_id not in wanted:
                self._failed_starts.pop(connection_id, None)
                self._let_go(connection_id)  # deleted: nothing to write, only the lease to give back
        for connection_id, row in wanted.items():
            if not row.enabled:
                self._settle_stopped(connection_id, row.revision, row.status, leased)
                continue
            if not leases.acquire(
                self.db, leases.connection_lease(connection_id), self.worker_id, self.policy.lease_seconds
            ):
                if connection_id in self.runners:
                    log.warning("supervisor.lease_lost", connection_id=connection_id)
                    self._stop_runner(connection_id)
                self._failed_starts.pop(connection_id, None)
                continue
            runner = self.runners.get(connection_id)
            if runner is not None and runner.revision == row.revision and not runner.finished.is_set():
                if row.status == ConnectionStatus.RUNNING:
                    # Signed in: a later failure of this revision starts a fresh backoff.
                    self._failed_starts.pop(connection_id, None)
                continue
            if (
                runner is not None
                and runner.revision == row.revision
                and runner.finished.is_set()
                and not self._should_retry(runner)
            ):
                continue
            if runner is not None:
                self._stop_runner(connection_id)
            if self._still_stopping(connection_id):
                continue  # started at a later round, once the previous runner has let go
            self._start_runner(connection_id, row.revision)

    def _settle_stopped(self, connection_id: int, revision: int, status: ConnectionStatus, leased: set[int]) -> None:
        """A disabled connection: make it STOPPED if it is (or was) ours, and give its lease back.

        Ours means: it had a runner here (running, or set aside while still stopping after a restart
        or a new revision), or this worker holds its lease. The API writes STOPPED itself only when
        no worker holds the lease, so whichever order Stop, Start and settings changes came in, the
        holder has to. Every runner of it is signalled by now and writes no status any more, so
        STOPPED is the last word; it is written for the revision read with ``enabled``, so a Start
        pressed meanwhile (which bumps the revision) is never overwritten. A disabled connection
        left RUNNING by a worker that died (no live lease) is taken over here just long enough to
        say STOPPED.
        """
        self._failed_starts.pop(connection_id, None)
        stopping = self._still_stopping(connection_id)
        ours = stopping or connection_id in leased
        if not ours and status != ConnectionStatus.STOPPED:
            ours = leases.acquire(
                self.db, leases.connection_lease(connection_id), self.worker_id, self.policy.lease_seconds
            )
        if not ours:
            return
        settled = status == ConnectionStatus.STOPPED or set_connection_status(
            self.db, connection_id, revision, ConnectionStatus.STOPPED, ""
        )
        if stopping:
            # Keep the lease until its readers are done: a Start pressed now must not let another
            # worker read the same mailboxes while ours still are.
            leases.acquire(self.db, leases.connection_lease(connection_id), self.worker_id, self.policy.lease_seconds)
        elif settled:
            leases.release(self.db, leases.connection_lease(connection_id), self.worker_id)
        # Not settled: the revision moved on since we read it; the next round looks again.

    def _let_go(self, connection_id: int) -> None:
        """Release the lease of a connection that is gone, once its stopped runners are done."""
        if not self._still_stopping(connection_id):
            leases.release(self.db, leases.connection_lease(connection_id), self.worker_id)

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
        """Whether the start that failed is due to be tried again: 5 s, then doubling up to 300 s.

        The count of failures lives as long as the revision: each retry's failure doubles the wait,
        a new revision (saved settings, Start) or a start that got to RUNNING begins again at the
        first delay. Between tries the connection keeps the ERROR (with its reason) that the failed
        runner wrote; the next runner writes STARTING only when it begins its attempt.
        """
        error = runner.startup_error
        if error is None or not error.temporary:
            # Stopped on its own for good (or failed permanently): wait for the admin's next Start.
            return False
        backoff = self._failed_starts.get(runner.connection_id)
        if backoff is None or backoff.revision != runner.revision:
            backoff = self._failed_starts[runner.connection_id] = _Backoff(runner.revision)
        now = time.monotonic()
        if backoff.counted is not runner:
            backoff.counted = runner
            backoff.failures += 1
            delay = min(self.policy.restart_max_delay, self.policy.restart_first_delay * 2 ** (backoff.failures - 1))
            backoff.retry_at = now + delay
            log.info(
                "supervisor.start_retry_scheduled",
                connection_id=runner.connection_id,
                failures=backoff.failures,
                delay=delay,
                error=str(error),
            )
        return now >= backoff.retry_at

    def _start_runner(self, connection_id: int, revision: int) -> None:
        previous = self._failed_starts.get(connection_id)
        if previous is not None and previous.revision != revision:
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

    def _stop_runner(self, connection_id: int) -> None:
        """Signal the runner and set it aside (never wait for it here: the caller holds the lock).

        After this the runner writes no status; the caller decides what the connection shows (STOPPED
        for a disabled one, written in ``_settle_stopped``) and when its lease goes back.
        """
        runner = self.runners.pop(connection_id, None)
        if runner is None:
            return
        runner.signal_stop()
        if not runner.quiet:
            give_up_at = time.monotonic() + self.policy.stop_grace
            self._stopping.setdefault(connection_id, []).append((runner, give_up_at))
