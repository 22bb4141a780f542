"""An installation of the previous release upgrades to this one with every row kept, and keeps its meaning.

The databases under ``previous_release/`` were filled by the previous release's own code (schema at
migration 0004; how, and how to make them again: ``previous_release/make_fixtures.py``), each beside what
that release's API showed for it. Each test loads one into a fresh database (SQLite: a copy of the file;
PostgreSQL: the ``pg_dump`` replayed into the test's private schema), runs this version's migrations to
whatever the head is, and checks the result twice: row by row (every row of every old table is there with
the same values in every column that still exists), and by what the current code makes of it (the API with
the old tokens, search, the pipeline on new mail).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from postroom.api.app import create_app
from postroom.channels.sink import MailboxSink
from postroom.service import Service
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.store.db import Database
from postroom.store.migrate import current_revision, head_revision, upgrade
from postroom.store.search_index import is_search_object
from postroom.store.secretbox import SecretBox
from postroom.testing.mails import make_mail

FIXTURES = Path(__file__).with_name("previous_release")
DUMP_SCHEMA = "postroom_release_0004"  # the schema named in the PostgreSQL dump (make_fixtures.SCHEMA)
SECRET_KEY = b"bTkdy0kHp9yBfQd2r1o9Zq6YvV8sQ3aJxWl5uN7cE4I="  # the fixtures' installation (make_fixtures.SECRET_KEY)
BOOTSTRAP_ADMIN = "admin@postroom.localhost"

# Columns of the previous schema that the upgrade drops, and why nothing is lost with them.
DROPPED = {
    # 0005: the free-text assignee and team were never set by any route of the previous release.
    ("conversations", "assignee"),
    ("conversations", "team"),
}


@dataclass
class Previous:
    url: str
    dialect: str
    shown: dict[str, Any]  # what the previous release's API showed (make_fixtures.Installation.snapshot)
    rows: dict[str, list[dict[str, Any]]]  # every table's rows before the upgrade


def _load_postgresql(url: str) -> None:
    """Replay the dump into the (empty) schema that ``url``'s search_path names."""
    options = make_url(url).query["options"]
    schema = str(options).removeprefix("-csearch_path=")
    assert schema.startswith("postroom_test_"), schema
    # Only whole lines of pg_dump's own are dropped (psql's \restrict meta-commands, the CREATE SCHEMA): a
    # line filter must not touch the data, whose strings span lines.
    lines = [
        line
        for line in (FIXTURES / "postroom-0004.postgresql.sql").read_text().split("\n")
        if not re.fullmatch(r"\\(un)?restrict \S+", line) and line != f"CREATE SCHEMA {DUMP_SCHEMA};"
    ]
    script = "\n".join(lines).replace(DUMP_SCHEMA, schema)
    assert DUMP_SCHEMA not in script
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.execute(script)  # type: ignore[attr-defined]  # psycopg: many statements, no parameters
            driver.commit()  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def _rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (search index tables aside), in primary key order."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            tables: dict[str, list[dict[str, Any]]] = {}
            for table in inspector.get_table_names():
                if is_search_object(table):
                    continue
                key = inspector.get_pk_constraint(table)["constrained_columns"] or [
                    c["name"] for c in inspector.get_columns(table)
                ]
                order = ", ".join(f'"{c}"' for c in key)
                result = connection.execute(text(f'SELECT * FROM "{table}" ORDER BY {order}'))
                tables[table] = [dict(row._mapping) for row in result]
            return tables
    finally:
        engine.dispose()


@pytest.fixture
def previous(db_url: str) -> Previous:
    """A fresh database holding the previous release's fixture, not yet upgraded."""
    if db_url.startswith("sqlite"):
        dialect = "sqlite"
        shutil.copyfile(FIXTURES / "postroom-0004.sqlite", make_url(db_url).database or "")
    else:
        dialect = "postgresql"
        _load_postgresql(db_url)
    shown = json.loads((FIXTURES / f"postroom-0004.{dialect}.json").read_text())
    database = Database(db_url)
    try:
        assert current_revision(database) == shown["revision"] == "0004"
    finally:
        database.dispose()
    return Previous(db_url, dialect, shown, _rows(db_url))


@pytest.fixture
def upgraded(previous: Previous) -> Iterator[Previous]:
    database = Database(previous.url)
    try:
        upgrade(database)
        assert current_revision(database) == head_revision()
    finally:
        database.dispose()
    yield previous


@pytest.fixture
def desk(upgraded: Previous, make_service: Callable[..., Service]) -> Iterator[Callable[..., TestClient]]:
    """The current API over the upgraded database, signed in with one of the previous release's tokens."""
    service = make_service(upgraded.url, start=False)
    clients: list[TestClient] = []

    def client(token: str = "admin (cli)") -> TestClient:
        made = TestClient(create_app(service))
        made.headers["Authorization"] = f"Bearer {upgraded.shown['tokens'][token]}"
        clients.append(made)
        return made

    yield client
    for made in clients:
        made.close()


def _items(client: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        response = client.get(f"/api/v1{path}", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params = {**params, "cursor": page["next_cursor"]}


def _same_where_shared(old: Any, new: Any, where: str = "") -> list[str]:
    """Where ``new`` differs from ``old`` in what both have: keys the new view added are not compared."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for k in old.keys() & new.keys() for d in _same_where_shared(old[k], new[k], f"{where}.{k}")]
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: {len(old)} items before, {len(new)} after"]
        return [
            d for i, (o, n) in enumerate(zip(old, new, strict=True)) for d in _same_where_shared(o, n, f"{where}[{i}]")
        ]
    return [] if old == new else [f"{where}: {old!r} before, {new!r} after"]


# ── row by row ─────────────────────────────────────────────────────────────────────────────────


def test_every_row_of_the_previous_release_is_kept_with_its_values(previous: Previous) -> None:
    before = previous.rows
    assert {t: len(r) for t, r in before.items() if r} == {
        "alembic_version": 1,
        "api_tokens": 4,
        "attachments": 2,
        "connection_logs": len(before["connection_logs"]),
        "connections": 4,
        "contacts": 11,
        "conversations": 11,
        "mailboxes": 5,
        "messages": 16,
        "outbox": 5,
        "raw_bodies": 14,
        "raw_messages": 14,
        "webhook_replays": 1,
    }, "the fixture is not the one these tests were written for: see previous_release/make_fixtures.py"
    # The dropped columns held nothing.
    for table, column in DROPPED:
        assert {row[column] for row in before[table]} == {None}
    database = Database(previous.url)
    try:
        upgrade(database)
    finally:
        database.dispose()
    after = _rows(previous.url)
    lost = []
    for table, rows in before.items():
        if table == "alembic_version":
            continue
        kept = after[table]
        assert len(kept) == len(rows), table
        for old, new in zip(rows, kept, strict=True):
            for column, value in old.items():
                if (table, column) in DROPPED:
                    assert column not in new
                elif new[column] != value:
                    lost.append(f"{table} {old.get('id', old)} {column}: {value!r} became {new[column]!r}")
    assert lost == []


def test_what_the_upgrade_fills_in_for_old_rows(upgraded: Previous) -> None:
    after = _rows(upgraded.url)
    # Connections group by contact as they did, with no team and no auto-assignment.
    assert [(c["name"], c["grouping"], c["team_id"], bool(c["auto_assign"])) for c in after["connections"]] == [
        ("Support", "contact", None, False),
        ("Sales", "contact", None, False),
        ("Helpdesk (forwarded)", "contact", None, False),
        ("Mailgun", "contact", None, False),
    ]
    # Every token, the revoked one too, belongs to the bootstrap administrator.
    [admin] = after["users"]
    assert (admin["email"], admin["role"], bool(admin["enabled"])) == (BOOTSTRAP_ADMIN, "admin", True)
    assert {(t["name"], t["user_id"], t["kind"]) for t in after["api_tokens"]} == {
        (name, admin["id"], "api") for name in ("admin (cli)", "automation", "read only", "revoked")
    }
    # Conversations: normal priority, nobody assigned, last activity from what was known.
    for conversation in after["conversations"]:
        assert (conversation["priority"], conversation["assignee_id"], conversation["team_id"]) == (
            "normal",
            None,
            None,
        )
        assert conversation["snoozed_until"] is None
        assert conversation["last_activity_at"] == conversation["updated_at"]
    # Contacts keep their one address (Contact.email); contact_addresses holds further ones only.
    assert after["contact_addresses"] == []
    assert all(c["updated_at"] == c["created_at"] for c in after["contacts"])
    # Messages: no bcc was kept before, no author user. (A JSON column read as text: a list on PostgreSQL.)
    assert {json.dumps(m["bcc"]) if isinstance(m["bcc"], list) else m["bcc"] for m in after["messages"]} == {"[]"}
    assert {m["author_id"] for m in after["messages"]} == {None}


def test_stored_secrets_still_open_with_the_installation_key(upgraded: Previous) -> None:
    box = SecretBox(SECRET_KEY)
    after = _rows(upgraded.url)
    passwords = {m["address"]: box.decrypt(m["password_enc"]) for m in after["mailboxes"]}
    assert passwords["support@acme.test"] == "imap-pass-1"
    assert passwords["billing@acme.test"] == "imap-pass-2"
    assert passwords["sales@acme.test"] == "pop-pass"
    [mailgun] = [c for c in after["connections"] if c["mode"] == "webhook"]
    assert box.decrypt(mailgun["webhook_signing_key_enc"]) == "mailgun-fixture-signing-key"


# ── what the current code makes of it ──────────────────────────────────────────────────────────


def test_the_api_shows_the_connections_as_before(upgraded: Previous, desk: Callable[..., TestClient]) -> None:
    connections = _items(desk(), "/connections")

    def comparable(view: dict[str, Any]) -> dict[str, Any]:
        # The per-mailbox settings are compared in ``mailboxes``; their summary at the top was "a, b" text
        # before and is one typed value now (null when the mailboxes differ). The forwarding address's domain
        # is a process setting (POSTROOM_INBOUND_DOMAIN), not stored: its key is what is kept.
        per_mailbox = {key for mailbox in view["mailboxes"] for key in mailbox} - {"id", "position"}
        shown = {k: v for k, v in view.items() if k not in per_mailbox}
        shown["inbound_address"] = (view["inbound_address"] or "").partition("@")[0]
        # POP3's summary (no per-mailbox field of its own): a port was text, it is a number now.
        shown["pop3_port"] = None if view["pop3_port"] is None else str(view["pop3_port"])
        return shown

    before = [comparable(view) for view in upgraded.shown["connections"]]
    assert _same_where_shared(before, [comparable(view) for view in connections]) == []
    assert [len(view["mailboxes"]) for view in connections] == [2, 1, 1, 1]
    assert [(c["grouping"], c["team_id"], c["auto_assign"]) for c in connections] == [("contact", None, False)] * 4


def test_the_api_lists_every_conversation_with_its_messages_as_before(
    upgraded: Previous, desk: Callable[..., TestClient]
) -> None:
    client = desk()
    listed = _items(client, "/conversations")
    before = sorted(upgraded.shown["conversations"], key=lambda c: c["id"])
    assert sorted(c["id"] for c in listed) == [c["id"] for c in before]
    differences = []
    for old in before:
        response = client.get(f"/api/v1/conversations/{old['id']}")
        assert response.status_code == 200, response.text
        new = response.json()
        # Notes and activity entries join the timeline now; an old conversation has only its messages.
        assert [m["id"] for m in new["messages"]] == [m["id"] for m in old["messages"]]
        differences += _same_where_shared(old, new, f"conversation {old['id']}")
    assert differences == []
    by_subject = {c["subject"]: c for c in listed}
    assert by_subject["Testing 123"]["status"] == "resolved"
    assert by_subject["Saying Hello"]["status"] == "pending"
    assert by_subject["Another PDF with 🎉 Unicode chars in it 🍿"]["status"] == "open"


def test_outbox_states_and_the_sent_copy_are_kept(upgraded: Previous, desk: Callable[..., TestClient]) -> None:
    client = desk()
    replies = {}
    for conversation in _items(client, "/conversations"):
        detail = client.get(f"/api/v1/conversations/{conversation['id']}").json()
        for message in detail["messages"]:
            if message["direction"] == "out":
                replies[message["text"].split("\n")[0]] = (message["delivery_status"], message["sent_copy"])
    assert replies == {
        "Hello to you too.": ("sent", "filed"),  # SMTP, filed in the IMAP Sent folder
        "はい、承知しました。": ("failed", None),  # refused by the server (550 5.1.1)
        "We will call you.": ("queued", None),  # waiting for the response delay
        "Your order has shipped.": ("sent", None),  # SendGrid
        "Your subscription renews next week.": ("sent", None),  # the agent wrote first
    }
    after = _rows(upgraded.url)
    assert sorted(row["status"] for row in after["outbox"]) == ["failed", "queued", "sent", "sent", "sent"]


def test_raw_mail_and_quarantine_are_kept(upgraded: Previous, desk: Callable[..., TestClient]) -> None:
    client = desk()
    raw = _items(client, "/raw-messages")
    assert _same_where_shared(upgraded.shown["raw_messages"], raw) == []
    [quarantined] = _items(client, "/raw-messages", status="quarantined")
    assert quarantined["error"] == "parse: not an email: no header fields found"
    assert sorted(r["status"] for r in raw) == ["done"] * 11 + ["duplicate", "ignored", "quarantined"]
    eml = client.get(f"/api/v1/raw-messages/{quarantined['id']}/eml")
    assert eml.content == b"\x00\x01 these bytes are not a mail\r\n"


def test_old_tokens_sign_in_as_the_bootstrap_administrator(desk: Callable[..., TestClient]) -> None:
    for name in ("admin (cli)", "automation", "read only"):
        me = desk(name).get("/api/v1/users/me")
        assert me.status_code == 200, me.text
        assert (me.json()["email"], me.json()["role"]) == (BOOTSTRAP_ADMIN, "admin")
    tokens = _items(desk(), "/tokens")
    assert sorted(t["name"] for t in tokens) == ["admin (cli)", "automation", "read only", "revoked"]


def test_contacts_are_listed_as_before(upgraded: Previous, desk: Callable[..., TestClient]) -> None:
    contacts = _items(desk(), "/contacts")
    # ``addresses`` are the further ones (contact_addresses): an old contact has its one address in ``email``.
    assert {c["email"]: (c["name"], c["addresses"]) for c in contacts} == {
        c["email"]: (c["name"], []) for c in upgraded.rows["contacts"]
    }


@pytest.mark.parametrize(
    ("words", "subject"),
    [
        ("Saying", "Saying Hello"),  # subject
        ("shipped", 'Re: Test: "漢字" mid "漢字" tail'),  # an agent's reply
        ("Lindsaar", "Testing 123"),  # the sender's name
        ("まみむめも", "まみむめも"),  # not Latin
        ("renews", "Your renewal"),  # a conversation the agent started
    ],
)
def test_search_finds_old_messages(desk: Callable[..., TestClient], words: str, subject: str) -> None:
    found = [c["subject"] for c in _items(desk(), "/conversations", q=words)]
    assert subject in found


def test_contact_search_finds_old_contacts(desk: Callable[..., TestClient]) -> None:
    found = {c["email"] for c in _items(desk(), "/contacts", q="Jamis")}
    assert found == {"jamis@37signals.com"}


def test_new_mail_of_an_old_contact_joins_their_conversation_as_before(
    upgraded: Previous, desk: Callable[..., TestClient], make_service: Callable[..., Service]
) -> None:
    """Grouping "contact": the open conversation of the sender on the connection takes their mail."""
    client = desk()
    [support] = [c for c in _items(client, "/connections") if c["name"] == "Support"]
    service = make_service(upgraded.url, start=False)
    sink = MailboxSink(service.db, support["id"], support["mailboxes"][0]["id"], on_stored=lambda n: None)
    sink.store(
        [FetchedMail(uid=300, raw=make_mail("A new question", sender="John Doe <jdoe@machine.example>"))],
        ImapCursor(1700000000, 300),
    )
    service.pipeline.drain()
    [hello] = [c for c in _items(client, "/conversations", q="Saying") if c["subject"] == "Saying Hello"]
    detail = client.get(f"/api/v1/conversations/{hello['id']}").json()
    assert detail["messages"][-1]["subject"] == "A new question"
    assert len(_items(client, "/conversations")) == len(upgraded.shown["conversations"])
