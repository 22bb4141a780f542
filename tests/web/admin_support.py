"""Helpers of the administrators' page tests: mail into a conversation, a stage that fails on purpose,
rows read back from the database, a bearer client for the API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from playwright.sync_api import Browser, Page
from sqlalchemy import select
from web_support import LiveServer, sign_in

from postroom.pipeline.context import Context, NamedStage
from postroom.pipeline.default import DEFAULT_STAGES
from postroom.service import Service
from postroom.store.models import Conversation, RawMessage, RawStatus
from postroom.testing.mails import make_mail
from support import Api, Desk, wait_until


def desk(service: Service) -> Desk:
    """A connection named "Support" into whose mailbox the test delivers mail as a source would."""
    return Desk(Api(service))


def conversation_of(service: Service, the_desk: Desk, subject: str, *, assignee_id: int | None = None) -> int:
    """Deliver a customer's mail with ``subject`` and return its conversation (assigned when asked)."""
    the_desk.deliver(
        make_mail(
            subject, sender=f"Cy Customer <cy-{''.join(c for c in subject.lower() if c.isalnum())}@customer.example>"
        )
    )

    def found() -> int | None:
        with service.db.read() as session:
            return session.scalar(select(Conversation.id).where(Conversation.subject == subject))

    conversation_id: int = wait_until(found)
    if assignee_id is not None:
        with service.db.write() as session:
            service.conversations.update(session, conversation_id, {"assignee_id": assignee_id}, actor_id=None)
    return conversation_id


def assignee_of(service: Service, conversation_id: int) -> int | None:
    with service.db.read() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        return conversation.assignee_id


@contextmanager
def failing_stage(service: Service, subject: str, message: str) -> Iterator[None]:
    """While the block runs, mail with ``subject`` fails in a stage named ``explode`` (and is quarantined)."""

    def explode(ctx: Context) -> None:
        if ctx.parsed is not None and ctx.parsed.subject == subject:
            raise ValueError(message)

    runner = service.pipeline
    runner.stages = (*DEFAULT_STAGES[:2], NamedStage("explode", explode), *DEFAULT_STAGES[2:])
    try:
        yield
    finally:
        runner.stages = DEFAULT_STAGES


def quarantined(service: Service, count: int = 1) -> list[RawMessage]:
    """Wait until ``count`` raw messages are quarantined, and return them (oldest first)."""

    def rows() -> list[RawMessage] | None:
        with service.db.read() as session:
            found = list(
                session.scalars(
                    select(RawMessage).where(RawMessage.status == RawStatus.QUARANTINED).order_by(RawMessage.id)
                )
            )
        return found if len(found) >= count else None

    result: list[RawMessage] = wait_until(rows)
    return result


def second_browser(browser: Browser, live: LiveServer, email: str | None = None) -> Page:
    """A page in a context of its own (other cookies: another person's browser), signed in as ``email``."""
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    context.set_default_timeout(10_000)
    page = context.new_page()
    if email is not None:
        sign_in(page, live.url, email)
    return page


def bearer(live: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=f"{live.url}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=10)
