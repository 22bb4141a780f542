"""Stop while a connection is still signing in, against a server that accepts and never answers.

Stop must show STOPPED at once and stay STOPPED when the hung sign-in finally fails, and the
supervisor must not sit on its lock waiting for that runner while other connections want to start.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from postroom.service import Service
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
    events = [line["event"] for line in api.get(f"/connections/{hung}/logs")]
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
