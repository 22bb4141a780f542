"""Customers (organisations) and the mail domains that identify them.

A domain belongs to at most one customer (unique in the database; a clash is a 409 naming the owner).
Free-mail domains are refused: everyone at gmail.com is not one customer, and linking them would file
every private sender under the same organisation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from postroom.errors import Conflict, InvalidSetting, NotFound
from postroom.store.models import Contact, Conversation, Customer, CustomerDomain, utcnow

# Providers whose addresses are people, not organisations. Data in one place; ``*`` stands for any
# country or generic suffix (gmx.de, gmx.net, gmx.at…).
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "outlook.*",
        "hotmail.*",
        "live.*",
        "msn.com",
        "yahoo.*",
        "ymail.com",
        "rocketmail.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "gmx.*",
        "web.de",
        "t-online.de",
        "freenet.de",
        "mail.ru",
        "inbox.ru",
        "list.ru",
        "bk.ru",
        "yandex.*",
        "ya.ru",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
        "proton.me",
        "protonmail.com",
        "protonmail.ch",
        "pm.me",
        "tutanota.com",
        "tuta.io",
        "zoho.com",
        "mail.com",
        "fastmail.com",
        "hey.com",
        "naver.com",
        "orange.fr",
        "laposte.net",
        "libero.it",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "interia.pl",
    }
)

# RFC 1035 labels (letters, digits, hyphens inside), at least two of them; IDNs given as A-labels (xn--).
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAX_DOMAINS = 100
# What ``*`` stands for: a top-level domain (de, net) or a country's second level (co.uk, com.br), not
# further labels: live.acme-events.co is an organisation, live.co.uk a free-mail provider.
_COUNTRY_SUFFIX = re.compile(r"^(?:[a-z]{2,6}|(?:co|com|net|org|ne|or)\.[a-z]{2})$")


def is_free_mail(domain: str) -> bool:
    if domain in FREE_MAIL_DOMAINS:
        return True
    head, _, suffix = domain.partition(".")
    return f"{head}.*" in FREE_MAIL_DOMAINS and _COUNTRY_SUFFIX.match(suffix) is not None


def normalize_domain(value: str) -> str:
    """A domain as stored: lower case, without a leading ``@`` or trailing dot; refused when malformed or free mail."""
    domain = value.strip().lower().lstrip("@").rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        raise InvalidSetting("domains", f"{value!r} is not a domain name") from None
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InvalidSetting("domains", f"{value!r} is not a domain name (like example.com)")
    if labels[-1].isdigit():
        raise InvalidSetting("domains", f"{value!r} is not a domain name (like example.com)")
    if is_free_mail(domain):
        raise InvalidSetting(
            "domains",
            f"{domain} is a free-mail provider: its addresses belong to many unrelated people, so it cannot"
            " identify one customer (link those contacts to the customer one by one instead)",
        )
    return domain


def normalize_domains(values: Iterable[str]) -> list[str]:
    domains = list(dict.fromkeys(normalize_domain(v) for v in values))
    if len(domains) > MAX_DOMAINS:
        raise InvalidSetting("domains", f"at most {MAX_DOMAINS} domains per customer")
    return domains


@dataclass(frozen=True, slots=True)
class CustomerInput:
    name: str
    notes: str = ""
    domains: Sequence[str] = ()


class CustomerService:
    """Create, change and read customers; every write is one transaction of the caller's session."""

    def get(self, session: Session, customer_id: int) -> Customer:
        customer = session.scalar(
            select(Customer).where(Customer.id == customer_id).options(selectinload(Customer.domains))
        )
        if customer is None:
            raise NotFound(f"customer {customer_id} not found")
        return customer

    def create(self, session: Session, data: CustomerInput) -> Customer:
        name = _name(data.name)
        domains = normalize_domains(data.domains)
        self._check_free(session, domains, None)
        customer = Customer(name=name, notes=data.notes)
        customer.domains = [CustomerDomain(domain=d) for d in domains]
        session.add(customer)
        session.flush()
        return customer

    def update(self, session: Session, customer_id: int, changes: dict[str, Any]) -> Customer:
        customer = self.get(session, customer_id)
        if "name" in changes:
            customer.name = _name(changes["name"])
        if "notes" in changes:
            customer.notes = changes["notes"]
        if "domains" in changes:
            domains = normalize_domains(changes["domains"])
            self._check_free(session, domains, customer.id)
            kept = {d.domain: d for d in customer.domains}
            customer.domains = [kept.get(d) or CustomerDomain(domain=d) for d in domains]
        customer.updated_at = utcnow()
        session.flush()
        return customer

    def delete(self, session: Session, customer_id: int) -> None:
        customer = self.get(session, customer_id)
        # Contacts and conversations stay; their customer becomes none (ON DELETE SET NULL).
        session.delete(customer)
        session.flush()

    def _check_free(self, session: Session, domains: list[str], customer_id: int | None) -> None:
        """409 when a domain belongs to another customer, naming it (the unique index would say less)."""
        if not domains:
            return
        rows = session.execute(
            select(CustomerDomain.domain, Customer.id, Customer.name)
            .join(Customer, Customer.id == CustomerDomain.customer_id)
            .where(CustomerDomain.domain.in_(domains))
        ).all()
        for domain, owner_id, owner_name in rows:
            if owner_id != customer_id:
                raise Conflict(f"domain {domain} already belongs to customer {owner_id} ({owner_name})")

    # -- views ------------------------------------------------------------------------------------

    def view(self, customer: Customer) -> dict[str, Any]:
        return {
            "id": customer.id,
            "name": customer.name,
            "notes": customer.notes,
            "domains": sorted(d.domain for d in customer.domains),
            "created_at": customer.created_at,
            "updated_at": customer.updated_at,
        }

    def detail(self, session: Session, customer: Customer, limit: int = 50) -> dict[str, Any]:
        """The customer with its contacts and its latest conversations (capped: the lists have their own routes)."""
        contacts = session.scalars(
            select(Contact).where(Contact.customer_id == customer.id).order_by(Contact.id).limit(limit + 1)
        ).all()
        conversations = session.scalars(
            select(Conversation)
            .where(Conversation.customer_id == customer.id)
            .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
            .limit(limit + 1)
        ).all()
        return {
            **self.view(customer),
            "contacts": [{"id": c.id, "name": c.name, "email": c.email} for c in contacts[:limit]],
            "contacts_more": f"/api/v1/contacts?customer_id={customer.id}" if len(contacts) > limit else None,
            "conversations": [conversation_brief(c) for c in conversations[:limit]],
            "conversations_more": len(conversations) > limit,
        }


def customer_refs(session: Session, ids: Iterable[int]) -> dict[int | None, dict[str, Any]]:
    """``{id: {"id", "name"}}`` of these customers, in one query (for lists of conversations)."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(wanted)))
    return {i: {"id": i, "name": name} for i, name in rows}


def conversation_brief(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "subject": conversation.subject,
        "status": conversation.status.value,
        "contact_id": conversation.contact_id,
        "last_activity_at": conversation.last_activity_at,
    }


def _name(value: str) -> str:
    name = value.strip()
    if not name:
        raise InvalidSetting("name", "a customer needs a name")
    return name
