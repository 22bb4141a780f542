"""Alembic environment: run by :func:`postroom.store.migrate.upgrade` with a connection already open."""

from __future__ import annotations

from alembic import context

from postroom.store.models import Base
from postroom.store.search_index import is_search_object

config = context.config
target_metadata = Base.metadata


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Autogenerate leaves the full-text index alone: migration 0006 builds it in each engine's own DDL
    (an FTS5 virtual table and its shadow tables, a tsvector table), which the models cannot describe."""
    return not (type_ == "table" and is_search_object(name))


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from sqlalchemy import create_engine

        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.connect() as conn:
            _migrate(conn)
        return
    _migrate(connection)


def _migrate(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds tables there.
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
