"""Notes: written from the editor's "Note" tab, shown in the timeline as an internal note with its author,
never emailed to anybody."""

from __future__ import annotations

import time
from collections.abc import Callable

from conversation_support import customer_mail, make_desk, open_conversation
from playwright.sync_api import Page, expect
from web_support import LiveServer

from postroom.testing.smtp import SmtpTestServer


def test_a_note_is_shown_as_internal_and_never_emailed(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    desk = make_desk(live.service, make_smtp_server)
    conversation_id = desk.deliver(customer_mail())
    open_conversation(agent_page, live.url, conversation_id)
    agent_page.get_by_role("tab", name="Note").click()
    note = agent_page.get_by_label("Note", exact=True)
    expect(note).to_be_focused()
    note.fill("Customer was polite; refund approved by finance.")
    agent_page.get_by_role("button", name="Add note").click()
    shown = agent_page.get_by_role("article", name="Internal note by Alan Agent")
    expect(shown).to_contain_text("Internal note")
    expect(shown).to_contain_text("Customer was polite; refund approved by finance.")
    expect(note).to_have_value("")
    # Tinted apart from mail, not by colour alone: the label says what it is.
    assert "msg-note" in (shown.get_attribute("class") or "")
    time.sleep(1.0)  # the outbox polls every 0.2 s here: a note queued by mistake would be out by now
    assert desk.smtp.messages == []
    [_, stored] = desk.conversation(conversation_id)["messages"]
    assert stored["direction"] == "note" and stored["delivery_status"] is None


def test_an_empty_note_is_refused_next_to_the_field(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    desk = make_desk(live.service, make_smtp_server)
    conversation_id = desk.deliver(customer_mail())
    open_conversation(agent_page, live.url, conversation_id)
    agent_page.get_by_role("tab", name="Note").click()
    agent_page.get_by_role("button", name="Add note").click()
    expect(agent_page.locator("#note-text-error")).to_have_text("Write the note first.")
    expect(agent_page.get_by_label("Note", exact=True)).to_have_attribute("aria-invalid", "true")
    assert len(desk.conversation(conversation_id)["messages"]) == 1
