"""Parsing ahead of the transaction, in parser processes that can be killed.

Understanding a mail costs about a millisecond of pure Python; the database work after it, less
than half that. In one process the GIL runs them one after the other, so the runner hands the
parsing of every batch (and the writing of its attachment files) to processes while its threads do
the database work. A process reads the raw bytes from the database itself: sending them through a
pipe cost the parent more than its database work. An in-memory SQLite database cannot be opened by
another process, so then the bytes are sent.

Each mail has a time budget. The expensive parts of parsing run in C (nh3, lxml), which no thread
can interrupt, so a mail over its budget is stopped the only way that works: its process is killed
(and a new one started). The mail is then parsed again in the degraded mode of
:func:`postroom.mail.parse.parse_degraded`, bounded by construction, under the same budget; a mail
that overruns that too (or keeps killing its process) comes back as :class:`Failed`, and the
``parse`` stage quarantines it with the reason. Nothing here decides anything else.

The pool is ours rather than a ``ProcessPoolExecutor``, which can neither kill one task nor tell
which mail a worker is on. A dispatcher thread hands chunks of mail to idle processes; a process
answers once per mail, in order, so the mail it is on (and since when) is always known. When every
process is busy with mail that has run long, one more is started (up to ``max_processes``), so that
a hostile mail costs one process for its budget, not the queue behind it.

Parser processes die with the service: they are started by a fork server (see
:func:`_start_method`), which exits when the service's process does; each asks the kernel to kill
it when its parent (the fork server) exits (``PR_SET_PDEATHSIG`` on Linux), exits when its pipe to
the service reaches EOF, and has a watchdog thread that checks the service's pid once a second.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

import structlog
from sqlalchemy import select

from postroom.mail.parse import ParseOptions
from postroom.pipeline.parse import Prepared, prepare
from postroom.store.blobs import BlobStore
from postroom.store.db import Database
from postroom.store.models import RawBody

log = structlog.get_logger(__name__)

# Mails per task: enough to spread the cost of a round trip, few enough to share a batch out.
CHUNK = 8

# A mail running longer than this makes its process "slow": with every process slow, one more starts.
SLOW_SECONDS = 0.5
# A process that has not said it is ready after this long is stuck (or its fork server is): it is killed
# and another started, so that mail never waits on a process that will not come.
START_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Work:
    """One mail to parse: by raw id (the process reads the bytes) or with its bytes."""

    raw_id: int
    options: ParseOptions
    data: bytes | None = None
    # Parse in the degraded mode, for this reason (the mail went over its budget before).
    degraded: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """Why a mail could not be parsed: the error (as ``Type: message``), for the quarantine reason.

    ``retry``: nothing is wrong with the mail (the service stopped while parsing it); it goes back to
    the queue.
    """

    reason: str
    retry: bool = False


Outcome = Prepared | Failed


# -- in the parser process ---------------------------------------------------------------------

# What a parser process sends once it is ready for work.
_READY = "ready"

# The database a parser process reads raw bytes from, opened once.
_worker_databases: dict[str, Database] = {}


def _prepare_one(data: bytes, work: Work, blobs: BlobStore | None) -> Outcome:
    try:
        return prepare(data, work.options, blobs, degraded=work.degraded)
    except Exception as exc:  # noqa: BLE001 (the parse stage quarantines the mail with this reason)
        return Failed("".join(traceback.format_exception_only(type(exc), exc)).strip().replace("\n", " "))


def _read_bodies(database_url: str, raw_ids: list[int]) -> dict[int, bytes]:
    db = _worker_databases.get(database_url)
    if db is None:
        db = _worker_databases[database_url] = Database(database_url)
    with db.read() as session:
        query = select(RawBody.raw_id, RawBody.data).where(RawBody.raw_id.in_(raw_ids))
        return {raw_id: body for raw_id, body in session.execute(query)}


def _die_with_parent(service_pid: int) -> None:
    """Make sure this process does not outlive the service (module docstring)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(service_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parser-watchdog", daemon=True).start()


def serve(conn: Connection, service_pid: int, database_url: str | None) -> None:
    """A parser process: take chunks of work from ``conn`` and answer each mail's outcome in order."""
    # The service handles Ctrl-C (the signal reaches the whole process group); this process is
    # stopped by its pipe closing or, at worst, killed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(service_pid)
    # Connect before saying ready: the budget of the first mail is not spent on starting up.
    if database_url:
        with contextlib.suppress(Exception):
            _read_bodies(database_url, [0])
    try:
        conn.send(_READY)
    except OSError:
        return
    while True:
        try:
            task: tuple[str | None, list[Work], BlobStore | None] = conn.recv()
        except (EOFError, OSError):
            return
        database_url, chunk, blobs = task
        wanted = [work.raw_id for work in chunk if work.data is None]
        try:
            data = _read_bodies(database_url, wanted) if wanted and database_url else {}
        except Exception as exc:  # noqa: BLE001 (reported per mail)
            reason = f"reading the raw message failed: {exc}"
            for _ in chunk:
                conn.send(Failed(reason))
            continue
        for work in chunk:
            body = work.data if work.data is not None else data.get(work.raw_id, b"")
            try:
                conn.send(_prepare_one(body, work, blobs))
            except (BrokenPipeError, OSError):
                return


def _start_method() -> multiprocessing.context.ForkServerContext | multiprocessing.context.SpawnContext:
    """How parser processes start: never by forking this process, which runs threads (IMAP sources,
    database pools) whose locks a forked child could inherit held.

    A fork server is a clean single-threaded process that imports this module once and forks each
    parser process from itself; spawning instead would import the parser and its dependencies
    (0.6 s of CPU) in every process, and again for each one started after a kill. The fork server
    exits when the service's process does (its end of a pipe from the service reaches EOF).
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        # The renderer's modules too: they are imported on first use, which a new process would
        # otherwise pay for within its first mail's budget.
        # The database drivers as well (a missing one is skipped).
        context.set_forkserver_preload(
            [__name__, "inscriptis", "lxml.html", "psycopg", "sqlalchemy.dialects.postgresql.psycopg"]
        )
        return context
    return multiprocessing.get_context("spawn")


# -- in the service -----------------------------------------------------------------------------


@dataclass(eq=False)
class _Task:
    database_url: str | None
    works: list[Work]
    futures: list[Future[Outcome]]
    blobs: BlobStore | None


@dataclass(eq=False)
class _Process:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    ready: bool = False  # said so; work is only given to a ready process
    task: _Task | None = None
    done: int = 0  # mails of the task answered
    started: float = 0.0  # time.monotonic() when the current mail began
    spawned: float = field(default_factory=time.monotonic)  # when the process was started


@dataclass(eq=False)
class _State:
    queue: deque[_Task] = field(default_factory=deque)
    processes: list[_Process] = field(default_factory=list)


class ParsePool:
    """Parser processes for one database: at least ``processes`` once used, at most ``max_processes``.

    ``database_url`` None means the processes cannot open the database (in-memory SQLite): the
    bytes of each mail are sent with it.
    """

    def __init__(
        self,
        processes: int,
        database_url: str | None,
        *,
        budget_seconds: float = 10.0,
        max_processes: int | None = None,
    ) -> None:
        self.processes = max(1, processes)
        self.max_processes = max(self.processes, max_processes or 2 * self.processes)
        self.database_url = database_url
        self.budget_seconds = budget_seconds
        self.killed = 0  # processes killed over a budget (for tests and metrics)
        self._state = _State()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._context: multiprocessing.context.ForkServerContext | multiprocessing.context.SpawnContext | None = None

    # -- the runner's side ----------------------------------------------------------------------

    def submit(self, works: Sequence[Work], blobs: BlobStore | None) -> list[Future[Outcome]]:
        """Parse these mails; one future per mail, in order. ``blobs`` None: files are not stored here."""
        futures: list[Future[Outcome]] = [Future() for _ in works]
        if not works:
            return futures
        with self._lock:
            if self._closed:
                for future in futures:
                    future.set_result(Failed("the parser pool is closed", retry=True))
                return futures
            for start in range(0, len(works), CHUNK):
                chunk = list(works[start : start + CHUNK])
                url = self.database_url if any(work.data is None for work in chunk) else None
                self._state.queue.append(_Task(url, chunk, futures[start : start + CHUNK], blobs))
            if self._thread is None:
                self._thread = threading.Thread(target=self._dispatch, name="parse-pool", daemon=True)
                self._thread.start()
        self._wake_w.send_bytes(b"")
        return futures

    def warm(self) -> None:
        """Start the fork server and the parser processes now, in the background: the fork server
        imports the parser (a second of CPU), which the first mail after a start would otherwise wait
        for, and a worker that claimed mail before it could parse any would hold it for nothing."""

        def start() -> None:
            context = _start_method()
            if context.get_start_method() == "forkserver":
                with contextlib.suppress(Exception):
                    multiprocessing.forkserver.ensure_running()
            self.start_processes()

        threading.Thread(target=start, name="parse-pool-warm", daemon=True).start()

    def start_processes(self) -> None:
        """Start the regular parser processes, if none runs yet (they say when they are ready)."""
        with self._lock:
            if self._closed or self._state.processes:
                return
            while len(self._state.processes) < self.processes and self._start() is not None:
                pass
            if self._thread is None:
                self._thread = threading.Thread(target=self._dispatch, name="parse-pool", daemon=True)
                self._thread.start()
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b"")

    def ready(self) -> bool:
        """Whether a parser process is ready for work (or the pool is closed: nothing to wait for)."""
        with self._lock:
            return self._closed or any(p.ready for p in self._state.processes)

    def pids(self) -> list[int]:
        with self._lock:
            return [p.process.pid for p in self._state.processes if p.process.pid is not None]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            thread = self._thread
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b"")
        if thread is not None:
            thread.join(10)

    # -- the dispatcher thread ------------------------------------------------------------------

    def _dispatch(self) -> None:
        state = self._state
        try:
            while True:
                with self._lock:
                    if self._closed:
                        break
                    self._assign()
                    busy = [p for p in state.processes if p.task is not None]
                    starting = [p for p in state.processes if not p.ready]
                now = time.monotonic()
                timeout = min((p.started + self.budget_seconds - now for p in busy), default=1.0)
                if any(p.task is not None for p in busy) and state.queue:
                    # Waiting work may be worth another process once a busy one turns slow.
                    timeout = min(timeout, max(0.0, min(p.started for p in busy) + SLOW_SECONDS - now))
                ready = wait([self._wake_r, *(p.conn for p in busy + starting)], max(0.0, timeout))
                for conn in ready:
                    if conn is self._wake_r:
                        with contextlib.suppress(EOFError, OSError):
                            while self._wake_r.poll():
                                self._wake_r.recv_bytes()
                        continue
                    found = next(p for p in busy + starting if p.conn is conn)
                    if found.ready:
                        self._receive(found)
                    else:
                        self._hello(found)
                now = time.monotonic()
                for proc in busy:
                    if proc.task is not None and now - proc.started > self.budget_seconds:
                        self._over_budget(proc)
                for proc in starting:
                    if not proc.ready and now - proc.spawned > START_SECONDS:
                        log.warning("pipeline.parse_process_start_timeout", seconds=START_SECONDS)
                        with self._lock:
                            self._discard(proc)
        except Exception:
            log.exception("pipeline.parse_pool_failed")
        finally:
            self._shutdown()

    def _assign(self) -> None:
        """Give queued chunks to idle processes, starting processes as allowed (holds ``_lock``)."""
        state = self._state
        now = time.monotonic()
        while state.queue:
            idle = next((p for p in state.processes if p.ready and p.task is None), None)
            if idle is None:
                if any(not p.ready for p in state.processes):
                    return  # one is starting: the work goes to it when it is ready
                busy_all_slow = all(now - p.started > SLOW_SECONDS for p in state.processes)
                room = len(state.processes) < self.processes or (
                    busy_all_slow and len(state.processes) < self.max_processes
                )
                if not room:
                    return
                # The first time, every regular process at once: a mail that turns out slow should
                # find the next one ready, not waiting for a process to start.
                self._start()
                while len(state.processes) < self.processes and self._start() is not None:
                    pass
                return
            task = state.queue.popleft()
            try:
                idle.conn.send((task.database_url, task.works, task.blobs))
            except (OSError, ValueError) as exc:
                log.warning("pipeline.parse_process_lost", error=str(exc))
                state.queue.appendleft(task)
                self._discard(idle)
                continue
            idle.task, idle.done, idle.started = task, 0, now

    def _start(self) -> _Process | None:
        if self._context is None:
            self._context = _start_method()
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=serve, args=(child, os.getpid(), self.database_url), name="postroom-parser", daemon=True
        )
        try:
            process.start()
        except Exception:
            log.exception("pipeline.parse_process_start_failed")
            parent.close()
            child.close()
            return None
        child.close()
        found = _Process(process, parent)
        self._state.processes.append(found)
        return found

    def _hello(self, proc: _Process) -> None:
        try:
            proc.conn.recv()
        except (EOFError, OSError):
            log.warning("pipeline.parse_process_died_starting")
            with self._lock:
                self._discard(proc)
            return
        proc.ready = True

    def _receive(self, proc: _Process) -> None:
        task = proc.task
        assert task is not None
        try:
            outcome: Outcome = proc.conn.recv()
        except (EOFError, OSError):
            # The process died (killed from outside, out of memory, a crash in C) on this mail.
            log.warning("pipeline.parse_process_died", raw_id=task.works[proc.done].raw_id)
            with self._lock:
                self._lost(proc, "the parser process died while parsing it")
            return
        task.futures[proc.done].set_result(outcome)
        proc.done += 1
        proc.started = time.monotonic()
        if proc.done == len(task.works):
            proc.task = None

    def _over_budget(self, proc: _Process) -> None:
        task = proc.task
        assert task is not None
        work = task.works[proc.done]
        log.warning(
            "pipeline.parse_over_budget", raw_id=work.raw_id, budget=self.budget_seconds, degraded=work.degraded
        )
        self.killed += 1
        with self._lock:
            self._lost(proc, f"parsing took longer than its budget of {self.budget_seconds:g} s")

    def _lost(self, proc: _Process, reason: str) -> None:
        """The mail ``proc`` was on is parsed again degraded (or fails); the rest of its chunk is queued again."""
        task = proc.task
        assert task is not None
        self._discard(proc)
        work, future = task.works[proc.done], task.futures[proc.done]
        if work.degraded is not None:
            future.set_result(Failed(f"{work.degraded}, and the degraded parse failed too: {reason}"))
        else:
            again = Work(work.raw_id, work.options, work.data, degraded=reason)
            self._state.queue.appendleft(_Task(task.database_url, [again], [future], task.blobs))
        rest = slice(proc.done + 1, len(task.works))
        if task.works[rest]:
            self._state.queue.appendleft(_Task(task.database_url, task.works[rest], task.futures[rest], task.blobs))

    def _discard(self, proc: _Process) -> None:
        """Kill a process and forget it."""
        with contextlib.suppress(ValueError, AttributeError, OSError):
            proc.process.kill()
        proc.process.join(5)
        with contextlib.suppress(OSError):
            proc.conn.close()
        with contextlib.suppress(ValueError):
            self._state.processes.remove(proc)
        proc.task = None

    def _shutdown(self) -> None:
        with self._lock:
            self._closed = True
            processes, self._state.processes = list(self._state.processes), []
            queued, self._state.queue = list(self._state.queue), deque()
        for proc in processes:
            if proc.task is not None:
                for future in proc.task.futures[proc.done :]:
                    if not future.done():
                        future.set_result(Failed("the service stopped while parsing it", retry=True))
            # Closing the pipe ends an idle process; a busy one is killed.
            with contextlib.suppress(OSError):
                proc.conn.close()
        for proc in processes:
            if proc.task is not None:
                with contextlib.suppress(ValueError, AttributeError, OSError):
                    proc.process.kill()
            proc.process.join(2)
            if proc.process.is_alive():
                with contextlib.suppress(ValueError, AttributeError, OSError):
                    proc.process.kill()
                proc.process.join(2)
        for task in queued:
            for future in task.futures:
                if not future.done():
                    future.set_result(Failed("the service stopped while parsing it", retry=True))
