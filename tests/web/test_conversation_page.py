"""The conversation page: the timeline shows each mail's new text first (history and signature folded away),
notes and activity in order, HTML mail in a sandboxed frame, attachments to download; opening it reads it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from conversation_support import PNG, customer_mail, html_mail, make_desk, open_conversation
from playwright.sync_api import Page, expect
from web_support import LiveServer

from postroom.helpdesk.reads import unread_ids
from postroom.store.models import User
from postroom.testing.smtp import SmtpTestServer


def test_the_new_text_comes_first_and_the_quoted_history_unfolds(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    desk = make_desk(live.service, make_smtp_server)
    conversation_id = desk.deliver(customer_mail())
    with live.service.db.read() as session:
        agent = session.query(User).filter_by(email="agent@example.test").one()
        assert unread_ids(session, agent.id, [conversation_id]) == {conversation_id}

    open_conversation(agent_page, live.url, conversation_id)
    mail = agent_page.get_by_role("article", name="Mail from Cy Customer")
    expect(mail).to_contain_text("Thanks, the parcel number is 42-17.")
    history = mail.get_by_text("Could you send us the parcel number?")
    expect(history).to_be_hidden()
    mail.get_by_text("Show quoted text").click()
    expect(history).to_be_visible()
    expect(mail.get_by_text("Customer Corp")).to_be_visible()
    # Opening the page read it, for this user.
    with live.service.db.read() as session:
        assert unread_ids(session, agent.id, [conversation_id]) == set()


def test_an_html_mail_shows_in_a_sandboxed_frame_with_its_inline_picture_and_files(
    agent_page: Page,
    live: LiveServer,
    make_smtp_server: Callable[..., SmtpTestServer],
    shot: Callable[[Page, str], Path],
) -> None:
    desk = make_desk(live.service, make_smtp_server)
    html = '<p>Our <b>new</b> logo:</p><p><img src="cid:logo1" alt="Logo" width="40" height="40"></p>'
    conversation_id = desk.deliver(html_mail(html, images={"logo1": PNG}))
    open_conversation(agent_page, live.url, conversation_id)
    frame_element = agent_page.locator("iframe.msg-frame")
    assert frame_element.get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
    frame = agent_page.frame_locator("iframe.msg-frame")
    expect(frame.locator("b")).to_have_text("new")
    logo = frame.get_by_role("img", name="Logo")
    expect(logo).to_be_visible()
    deadline = time.monotonic() + 5
    while logo.evaluate("img => img.naturalWidth") != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logo.evaluate("img => img.naturalWidth") == 1
    shot(agent_page, "conversation-html")
    # The frame's own policy: nothing fetched but our pictures, no script, framed by us only.
    src = frame_element.get_attribute("src")
    cookies = {c["name"]: c["value"] for c in agent_page.context.cookies()}
    answer = httpx.get(f"{live.url}{src}", cookies=cookies)
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script" not in policy and "frame-ancestors 'self'" in policy
    assert answer.headers["x-frame-options"] == "SAMEORIGIN"


def test_files_download_as_attachments_and_pages_never_render_on_our_origin(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    desk = make_desk(live.service, make_smtp_server)
    files = (
        ("report.pdf", "application/pdf", b"%PDF-1.4 report"),
        ("page.html", "text/html", b"<script>alert(1)</script>"),
    )
    conversation_id = desk.deliver(html_mail("<p>Two files attached.</p>", files=files))
    open_conversation(agent_page, live.url, conversation_id)
    attachments = agent_page.get_by_role("list", name="Attachments")
    expect(attachments).to_contain_text("report.pdf")
    expect(attachments).to_contain_text("application/pdf")
    expect(attachments).to_contain_text("15 B")
    with agent_page.expect_download() as download:
        attachments.get_by_role("link", name="report.pdf").click()
    assert download.value.suggested_filename == "report.pdf"
    page_link = attachments.get_by_role("link", name="page.html").get_attribute("href")
    answer = agent_page.request.get(f"{live.url}{page_link}")
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.body() == b"<script>alert(1)</script>"
    # Without a session, nothing.
    assert httpx.get(f"{live.url}{page_link}", follow_redirects=False).status_code == 303


def test_the_page_at_desk_and_phone_width(
    agent_page: Page,
    live: LiveServer,
    make_smtp_server: Callable[..., SmtpTestServer],
    shot: Callable[[Page, str], Path],
) -> None:
    desk = make_desk(live.service, make_smtp_server, smtp_signature="Kind regards,\n{{ sender_name }}\nExample Ltd")
    html = (
        "<p>Hello,</p><p>the <b>blue</b> mug I ordered (order <a href='https://shop.example/o/1042'>1042</a>) "
        "arrived broken. A photo is attached.</p>"
        '<p><img src="cid:photo1" alt="Photo of the mug" width="120" height="80"></p>'
        '<p><img src="https://tracker.example/open.gif" width="1" height="1"></p><p>Thanks,<br>Cy</p>'
    )
    conversation_id = desk.deliver(
        html_mail(
            html, subject="Broken mug", images={"photo1": PNG}, files=(("receipt.pdf", "application/pdf", b"%PDF"),)
        )
    )
    open_conversation(agent_page, live.url, conversation_id)
    agent_page.get_by_role("tab", name="Note").click()
    agent_page.get_by_label("Note", exact=True).fill("Second broken mug from this batch: @Alan check the supplier.")
    agent_page.get_by_role("button", name="Add note").click()
    expect(agent_page.get_by_role("article", name="Internal note by Alan Agent")).to_be_visible()
    agent_page.get_by_role("tab", name="Reply").click()
    agent_page.get_by_role("textbox", name="Reply", exact=True).fill("Sorry about that! A new mug is on its way.")
    expect(agent_page.frame_locator("iframe.msg-frame").get_by_role("img", name="Photo of the mug")).to_be_visible()
    shot(agent_page, "conversation-1360")
    agent_page.set_viewport_size({"width": 390, "height": 844})
    expect(agent_page.get_by_role("textbox", name="Reply", exact=True)).to_be_visible()
    expect(agent_page.frame_locator("iframe.msg-frame").get_by_text("arrived broken")).to_be_visible()
    # Nothing wider than the phone: no sideways scrolling.
    assert agent_page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(agent_page, "conversation-390")
