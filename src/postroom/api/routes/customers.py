"""/api/v1/customers: organisations, the mail domains that identify them, their contacts and conversations.

Admins and agents alike may create and change customers: the CRM is the team's, and the agent on a
conversation is the one who learns which company a sender belongs to. Domains are validated (free-mail
providers refused, one customer per domain), which is what protects the matching of new mail.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from postroom.api.deps import ServiceDep
from postroom.api.pagination import Order, Page, PageRequest, keyset_page, link_next, page_request
from postroom.api.schemas.crm import CustomerCreateIn, CustomerDetailOut, CustomerOut, CustomerUpdateIn
from postroom.helpdesk.customers import CustomerInput, CustomerService
from postroom.store.models import Customer, CustomerDomain

router = APIRouter(tags=["customers"])
customers = CustomerService()

_ORDER = (Order(Customer.name), Order(Customer.id))


@router.get("/customers", response_model=Page[CustomerOut])
def list_customers(
    request: Request,
    response: Response,
    service: ServiceDep,
    page: Annotated[PageRequest, Depends(page_request)],
    q: Annotated[str | None, Query(description="Part of the name or of a domain.")] = None,
) -> dict[str, Any]:
    """By name."""
    query = select(Customer).options(selectinload(Customer.domains))
    if q and q.strip():
        # Customers are few (hundreds, not millions): a substring match is enough here.
        needle = q.strip().lower()
        query = query.where(
            Customer.name.icontains(needle, autoescape=True)
            | Customer.id.in_(
                select(CustomerDomain.customer_id).where(CustomerDomain.domain.contains(needle, autoescape=True))
            )
        )
    with service.db.read() as session:
        rows, next_cursor = keyset_page(session, query, _ORDER, page)
        items = [customers.view(c) for c in rows]
    link_next(request, response, next_cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/customers", response_model=CustomerDetailOut, status_code=status.HTTP_201_CREATED)
def create_customer(body: CustomerCreateIn, service: ServiceDep) -> dict[str, Any]:
    with service.db.write() as session:
        customer = customers.create(session, CustomerInput(body.name, body.notes, body.domains))
        return customers.detail(session, customer)


@router.get("/customers/{customer_id}", response_model=CustomerDetailOut)
def get_customer(customer_id: int, service: ServiceDep) -> dict[str, Any]:
    with service.db.read() as session:
        return customers.detail(session, customers.get(session, customer_id))


@router.patch("/customers/{customer_id}", response_model=CustomerDetailOut)
def update_customer(customer_id: int, body: CustomerUpdateIn, service: ServiceDep) -> dict[str, Any]:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    with service.db.write() as session:
        return customers.detail(session, customers.update(session, customer_id, changes))


@router.delete("/customers/{customer_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_customer(customer_id: int, service: ServiceDep) -> Response:
    """Its contacts and conversations stay, without a customer."""
    with service.db.write() as session:
        customers.delete(session, customer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
