"""Contacts (people who write in), matched by any of their addresses and linked to customers by mail domain.

:class:`ContactBook` is the pipeline's side (prepared statements, one lookup per address per batch);
:class:`ContactService` the API's (list, change, merge).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, literal, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql import ClauseElement

from postroom.errors import Conflict, InvalidSetting, NotFound
from postroom.helpdesk.customers import conversation_brief
from postroom.helpdesk.search import index_contact, index_new_contact
from postroom.jobs.locks import ADVISORY_XACT_LOCK_ALL, lock_key
from postroom.mail.model import Address
from postroom.store.db import SqlCursor
from postroom.store.models import Contact, ContactAddress, Conversation, Customer, CustomerDomain, utcnow


def _domain_candidates(email: str) -> list[str]:
    """The address's domain and each parent domain: mail from eu.acme.com belongs to a customer of acme.com."""
    parts = email.rpartition("@")[2].lower().split(".")
    return [".".join(parts[i:]) for i in range(len(parts) - 1)]


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A contact as the pipeline needs it.

    ``email`` is the address the contact was found by (the sender's), which may be one of its further
    addresses: the thread stage names its lock after it, as predicted from the mail before any lookup.
    """

    id: int
    email: str
    name: str
    customer_id: int | None


# The contact owning an address, as its first address or a further one (both columns are unique; an
# address belongs to one contact, which the API keeps true across the two tables). One round trip.
_CONTACT_BY_EMAIL = union_all(
    select(Contact.id, Contact.name, Contact.customer_id, literal(0).label("rank")).where(
        Contact.email == bindparam("email")
    ),
    select(Contact.id, Contact.name, Contact.customer_id, literal(1).label("rank"))
    .join(ContactAddress, ContactAddress.contact_id == Contact.id)
    .where(ContactAddress.email == bindparam("email2")),
).order_by("rank")
_SET_CONTACT_NAME = update(Contact).where(Contact.id == bindparam("contact_id")).values(name=bindparam("name"))
_SET_CONTACT_CUSTOMER = (
    update(Contact)
    .where(Contact.id == bindparam("contact_id"), Contact.customer_id.is_(None))
    .values(customer_id=bindparam("customer_id"), updated_at=bindparam("now"))
)
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
        """The contact owning this address (first or further), created when new; linked to a customer.

        A contact without a customer is linked to the customer of its address's domain (or a parent
        domain) when there is one, so that a domain added to a customer later takes effect with the
        contact's next mail.
        """
        email = address.email.lower()
        contact = self._contacts.get(email)
        if contact is None:
            found = self.sql.first(_CONTACT_BY_EMAIL, {"email": email, "email2": email})
            if found is None:
                return self._create(email, address.name, now or utcnow())
            contact = self._remember(ContactRow(found[0], email, found[1], found[2]))
        if contact.customer_id is None:
            customer_id = self.customer_for_email(email)
            if customer_id is not None:
                self.sql.execute(
                    _SET_CONTACT_CUSTOMER,
                    {"contact_id": contact.id, "customer_id": customer_id, "now": now or utcnow()},
                )
                contact = self._remember(ContactRow(contact.id, email, contact.name, customer_id))
        if not contact.name and address.name:
            self.sql.execute(_SET_CONTACT_NAME, {"contact_id": contact.id, "name": address.name})
            index_contact(self.sql, contact.id)
            contact = self._remember(ContactRow(contact.id, email, address.name, contact.customer_id))
        return contact

    def _create(self, email: str, name: str, now: datetime) -> ContactRow:
        customer_id = self.customer_for_email(email)
        new_id = self.sql.scalar(
            self._insert, {"email": email, "name": name, "customer_id": customer_id, "created_at": now}
        )
        if new_id is not None:
            index_new_contact(self.sql, new_id, name, email)
            return self._remember(ContactRow(new_id, email, name, customer_id))
        # Another worker created it first (and has committed: ON CONFLICT waited for that).
        found = self.sql.first(_CONTACT_BY_EMAIL, {"email": email, "email2": email})
        if found is None:
            raise RuntimeError(f"contact {email!r} conflicted on insert but cannot be read")
        return self._remember(ContactRow(found[0], email, found[1], found[2]))


# -- the contacts API's side: read, change, merge ------------------------------------------------------


def lock_contact_keys(session: Session, emails: Iterable[str]) -> None:
    """Hold ``contact:<email>`` for each address, all at once in ascending order (PostgreSQL; SQLite's
    single writer already serialises).

    The pipeline's contact stage holds the same key while it finds or creates the contact of an address
    (``pipeline.contact.contact_lock``), so a change of which contact owns an address never interleaves
    with a mail of that address being filed. Keys come before row locks, as in the pipeline.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    numbers = sorted({lock_key(f"contact:{email.lower()}") for email in emails})
    if numbers:
        session.execute(ADVISORY_XACT_LOCK_ALL, {"keys": numbers})


def _addresses_of(session: Session, contact_ids: Sequence[int]) -> set[str]:
    primary = session.scalars(select(Contact.email).where(Contact.id.in_(contact_ids)))
    further = session.scalars(select(ContactAddress.email).where(ContactAddress.contact_id.in_(contact_ids)))
    return {*primary, *further}


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() or c in '<>,;"' for c in email):
        raise InvalidSetting("addresses", f"{value!r} is not an email address")
    if len(email) > 320:
        raise InvalidSetting("addresses", f"{value!r} is longer than 320 characters")
    return email


class ContactService:
    """The contacts of the CRM: read, change (addresses kept unique across contacts), merge."""

    def get(self, session: Session, contact_id: int, *, for_update: bool = False) -> Contact:
        query = select(Contact).where(Contact.id == contact_id).options(selectinload(Contact.addresses))
        if for_update:
            query = query.with_for_update(of=Contact)
        contact = session.scalar(query)
        if contact is None:
            raise NotFound(f"contact {contact_id} not found")
        return contact

    def update(self, session: Session, contact_id: int, changes: dict[str, Any]) -> Contact:
        """Apply a PATCH: ``name``, ``phone``, ``notes``, ``customer_id`` (nullable), ``addresses`` (the
        further addresses, replacing the list; the first address, ``email``, stays)."""
        wanted: list[str] | None = None
        if changes.get("addresses") is not None:
            wanted = list(dict.fromkeys(normalize_email(a) for a in changes["addresses"]))
        # Keys first (the addresses it has and those it is to have), then the row: the pipeline's order.
        lock_contact_keys(session, [*_addresses_of(session, [contact_id]), *(wanted or [])])
        contact = self.get(session, contact_id, for_update=True)
        if "name" in changes and changes["name"] is not None:
            contact.name = changes["name"].strip()
        if "phone" in changes and changes["phone"] is not None:
            contact.phone = changes["phone"].strip()
        if "notes" in changes and changes["notes"] is not None:
            contact.notes = changes["notes"]
        if "customer_id" in changes:
            customer_id = changes["customer_id"]
            if customer_id is not None and session.get(Customer, customer_id) is None:
                raise InvalidSetting("customer_id", f"customer {customer_id} does not exist")
            contact.customer_id = customer_id
        if wanted is not None:
            wanted = [a for a in wanted if a != contact.email]
            self._check_unowned(session, contact.id, wanted)
            kept = {a.email: a for a in contact.addresses}
            contact.addresses = [kept.get(a) or ContactAddress(email=a) for a in wanted]
        contact.updated_at = utcnow()
        session.flush()
        index_contact(SqlCursor(session), contact.id)
        return contact

    def _check_unowned(self, session: Session, contact_id: int, emails: list[str]) -> None:
        """An address belongs to one contact: 409 naming the contact that has it."""
        if not emails:
            return
        owners = list(
            session.execute(
                select(Contact.id, Contact.name, Contact.email).where(
                    Contact.email.in_(emails), Contact.id != contact_id
                )
            ).all()
        )
        owners += session.execute(
            select(Contact.id, Contact.name, ContactAddress.email)
            .join(ContactAddress, ContactAddress.contact_id == Contact.id)
            .where(ContactAddress.email.in_(emails), Contact.id != contact_id)
        ).all()
        if owners:
            owner_id, owner_name, email = owners[0]
            who = f"contact {owner_id}" + (f" ({owner_name})" if owner_name else "")
            raise Conflict(f"{email} already belongs to {who}: merge the two contacts to bring them together")

    def merge(self, session: Session, contact_id: int, other_id: int) -> Contact:
        """Merge contact ``other_id`` into ``contact_id``, in the caller's transaction.

        Its conversations and addresses move (its first address becomes a further one), its name,
        phone and customer fill the target's empty ones, notes are joined, and what the target
        already had differently (another name or phone) is written into the notes; then it is deleted.
        """
        if contact_id == other_id:
            raise InvalidSetting("other_id", "a contact cannot be merged into itself")
        for _ in range(3):
            before = _addresses_of(session, [contact_id, other_id])
            lock_contact_keys(session, before)
            # An address added between the read and the locks would be unlocked: read again under them.
            if _addresses_of(session, [contact_id, other_id]) <= before:
                break
        else:
            raise Conflict("the contacts' addresses keep changing; try the merge again")
        # Rows in id order, so that two merges of the same pair lock them in the same order.
        rows = session.scalars(
            select(Contact)
            .where(Contact.id.in_([contact_id, other_id]))
            .order_by(Contact.id)
            .with_for_update()
            .options(selectinload(Contact.addresses))
        ).all()
        found = {row.id: row for row in rows}
        if contact_id not in found:
            raise NotFound(f"contact {contact_id} not found")
        if other_id not in found:
            raise NotFound(f"contact {other_id} not found")
        target, other = found[contact_id], found[other_id]
        now = utcnow()
        session.execute(
            update(Conversation)
            .where(Conversation.contact_id == other.id, Conversation.customer_id.is_(None))
            .values(customer_id=target.customer_id or other.customer_id)
        )
        session.execute(update(Conversation).where(Conversation.contact_id == other.id).values(contact_id=target.id))
        session.execute(
            update(ContactAddress).where(ContactAddress.contact_id == other.id).values(contact_id=target.id)
        )
        session.add(ContactAddress(contact_id=target.id, email=other.email))
        notes = [target.notes.strip(), other.notes.strip()]
        kept_apart = []
        if other.name and target.name and other.name != target.name:
            kept_apart.append(f"name {other.name}")
        if other.phone and target.phone and other.phone != target.phone:
            kept_apart.append(f"phone {other.phone}")
        if kept_apart:
            notes.append(f"Merged from {other.email}: " + ", ".join(kept_apart))
        target.name = target.name or other.name
        target.phone = target.phone or other.phone
        target.customer_id = target.customer_id or other.customer_id
        target.notes = "\n\n".join(n for n in notes if n)
        target.updated_at = now
        session.flush()
        # The bulk updates moved rows the session still counts as the other's: forgotten here, else
        # deleting the other would delete its (former) addresses with it, as orphans.
        session.expire(target, ["addresses"])
        session.expire(other, ["addresses"])
        session.delete(other)
        session.flush()
        index_contact(SqlCursor(session), target.id)
        return self.get(session, target.id)

    # -- views ------------------------------------------------------------------------------------

    def view(self, contact: Contact) -> dict[str, Any]:
        return {
            "id": contact.id,
            "email": contact.email,
            "name": contact.name,
            "addresses": [a.email for a in contact.addresses],
            "phone": contact.phone,
            "notes": contact.notes,
            "customer_id": contact.customer_id,
            "created_at": contact.created_at,
            "updated_at": contact.updated_at,
        }

    def detail(self, session: Session, contact: Contact, limit: int = 25) -> dict[str, Any]:
        """The contact with its customer and its latest conversations, newest first (capped; the rest
        through ``conversations_next``, the conversations list filtered by this contact)."""
        customer = session.get(Customer, contact.customer_id) if contact.customer_id is not None else None
        conversations = session.scalars(
            select(Conversation)
            .where(Conversation.contact_id == contact.id)
            .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
            .limit(limit + 1)
        ).all()
        return {
            **self.view(contact),
            "customer": {"id": customer.id, "name": customer.name} if customer is not None else None,
            "conversations": [conversation_brief(c) for c in conversations[:limit]],
            "conversations_next": f"/api/v1/conversations?contact={contact.id}" if len(conversations) > limit else None,
        }
