"""The reply editor: a reply with a file reaches the customer's server threaded under their mail, its delivery
shows queued then sent (and a failed one can be retried), "Send and resolve" resolves, files over the inbox's
limit are refused next to the field, and a draft survives a reload."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from conversation_support import customer_mail, make_desk, open_conversation, received_mail
from playwright.sync_api import Page, expect
from web_support import LiveServer

from postroom.errors import Conflict, NotFound
from postroom.helpdesk.delivery import retry_delivery
from postroom.testing.smtp import SmtpTestServer
from support import wait_until


def test_a_reply_with_a_file_is_sent_threaded_and_shows_queued_then_sent(
    agent_page: Page,
    live: LiveServer,
    make_smtp_server: Callable[..., SmtpTestServer],
    shot: Callable[[Page, str], Path],
) -> None:
    desk = make_desk(live.service, make_smtp_server, smtp_signature="Kind regards,\n{{ sender_name }}")
    conversation_id = desk.deliver(customer_mail())
    asked = desk.conversation(conversation_id)["messages"][0]["message_id"]
    page = agent_page
    open_conversation(page, live.url, conversation_id)
    expect(page.get_by_text(f"<{desk.address}>")).to_be_visible()
    expect(page.get_by_role("note")).to_have_text("Kind regards,\nExample Support")
    page.get_by_role("textbox", name="Reply", exact=True).fill("Found it: it arrives tomorrow.")
    page.get_by_label("Attach files").set_input_files(
        files=[{"name": "label.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 parcel label"}]
    )
    page.get_by_role("button", name="Send", exact=True).click()
    reply = page.get_by_role("article", name="Reply by Alan Agent")
    expect(reply).to_contain_text("Found it: it arrives tomorrow.")
    expect(reply.get_by_role("link", name="label.pdf")).to_be_visible()
    expect(reply.locator(".delivery")).to_contain_text("Sent", timeout=10_000)
    expect(page.get_by_role("textbox", name="Reply", exact=True)).to_have_value("")

    sent = received_mail(desk.smtp)
    assert sent["In-Reply-To"] == f"<{asked}>"
    assert f"<{asked}>" in sent["References"]
    assert sent["To"] == "Cy Customer <cy@customer.example>"
    files = [part for part in sent.iter_attachments() if isinstance(part, EmailMessage)]
    assert [(f.get_filename(), f.get_content_type(), f.get_content()) for f in files] == [
        ("label.pdf", "application/pdf", b"%PDF-1.4 parcel label")
    ]
    body = sent.get_body(("plain",))
    assert body is not None and "Kind regards," in body.get_content()
    shot(page, "conversation-after-reply")


def test_the_delivery_shows_queued_until_the_outbox_sends_it(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    # A response delay keeps the reply queued for a moment: the page shows it so, then sent without a reload.
    desk = make_desk(live.service, make_smtp_server, response_delay_min=3, response_delay_max=3)
    conversation_id = desk.deliver(customer_mail())
    open_conversation(agent_page, live.url, conversation_id)
    agent_page.get_by_role("textbox", name="Reply", exact=True).fill("On its way.")
    agent_page.get_by_role("button", name="Send", exact=True).click()
    delivery = agent_page.get_by_role("article", name="Reply by Alan Agent").locator(".delivery")
    expect(delivery).to_contain_text("Queued")
    expect(delivery).to_contain_text("Sent", timeout=10_000)
    assert len(desk.smtp.messages) == 1


def test_send_and_resolve_resolves_the_conversation(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    desk = make_desk(live.service, make_smtp_server)
    conversation_id = desk.deliver(customer_mail())
    open_conversation(agent_page, live.url, conversation_id)
    agent_page.get_by_role("textbox", name="Reply", exact=True).fill("Done, closing this.")
    agent_page.get_by_role("button", name="Send and resolve").click()
    expect(agent_page.locator("#conv-status")).to_have_text("resolved")
    expect(agent_page.get_by_label("Status")).to_have_value("resolved")
    expect(agent_page.get_by_text("changed the status from pending to resolved")).to_be_visible()
    received_mail(desk.smtp)
    assert desk.conversation(conversation_id)["status"] == "resolved"


def test_files_over_the_inbox_limit_are_refused_next_to_the_field(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    desk = make_desk(live.service, make_smtp_server, max_attachment_bytes=2048)
    conversation_id = desk.deliver(customer_mail())
    open_conversation(agent_page, live.url, conversation_id)
    agent_page.get_by_role("textbox", name="Reply", exact=True).fill("Here are the photos.")
    files = agent_page.get_by_label("Attach files")
    files.set_input_files(files=[{"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": b"x" * 5000}])
    error = agent_page.locator("#reply-files-error")
    expect(error).to_contain_text("over this inbox's limit")
    expect(files).to_have_attribute("aria-invalid", "true")
    agent_page.get_by_role("button", name="Send", exact=True).click()
    expect(error).to_be_visible()
    # The server says the same when a browser skips the check (the page's own script is bypassed here).
    agent_page.evaluate("document.getElementById('reply-files').removeAttribute('data-max-bytes')")
    agent_page.get_by_role("button", name="Send", exact=True).click()
    expect(agent_page.locator("#reply-files-error")).to_contain_text("choose them again")
    expect(agent_page.get_by_role("textbox", name="Reply", exact=True)).to_have_value("Here are the photos.")
    assert desk.smtp.messages == []
    assert len(desk.conversation(conversation_id)["messages"]) == 1


def test_a_failed_reply_says_why_and_is_sent_on_retry(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    desk = make_desk(live.service, make_smtp_server)
    conversation_id = desk.deliver(customer_mail())
    desk.smtp.refuse_recipient("cy@customer.example")
    open_conversation(agent_page, live.url, conversation_id)
    agent_page.get_by_role("textbox", name="Reply", exact=True).fill("Can you read this?")
    agent_page.get_by_role("button", name="Send", exact=True).click()
    delivery = agent_page.get_by_role("article", name="Reply by Alan Agent").locator(".delivery")
    expect(delivery).to_contain_text("Failed", timeout=10_000)
    expect(delivery).to_contain_text("550")
    desk.smtp.reset()
    delivery.get_by_role("button", name="Retry").click()
    expect(delivery).to_contain_text("Sent", timeout=10_000)
    assert len(desk.smtp.messages) == 1


def test_a_draft_survives_a_reload_and_is_gone_once_sent(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    desk = make_desk(live.service, make_smtp_server)
    conversation_id = desk.deliver(customer_mail())
    open_conversation(agent_page, live.url, conversation_id)
    reply = agent_page.get_by_role("textbox", name="Reply", exact=True)
    reply.fill("Half-written answer")
    agent_page.reload()
    expect(reply).to_have_value("Half-written answer")
    expect(agent_page.get_by_text("Draft restored")).to_be_visible()
    agent_page.get_by_role("button", name="Send", exact=True).click()
    expect(agent_page.get_by_role("article", name="Reply by Alan Agent")).to_be_visible()
    agent_page.reload()
    expect(agent_page.get_by_role("textbox", name="Reply", exact=True)).to_have_value("")


def test_only_a_failed_or_uncertain_reply_can_be_retried(
    live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    desk = make_desk(live.service, make_smtp_server)
    conversation_id = desk.deliver(customer_mail())
    reply = desk.api.post(f"/conversations/{conversation_id}/messages", {"text": "Hello"}, 201)
    wait_until(lambda: desk.conversation(conversation_id)["messages"][-1]["delivery_status"] == "sent", timeout=10)
    with live.service.db.write() as session, pytest.raises(Conflict, match="only failed or uncertain"):
        retry_delivery(session, conversation_id, reply["id"], actor_id=None)
    with live.service.db.write() as session, pytest.raises(NotFound):
        retry_delivery(session, conversation_id + 1, reply["id"], actor_id=None)
    customer = desk.conversation(conversation_id)["messages"][0]["id"]
    with live.service.db.write() as session, pytest.raises(NotFound):
        retry_delivery(session, conversation_id, customer, actor_id=None)
    assert len(desk.smtp.messages) == 1
