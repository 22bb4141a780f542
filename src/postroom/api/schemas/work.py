"""Bodies of the team work model: teams, conversations as work items (status, priority, assignee, team,
tags, snooze), internal notes and agents' replies.

Every request model refuses fields it does not know (422 naming the field): a misspelt ``asignee_id``
or a field some other product has (``internal``) must not be taken as "nothing to change".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from postroom.api.schemas import AddressOut, AttachmentOut, ContactOut
from postroom.mail.addresses import check_header_safe

Status = Literal["open", "pending", "snoozed", "resolved"]
PriorityName = Literal["low", "normal", "high", "urgent"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- teams ---------------------------------------------------------------------------------------


class TeamCreateIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    member_ids: list[int] = Field(default_factory=list, description="Users to make members at once.")


class TeamUpdateIn(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)


class TeamMemberIn(_Strict):
    user_id: int


class UserRefOut(BaseModel):
    id: int
    name: str
    email: str | None = None


class TeamOut(BaseModel):
    id: int
    name: str
    members: list[UserRefOut]
    last_assigned_id: int | None = Field(description="Round robin: who got the team's last automatic assignment.")
    created_at: str


class TeamPage(BaseModel):
    items: list[TeamOut]
    next_cursor: str | None = None


# -- conversations -------------------------------------------------------------------------------


class ConversationPatchIn(_Strict):
    """Change what is given; a field left out is not changed, ``null`` clears where that makes sense."""

    status: Status | None = None
    snoozed_until: datetime | None = Field(
        default=None, description="Required with status `snoozed`: when it reopens by itself (UTC if no zone)."
    )
    priority: PriorityName | None = None
    assignee_id: int | None = Field(default=None, description="An enabled user; null unassigns.")
    team_id: int | None = Field(default=None, description="A team; null takes it out of every team's queue.")
    tags: list[str] | None = Field(
        default=None, description="Tag names; replaces the set; a tag is created on first use."
    )


class NoteIn(_Strict):
    text: str = Field(min_length=1, description="Internal note, plain text; never emailed.")
    mention_ids: list[int] = Field(default_factory=list, description="Users to mention besides `@name` in the text.")


class ReplyIn(_Strict):
    text: str = Field(min_length=1, description="The agent's reply, plain text.")
    author: str = Field(
        default="",
        description="A display name for the signature's {{ sender_name }}; the author is always the signed-in user.",
    )
    cc: str = Field(default="", description="Further copies, comma-separated (the customer's own Cc are kept).")
    bcc: str = Field(default="", description="Blind copies, comma-separated.")
    attachment_ids: list[int] = Field(
        default_factory=list, description="Files already in this conversation to send again."
    )

    @field_validator("cc", "bcc")
    @classmethod
    def _addresses(cls, value: str, info: ValidationInfo) -> str:
        # Refused whole: the address parser would unfold a line break into another list of recipients.
        return check_header_safe(info.field_name or "address", value)


class ConversationStartIn(_Strict):
    """The agent writes first: a new conversation from one of the connection's mailboxes."""

    connection_id: int
    to: str = Field(min_length=3, description="Recipient(s), e.g. 'Ann <ann@example.com>'; the first is the contact.")
    cc: str = Field(default="", description="Copies, comma-separated.")
    subject: str = Field(min_length=1)
    text: str = Field(min_length=1, description="The message, plain text.")
    author: str = Field(default="", description="A display name for the signature's {{ sender_name }}.")

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, value: str, info: ValidationInfo) -> str:
        return check_header_safe(info.field_name or "address", value)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        # A tab is white space in an unstructured header (RFC 5322 §3.2.2); every other control breaks it.
        check_header_safe("subject", value.replace("\t", " "))
        return value


class TeamRefOut(BaseModel):
    id: int
    name: str


class CustomerRefOut(BaseModel):
    id: int
    name: str


class ConversationSummaryOut(BaseModel):
    id: int
    connection_id: int | None
    mailbox_id: int | None
    subject: str
    status: Status
    snoozed_until: str | None
    priority: PriorityName
    contact: ContactOut | None
    customer_id: int | None
    customer: CustomerRefOut | None = None
    assignee_id: int | None
    assignee: UserRefOut | None
    team_id: int | None
    team: TeamRefOut | None
    tags: list[str]
    created_at: str
    updated_at: str
    last_message_at: str
    last_activity_at: str


class ConversationPage(BaseModel):
    items: list[ConversationSummaryOut]
    next_cursor: str | None = None


class MessageOut(BaseModel):
    id: int
    direction: Literal["in", "out", "note"]
    author: str
    author_id: int | None = None
    from_: AddressOut = Field(alias="from", serialization_alias="from")
    to: list[AddressOut]
    cc: list[AddressOut]
    bcc: list[AddressOut] = Field(default_factory=list)
    reply_to: list[AddressOut]
    subject: str
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    text: str
    html: str = Field(
        description="Sanitised HTML. Nothing in it loads by itself: URLs outside the mail are held back in"
        " data-remote-src (and data-remote-srcset …) attributes, which a client may move back on request."
    )
    remote_references: int = 0
    reply_text: str
    signature: str
    quoted_text: str
    classification: dict[str, Any]
    sent_at: str | None
    created_at: str
    delivery_status: str | None
    delivery_detail: str
    sent_copy: str | None = None
    degraded_reason: str = ""
    attachments: list[AttachmentOut]
    mentions: list[UserRefOut] = Field(default_factory=list, description="Notes: the users it mentions.")

    model_config = ConfigDict(populate_by_name=True)


class ActivityOut(BaseModel):
    id: int
    kind: str = Field(description="status, assignee, team, priority, tags, note.")
    actor: UserRefOut | None = Field(description="Who did it; null when it was automatic.")
    data: dict[str, Any]
    created_at: str


class TimelineEntryOut(BaseModel):
    type: Literal["message", "note", "activity"]
    at: str
    message: MessageOut | None = None
    activity: ActivityOut | None = None


class ConversationOut(ConversationSummaryOut):
    description: str
    messages: list[MessageOut] = Field(description="Mail in and out, and notes, in order.")
    activities: list[ActivityOut]
    timeline: list[TimelineEntryOut] = Field(description="Messages, notes and activity entries, in order.")


# -- mentions ------------------------------------------------------------------------------------


class MentionOut(BaseModel):
    """A note that names you: ``conversation_id`` to open, ``excerpt`` of the note, ``seen_at`` once seen."""

    id: int
    conversation_id: int
    message_id: int
    author_id: int | None
    author: str
    excerpt: str
    created_at: datetime
    seen_at: datetime | None
