"""Parsing ahead of the transaction, in worker processes.

Understanding a mail costs about a millisecond of pure Python; the database work after it, less
than half that. In one process the GIL runs them one after the other, so the runner hands the
parsing of a batch (and the writing of its attachment files) to processes while its threads do
the database work, and one batch is parsed while another is written. A worker reads the raw bytes
from the database itself: sending them through a pipe cost the parent more than its database work.

Nothing here decides anything: a mail the pool could not prepare (the parser raised, a worker
died) is simply parsed again by the ``parse`` stage, inside the transaction, where a failure
quarantines it with its reason as always.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

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

# In a worker process: the database it reads raw bytes from, opened once.
_worker_databases: dict[str, Database] = {}


def prepare_chunk(
    database_url: str, work: Sequence[tuple[int, ParseOptions]], blobs: BlobStore
) -> list[Prepared | None]:
    """Runs in a worker process: read the raw bytes of these messages, parse them, store their files."""
    db = _worker_databases.get(database_url)
    if db is None:
        db = _worker_databases[database_url] = Database(database_url)
    with db.read() as session:
        data = {
            raw_id: body
            for raw_id, body in session.execute(
                select(RawBody.raw_id, RawBody.data).where(RawBody.raw_id.in_([raw_id for raw_id, _ in work]))
            )
        }
    results: list[Prepared | None] = []
    for raw_id, options in work:
        try:
            results.append(prepare(data.get(raw_id) or b"", options, blobs))
        except Exception:  # noqa: BLE001 (the parse stage parses it again and reports why)
            results.append(None)
    return results


def _start_method() -> multiprocessing.context.BaseContext:
    """How worker processes start: never by forking this process, which runs threads (IMAP sources,
    database pools) whose locks a forked child could inherit held.

    A fork server is a clean single-threaded process that imports this module once and forks each
    worker from itself; spawning instead would import the parser and its dependencies (0.6 s of
    CPU) in every worker, and again whenever the pool is restarted.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


class ParsePool:
    """A lazily started pool of ``processes`` parser processes for one database."""

    def __init__(self, processes: int, database_url: str) -> None:
        self.processes = processes
        self.database_url = database_url
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self.processes, mp_context=_start_method())
            return self._executor

    def prepare(self, work: Sequence[tuple[int, ParseOptions]], blobs: BlobStore) -> dict[int, Prepared]:
        """The messages (raw id, options) that could be prepared, by raw id."""
        chunks = [list(work[i : i + CHUNK]) for i in range(0, len(work), CHUNK)]
        try:
            pool = self._pool()
            futures: list[Future[list[Prepared | None]]] = [
                pool.submit(prepare_chunk, self.database_url, chunk, blobs) for chunk in chunks
            ]
        except (BrokenProcessPool, RuntimeError) as exc:
            self._reset(exc)
            return {}
        prepared: dict[int, Prepared] = {}
        for chunk, future in zip(chunks, futures, strict=True):
            try:
                results = future.result()
            except BrokenProcessPool as exc:
                self._reset(exc)
                continue
            except Exception:
                log.exception("pipeline.parse_pool_failed")
                continue
            for (raw_id, _), result in zip(chunk, results, strict=True):
                if result is not None:
                    prepared[raw_id] = result
        return prepared

    def _reset(self, exc: BaseException) -> None:
        log.warning("pipeline.parse_pool_broken", error=str(exc))
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
