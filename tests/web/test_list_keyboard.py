"""The conversation list's keys: j/k move, Enter opens, e resolves, a assigns to me; none while typing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from list_support import MailDesk, listed_ids, row, sign_in_agent
from playwright.sync_api import Page, expect
from web_support import LiveServer

from support import wait_until


def focused_id(page: Page) -> str | None:
    value: str | None = page.evaluate("document.activeElement.closest('.crow')?.dataset.id ?? null")
    return value


def test_j_and_k_move_the_selection_and_enter_opens_it(
    live: LiveServer, page: Page, shot: Callable[[Page, str], Path]
) -> None:
    desk = MailDesk(live)
    sign_in_agent(page, live)
    first, second, third = (desk.mail(f"Number {n}", sender=f"p{n}@customer.example") for n in range(3))
    page.goto(f"{live.url}/?view=all")
    expect(page.get_by_text("Keyboard: j/k")).to_be_visible()
    assert listed_ids(page) == [third, second, first]
    page.keyboard.press("j")
    assert focused_id(page) == str(third)
    expect(row(page, third)).to_have_class("crow is-unread is-selected")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("j")  # stays on the last row
    assert focused_id(page) == str(first)
    page.keyboard.press("k")
    assert focused_id(page) == str(second)
    expect(row(page, second)).to_have_class("crow is-unread is-selected")
    shot(page, "conversation-list-selected")
    expect(row(page, third)).to_have_class("crow is-unread")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live.url}/conversations/{second}")


def test_e_resolves_the_selected_conversation_and_the_next_one_takes_its_place(live: LiveServer, page: Page) -> None:
    desk = MailDesk(live)
    sign_in_agent(page, live)
    older, newer = desk.mail("Older", sender="p1@customer.example"), desk.mail("Newer", sender="p2@customer.example")
    page.goto(f"{live.url}/?view=all")
    page.keyboard.press("j")
    page.keyboard.press("e")
    expect(page.get_by_role("status")).to_contain_text("Resolved: Newer")
    # Gone from the open list; the selection moved to the row now in its place.
    expect(row(page, newer)).to_have_count(0)
    expect(row(page, older)).to_have_class("crow is-unread is-selected")
    assert focused_id(page) == str(older)
    conversation = desk.conversation(newer)
    assert conversation["status"] == "resolved"
    assert conversation["timeline"][-1]["activity"]["kind"] == "status"


def test_a_assigns_the_selected_conversation_to_me(live: LiveServer, page: Page) -> None:
    desk = MailDesk(live)
    agent = sign_in_agent(page, live)
    conversation = desk.mail("Take me")
    page.goto(f"{live.url}/?view=unassigned")
    page.keyboard.press("j")
    page.keyboard.press("a")
    expect(page.get_by_role("status")).to_contain_text("Assigned to you: Take me")
    expect(page.get_by_text("No conversations here.")).to_be_visible()
    assert desk.conversation(conversation)["assignee_id"] == agent
    page.get_by_role("link", name="Mine").click()
    expect(row(page, conversation).locator(".crow-assignee")).to_have_text("Assigned to you")
    # Already mine: the key says so instead of doing anything.
    page.keyboard.press("j")
    page.keyboard.press("a")
    expect(page.get_by_role("status")).to_contain_text("Already assigned to you")


def test_keys_do_nothing_while_typing_in_the_search(live: LiveServer, page: Page) -> None:
    desk = MailDesk(live)
    sign_in_agent(page, live)
    conversation = desk.mail("Stay open")
    page.goto(f"{live.url}/?view=all")
    page.get_by_label("Search").focus()
    page.keyboard.type("jeak")
    expect(page.get_by_label("Search")).to_have_value("jeak")
    assert focused_id(page) is None
    page.wait_for_timeout(300)
    state = desk.conversation(conversation)
    assert state["status"] == "open" and state["assignee_id"] is None


def test_the_buttons_do_the_same_without_the_keyboard(live: LiveServer, page: Page) -> None:
    desk = MailDesk(live)
    sign_in_agent(page, live)
    conversation = desk.mail("Click me")
    page.goto(f"{live.url}/?view=all")
    row(page, conversation).get_by_role("button", name="Resolve").click()
    expect(row(page, conversation)).to_have_count(0)
    wait_until(lambda: desk.conversation(conversation)["status"] == "resolved")
