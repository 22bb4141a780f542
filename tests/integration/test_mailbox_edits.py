"""Editing a running connection's mailboxes against real peers: Dovecot and SMTP where a restart or an
import matters, PostgreSQL where concurrent requests race."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from postroom.helpdesk.connections import ConnectionService
from postroom.service import Service
from postroom.store.models import Connection, ConnectionLog, Conversation, Mailbox, RawMessage
from postroom.testing.dovecot import DovecotServer
from postroom.testing.mails import make_mail
from postroom.testing.smtp import SmtpTestServer
from support import Api, connection_body, wait_until

BODY: dict[str, Any] = {
    "name": "Race",
    "address": "race@example.test",
    "password": "pw",
    "imap_server": "imap.example.test",
    "smtp_server": "smtp.example.test",
}


def scalar(service: Service, query: Any) -> Any:
    with service.db.read() as session:
        return session.scalar(query)


def starts(service: Service, connection_id: int) -> int:
    """How often the connection's runner began signing in (one "starting" log entry each time)."""
    return int(
        scalar(
            service,
            select(func.count())
            .select_from(ConnectionLog)
            .where(ConnectionLog.connection_id == connection_id, ConnectionLog.event == "starting"),
        )
        or 0
    )


# -- PostgreSQL: a lost check-then-insert race and over-long values are answers, not 500s --


def test_concurrent_creates_with_one_name_give_one_connection_and_conflicts(
    make_service: Callable[..., Service], db_url: str
) -> None:
    api = Api(make_service(db_url, start=False))
    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(lambda _: api.client.post("/api/v1/connections", json=BODY).status_code, range(8)))
    assert codes == [201] + [409] * 7


def test_a_name_taken_after_the_check_is_a_conflict(
    make_service: Callable[..., Service], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race made deterministic: the other request's INSERT commits between our check and our INSERT.
    api = Api(make_service(db_url, start=False))
    api.post("/connections", BODY, expect=201)
    other = api.post("/connections", {**BODY, "name": "Other"}, expect=201)
    monkeypatch.setattr(ConnectionService, "_ensure_unique_name", lambda *_: None)
    created = api.client.post("/api/v1/connections", json=BODY)
    assert created.status_code == 409, created.text
    assert created.json()["detail"] == "a connection named 'Race' already exists"
    renamed = api.client.patch(f"/api/v1/connections/{other['id']}", json={"name": "Race"})
    assert renamed.status_code == 409, renamed.text


def test_values_longer_than_their_columns_are_refused_on_postgresql(
    make_service: Callable[..., Service], db_url: str
) -> None:
    api = Api(make_service(db_url, start=False))
    for change, field in (({"name": "N" * 300}, "name"), ({"email_name": "E" * 300}, "email_name")):
        response = api.client.post("/api/v1/connections", json={**BODY, **change})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
    created = api.post("/connections", BODY, expect=201)
    response = api.client.patch(f"/api/v1/connections/{created['id']}", json={"reply_to": "r" * 320 + "@x.test"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "reply_to"


# -- Dovecot and SMTP: a renamed mailbox keeps its row, cursor and password; a new name restarts nothing --


def test_a_renamed_mailbox_keeps_its_cursor_conversations_and_password(
    api: Api, dovecot: DovecotServer, smtp_server: SmtpTestServer
) -> None:
    first, second = dovecot.add_user(), dovecot.add_user()
    smtp_server.add_user(second.address, second.password)
    body = connection_body(
        dovecot,
        first,
        smtp_server,
        address=f"{first.address}, {second.address}",
        username=f"{first.address}, {second.address}",  # signs in as itself whatever the address says
        password=[first.password, second.password],
        email_name="First Desk, Second Desk",
    )
    created = api.post("/connections", body, expect=201)
    connection_id = created["id"]
    api.post(f"/connections/{connection_id}/start")
    api.wait_status(connection_id, "RUNNING")
    dovecot.append(second, make_mail("Before the rename", sender="Ada <ada@customer.example>"))
    conversation = wait_until(lambda: api.conversations(connection_id=connection_id))[0]
    with api.service.db.read() as session:
        box = session.scalars(select(Mailbox).where(Mailbox.address == second.address)).one()
        row_id, cursor = box.id, (box.uidvalidity, box.last_uid)
    assert cursor[1] > 0
    started = starts(api.service, connection_id)

    renamed = f"renamed-{second.address}"
    response = api.client.patch(f"/api/v1/connections/{connection_id}", json={"address": f"{first.address}, {renamed}"})

    assert response.status_code == 200, response.text
    shown = response.json()["mailboxes"][1]
    assert (shown["id"], shown["address"], shown["email_name"]) == (row_id, renamed, "Second Desk")
    with api.service.db.read() as session:
        box = session.get(Mailbox, row_id)
        assert box is not None
        assert (box.uidvalidity, box.last_uid) == cursor
        assert api.service.secrets.decrypt(box.password_enc) == second.password
        assert session.get(Conversation, conversation["id"]).mailbox_id == row_id  # type: ignore[union-attr]
    # The connection restarts with the change and signs in again with the kept password.
    wait_until(lambda: starts(api.service, connection_id) > started, timeout=10)
    api.wait_status(connection_id, "RUNNING")
    dovecot.append(second, make_mail("After the rename", sender="Bo <bo@customer.example>"))
    wait_until(lambda: len(api.conversations(connection_id=connection_id)) == 2, timeout=10)
    assert scalar(api.service, select(func.count()).select_from(RawMessage)) == 2  # nothing imported twice
    reply = api.post(f"/conversations/{conversation['id']}/messages", {"text": "Still here."}, 201)
    assert reply["from"]["email"] == renamed
    sent = smtp_server.wait_for(1)[0]
    assert sent.envelope_from == renamed


def test_renaming_a_running_connection_does_not_restart_it(
    api: Api, dovecot: DovecotServer, smtp_server: SmtpTestServer
) -> None:
    user = dovecot.add_user()
    created = api.post("/connections", connection_body(dovecot, user, smtp_server), expect=201)
    connection_id = created["id"]
    api.post(f"/connections/{connection_id}/start")
    api.wait_status(connection_id, "RUNNING")
    revision = scalar(api.service, select(Connection.revision).where(Connection.id == connection_id))

    response = api.client.patch(
        f"/api/v1/connections/{connection_id}", json={"name": "Front desk", "description": "Renamed"}
    )

    assert response.status_code == 200, response.text
    assert scalar(api.service, select(Connection.revision).where(Connection.id == connection_id)) == revision
    # The same runner goes on importing, and never signed in again.
    dovecot.append(user, make_mail("After the new name"))
    wait_until(lambda: api.conversations(connection_id=connection_id), timeout=10)
    assert starts(api.service, connection_id) == 1
    assert api.get(f"/connections/{connection_id}")["status"] == "RUNNING"
