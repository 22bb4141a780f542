"""Live updates: GET /events streams changes, and the open list shows new mail without a reload."""

from __future__ import annotations

import httpx
from list_support import MailDesk, listed_ids, row, sign_in_agent
from playwright.sync_api import Page, expect
from web_support import LiveServer

from postroom.web.views import events
from support import DESK_CONNECTION, wait_until


def test_mail_that_arrives_while_the_list_is_open_appears_and_the_selection_stays(live: LiveServer, page: Page) -> None:
    desk = MailDesk(live)
    sign_in_agent(page, live)
    first = desk.mail("First", sender="p1@customer.example")
    second = desk.mail("Second", sender="p2@customer.example")
    page.goto(f"{live.url}/?view=all")
    wait_until(lambda: events.open_streams(live.service) == 1)
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(row(page, first)).to_have_class("crow is-unread is-selected")
    fresh = desk.mail("Just arrived", body="Brand new question.", sender="p3@customer.example")
    expect(row(page, fresh)).to_be_visible()
    expect(row(page, fresh).locator(".crow-snippet")).to_contain_text("Brand new question.")
    assert listed_ids(page) == [fresh, second, first]
    # Same conversation selected (and focused) as before the refresh, so j goes on from there.
    expect(row(page, first)).to_have_class("crow is-unread is-selected")
    page.keyboard.press("k")
    expect(row(page, second)).to_have_class("crow is-unread is-selected")


def test_a_change_by_someone_else_shows_and_a_connection_change_is_announced(live: LiveServer, page: Page) -> None:
    desk = MailDesk(live)
    sign_in_agent(page, live)
    conversation = desk.mail("Watch me")
    page.goto(f"{live.url}/?view=all")
    wait_until(lambda: events.open_streams(live.service) == 1)
    page.evaluate(
        "window.liveConnections = 0;"
        "document.body.addEventListener('live-connections', () => { window.liveConnections += 1; });"
    )
    desk.change(conversation, priority="high")
    expect(row(page, conversation).locator(".priority")).to_have_text("High priority")
    # A connection added elsewhere: pages that opt in (hx-trigger="live-connections from:body") hear of it.
    desk.api.post("/connections", {**DESK_CONNECTION, "name": "Other", "address": "other@example.test"}, expect=201)
    wait_until(lambda: page.evaluate("window.liveConnections") >= 1, timeout=8)


def test_closing_the_page_ends_its_stream(live: LiveServer, page: Page) -> None:
    sign_in_agent(page, live)
    page.goto(f"{live.url}/")
    wait_until(lambda: events.open_streams(live.service) == 1)
    page.goto("about:blank")
    wait_until(lambda: events.open_streams(live.service) == 0, timeout=8)
    assert not live.service.events._subscribers  # the stream's subscription went with it


def test_the_stream_needs_a_signed_in_user_and_speaks_server_sent_events(live: LiveServer, page: Page) -> None:
    answer = httpx.get(f"{live.url}/events", follow_redirects=False, timeout=20)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    sign_in_agent(page, live)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.stream("GET", f"{live.url}/events", cookies=cookies, timeout=20) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-store"
        first = next(stream.iter_text())
        assert first.startswith("retry: ")
    wait_until(lambda: events.open_streams(live.service) == 0, timeout=8)
