"""/api/v1/invitations: administrators invite people by address; ``/invitations/accept`` (no bearer token:
the signed link is the authentication) lets the invited person choose a name and password.

Two routers: ``router`` for administrators, ``public`` for accepting.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from postroom.api.deps import AdminDep, ServiceDep
from postroom.api.pagination import Order, Page, PageRequest, keyset_page, link_next, page_request
from postroom.api.routes.auth import access_errors, users
from postroom.api.routes.users import user_view
from postroom.api.schemas.people import (
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationOut,
    UserOut,
)
from postroom.helpdesk.invitations import InvitationService
from postroom.service import Service
from postroom.store.models import Invitation, User, utcnow

router = APIRouter(tags=["invitations"])
public = APIRouter(tags=["invitations"])


def invitations_of(service: Service) -> InvitationService:
    settings = service.settings
    return InvitationService(
        settings.invitation_key(), settings.base_url, timedelta(hours=settings.invitation_hours), users
    )


def invitation_view(invitation: Invitation) -> InvitationOut:
    if invitation.accepted_at is not None:
        state = "accepted"
    elif invitation.revoked_at is not None:
        state = "revoked"
    elif invitation.expires_at <= utcnow():
        state = "expired"
    else:
        state = "pending"
    return InvitationOut(
        id=invitation.id,
        email=invitation.email,
        name=invitation.name,
        role=invitation.role,
        connection_id=invitation.connection_id,
        invited_by_id=invitation.invited_by_id,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        accepted_at=invitation.accepted_at,
        revoked_at=invitation.revoked_at,
        user_id=invitation.user_id,
        state=state,
    )


@router.post("/invitations", response_model=InvitationCreated, status_code=201)
def create_invitation(body: InvitationCreate, admin: AdminDep, service: ServiceDep) -> InvitationCreated:
    """Invite a person. With ``connection_id`` the invitation is mailed from that connection's first
    mailbox (through the outbox, like a reply); ``accept_url`` is always returned, to pass on by hand."""
    with service.db.write() as session:
        inviter = session.get(User, admin.user_id)
        invited = invitations_of(service).create(
            session, body.email, role=body.role, name=body.name, connection_id=body.connection_id, invited_by=inviter
        )
        view = invitation_view(invited.invitation)
    if invited.mail_queued:
        service.outbox.wake()
    return InvitationCreated(**view.model_dump(), accept_url=invited.accept_url, mail_queued=invited.mail_queued)


@router.get("/invitations", response_model=Page[InvitationOut])
def list_invitations(
    _admin: AdminDep,
    service: ServiceDep,
    page: Annotated[PageRequest, Depends(page_request)],
    request: Request,
    response: Response,
) -> Page[InvitationOut]:
    service_ = invitations_of(service)
    with service.db.read() as session:
        rows, next_cursor = keyset_page(session, service_.list_query(), [Order(Invitation.id)], page)
        items = [invitation_view(i) for i in rows]
    link_next(request, response, next_cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.delete("/invitations/{invitation_id}", response_model=InvitationOut)
def revoke_invitation(invitation_id: int, _admin: AdminDep, service: ServiceDep) -> InvitationOut:
    """Revoke an invitation not yet accepted: its link stops working."""
    with service.db.write() as session:
        return invitation_view(invitations_of(service).revoke(session, invitation_id))


@public.post("/invitations/accept", response_model=UserOut, status_code=201)
def accept_invitation(body: InvitationAccept, service: ServiceDep) -> UserOut:
    """Accept an invitation: the user is created with the name and password chosen, and can sign in at
    ``/api/v1/auth/token``. A link works once (409 after), until it expires (410); a link that is not
    ours is refused (400)."""
    with access_errors(), service.db.write() as session:
        user = invitations_of(service).accept(session, body.token, name=body.name, password=body.password)
        return user_view(user)
