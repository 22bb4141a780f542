"""Helpers of the Settings → Inboxes browser tests: connections made through the service, the IMAP form
filled for the test Dovecot, and waiting for a status the workers report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page
from web_support import PASSWORD, LiveServer, sign_in

from postroom.helpdesk.connections import ConnectionInput
from postroom.service import Service
from postroom.store.models import Connection, ConnectionStatus, Role
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.smtp import SmtpTestServer
from support import connection_body, wait_until

# A connection that needs no server: settings only (nothing is started).
OFFLINE: dict[str, Any] = {
    "name": "Support",
    "address": "support@example.test",
    "password": "s3cret-pass",
    "imap_server": "imap.example.test",
    "smtp_server": "smtp.example.test",
}


def make_connection(service: Service, **body: Any) -> int:
    """Create a connection the way the API does (``OFFLINE`` with ``body`` over it); its id."""
    with service.db.write() as session:
        connection = service.connections.create(session, ConnectionInput.model_validate({**OFFLINE, **body}))
        return connection.id


def dovecot_connection(
    service: Service, dovecot: DovecotServer, user: MailUser, smtp: SmtpTestServer, **overrides: Any
) -> int:
    """A connection to the test Dovecot user (IMAPS, certificate checked against the test CA) and ``smtp``."""
    return make_connection(service, **connection_body(dovecot, user, smtp, **overrides))


def set_status(service: Service, connection_id: int, status: str, message: str = "") -> None:
    """Write a status as a worker would (for a server without workers, where nothing overwrites it)."""
    with service.db.write() as session:
        connection = service.connections.get(session, connection_id)
        # Running and starting connections are the ones an admin started.
        connection.enabled = status in ("RUNNING", "STARTING") or connection.enabled
        service.connections.set_status(session, connection, ConnectionStatus(status), message)


def sign_in_admin(page: Page, server: LiveServer) -> None:
    """An administrator of ``server``'s service, signed in on ``page`` (for servers other than ``live``)."""
    with server.service.db.write() as session:
        server.service.users.create(session, "admin@example.test", name="Ada Admin", role=Role.ADMIN, password=PASSWORD)
    sign_in(page, server.url, "admin@example.test")


def signing_in_smtp(make_smtp_server: Callable[..., SmtpTestServer]) -> SmtpTestServer:
    """An SMTP server that requires AUTH, like a provider; the mailbox's user is added with its connection."""
    return make_smtp_server("plain", auth_required=True)


def wait_status(service: Service, connection_id: int, status: str, timeout: float = 10.0) -> str:
    """Wait until the workers report ``status``; the status message then."""

    def current() -> str | None:
        with service.db.read() as session:
            connection = session.get(Connection, connection_id)
            assert connection is not None
            return connection.status_message if connection.status.value == status else None

    found: str = wait_until(lambda: (message := current()) is not None and (message or " "), timeout)
    return found.strip()


def announce_status_change(page: Page) -> None:
    """What the live updates do when a connection's status changes: the ``live-connections`` event on body."""
    page.evaluate("document.body.dispatchEvent(new CustomEvent('live-connections'))")


def fill_imap_form(
    page: Page, dovecot: DovecotServer, user: MailUser, smtp: SmtpTestServer, name: str, password: str | None = None
) -> None:
    """Fill the new-inbox form for the test Dovecot user over IMAPS and ``smtp`` (which learns the user)."""
    smtp.add_user(user.address, user.password)
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Mode").select_option("imap")
    page.get_by_label("Addresses").fill(user.address)
    page.get_by_label("Password", exact=True).fill(password if password is not None else user.password)
    page.get_by_label("Incoming server").fill(dovecot.host)
    page.get_by_label("Incoming port").fill(str(dovecot.ports.imaps))
    page.get_by_label("Incoming encryption").select_option("ssl")
    page.get_by_label("SMTP server").fill(smtp.host)
    page.get_by_label("SMTP port").fill(str(smtp.port))
    page.get_by_label("SMTP encryption").select_option(
        {"plain": "none", "starttls": "starttls", "ssl": "ssl"}[smtp.mode]
    )
