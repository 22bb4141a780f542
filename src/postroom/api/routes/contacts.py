"""/api/v1/contacts: the people who write in — list and search, read with their history, change, merge.

Every signed-in user may read and change contacts: agents are the ones who learn a customer's phone
number or notice that two addresses are one person.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from postroom.api.deps import ServiceDep
from postroom.api.pagination import Order, Page, PageRequest, keyset_page, link_next, page_request
from postroom.api.schemas.crm import ContactDetailOut, ContactMergeIn, ContactOut, ContactPatchIn
from postroom.helpdesk.contacts import ContactService
from postroom.helpdesk.search import contacts_matching
from postroom.store.models import Contact

router = APIRouter(tags=["contacts"])
contacts = ContactService()

_ORDER = (Order(Contact.id, descending=True),)


@router.get("/contacts", response_model=Page[ContactOut])
def list_contacts(
    request: Request,
    response: Response,
    service: ServiceDep,
    page: Annotated[PageRequest, Depends(page_request)],
    q: Annotated[str | None, Query(description="Words in the name or an address; the last may be cut short.")] = None,
    customer_id: int | None = None,
) -> dict[str, Any]:
    """Newest first."""
    query = select(Contact).options(selectinload(Contact.addresses))
    if customer_id is not None:
        query = query.where(Contact.customer_id == customer_id)
    with service.db.read() as session:
        if q and q.strip():
            query = query.where(contacts_matching(q, session.get_bind().dialect.name))
        rows, next_cursor = keyset_page(session, query, _ORDER, page)
        items = [contacts.view(c) for c in rows]
    link_next(request, response, next_cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/contacts/{contact_id}", response_model=ContactDetailOut)
def get_contact(contact_id: int, service: ServiceDep) -> dict[str, Any]:
    with service.db.read() as session:
        return contacts.detail(session, contacts.get(session, contact_id))


@router.patch("/contacts/{contact_id}", response_model=ContactDetailOut)
def update_contact(contact_id: int, body: ContactPatchIn, service: ServiceDep) -> dict[str, Any]:
    with service.db.write() as session:
        contact = contacts.update(session, contact_id, body.model_dump(exclude_unset=True))
        return contacts.detail(session, contact)


@router.post("/contacts/{contact_id}/merge", response_model=ContactDetailOut)
def merge_contacts(contact_id: int, body: ContactMergeIn, service: ServiceDep) -> dict[str, Any]:
    """Merge contact ``other_id`` into this one: its conversations and addresses move here, its name, phone
    and customer fill what this one lacks, its notes are kept; then it is deleted. One transaction."""
    with service.db.write() as session:
        return contacts.detail(session, contacts.merge(session, contact_id, body.other_id))
