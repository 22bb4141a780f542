"""The side panel: the contact (edited in place) and their other conversations; assignee, team, status (with
snooze), priority and tags, each change applied at once and written into the timeline."""

from __future__ import annotations

from collections.abc import Callable

from conversation_support import customer_mail, make_desk, open_conversation, settled
from playwright.sync_api import Page, expect
from web_support import LiveServer

from postroom.helpdesk.teams import TeamService
from postroom.testing.smtp import SmtpTestServer


def test_assign_and_resolve_from_the_side_panel(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer], make_user: Callable[..., int]
) -> None:
    make_user("bea@example.test", "Bea Colleague")
    with live.service.db.write() as session:
        TeamService().create(session, "Billing")
    desk = make_desk(live.service, make_smtp_server)
    conversation_id = desk.deliver(customer_mail())
    open_conversation(agent_page, live.url, conversation_id)
    page = agent_page

    page.get_by_label("Assignee").select_option(label="Bea Colleague")
    expect(page.get_by_text("Alan Agent assigned it to Bea Colleague")).to_be_visible()
    settled(page)
    expect(page.get_by_label("Assignee")).to_have_value(str(desk.conversation(conversation_id)["assignee_id"]))

    page.get_by_label("Team").select_option(label="Billing")
    expect(page.get_by_text("Alan Agent moved it to team Billing")).to_be_visible()
    settled(page)

    page.get_by_label("Priority").select_option("urgent")
    expect(page.get_by_text("changed the priority from normal to urgent")).to_be_visible()
    settled(page)

    page.get_by_label("Tags").fill("refund, VIP")
    page.get_by_role("button", name="Save tags").click()
    expect(page.get_by_text("set the tags to refund, VIP")).to_be_visible()
    settled(page)

    page.get_by_label("Status").select_option("resolved")
    expect(page.locator("#conv-status")).to_have_text("resolved")
    expect(page.get_by_text("changed the status from open to resolved")).to_be_visible()

    stored = desk.conversation(conversation_id)
    assert stored["status"] == "resolved" and stored["priority"] == "urgent"
    assert stored["tags"] == ["refund", "VIP"]
    assert stored["assignee"]["name"] == "Bea Colleague" and stored["team"]["name"] == "Billing"


def test_snoozing_asks_until_when(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    desk = make_desk(live.service, make_smtp_server)
    conversation_id = desk.deliver(customer_mail())
    open_conversation(agent_page, live.url, conversation_id)
    until = agent_page.get_by_label("Snooze until (UTC)")
    expect(until).to_be_hidden()
    agent_page.get_by_label("Status").select_option("snoozed")
    expect(agent_page.get_by_text("Choose until when, then press Snooze.")).to_be_visible()
    settled(agent_page)
    expect(until).to_be_visible()
    expect(agent_page.locator("#conv-status")).to_have_text("open")
    until.fill("2099-01-02T09:30")
    agent_page.get_by_role("button", name="Snooze").click()
    expect(agent_page.locator("#conv-status")).to_contain_text("snoozed until 2099-01-02 09:30")
    assert desk.conversation(conversation_id)["snoozed_until"].startswith("2099-01-02T09:30")


def test_the_contact_is_edited_in_place_and_their_other_conversations_are_listed(
    agent_page: Page, live: LiveServer, make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    desk = make_desk(live.service, make_smtp_server)
    earlier = desk.deliver(customer_mail("Invoice 17 is wrong"))
    conversation_id = desk.deliver(customer_mail("Parcel lost"))
    assert earlier != conversation_id
    open_conversation(agent_page, live.url, conversation_id)
    panel = agent_page.get_by_role("complementary", name="Conversation details")
    expect(panel.get_by_role("link", name="cy@customer.example")).to_be_visible()
    expect(panel.get_by_role("link", name="Invoice 17 is wrong")).to_have_attribute("href", f"/conversations/{earlier}")
    panel.get_by_text("Edit", exact=True).click()
    panel.get_by_label("Name").fill("Cyrus Customer")
    panel.get_by_label("Phone").fill("+49 30 1234")
    panel.get_by_label("Notes").fill("Prefers phone calls.")
    panel.get_by_role("button", name="Save contact").click()
    expect(panel.get_by_text("Contact saved.")).to_be_visible()
    expect(panel.locator(".contact-name")).to_have_text("Cyrus Customer")
    expect(panel.get_by_text("+49 30 1234")).to_be_visible()
    contact = desk.api.get(f"/contacts/{desk.conversation(conversation_id)['contact']['id']}")
    assert (contact["name"], contact["phone"], contact["notes"]) == (
        "Cyrus Customer",
        "+49 30 1234",
        "Prefers phone calls.",
    )
