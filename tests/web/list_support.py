"""Conversations for the list's browser tests: mail delivered into connections as a source would, then
processed by the live service's own pipeline (no Dovecot needed), and changes made through the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from playwright.sync_api import Locator, Page
from sqlalchemy import select
from web_support import LiveServer

from postroom.api.tokens import create_token
from postroom.channels.sink import MailboxSink
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.store.models import Conversation, Role, TokenKind, utcnow
from postroom.testing.mails import make_mail
from postroom.web.session import SESSION_COOKIE
from support import DESK_CONNECTION, Api, wait_until


class Inbox:
    """One connection with one mailbox, and the sink its source would store mail with."""

    def __init__(self, api: Api, body: dict[str, Any]) -> None:
        self.connection: dict[str, Any] = api.post("/connections", body, expect=201)
        self.id: int = self.connection["id"]
        self.name: str = self.connection["name"]
        mailbox_id = self.connection["mailboxes"][0]["id"]
        self.sink = MailboxSink(api.service.db, self.id, mailbox_id, on_stored=lambda n: None)
        self.uid = 0


class MailDesk:
    """The live service with the ``Support`` inbox; ``mail()`` makes a conversation through the pipeline."""

    def __init__(self, live: LiveServer) -> None:
        self.live = live
        self.service = live.service
        self.api = Api(live.service)
        self.support = Inbox(self.api, DESK_CONNECTION)

    def add_inbox(self, name: str, address: str) -> Inbox:
        return Inbox(self.api, {**DESK_CONNECTION, "name": name, "address": address})

    def mail(
        self,
        subject: str,
        *,
        body: str = "Hello,\n\nmy parcel has not arrived.\n\nKind regards\nAda\n",
        sender: str = "Ada Customer <ada@customer.example>",
        inbox: Inbox | None = None,
    ) -> int:
        """Deliver one mail and wait until the pipeline made (or updated) its conversation; its id."""
        inbox = inbox or self.support
        inbox.uid += 1
        raw = make_mail(subject, body=body, sender=sender)
        inbox.sink.store([FetchedMail(uid=inbox.uid, raw=raw)], ImapCursor(1, inbox.uid))
        # The service's workers run too: whichever claims the mail processes it, so wait for the result.
        self.service.pipeline.drain()
        found: int = wait_until(lambda: self._conversation_with(subject), timeout=10)
        return found

    def _conversation_with(self, subject: str) -> int | None:
        with self.service.db.read() as session:
            return session.scalar(
                select(Conversation.id).where(Conversation.subject == subject).order_by(Conversation.id.desc())
            )

    def change(self, conversation_id: int, **changes: Any) -> None:
        response = self.api.client.patch(f"/api/v1/conversations/{conversation_id}", json=changes)
        assert response.status_code == 200, response.text

    def team(self, name: str, member_ids: list[int]) -> int:
        team_id: int = self.api.post("/teams", {"name": name, "member_ids": member_ids}, expect=201)["id"]
        return team_id

    def conversation(self, conversation_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get(f"/conversations/{conversation_id}")
        return found


def add_user(live: LiveServer, email: str, name: str, role: Role = Role.AGENT) -> int:
    """A user without a password (argon2 takes a second or more on a busy machine; the list's tests do not
    sign in through the form, ``test_login`` does)."""
    with live.service.db.write() as session:
        return live.service.users.create(session, email, name=name, role=role).id


def sign_in_agent(page: Page, live: LiveServer, email: str = "agent@example.test", name: str = "Alan") -> int:
    """Make an agent and give ``page`` a session of theirs, as the sign-in form would; their user id."""
    user_id = add_user(live, email, name)
    with live.service.db.write() as session:
        token = create_token(
            session, "browser: tests", user_id=user_id, kind=TokenKind.SESSION, expires_at=utcnow() + timedelta(hours=1)
        )
    page.context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": live.url, "httpOnly": True}])
    # Room for a machine busy with the parallel suite: a page load there has taken over 10 s.
    page.set_default_navigation_timeout(30_000)
    return user_id


def row(page: Page, conversation_id: int) -> Locator:
    """The list row of a conversation."""
    return page.locator(f'#conversation-list .crow[data-id="{conversation_id}"]')


def listed_ids(page: Page) -> list[int]:
    """The ids of the conversations the list shows, in order."""
    return [int(v) for v in page.locator("#conversation-list .crow").evaluate_all("rs => rs.map(r => r.dataset.id)")]
