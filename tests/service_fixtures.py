"""Fixtures for a whole Postroom process: the service with its workers, and its API in-process."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from postroom.service import Policies, Service
from postroom.settings import Settings
from support import FAST, Api


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database at the head revision, made once per test process: a fresh service's database
    starts as a copy of it instead of running every migration again (half a second each)."""
    data_dir = tmp_path_factory.mktemp("migrated")
    settings = Settings(
        data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'postroom.db'}", smtp_bind="127.0.0.1:0"
    )
    service = Service(settings, FAST)
    service.migrate()
    service.close()
    return data_dir / "postroom.db"


@pytest.fixture
def make_service(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Callable[..., Service]]:
    """Build (and later close) a Postroom process on a fresh data dir; SQLite unless a URL is given."""
    made: list[Service] = []

    def make(
        database_url: str | None = None,
        *,
        start: bool = True,
        policies: Policies = FAST,
        data_dir: Path | None = None,
    ) -> Service:
        # Passing the data dir of an earlier service restarts "the same installation" (same key, same files).
        fresh = data_dir is None
        data_dir = data_dir or tmp_path / f"data{len(made)}"
        if fresh and database_url is None:
            data_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(migrated_sqlite, data_dir / "postroom.db")
        settings = Settings(
            data_dir=data_dir,
            database_url=database_url or f"sqlite:///{data_dir / 'postroom.db'}",
            pipeline_workers=2,
            # Any free port: tests run in parallel.
            smtp_bind="127.0.0.1:0",
        )
        service = Service(settings, policies)
        service.migrate()
        if start:
            service.start_workers()
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    return make_service()


@pytest.fixture
def api(service: Service) -> Api:
    return Api(service)
