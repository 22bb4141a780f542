"""Build the previous release's databases, filled by that release's own code, for the upgrade test.

What it produces (in the folder of this file, or ``--out``), read by
``tests/store/test_upgrade_from_previous_release.py``:

- ``postroom-0004.sqlite``: a SQLite database of the previous release (schema at migration 0004);
- ``postroom-0004.postgresql.sql``: the same story in PostgreSQL, as a plain ``pg_dump`` of one schema
  (``--column-inserts``, no owner, no privileges): every name in it is qualified with the schema
  ``postroom_release_0004``, which the test replaces by a fresh schema of its own;
- ``postroom-0004.sqlite.json`` and ``postroom-0004.postgresql.json``: what that release's API showed for
  the database (connections, every conversation in detail, raw messages) and the API tokens it printed, so
  the test can compare what the current API shows after the upgrade with what the old one showed before.

The previous release is the last commit whose schema is at migration 0004: ``a9567f9`` (``e969e2a^^``;
``e969e2a^`` is the groundwork commit of the same change, which already carries a draft of 0005). Run it
with that checkout's sources first on the path and this project's venv (same dependencies), from the
project root::

    git worktree add /tmp/postroom-0004 a9567f9
    PYTHONPATH=/tmp/postroom-0004/src .venv/bin/python tests/store/previous_release/make_fixtures.py \\
        --checkout /tmp/postroom-0004
    git worktree remove /tmp/postroom-0004

PostgreSQL is the server of ``POSTROOM_TEST_DATABASE_URL`` (default ``127.0.0.1:5432``, database ``test``,
trust authentication); ``pg_dump`` must be on the path. The script refuses to run against any other code
than the checkout's, or against a checkout whose newest migration is not 0004.

What goes in, all through the release's own paths (its API in-process, its CLI, its sources' sinks, its
SMTP listener, its pipeline and its outbox worker against a real local SMTP server and SendGrid stand-in):

- an admin token printed by ``postroom token create`` (the CLI), a second admin token, a non-admin
  token, and one revoked by hand (the release had no way to revoke: the row is marked);
- connections of each mode, created with ``POST /connections``: IMAP (two mailboxes), POP3, forwarding and
  a Mailgun webhook connection that sends through SendGrid; all started, Support stopped again after its
  replies went out;
- real mails of ``../shared/corpus/imap_tools_messages`` (read, never copied into the project): to the IMAP
  mailboxes through the IMAP source's sink, to POP3 through its UIDL sink, to the forwarding connection
  over SMTP into the release's listener (and a mail to postmaster), and to the webhook as a signed Mailgun
  post; a second copy of one mail under another UID (a duplicate), and bytes that are no mail (quarantined);
- agent replies (``POST /conversations/{id}/messages``) and a conversation the agent starts
  (``POST /conversations``), sent by the outbox worker: sent over SMTP with the Sent copy filed, sent
  through SendGrid, refused by the server (failed), and one waiting for its response delay (queued);
- status changes (pending, resolved) through ``PATCH /conversations/{id}``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[2]
SCHEMA = "postroom_release_0004"
REVISION = "0004"
# The process secret of the fixtures' installation: connection secrets were encrypted with it, and the
# test reads them back with it. Not a secret of anything real.
SECRET_KEY = "bTkdy0kHp9yBfQd2r1o9Zq6YvV8sQ3aJxWl5uN7cE4I="
INBOUND_DOMAIN = "inbound.acme.test"
MAILGUN_SIGNING_KEY = "mailgun-fixture-signing-key"
SMTP_PASSWORD = "smtp-fixture-password"  # the local test SMTP server's, nothing real
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def corpus_dir() -> Path:
    if os.environ.get("POSTROOM_SHARED_DIR"):
        return Path(os.environ["POSTROOM_SHARED_DIR"]) / "corpus" / "imap_tools_messages"
    beside = PROJECT.parent / "shared"
    return (beside if beside.is_dir() else Path("/work/shared")) / "corpus" / "imap_tools_messages"


def corpus_mail(name: str) -> bytes:
    return (corpus_dir() / "messages" / f"{name}.eml").read_bytes()


# Which corpus mail goes where (names relative to the corpus' messages/ folder).
IMAP_SUPPORT = [
    "plain_emails/basic_email",  # Testing 123
    "rfc2822/example01",  # Saying Hello
    "rfc2822/example06",  # Re: Saying Hello (a reply to example01: the same conversation)
    "multi_charset/japanese",  # まみむめも
    "attachment_emails/attachment_pdf",  # a PDF, and emoji in the subject
]
IMAP_BILLING = ["plain_emails/raw_email"]  # NOTE: 한국말로 하는 것
POP3 = ["plain_emails/raw_email_reply", "attachment_7bit"]
FORWARDED = ["rfc2822/example14", "mime_emails/raw_email4"]
WEBHOOK = ["plain_emails/raw_email_with_partially_quoted_subject"]
NOT_A_MAIL = b"\x00\x01 these bytes are not a mail\r\n"


def check_checkout(checkout: Path) -> None:
    """The code that runs must be the checkout's, and the checkout's schema must be the release's."""
    import postroom
    from postroom.store.migrate import head_revision

    source = Path(postroom.__file__).resolve()
    if not source.is_relative_to((checkout / "src").resolve()):
        sys.exit(f"postroom is imported from {source}, not from {checkout}/src: set PYTHONPATH={checkout}/src")
    if head_revision() != REVISION:
        sys.exit(f"{checkout} is at migration {head_revision()}, not {REVISION}: check out the previous release")


class Installation:
    """One Postroom installation of the previous release on ``database_url``, driven through its own code."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        from postroom.service import Policies, Service
        from postroom.settings import Settings
        from postroom.testing.sendgrid import SendgridTestServer
        from postroom.testing.smtp import SmtpTestServer
        from postroom.transports.sent_folder import SentCopy

        self.env = {
            "POSTROOM_DATA_DIR": str(data_dir),
            "POSTROOM_DATABASE_URL": database_url,
            "POSTROOM_SECRET_KEY": SECRET_KEY,
            "POSTROOM_INBOUND_DOMAIN": INBOUND_DOMAIN,
            "POSTROOM_SMTP_BIND": "127.0.0.1:0",
        }
        os.environ.update(self.env)
        self.smtp = SmtpTestServer(users={}, auth_required=True).start()
        self.sendgrid = SendgridTestServer().start()
        self.filed: list[bytes] = []

        def file_in_sent(account: Any, raw: bytes, folder: str = "", **_: Any) -> SentCopy:
            # The IMAP server's Sent folder: the one network piece stood in for (no IMAP server here).
            self.filed.append(raw)
            return SentCopy(folder=folder or "Sent", uid=len(self.filed), uidvalidity=7)

        self.service = Service(Settings(), Policies())
        self.service.outbox.sent_appender = file_in_sent
        self.tokens: dict[str, str] = {}

    # ── the CLI and the API ───────────────────────────────────────────────────────────────────

    def cli(self, *args: str) -> str:
        """``postroom ARGS`` of the release, in a process of its own (its sources, this interpreter)."""
        command = [sys.executable, "-c", "from postroom.cli import app; app()", *args]
        result = subprocess.run(command, env={**os.environ, **self.env}, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"postroom {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result.stdout

    @contextmanager
    def api(self) -> Iterator[Callable[..., Any]]:
        from fastapi.testclient import TestClient

        from postroom.api.app import create_app

        with TestClient(create_app(self.service)) as client:
            client.headers["Authorization"] = f"Bearer {self.tokens['admin (cli)']}"

            def call(method: str, path: str, body: Any = None, *, expect: int = 200, **kwargs: Any) -> Any:
                response = client.request(method, f"/api/v1{path}", json=body, **kwargs)
                if response.status_code != expect:
                    raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
                return response.json() if response.content else None

            yield call

    # ── the story ─────────────────────────────────────────────────────────────────────────────

    def fill(self) -> dict[str, Any]:
        self.cli("migrate")
        self.tokens["admin (cli)"] = self.cli("token", "create", "--name", "admin (cli)").strip().splitlines()[-1]
        self.more_tokens()
        with self.api() as call:
            connections = self.connections(call)
            self.deliver(call, connections)
            self.reply(call, connections)
            return self.snapshot(call)

    def more_tokens(self) -> None:
        from sqlalchemy import update

        from postroom.api.tokens import create_token
        from postroom.store.models import ApiToken, utcnow

        with self.service.db.write() as session:
            self.tokens["automation"] = create_token(session, "automation")
            self.tokens["read only"] = create_token(session, "read only", admin=False)
            create_token(session, "revoked")
            session.execute(update(ApiToken).where(ApiToken.name == "revoked").values(revoked_at=utcnow()))

    def connections(self, call: Callable[..., Any]) -> dict[str, dict[str, Any]]:
        smtp = {
            "smtp_server": self.smtp.host,
            "smtp_port": self.smtp.port,
            "smtp_encryption": "none",
            "smtp_password": SMTP_PASSWORD,
        }
        for address in ("support@acme.test", "billing@acme.test", "sales@acme.test", "help@acme.test"):
            self.smtp.add_user(address, SMTP_PASSWORD)
        bodies = {
            "imap": {
                "name": "Support",
                "description": "Customer support, IMAP",
                "mode": "imap",
                "address": "support@acme.test, billing@acme.test",
                "email_name": "Acme Support, Acme Billing",
                "password": ["imap-pass-1", "imap-pass-2"],
                "imap_server": "imap.acme.test",
                "sent_folder": "Sent Items",
                "smtp_signature": "-- \n{{ sender_name }}, Acme Support",
                "check_interval": 30,
                **smtp,
            },
            "pop3": {
                "name": "Sales",
                "mode": "pop3",
                "address": "sales@acme.test",
                "password": "pop-pass",
                "pop3_server": "pop.acme.test",
                "delete_after_import": True,
                "response_delay_min": 3600,
                "response_delay_max": 3600,
                **smtp,
            },
            "forwarding": {
                "name": "Helpdesk (forwarded)",
                "mode": "forwarding",
                "address": "help@acme.test",
                "reply_to": "help@acme.test",
                **smtp,
            },
            "webhook": {
                "name": "Mailgun",
                "mode": "webhook",
                "webhook_provider": "mailgun",
                "webhook_signing_key": MAILGUN_SIGNING_KEY,
                "outbound": "sendgrid",
                "sendgrid_api_key": self.sendgrid.api_key,
                "sendgrid_api_url": self.sendgrid.url,
                "address": "orders@acme.test",
            },
        }
        made = {mode: call("POST", "/connections", body, expect=201) for mode, body in bodies.items()}
        # Started: a stopped connection keeps its replies queued. No supervisor runs here, so they stay STARTING
        # until the Support connection is stopped again once its replies went out.
        return {mode: call("POST", f"/connections/{made[mode]['id']}/start") for mode in made}

    def deliver(self, call: Callable[..., Any], connections: dict[str, dict[str, Any]]) -> None:
        from postroom.channels.sink import MailboxSink
        from postroom.sources.base import FetchedMail, ImapCursor

        db = self.service.db
        imap = connections["imap"]
        for mailbox, names in zip(imap["mailboxes"], (IMAP_SUPPORT, IMAP_BILLING), strict=True):
            sink = MailboxSink(db, imap["id"], mailbox["id"], on_stored=lambda n: None)
            fetched = [FetchedMail(uid=uid, raw=corpus_mail(name)) for uid, name in enumerate(names, start=101)]
            if names is IMAP_SUPPORT:  # the same mail again under another UID: a duplicate
                fetched.append(FetchedMail(uid=200, raw=corpus_mail(names[0])))
            sink.store(fetched, ImapCursor(uidvalidity=1700000000, last_uid=fetched[-1].uid))
        pop3 = connections["pop3"]
        sink = MailboxSink(db, pop3["id"], pop3["mailboxes"][0]["id"], on_stored=lambda n: None)
        mails = [(f"uidl-{name.replace('/', '-')}", corpus_mail(name)) for name in POP3]
        sink.store_pop3([*mails, ("uidl-not-a-mail", NOT_A_MAIL)])

        listener = self.service.start_listener()
        assert listener is not None
        address = connections["forwarding"]["inbound_address"]
        with smtplib.SMTP(listener.host, listener.port) as client:
            for name in FORWARDED:
                client.sendmail("forwarder@acme.test", [address], corpus_mail(name))
            postmaster = f"postmaster@{INBOUND_DOMAIN}"
            client.sendmail("someone@elsewhere.test", [postmaster], corpus_mail("rfc2822/example05"))

        path = connections["webhook"]["webhook_path"].removeprefix("/api/v1")  # …/mime: raw MIME
        for number, name in enumerate(WEBHOOK):
            timestamp, token = str(int(time.time())), f"fixture-token-{number}-{uuid.uuid4().hex}"
            signature = hmac.new(MAILGUN_SIGNING_KEY.encode(), (timestamp + token).encode(), hashlib.sha256)
            form = {"timestamp": timestamp, "token": token, "signature": signature.hexdigest()}
            form["body-mime"] = corpus_mail(name).decode("utf-8", "surrogateescape")
            call(
                "POST",
                path,
                content=urlencode(form),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        self.service.pipeline.drain()

    def reply(self, call: Callable[..., Any], connections: dict[str, dict[str, Any]]) -> None:
        by_connection: dict[int, list[dict[str, Any]]] = {}
        for item in call("GET", "/conversations", params={"limit": 500})["items"]:
            by_connection.setdefault(item["connection_id"], []).append(item)
        for items in by_connection.values():
            items.sort(key=lambda item: item["id"])
        support = by_connection[connections["imap"]["id"]]
        hello = next(c for c in support if c["subject"] == "Saying Hello")
        answer = {"text": "Hello to you too.", "author": "Alice"}
        call("POST", f"/conversations/{hello['id']}/messages", answer, expect=201)
        japanese = next(c for c in support if c["subject"] == "まみむめも")
        # The server refuses this customer: the reply fails for good.
        detail = call("GET", f"/conversations/{japanese['id']}")
        self.smtp.refuse_recipient(detail["messages"][0]["from"]["email"])
        call("POST", f"/conversations/{japanese['id']}/messages", {"text": "はい、承知しました。"}, expect=201)
        sales = by_connection[connections["pop3"]["id"]][0]
        answer = {"text": "We will call you.", "author": "Bob"}
        call("POST", f"/conversations/{sales['id']}/messages", answer, expect=201)
        webhook = by_connection[connections["webhook"]["id"]][0]
        call("POST", f"/conversations/{webhook['id']}/messages", {"text": "Your order has shipped."}, expect=201)
        call(
            "POST",
            "/conversations",
            {
                "connection_id": connections["forwarding"]["id"],
                "to": "Erin Example <erin@customer.test>",
                "subject": "Your renewal",
                "text": "Your subscription renews next week.",
                "author": "Carol",
            },
            expect=201,
        )
        for _ in range(5):  # sends, files Sent copies; the POP3 reply waits for its response delay
            asyncio.run(self.service.outbox.run_once())
        call("POST", f"/connections/{connections['imap']['id']}/stop")
        call("PATCH", f"/conversations/{hello['id']}", {"status": "pending"})
        testing = next(c for c in support if c["subject"] == "Testing 123")
        call("PATCH", f"/conversations/{testing['id']}", {"status": "resolved"})

    def snapshot(self, call: Callable[..., Any]) -> dict[str, Any]:
        listed = call("GET", "/conversations", params={"limit": 500})
        return {
            "revision": REVISION,
            "tokens": self.tokens,
            "connections": call("GET", "/connections"),
            "conversations": [call("GET", f"/conversations/{item['id']}") for item in listed["items"]],
            "raw_messages": call("GET", "/raw-messages", params={"limit": 1000}),
            "smtp_sent": len(self.smtp.messages),
            "sendgrid_sent": len(self.sendgrid.messages),
            "sent_copies_filed": len(self.filed),
        }

    def close(self) -> None:
        self.service.close()
        self.smtp.stop()
        self.sendgrid.stop()
        for name in self.env:
            os.environ.pop(name, None)


def fill(database_url: str, snapshot_path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="postroom-0004-") as data_dir:
        installation = Installation(database_url, Path(data_dir))
        try:
            snapshot = installation.fill()
        finally:
            installation.close()
    snapshot_path.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False, sort_keys=True) + "\n")


def make_sqlite(out: Path) -> None:
    target = out / "postroom-0004.sqlite"
    with tempfile.TemporaryDirectory(prefix="postroom-0004-sqlite-") as work:
        database = Path(work) / "postroom.db"
        fill(f"sqlite:///{database}", out / "postroom-0004.sqlite.json")
        # One self-contained, compact file (the WAL folded in, free pages dropped), by SQLite's own backup.
        target.unlink(missing_ok=True)
        source, copy = sqlite3.connect(database), sqlite3.connect(target)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
            copy.execute("PRAGMA page_size=1024")  # mostly empty tables and indexes: small pages, small file
            copy.execute("VACUUM")
        finally:
            source.close()
            copy.close()
    print(f"wrote {target} ({target.stat().st_size} bytes)")


def make_postgresql(out: Path, base_url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = out / "postroom-0004.postgresql.sql"
    base = make_url(base_url)
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        connection.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    try:
        url = base.update_query_dict({"options": f"-csearch_path={SCHEMA}"}).render_as_string(hide_password=False)
        fill(url, out / "postroom-0004.postgresql.json")
        command = ["pg_dump", "--schema", SCHEMA, "--column-inserts", "--no-owner", "--no-privileges"]
        command += ["--no-comments", "--no-tablespaces", "--file", str(target)]
        command += ["--host", base.host or "127.0.0.1", "--port", str(base.port or 5432)]
        command += ["--username", base.username or "postgres", base.database or "test"]
        env = {**os.environ, **({"PGPASSWORD": base.password} if base.password else {})}
        subprocess.run(command, check=True, env=env)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        admin.dispose()
    print(f"wrote {target} ({target.stat().st_size} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, required=True, help="the previous release's work tree")
    parser.add_argument("--out", type=Path, default=HERE, help="where the fixtures go (default: beside this file)")
    parser.add_argument("--postgres-url", default=os.environ.get("POSTROOM_TEST_DATABASE_URL") or DEFAULT_POSTGRES)
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="make only one of the two")
    args = parser.parse_args()
    check_checkout(args.checkout)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "sqlite"):
        make_sqlite(args.out)
    if args.only in (None, "postgresql"):
        make_postgresql(args.out, args.postgres_url)


if __name__ == "__main__":
    main()
