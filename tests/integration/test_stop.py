"""Stop while a connection is still signing in, against a server that accepts and never answers.

Stop must show STOPPED at once and stay STOPPED when the hung sign-in finally fails, and the
supervisor must not sit on its lock waiting for that runner while other connections want to start.
Stop must also end STOPPED whatever came just before it (a settings change, Start), and a stopped
connection that a dead worker left RUNNING must show STOPPED once another worker runs.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from postroom.jobs.leases import connection_lease
from postroom.service import Service
from postroom.store.models import Connection, ConnectionStatus, Lease, utcnow
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.smtp import SmtpTestServer
from support import Api, connection_body, wait_until


class Blackhole:
    """A TCP server that accepts connections and never says a word (a firewall, a wedged server)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def hang_up(self) -> None:
        """Close what was accepted: the client's pending read fails now instead of at its timeout."""
        for conn in self.accepted:
            conn.close()

    def close(self) -> None:
        self.server.close()
        self.hang_up()
        self._thread.join(5)


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


def test_stop_during_a_hung_sign_in_shows_stopped_at_once_and_for_good(
    api: Api,
    service: Service,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    blackhole: Blackhole,
) -> None:
    body = connection_body(
        dovecot, dovecot_user, smtp_server, imap_server="127.0.0.1", imap_port=blackhole.port, imap_encryption="none"
    )
    hung = api.post("/connections", body, expect=201)["id"]
    api.post(f"/connections/{hung}/start")
    wait_until(lambda: blackhole.accepted)  # the runner now waits for a greeting that never comes
    runner = service.supervisor.runners[hung]
    assert api.get(f"/connections/{hung}")["status"] == "STARTING"

    api.post(f"/connections/{hung}/stop")
    # Not after the runner's join timeout: the supervisor only signals it.
    api.wait_status(hung, "STOPPED", timeout=5)

    # Meanwhile another connection starts as usual, the hung sign-in still pending.
    other = api.post("/connections", connection_body(dovecot, dovecot_user, smtp_server, name="Other"), expect=201)
    api.post(f"/connections/{other['id']}/start")
    api.wait_status(other["id"], "RUNNING", timeout=5)
    assert not runner.finished.is_set()

    # The hung sign-in now fails (as its socket timeout would): the stopped runner reports nothing.
    blackhole.hang_up()
    wait_until(runner.finished.is_set, timeout=10)
    after = api.get(f"/connections/{hung}")
    assert (after["status"], after["status_message"], after["enabled"]) == ("STOPPED", "", False)
    events = [line["event"] for line in api.items(f"/connections/{hung}/logs")]
    assert "start_failed" not in events


def test_stop_and_start_again_at_once_runs_the_connection(
    api: Api, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    created = api.post("/connections", connection_body(dovecot, dovecot_user, smtp_server), expect=201)
    api.post(f"/connections/{created['id']}/start")
    api.wait_status(created["id"], "RUNNING")
    api.post(f"/connections/{created['id']}/stop")
    api.post(f"/connections/{created['id']}/start")
    # The new runner starts once the stopped one's reader has let go of the mailbox.
    api.wait_status(created["id"], "RUNNING")
    api.post(f"/connections/{created['id']}/stop")
    api.wait_status(created["id"], "STOPPED")


def _lease_owner(service: Service, connection_id: int) -> str | None:
    with service.db.read() as session:
        lease = session.get(Lease, connection_lease(connection_id))
        return lease.owner if lease is not None else None


def _settled_stopped(api: Api, service: Service, connection_id: int) -> None:
    """STOPPED, for good: its runners are done, the lease is back, and STOPPED is still what it says."""
    api.wait_status(connection_id, "STOPPED", timeout=10)
    supervisor = service.supervisor
    wait_until(
        lambda: (
            connection_id not in supervisor.runners
            and connection_id not in supervisor._stopping
            and _lease_owner(service, connection_id) is None
        ),
        timeout=30,
    )
    after = api.get(f"/connections/{connection_id}")
    assert (after["status"], after["status_message"], after["enabled"]) == ("STOPPED", "", False)


def test_stop_right_after_a_settings_change_ends_stopped(
    api: Api, service: Service, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    cid = api.post("/connections", connection_body(dovecot, dovecot_user, smtp_server), expect=201)["id"]
    api.post(f"/connections/{cid}/start")
    api.wait_status(cid, "RUNNING")
    supervisor = service.supervisor
    # Holding the supervisor's lock, the test plays its rounds in the order of the race: the round
    # after the change sets the old runner aside while its reader is still signing out, and only
    # the next round sees Stop (the API leaves STOPPED to this worker: it holds the lease).
    with supervisor._lock:
        response = api.client.patch(f"/api/v1/connections/{cid}", json={"check_interval": 3})
        assert response.status_code == 200, response.text
        supervisor.reconcile()
        api.post(f"/connections/{cid}/stop")
        supervisor.reconcile()
    _settled_stopped(api, service, cid)


def test_stop_start_stop_without_pauses_ends_stopped(
    api: Api, service: Service, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    cid = api.post("/connections", connection_body(dovecot, dovecot_user, smtp_server), expect=201)["id"]
    api.post(f"/connections/{cid}/start")
    api.wait_status(cid, "RUNNING")
    supervisor = service.supervisor
    with supervisor._lock:
        api.post(f"/connections/{cid}/stop")
        api.post(f"/connections/{cid}/start")  # STARTING, a new revision: the old runner is set aside
        supervisor.reconcile()
        api.post(f"/connections/{cid}/stop")
    _settled_stopped(api, service, cid)
    # And it starts again as usual.
    api.post(f"/connections/{cid}/start")
    api.wait_status(cid, "RUNNING")


def test_a_stopped_connection_left_running_by_a_dead_worker_shows_stopped(
    make_service: Callable[..., Service], dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    service = make_service(start=False)
    api = Api(service)
    expired = api.post("/connections", connection_body(dovecot, dovecot_user, smtp_server), expect=201)["id"]
    live = api.post("/connections", connection_body(dovecot, dovecot_user, smtp_server, name="Other"), expect=201)["id"]
    # A worker died after Stop was pressed and before it wrote STOPPED: one lease has expired, the
    # other runs out in a moment (this worker must wait for it, the dead one might be alive after all).
    with service.db.write() as session:
        session.execute(
            update(Connection)
            .where(Connection.id.in_([expired, live]))
            .values(enabled=False, status=ConnectionStatus.RUNNING)
        )
        session.add(Lease(name=connection_lease(expired), owner="gone:1:dead", expires_at=utcnow() - timedelta(1)))
        session.add(Lease(name=connection_lease(live), owner="gone:1:dead", expires_at=utcnow() + timedelta(seconds=2)))
    service.start_workers()
    _settled_stopped(api, service, expired)
    _settled_stopped(api, service, live)
