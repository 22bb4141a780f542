"""Schema migrations with Alembic, run by ``postroom migrate`` and on ``postroom serve`` start."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config

from postroom.store.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")

log = structlog.get_logger(__name__)


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic's INFO lines ("Context impl SQLiteImpl.", "Will assume non-transactional DDL.") would
    reach stderr on every CLI command; only its warnings get through while we call it. Only the
    "alembic" logger changes, and only for the call: the rest of the logging setup is left alone,
    and what a migration did is logged by :func:`upgrade` itself."""
    logger = logging.getLogger("alembic")
    previous = logger.level
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # "%" is Alembic's interpolation character; URLs with escaped passwords contain it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to run when it is already there."""
    before = current_revision(db)
    _run(db, lambda config: command.upgrade(config, revision))
    after = current_revision(db)
    if after != before:
        log.info("store.migrated", from_revision=before, to_revision=after)


def downgrade(db: Database, revision: str) -> None:
    """Take the schema back to ``revision`` (for tests and by hand: the service itself only upgrades)."""
    _run(db, lambda config: command.downgrade(config, revision))


def _run(db: Database, step: Callable[[Config], None]) -> None:
    config = alembic_config(db.url)
    with _quiet_alembic(), db.engine.connect() as connection:
        # SQLite rebuilds a table to alter it (batch mode: copy, DROP, rename), and with foreign keys
        # on, a DROP TABLE deletes its rows first, which cascades: altering ``conversations`` would
        # delete every message. The pragma only takes effect outside a transaction, so it is set on the
        # driver's connection before ours begins, and the keys are checked once the new schema stands.
        sqlite = db.is_sqlite
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                step(config)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left rows without their parent: {broken[:5]}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def head_revision() -> str:
    """The newest migration this version of Postroom knows (what ``upgrade`` brings a database to)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "the migrations directory holds no revision"
    return head


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with _quiet_alembic(), db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
