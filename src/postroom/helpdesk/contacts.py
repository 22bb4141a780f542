"""Contacts (people who write in) and customers (organisations, matched by mail domain, seed 001)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postroom.mail.model import Address
from postroom.store.models import Contact, CustomerDomain


def customer_for_email(session: Session, email: str) -> int | None:
    """The customer whose domain mapping matches the address, most specific domain first."""
    domain = email.rpartition("@")[2].lower()
    # Try the domain and each parent domain: mail from eu.acme.com belongs to a customer of acme.com.
    candidates = []
    parts = domain.split(".")
    for i in range(len(parts) - 1):
        candidates.append(".".join(parts[i:]))
    if not candidates:
        return None
    rows = session.execute(
        select(CustomerDomain.domain, CustomerDomain.customer_id).where(CustomerDomain.domain.in_(candidates))
    ).all()
    by_domain = {domain: customer_id for domain, customer_id in rows}
    for candidate in candidates:
        if candidate in by_domain:
            return by_domain[candidate]
    return None


def find_or_create_contact(session: Session, address: Address) -> Contact:
    """The contact for this address, created (and linked to its customer by domain) when new."""
    email = address.email.lower()
    contact = session.scalar(select(Contact).where(Contact.email == email))
    if contact is not None:
        if not contact.name and address.name:
            contact.name = address.name
        return contact
    contact = Contact(email=email, name=address.name, customer_id=customer_for_email(session, email))
    # Two workers may meet the same new address at once: the unique email decides, the loser reads.
    try:
        with session.begin_nested():
            session.add(contact)
    except IntegrityError:
        existing = session.scalar(select(Contact).where(Contact.email == email))
        if existing is None:
            raise
        return existing
    return contact
