"""The conversation list (the home page): what a row shows, the views, search, paging, read state."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from list_support import MailDesk, add_user, listed_ids, row, sign_in_agent
from playwright.sync_api import Page, expect
from web_support import LiveServer

from postroom.helpdesk import reads
from postroom.web.views import conversations as list_view


def test_a_row_shows_contact_subject_new_text_inbox_assignee_status_priority_tags_and_age(
    live: LiveServer, page: Page, shot: Callable[[Page, str], Path]
) -> None:
    desk = MailDesk(live)
    agent = sign_in_agent(page, live)
    parcel = desk.mail(
        "Parcel missing",
        body="Where is my parcel?\n\nOn Mon, 1 Jan 2024 at 10:00, Support <support@example.test> wrote:\n> Shipped.\n",
        sender="Ada Lovelace <ada@customer.example>",
    )
    desk.change(parcel, assignee_id=agent, priority="urgent", tags=["VIP", "shipping"])
    invoice = desk.mail("Invoice question", body="Can I get a copy of the invoice?", sender="bo@customer.example")
    page.goto(f"{live.url}/?view=all")

    parcel_row = row(page, parcel)
    expect(parcel_row.locator(".crow-contact")).to_have_text("Unread Ada Lovelace")
    expect(parcel_row.locator(".crow-subject")).to_have_text("Parcel missing")
    # The new text of the newest mail, without what it quoted.
    expect(parcel_row.locator(".crow-snippet")).to_have_text("— Where is my parcel?")
    meta = parcel_row.locator(".crow-meta")
    expect(meta).to_contain_text("Support")
    expect(meta).to_contain_text("Assigned to you")
    expect(meta).to_contain_text("open")
    expect(meta).to_contain_text("Urgent priority")
    expect(meta.locator(".tag")).to_have_text(["shipping", "VIP"])
    time = parcel_row.locator("time")
    expect(time).to_have_text(re.compile(r"^(now|\d+ min)$"))
    assert (time.get_attribute("datetime") or "").startswith("20")
    assert (time.get_attribute("title") or "").endswith("UTC")
    expect(parcel_row.get_by_role("link")).to_have_attribute("href", f"/conversations/{parcel}")
    # A contact without a name shows the address; nobody assigned says so in words.
    invoice_row = row(page, invoice)
    expect(invoice_row.locator(".crow-contact")).to_have_text("Unread bo@customer.example")
    expect(invoice_row.locator(".crow-assignee")).to_have_text("Unassigned")
    expect(invoice_row.get_by_role("button", name="Assign to me")).to_be_visible()
    expect(parcel_row.get_by_role("button", name="Assign to me")).to_have_count(0)
    assert listed_ids(page) == [invoice, parcel]  # newest activity first
    shot(page, "conversation-list")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(parcel_row.get_by_role("button", name="Resolve")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "conversation-list-390")


def test_views_show_mine_unassigned_a_status_a_team_and_an_inbox(live: LiveServer, page: Page) -> None:
    desk = MailDesk(live)
    agent = sign_in_agent(page, live)
    other = add_user(live, "other@example.test", "Olga")
    sales = desk.add_inbox("Sales", "sales@example.test")
    mine = desk.mail("Mine open")
    theirs = desk.mail("Olga's", sender="bo@customer.example")
    loose = desk.mail("Nobody's", sender="cy@customer.example")
    done = desk.mail("Mine resolved", sender="di@customer.example")
    lead = desk.mail("Sales lead", sender="ed@customer.example", inbox=sales)
    desk.change(mine, assignee_id=agent)
    desk.change(done, assignee_id=agent, status="resolved")
    desk.change(theirs, assignee_id=other)
    team = desk.team("Billing", [agent])
    desk.change(theirs, team_id=team)

    page.goto(f"{live.url}/")  # Mine, Open: the default
    expect(page.get_by_role("navigation", name="Views").get_by_role("link", name="Mine")).to_have_attribute(
        "aria-current", "page"
    )
    assert listed_ids(page) == [mine]
    page.get_by_role("navigation", name="Status").get_by_role("link", name="Resolved").click()
    expect(page).to_have_url(f"{live.url}/?view=mine&status=resolved")
    assert listed_ids(page) == [done]
    page.get_by_role("link", name="Unassigned").click()
    # The status stays when the view changes.
    expect(page).to_have_url(f"{live.url}/?view=unassigned&status=resolved")
    expect(page.get_by_text("No conversations here.")).to_be_visible()
    page.get_by_role("navigation", name="Status").get_by_role("link", name="Open").click()
    assert sorted(listed_ids(page)) == sorted([loose, lead])
    page.get_by_role("link", name="All", exact=True).click()
    assert sorted(listed_ids(page)) == sorted([mine, theirs, loose, lead])
    page.get_by_role("navigation", name="Status").get_by_role("link", name="Any status").click()
    assert sorted(listed_ids(page)) == sorted([mine, theirs, loose, done, lead])
    page.get_by_role("link", name="Billing").click()
    expect(page.locator(".list-view-name")).to_have_text("Billing · Any status")
    assert listed_ids(page) == [theirs]
    page.get_by_role("link", name="Sales", exact=True).click()
    assert listed_ids(page) == [lead]
    expect(row(page, lead).locator(".crow-inbox")).to_contain_text("Sales")


def test_search_finds_a_word_of_the_body_and_keeps_the_view(live: LiveServer, page: Page) -> None:
    desk = MailDesk(live)
    sign_in_agent(page, live)
    wanted = desk.mail("Hello", body="The espresso machine leaks water.")
    desk.mail("Hello again", body="The kettle is fine.", sender="bo@customer.example")
    page.goto(f"{live.url}/?view=all")
    page.get_by_label("Search").fill("espresso")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(f"{live.url}/?view=all&q=espresso")
    assert listed_ids(page) == [wanted]
    expect(page.locator(".list-view-name")).to_contain_text("matching “espresso”")
    page.get_by_label("Search").fill("teapot")
    page.get_by_label("Search").press("Enter")
    expect(page.get_by_text("No conversations match “teapot” here.")).to_be_visible()
    page.get_by_role("link", name="Clear").click()
    assert len(listed_ids(page)) == 2


def test_unread_turns_read_once_the_agent_read_it(live: LiveServer, page: Page) -> None:
    desk = MailDesk(live)
    agent = sign_in_agent(page, live)
    conversation = desk.mail("Read me")
    page.goto(f"{live.url}/?view=all")
    expect(row(page, conversation)).to_have_class("crow is-unread")
    expect(row(page, conversation).get_by_text("Unread")).to_be_visible()
    # What opening the conversation page records for this agent.
    with live.service.db.write() as session:
        reads.mark_read(session, agent, conversation)
    page.reload()
    expect(row(page, conversation)).to_have_class("crow")
    expect(row(page, conversation).get_by_text("Unread")).to_have_count(0)


def test_older_pages_follow_the_keyset_and_a_bad_cursor_shows_the_first_page(
    live: LiveServer, page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = MailDesk(live)
    sign_in_agent(page, live)
    ids = [desk.mail(f"Number {n}", sender=f"p{n}@customer.example") for n in range(5)]
    # Small pages, so that five conversations make three (the live server runs in this process).
    monkeypatch.setattr(list_view, "PAGE_SIZE", 2)
    page.goto(f"{live.url}/?view=all")
    assert listed_ids(page) == ids[::-1][:2]
    page.get_by_role("link", name="Older").click()
    assert listed_ids(page) == ids[::-1][2:4]
    page.get_by_role("link", name="Older").click()
    assert listed_ids(page) == ids[:1]
    expect(page.get_by_role("link", name="Older")).to_have_count(0)
    page.get_by_role("link", name="Newest").click()
    assert listed_ids(page) == ids[::-1][:2]
    page.goto(f"{live.url}/?view=all&cursor=not-a-cursor")
    assert listed_ids(page) == ids[::-1][:2]


def test_the_list_needs_a_signed_in_user(live: LiveServer) -> None:
    answer = httpx.get(f"{live.url}/?view=all", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
