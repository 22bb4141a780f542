"""Bodies of the contacts and customers API (the CRM): request models refuse unknown fields."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    # A misspelt field is refused (422 naming it), never silently ignored.
    model_config = ConfigDict(extra="forbid")


class ContactPatchIn(_Request):
    """A change of a contact; fields left out stay. ``addresses`` replaces the further addresses (the first,
    ``email``, stays); an address of another contact is refused with 409 naming that contact."""

    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=50)
    notes: str | None = Field(default=None, max_length=20_000)
    customer_id: int | None = Field(default=None, description="`null` unlinks the contact from its customer.")
    addresses: list[str] | None = Field(default=None, max_length=50)


class ContactMergeIn(_Request):
    other_id: int = Field(description="The contact merged into this one, and deleted.")


class CustomerCreateIn(_Request):
    name: str = Field(max_length=200)
    notes: str = Field(default="", max_length=20_000)
    domains: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Mail domains of the customer (subdomains included); free-mail providers are refused.",
    )


class CustomerUpdateIn(_Request):
    """A change of a customer; fields left out stay; ``domains`` replaces the list."""

    name: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, max_length=20_000)
    domains: list[str] | None = Field(default=None, max_length=100)


class CustomerRef(BaseModel):
    id: int
    name: str


class ContactRef(BaseModel):
    id: int
    name: str
    email: str


class ConversationBrief(BaseModel):
    id: int
    subject: str
    status: str
    contact_id: int | None
    last_activity_at: datetime


class ContactOut(BaseModel):
    id: int
    email: str = Field(description="The first address (the contact was created for it).")
    name: str
    addresses: list[str] = Field(description="Further addresses; mail from any of them is filed under the contact.")
    phone: str
    notes: str
    customer_id: int | None
    created_at: datetime
    updated_at: datetime


class ContactDetailOut(ContactOut):
    customer: CustomerRef | None
    conversations: list[ConversationBrief] = Field(description="The latest conversations, newest first.")
    conversations_next: str | None = Field(description="The conversations list of this contact, when there are more.")


class CustomerOut(BaseModel):
    id: int
    name: str
    notes: str
    domains: list[str]
    created_at: datetime
    updated_at: datetime


class CustomerDetailOut(CustomerOut):
    contacts: list[ContactRef]
    contacts_more: str | None = Field(description="The contacts list of this customer, when there are more.")
    conversations: list[ConversationBrief] = Field(description="The latest conversations, newest first.")
    conversations_more: bool
