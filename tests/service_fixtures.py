"""Fixtures for a whole Postroom process: the service with its workers, and its API in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from postroom.service import Policies, Service
from postroom.settings import Settings
from support import FAST, Api


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
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
        data_dir = data_dir or tmp_path / f"data{len(made)}"
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
