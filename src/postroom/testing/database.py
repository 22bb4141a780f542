"""Throwaway databases for tests: a SQLite file, or a private schema in a real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    """``POSTROOM_TEST_DATABASE_URL``, or the local server's ``test`` database."""
    return os.environ.get("POSTROOM_TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL


def postgres_available(url: str | None = None) -> str | None:
    """None when the server answers, else why not."""
    engine = create_engine(url or postgres_base_url())
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 (any failure means "not usable", reported with its reason)
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        engine.dispose()
    return None


@contextmanager
def postgres_schema(base_url: str | None = None) -> Iterator[str]:
    """A fresh schema, dropped afterwards; yields a URL whose connections use it (search_path)."""
    base = make_url(base_url or postgres_base_url())
    schema = f"postroom_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{(directory / 'postroom.db').resolve()}"
