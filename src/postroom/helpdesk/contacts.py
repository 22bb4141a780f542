"""Contacts (people who write in) and customers (organisations, matched by mail domain, seed 001)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ClauseElement

from postroom.mail.model import Address
from postroom.store.db import SqlCursor
from postroom.store.models import Contact, CustomerDomain, utcnow


def _domain_candidates(email: str) -> list[str]:
    """The address's domain and each parent domain: mail from eu.acme.com belongs to a customer of acme.com."""
    parts = email.rpartition("@")[2].lower().split(".")
    return [".".join(parts[i:]) for i in range(len(parts) - 1)]


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A contact as the pipeline needs it."""

    id: int
    email: str
    name: str
    customer_id: int | None


_CONTACT_BY_EMAIL = select(Contact.id, Contact.name, Contact.customer_id).where(Contact.email == bindparam("email"))
_SET_CONTACT_NAME = update(Contact).where(Contact.id == bindparam("contact_id")).values(name=bindparam("name"))
_CUSTOMER_BY_DOMAIN = select(CustomerDomain.customer_id).where(CustomerDomain.domain == bindparam("domain"))


def _insert_contact(dialect: type[sqlite.Insert] | type[postgresql.Insert]) -> ClauseElement:
    # ON CONFLICT DO NOTHING instead of a savepoint around a plain INSERT: two workers may meet the
    # same new address at once, the unique email decides, and the loser reads the winner's row.
    return (
        dialect(Contact)
        .values(
            email=bindparam("email"),
            name=bindparam("name"),
            customer_id=bindparam("customer_id"),
            phone="",
            notes="",
            created_at=bindparam("created_at"),
            updated_at=bindparam("created_at"),
        )
        .on_conflict_do_nothing(index_elements=[Contact.email])
        .returning(Contact.id)
    )


_INSERT_CONTACT = {"sqlite": _insert_contact(sqlite.Insert), "postgresql": _insert_contact(postgresql.Insert)}


class ContactBook:
    """Find-or-create of contacts inside one transaction, remembering what it found for that transaction.

    The pipeline meets the same senders over and over within a batch; each is read once. Whatever
    a message added or changed is forgotten again when its savepoint rolls back: :meth:`mark` before
    the message, :meth:`forget_since` after a rollback.
    """

    def __init__(self, sql: SqlCursor) -> None:
        self.sql = sql
        self._insert = _INSERT_CONTACT[sql.dialect.name]
        self._contacts: dict[str, ContactRow] = {}
        self._customers: dict[str, int | None] = {}
        # (email, the entry it replaced or None), in order, for forget_since().
        self._undo: list[tuple[str, ContactRow | None]] = []

    def mark(self) -> int:
        return len(self._undo)

    def forget_since(self, mark: int) -> None:
        while len(self._undo) > mark:
            email, previous = self._undo.pop()
            if previous is None:
                self._contacts.pop(email, None)
            else:
                self._contacts[email] = previous

    def _remember(self, row: ContactRow) -> ContactRow:
        self._undo.append((row.email, self._contacts.get(row.email)))
        self._contacts[row.email] = row
        return row

    def customer_for_email(self, email: str) -> int | None:
        """The customer whose domain mapping matches the address, most specific domain first."""
        for domain in _domain_candidates(email):
            if domain not in self._customers:
                self._customers[domain] = self.sql.scalar(_CUSTOMER_BY_DOMAIN, {"domain": domain})
            customer_id = self._customers[domain]
            if customer_id is not None:
                return customer_id
        return None

    def find_or_create(self, address: Address, now: datetime | None = None) -> ContactRow:
        """The contact for this address, created (and linked to its customer by domain) when new."""
        email = address.email.lower()
        contact = self._contacts.get(email)
        if contact is None:
            found = self.sql.first(_CONTACT_BY_EMAIL, {"email": email})
            if found is None:
                contact = self._create(email, address.name, now or utcnow())
            else:
                contact = self._remember(ContactRow(found[0], email, found[1], found[2]))
        if not contact.name and address.name:
            self.sql.execute(_SET_CONTACT_NAME, {"contact_id": contact.id, "name": address.name})
            contact = self._remember(ContactRow(contact.id, email, address.name, contact.customer_id))
        return contact

    def _create(self, email: str, name: str, now: datetime) -> ContactRow:
        customer_id = self.customer_for_email(email)
        new_id = self.sql.scalar(
            self._insert, {"email": email, "name": name, "customer_id": customer_id, "created_at": now}
        )
        if new_id is not None:
            return self._remember(ContactRow(new_id, email, name, customer_id))
        # Another worker created it first (and has committed: ON CONFLICT waited for that).
        found = self.sql.first(_CONTACT_BY_EMAIL, {"email": email})
        if found is None:
            raise RuntimeError(f"contact {email!r} conflicted on insert but cannot be read")
        return self._remember(ContactRow(found[0], email, found[1], found[2]))
