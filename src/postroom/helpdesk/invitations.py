"""Invitations: an administrator invites a person by address; the person sets a name and password once.

The link carries ``<id>.<nonce>.<mac>``: the invitation row, a random nonce stored on it, and an HMAC of
both under a key derived from the secret key (``Settings.invitation_key``). The MAC tells a forged or
garbled token (400) apart from a real one that expired or was revoked (410) or was used (409) — each
answer says what the person can do next. The nonce is compared too, so a leaked database dump of ids is no
link, and the row says whether the link was used: each works once.

The invitation mail goes through the outbox of the connection the administrator picks, like a reply (one
row, no conversation); the link is also returned to the administrator, to be passed on by hand when no
mail can be sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import structlog
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from postroom.channels.accounts import mailbox_mail
from postroom.errors import (
    Conflict,
    InvalidSetting,
    InvitationGone,
    InvitationInvalid,
    InvitationUsed,
    NotFound,
)
from postroom.helpdesk.users import UserService, normalize_email
from postroom.mail.compose import compose
from postroom.mail.model import Address
from postroom.store.models import Connection, Invitation, Mailbox, Outbox, OutboxStatus, Role, User, utcnow

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Invited:
    """A new invitation: its row, the token (only here, never stored) and whether a mail was queued."""

    invitation: Invitation
    token: str
    accept_url: str
    mail_queued: bool


def _mac(key: bytes, invitation_id: int, nonce: str) -> str:
    digest = hmac.new(key, f"postroom-invitation:{invitation_id}.{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class InvitationService:
    def __init__(self, key: bytes, base_url: str, lifetime: timedelta, users: UserService | None = None) -> None:
        self.key = key
        self.base_url = base_url.rstrip("/")
        self.lifetime = lifetime
        self.users = users or UserService()

    def accept_url(self, token: str) -> str:
        return f"{self.base_url}/accept-invitation?token={quote(token, safe='')}"

    def create(
        self,
        session: Session,
        email: str,
        *,
        role: Role = Role.AGENT,
        name: str = "",
        connection_id: int | None = None,
        invited_by: User | None = None,
    ) -> Invited:
        """Make an invitation and, when a connection is given, queue the mail that carries its link."""
        address = normalize_email(email)
        if session.scalar(select(User.id).where(User.email == address)) is not None:
            raise Conflict(f"a user with the address {address} exists already")
        connection: Connection | None = None
        if connection_id is not None:
            connection = session.get(Connection, connection_id)
            if connection is None:
                raise NotFound(f"connection {connection_id} not found")
            if not connection.mailboxes:
                raise InvalidSetting("connection_id", "this connection has no mailbox to send from")
        now = utcnow()
        invitation = Invitation(
            email=address,
            name=name.strip(),
            role=Role(role),
            nonce=secrets.token_urlsafe(18),
            invited_by_id=invited_by.id if invited_by else None,
            connection_id=connection_id,
            created_at=now,
            expires_at=now + self.lifetime,
        )
        session.add(invitation)
        session.flush()
        token = f"{invitation.id}.{invitation.nonce}.{_mac(self.key, invitation.id, invitation.nonce)}"
        url = self.accept_url(token)
        if connection is not None:
            self._queue_mail(session, invitation, connection, connection.mailboxes[0], url, invited_by)
        log.info("invitation.created", invitation_id=invitation.id, mailed=connection is not None)
        return Invited(invitation, token, url, connection is not None)

    def _queue_mail(
        self,
        session: Session,
        invitation: Invitation,
        connection: Connection,
        mailbox: Mailbox,
        url: str,
        invited_by: User | None,
    ) -> None:
        inviter = (invited_by.name or invited_by.email) if invited_by else "An administrator"
        expires = invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC")
        role = "an admin" if invitation.role is Role.ADMIN else "an agent"
        text = (
            f"Hello{' ' + invitation.name if invitation.name else ''},\n\n"
            f"{inviter} invites you to work in Postroom as {role}"
            f" with the address {invitation.email}.\n\n"
            f"Choose your name and password here:\n\n  {url}\n\n"
            f"The link works once, until {expires}. If you did not expect this mail, ignore it.\n"
        )
        outgoing = mailbox_mail(
            connection,
            mailbox,
            to=(Address(invitation.email, invitation.name),),
            subject="Your invitation to Postroom",
            text=text,
            # Mail no person typed: auto-responders must not answer it (RFC 3834).
            auto_submitted=True,
        )
        composed = compose(outgoing)
        session.add(
            Outbox(
                message_pk=None,
                connection_id=connection.id,
                mailbox_id=mailbox.id,
                raw=composed.raw,
                message_id=composed.message_id,
                envelope_from=composed.envelope_from,
                recipients=list(composed.recipients),
                status=OutboxStatus.QUEUED,
                next_attempt_at=utcnow(),
            )
        )
        session.flush()

    def list_query(self) -> Select[Any]:
        return select(Invitation)

    def list(self, session: Session) -> Sequence[Invitation]:
        return session.scalars(select(Invitation).order_by(Invitation.id)).all()

    def revoke(self, session: Session, invitation_id: int) -> Invitation:
        invitation = session.get(Invitation, invitation_id)
        if invitation is None:
            raise NotFound(f"invitation {invitation_id} not found")
        if invitation.accepted_at is not None:
            raise Conflict("this invitation was accepted already: disable the user instead")
        if invitation.revoked_at is None:
            invitation.revoked_at = utcnow()
            session.flush()
        return invitation

    def find(self, session: Session, token: str, *, for_update: bool = False) -> Invitation:
        """The usable invitation of ``token``; raises InvitationInvalid, InvitationGone or InvitationUsed."""
        invalid = InvitationInvalid("this invitation link is not valid: copy the whole link from the mail")
        parts = token.strip().split(".")
        if len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 18:
            raise invalid
        invitation_id, nonce, mac = int(parts[0]), parts[1], parts[2]
        if not hmac.compare_digest(mac.encode(), _mac(self.key, invitation_id, nonce).encode()):
            raise invalid
        query = select(Invitation).where(Invitation.id == invitation_id)
        invitation = session.scalar(query.with_for_update() if for_update else query)
        if invitation is None or not hmac.compare_digest(invitation.nonce.encode(), nonce.encode()):
            # Signed by us but no longer there (deleted): as good as revoked.
            raise InvitationGone("this invitation no longer exists: ask an administrator for a new one")
        if invitation.accepted_at is not None:
            raise InvitationUsed("this invitation was used already: sign in with the password you chose")
        if invitation.revoked_at is not None:
            raise InvitationGone("this invitation was revoked: ask an administrator for a new one")
        if invitation.expires_at <= utcnow():
            raise InvitationGone("this invitation expired: ask an administrator for a new one")
        return invitation

    def accept(self, session: Session, token: str, *, name: str, password: str) -> User:
        """Create the invited user with the name and password chosen; the invitation is used up."""
        invitation = self.find(session, token, for_update=True)
        user = self.users.create(
            session, invitation.email, name=name or invitation.name, role=invitation.role, password=password
        )
        invitation.accepted_at = utcnow()
        invitation.user_id = user.id
        session.flush()
        log.info("invitation.accepted", invitation_id=invitation.id, user_id=user.id)
        return user
