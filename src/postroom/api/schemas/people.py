"""Bodies of the people routes: sign-in, users, tokens, invitations.

Request models refuse unknown fields, so that a misspelt field (``avialability``) is an error rather than
a change silently not made. Create and update bodies are separate models: an update changes only the
fields it sends.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from postroom.store.models import Availability, Role, TokenKind

Password = Field(min_length=10, max_length=1024, description="At least 10 characters; never shown or logged.")


class AccessTokenOut(BaseModel):
    """OAuth 2.0 token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the token type of RFC 6750, not a secret)
    expires_in: int = Field(description="Seconds the token works.")


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: Role
    enabled: bool
    availability: Availability
    max_open: int | None = Field(description="Cap on open conversations from auto-assignment; null: none.")
    has_password: bool
    created_at: datetime
    disabled_at: datetime | None
    last_sign_in_at: datetime | None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    name: str = Field(default="", max_length=200)
    role: Role = Role.AGENT
    password: str | None = Field(default=None, min_length=10, max_length=1024, description="None: no password sign-in.")
    availability: Availability = Availability.AVAILABLE
    max_open: int | None = Field(default=None, ge=0)


class UserUpdate(BaseModel):
    """Fields an administrator may change; ``max_open: null`` removes the cap."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    availability: Availability | None = None
    max_open: int | None = Field(default=None, ge=0)
    password: str | None = Field(default=None, min_length=10, max_length=1024)


class SelfUpdate(BaseModel):
    """What every user may change of their own: name, availability and password (not the role)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    availability: Availability | None = None
    password: str | None = Field(default=None, min_length=10, max_length=1024)


class DisableOut(BaseModel):
    user: UserOut
    unassigned_conversations: list[int] = Field(description="Conversations sent back to their team's queue.")
    revoked_tokens: int


class TokenOut(BaseModel):
    """A token as listed: never its secret, only its first characters."""

    id: int
    name: str
    prefix: str
    kind: TokenKind
    user_id: int | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    expires_at: datetime | None = Field(default=None, description="When it stops working; null: until revoked.")


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown this once, keep it.")


class InvitationOut(BaseModel):
    id: int
    email: str
    name: str
    role: Role
    connection_id: int | None
    invited_by_id: int | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    user_id: int | None
    state: str = Field(description="pending, accepted, revoked or expired.")


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    role: Role = Role.AGENT
    name: str = Field(default="", max_length=200)
    connection_id: int | None = Field(
        default=None, description="The connection whose mailbox sends the invitation; none: no mail is sent."
    )


class InvitationCreated(InvitationOut):
    accept_url: str = Field(description="The link to pass on, also when the mail was sent.")
    mail_queued: bool


class InvitationAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=500)
    name: str = Field(default="", max_length=200)
    password: str = Password
