"""Whole processes: a restart imports nothing twice; on PostgreSQL two workers share the work through leases."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from postroom.channels.supervisor import SupervisorPolicy
from postroom.service import Service
from postroom.store.models import Lease, Message, RawMessage
from postroom.testing.database import postgres_available, postgres_schema
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.smtp import SmtpTestServer
from support import FAST, Api, connection_body, wait_until


def count(service: Service, model: type) -> int:
    with service.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_restarting_the_process_imports_nothing_twice(
    make_service: Callable[..., Service], dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    first = make_service()
    api = Api(first)
    body = connection_body(dovecot, dovecot_user, smtp_server, mark_as_read=False)
    created = api.post("/connections", body, expect=201)
    api.post(f"/connections/{created['id']}/start")
    api.wait_status(created["id"], "RUNNING")
    dovecot.append_all(
        dovecot_user, [make_mail(f"before {i}", sender=f"C{i} <c{i}@customer.example>") for i in range(3)]
    )
    wait_until(lambda: count(first, Message) == 3)
    first.close()

    dovecot.append(dovecot_user, make_mail("while down", sender="D <d@customer.example>"))
    second = make_service(first.settings.resolved_database_url, data_dir=first.settings.data_dir)
    # The connection was left enabled: the new process resumes it on its own.
    wait_until(lambda: count(second, Message) == 4, timeout=10)
    time.sleep(0.5)
    assert count(second, Message) == 4
    assert count(second, RawMessage) == 4


@pytest.fixture
def shared_postgres() -> Iterator[str]:
    problem = postgres_available()
    if problem is not None:
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    with postgres_schema() as url:
        yield url


def test_two_workers_on_postgresql_share_connections_and_take_over_a_dead_ones(
    shared_postgres: str,  # first: its schema must outlive the services below
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
) -> None:
    policies = replace(FAST, supervisor=SupervisorPolicy(poll_seconds=0.2, lease_seconds=1.5))
    first = make_service(shared_postgres, policies=policies)
    second = make_service(shared_postgres, policies=policies, data_dir=first.settings.data_dir)
    api = Api(first)
    created = api.post("/connections", connection_body(dovecot, dovecot_user, smtp_server), expect=201)
    api.post(f"/connections/{created['id']}/start")
    api.wait_status(created["id"], "RUNNING")
    owners = {s.worker_id: s for s in (first, second)}
    with first.db.read() as session:
        # The connection's lease (each process also holds its own worker lease).
        owner = session.scalars(select(Lease.owner).where(Lease.name.startswith("connection:"))).one()
    running = owners[owner]
    standby = second if running is first else first
    assert created["id"] in running.supervisor.runners
    assert created["id"] not in standby.supervisor.runners

    dovecot.append(dovecot_user, make_mail("one", sender="A <a@customer.example>"))
    wait_until(lambda: count(first, Message) == 1)
    # The owner dies without a word (no lease release): the other worker takes over after the lease expires.
    running.supervisor._stop.set()
    for runner in running.supervisor.runners.values():
        runner.stop()
    wait_until(lambda: created["id"] in standby.supervisor.runners, timeout=10)
    dovecot.append(dovecot_user, make_mail("two", sender="B <b@customer.example>"))
    wait_until(lambda: count(first, Message) == 2, timeout=10)
    time.sleep(0.5)
    assert count(first, Message) == 2
    assert count(first, RawMessage) == 2
