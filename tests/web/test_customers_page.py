"""Settings → Customers: a customer with domains (free-mail and taken domains refused beside their field),
its contacts and conversations, search, delete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from admin_support import desk
from playwright.sync_api import Page, expect
from sqlalchemy import select
from web_support import LiveServer

from postroom.service import Service
from postroom.store.models import Contact, Customer, CustomerDomain
from postroom.testing.mails import make_mail
from support import wait_until


def test_a_customer_with_domains_refuses_free_mail_and_taken_domains(
    admin_page: Page, live: LiveServer, shot: Callable[[Page, str], Path]
) -> None:
    service = live.service
    page = admin_page
    page.goto(f"{live.url}/settings/customers")
    page.get_by_role("link", name="New customer").click()
    page.get_by_label("Name").fill("Acme")
    page.get_by_label("Domain 1").fill("acme.test")
    page.get_by_role("button", name="Add a domain").click()
    expect(page.get_by_label("Domain 2")).to_be_focused()
    page.get_by_label("Domain 2").fill("gmail.com")
    page.get_by_role("button", name="Create customer").click()
    # The service's own message, beside the field that holds the free-mail domain; what was typed stays.
    expect(page.locator("#domains-1-error")).to_have_text(
        "gmail.com is a free-mail provider: its addresses belong to many unrelated people, so it cannot"
        " identify one customer (link those contacts to the customer one by one instead)."
    )
    expect(page.get_by_label("Domain 2")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Domain 1")).to_have_value("acme.test")
    shot(page, "settings-customer-error")
    page.get_by_label("Domain 2").fill("acme-mail.test")
    page.get_by_role("button", name="Create customer").click()
    expect(page.get_by_role("status").first).to_have_text("Saved.")
    with service.db.read() as session:
        acme = session.scalars(select(Customer)).one()
        assert set(session.scalars(select(CustomerDomain.domain))) == {"acme.test", "acme-mail.test"}

    # Mail from the domain files its sender under Acme: the page lists the contact and the conversation.
    desk(service).deliver(make_mail("Invoice question", sender="Dee Buyer <dee@acme.test>"))
    # A running worker may have taken the mail: wait until it is filed.
    wait_until(lambda: _customer_of(service, "dee@acme.test") == acme.id)
    page.reload()
    expect(page.get_by_role("region", name="Contacts 1")).to_contain_text("dee@acme.test")
    expect(page.get_by_role("link", name="Invoice question")).to_have_attribute("href", "/conversations/1")
    shot(page, "settings-customer")

    # A domain of another customer is refused, naming its owner.
    page.goto(f"{live.url}/settings/customers/new")
    page.get_by_label("Name").fill("Other Ltd")
    page.get_by_label("Domain 1").fill("ACME.test")
    page.get_by_role("button", name="Create customer").click()
    expect(page.locator("#domains-0-error")).to_have_text(
        f"Domain acme.test already belongs to customer {acme.id} (Acme)."
    )

    page.goto(f"{live.url}/settings/customers")
    row = page.get_by_role("row").filter(has_text="Acme")
    expect(row).to_contain_text("acme-mail.test")
    expect(row.get_by_role("cell").nth(2)).to_have_text("1")  # contacts
    expect(row.get_by_role("cell").nth(3)).to_have_text("1")  # conversations
    shot(page, "settings-customers")
    page.get_by_label("Search customers").fill("nothing-like-it")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No customer matches")).to_be_visible()
    page.get_by_label("Search customers").fill("mail.te")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="Acme")).to_be_visible()

    page.get_by_role("link", name="Acme").click()
    page.get_by_role("button", name="Delete customer").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete customer").click()
    expect(page.get_by_role("status").first).to_contain_text("The customer is deleted.")
    with service.db.read() as session:
        assert session.scalars(select(Customer)).all() == []


def _customer_of(service: Service, email: str) -> int | None:
    with service.db.read() as session:
        return session.scalar(select(Contact.customer_id).where(Contact.email == email))
