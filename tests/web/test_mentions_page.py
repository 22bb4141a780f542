"""Mentions: a colleague's note that names me shows as a count in the top bar and on /mentions; opening the
conversation marks it seen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conversation_support import customer_mail, make_desk
from playwright.sync_api import Page, expect
from web_support import LiveServer, sign_in

from postroom.store.models import Role
from postroom.testing.smtp import SmtpTestServer


def test_a_note_naming_me_is_counted_listed_and_seen_once_opened(
    page: Page,
    live: LiveServer,
    make_user: Callable[..., int],
    make_smtp_server: Callable[..., SmtpTestServer],
    shot: Callable[[Page, str], Path],
) -> None:
    ann = make_user("ann@example.test", "Ann Agent", Role.AGENT)
    make_user("bob@example.test", "Bob", Role.AGENT)
    desk = make_desk(live.service, make_smtp_server)
    conversation_id = desk.deliver(customer_mail())
    with live.service.db.write() as session:
        live.service.conversations.add_note(
            session, conversation_id, text="@Bob please check the courier's answer.", author_id=ann
        )
    sign_in(page, live.url, "bob@example.test")
    mentions = page.get_by_role("link", name="Mentions 1 not seen")
    expect(mentions).to_be_visible()
    mentions.click()
    expect(page.get_by_role("heading", name="Mentions")).to_be_visible()
    entry = page.get_by_role("link", name="Ann Agent")
    expect(entry).to_contain_text("please check the courier's answer.")
    expect(entry).to_contain_text("New")
    shot(page, "mentions")
    entry.click()
    expect(page.get_by_role("textbox", name="Reply", exact=True)).to_be_visible()
    page.goto(f"{live.url}/mentions")
    expect(page.get_by_role("link", name="Ann Agent")).not_to_contain_text("New")
    expect(page.get_by_role("link", name="Mentions", exact=True)).to_be_visible()
