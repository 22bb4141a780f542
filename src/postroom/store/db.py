"""Engine and sessions, the same code on SQLite (embedded) and PostgreSQL (scale-out).

SQLite notes: WAL lets readers run beside one writer; a write transaction starts with ``BEGIN
IMMEDIATE`` so that two writers queue on the busy timeout instead of failing when a read transaction
tries to upgrade to a write lock (the classic SQLITE_BUSY deadlock of deferred transactions). WAL
checkpoints run in a thread of their own (:class:`_Checkpointer`), not in whichever writer happens
to cross the threshold.

:class:`Prepared` statements are for hot paths (the pipeline runs a dozen small statements per
mail): SQLAlchemy builds and compiles the SQL once, and each execution goes straight to the
driver's cursor, which is twenty times cheaper than ``Connection.execute`` on SQLite.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import structlog
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

log = structlog.get_logger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The writers' own automatic checkpoint is only the safety net behind the checkpoint thread: at
# 4 KiB pages this lets the WAL reach about 200 MB before a writer checkpoints in its COMMIT.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 50_000
# A WAL that grew during a burst is truncated back to this size when it restarts (disk space only).
SQLITE_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
# How often, at most, the checkpoint thread copies the WAL back while writes keep coming.
SQLITE_CHECKPOINT_INTERVAL = 0.1


class Database:
    """One engine and two session factories: :meth:`write` for transactions that change data, :meth:`read`."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        # Only this process can see an in-memory SQLite database.
        self.in_memory = self.is_sqlite and parsed.database in (None, "", ":memory:")
        self._checkpointer: _Checkpointer | None = None
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.is_sqlite:
            if parsed.database and not self.in_memory:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                self._checkpointer = _Checkpointer(parsed.database)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            kwargs["pool_size"] = 10
        else:
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine, background_checkpoints=self._checkpointer is not None)
        self._write_engine = self.engine.execution_options(postroom_write=True)
        self._writes = sessionmaker(bind=self._write_engine, expire_on_commit=False)
        self._reads = sessionmaker(bind=self.engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits when the block ends without an exception."""
        with self._writes() as session, session.begin():
            yield session
        if self._checkpointer is not None:
            self._checkpointer.wrote()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; on SQLite it does not take the write lock.

        Closing the session ends its transaction; loaded objects stay usable (detached) afterwards.
        """
        with self._reads() as session:
            yield session

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()


def _configure_sqlite(engine: Engine, *, background_checkpoints: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module, so that BEGIN is ours (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across application crashes in WAL mode; only an OS crash or power loss can
        # lose the last transactions (https://www.sqlite.org/pragma.html#pragma_synchronous). The
        # embedded default trades that for throughput; use PostgreSQL when that risk matters.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if background_checkpoints:
            cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
            cursor.execute(f"PRAGMA journal_size_limit={SQLITE_JOURNAL_SIZE_LIMIT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("postroom_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class _Checkpointer:
    """Copies the SQLite WAL back into the database file in a thread of its own.

    SQLite's automatic checkpoint runs inside the COMMIT of the writer that finds the WAL above
    1,000 pages (4 MB). Raw mail averages 75 KB, so every commit of 200 fetched mails paid for
    copying its 15 MB back and syncing the file: 90 ms of a 100 ms store, with the IMAP source
    waiting. Here a writer only says that it wrote; this thread runs a PASSIVE checkpoint (which
    never waits for, nor blocks, readers and writers) at most every ``SQLITE_CHECKPOINT_INTERVAL``
    seconds, with the GIL released while SQLite copies. The writers' own automatic checkpoint stays
    on at ``SQLITE_WAL_AUTOCHECKPOINT_PAGES``, so the WAL stays bounded should this thread fall
    behind or die. Durability is unchanged: a commit is durable once it is in the WAL.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def wrote(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._stopping.is_set():
                    self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                    self._thread.start()
        self._dirty.set()

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            self._dirty.set()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(10)
        # A later write (a Database is usable after dispose()) starts a new thread.
        self._stopping.clear()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stopping.is_set():
                self._dirty.wait()
                if self._stopping.is_set():
                    break
                self._dirty.clear()
                if connection is None:
                    connection = sqlite3.connect(self.path, isolation_level=None, timeout=0)
                    connection.execute("PRAGMA synchronous=NORMAL")
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    # Another checkpoint running, or the file went away (a test's temporary
                    # directory): the writers' own checkpoint remains the safety net.
                    log.debug("sqlite.checkpoint_skipped", error=str(exc), pid=os.getpid())
                self._stopping.wait(SQLITE_CHECKPOINT_INTERVAL)
        finally:
            if connection is not None:
                connection.close()


# ── prepared statements for hot paths ─────────────────────────────────────────────────────────


class Prepared:
    """A Core statement compiled once for one dialect, with its parameters' type conversions.

    Every bound parameter without a value in the statement must be given when it runs (a missing
    one raises ``KeyError``): on this path no column default is applied, so none may be forgotten.
    """

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = str(compiled)
        if "POSTCOMPILE" in self.sql:
            raise ValueError("expanding parameters cannot be prepared; build one statement per list length")
        binds = compiled.binds
        self.positional = bool(compiled.positional)
        names = list(compiled.positiontup or ()) if self.positional else list(binds)
        self._params: list[tuple[str, Any, bool, Any]] = []
        for name in names:
            bind = binds[name]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            self._params.append((name, processor, bool(bind.required), bind.value))

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        converted: list[Any] = []
        for name, processor, required, fixed in self._params:
            value = values[name] if required or name in values else fixed
            if processor is not None and value is not None:
                value = processor(value)
            converted.append(value)
        if self.positional:
            return tuple(converted)
        return {name: value for (name, *_), value in zip(self._params, converted, strict=True)}


_prepared: dict[tuple[str, str, int], tuple[ClauseElement, Prepared]] = {}


def prepare(statement: ClauseElement, dialect: Dialect) -> Prepared:
    """The statement compiled for the dialect, once per process (keyed by the statement object)."""
    key = (dialect.name, dialect.driver, id(statement))
    found = _prepared.get(key)
    if found is None or found[0] is not statement:
        # The statement is kept with its compiled form, so that its id is never reused meanwhile.
        found = (statement, Prepared(statement, dialect))
        _prepared[key] = found
    return found[1]


class SqlCursor:
    """Prepared statements run on the driver's cursor, inside the session's current transaction.

    For the hot path only: no ORM, no result types beyond what the driver returns (integers,
    strings), and writes here are invisible to objects the session has already loaded.
    """

    def __init__(self, session: Session) -> None:
        connection = session.connection()
        self.dialect: Dialect = connection.dialect
        self.is_postgresql = self.dialect.name == "postgresql"
        self._cursor: Any = connection.connection.cursor()

    def execute(self, statement: ClauseElement, values: Mapping[str, Any] | None = None) -> int:
        """Run a statement; returns the number of rows it changed."""
        prepared = prepare(statement, self.dialect)
        self._cursor.execute(prepared.sql, prepared.parameters(values or {}))
        return int(self._cursor.rowcount)

    def executemany(self, statement: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            prepared = prepare(statement, self.dialect)
            self._cursor.executemany(prepared.sql, [prepared.parameters(row) for row in rows])

    def first(self, statement: ClauseElement, values: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        prepared = prepare(statement, self.dialect)
        self._cursor.execute(prepared.sql, prepared.parameters(values or {}))
        # Read to the end, so that the statement is finished (SQLite keeps it open otherwise).
        rows = self._cursor.fetchall()
        return tuple(rows[0]) if rows else None

    def all(self, statement: ClauseElement, values: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        prepared = prepare(statement, self.dialect)
        self._cursor.execute(prepared.sql, prepared.parameters(values or {}))
        return [tuple(row) for row in self._cursor.fetchall()]

    def scalar(self, statement: ClauseElement, values: Mapping[str, Any] | None = None) -> Any:
        row = self.first(statement, values)
        return None if row is None else row[0]

    def execute_sql(self, sql: str) -> None:
        """Run a fixed SQL text without parameters (SAVEPOINT and its kin)."""
        self._cursor.execute(sql)

    def close(self) -> None:
        self._cursor.close()
