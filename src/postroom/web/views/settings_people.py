"""Settings → Users, invitations and API tokens; and every user's own tokens at /account/tokens.

Views read a form, call the same services as the API routes (``helpdesk.users``, ``helpdesk.invitations``,
``api.tokens``), and render. Changes that have nothing to show answer with a redirect (a reload does not
post again); the two answers that show a secret once — a new invitation's link and a new token — are
rendered in the answer to the post, so the secret never lands in a URL or a log line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from postroom.api.pagination import Order, PageRequest, keyset_page
from postroom.api.tokens import create_token
from postroom.errors import Conflict, InvalidSetting, NotFound
from postroom.service import Service
from postroom.store.models import (
    ApiToken,
    Availability,
    Connection,
    Invitation,
    Role,
    TokenKind,
    User,
    utcnow,
)
from postroom.web.deps import AdminUserDep, ServiceDep, UserDep
from postroom.web.session import WebUser
from postroom.web.templating import render

router = APIRouter()

PAGE_SIZE = 50
# Pickers (connections to send from) list this many at most: more would not be usable in a <select>.
PICKER_LIMIT = 200
# The longest name a user, an invitation or a token may have (the columns' size).
MAX_NAME = 200


def sentence(message: str) -> str:
    """A service's message (lower case, no full stop, made for the API) as a sentence for a page."""
    text = message.strip()
    if not text:
        return text
    first = text.split(" ", 1)[0]
    # A message that starts with a domain or an address keeps its spelling (gmail.com, not Gmail.com).
    if "." not in first and "@" not in first:
        text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def not_found(request: Request, user: WebUser, message: str) -> Response:
    context = {"title": "Not found", "message": sentence(message)}
    return render(request, "error.html", context, user=user, status_code=404)


def cursor_page(value: str | None) -> PageRequest:
    return PageRequest(value or None, PAGE_SIZE)


# -- users ----------------------------------------------------------------------------------------


def _users_context(service: Service, session: Session, cursor: str | None) -> dict[str, Any]:
    rows, next_cursor = keyset_page(session, service.users.list_query(), [Order(User.id)], cursor_page(cursor))
    pending = session.scalars(
        select(Invitation)
        .where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > utcnow())
        .order_by(Invitation.id.desc())
        .limit(PAGE_SIZE)
    ).all()
    return {
        "nav": "settings",
        "section": "users",
        "users": rows,
        "next_cursor": next_cursor,
        "first_page": cursor is None,
        "invitations": pending,
    }


@router.get("/settings/users")
def users_page(
    request: Request,
    service: ServiceDep,
    user: AdminUserDep,
    cursor: str | None = None,
    disabled: int | None = None,
    unassigned: int = 0,
    revoked: int = 0,
    enabled: int | None = None,
    invitation_revoked: int | None = None,
) -> Response:
    notice = None
    with service.db.read() as session:
        try:
            context = _users_context(service, session, cursor)
        except InvalidSetting:
            # A cursor that is not ours (edited by hand): the first page rather than an error.
            context = _users_context(service, session, None)
        # What the last action did, said in full: the numbers come from the redirect, the names from here.
        if disabled is not None and (subject := session.get(User, disabled)) is not None:
            notice = (
                f"{subject.name or subject.email} is disabled. {_count(unassigned, 'conversation')} went back to"
                f" the team queue; {_count(revoked, 'session or token', 'sessions or tokens')} stopped working."
            )
        elif enabled is not None and (subject := session.get(User, enabled)) is not None:
            notice = (
                f"{subject.name or subject.email} is enabled again. Sessions and tokens revoked when they were"
                " disabled stay revoked: they sign in again."
            )
        elif invitation_revoked is not None:
            notice = "The invitation is revoked: its link no longer works."
    return render(request, "settings/users.html", {**context, "notice": notice}, user=user)


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number} {one if number == 1 else (many or one + 's')}"


@dataclass
class UserForm:
    name: str = ""
    role: str = "agent"
    availability: str = "available"
    max_open: str = ""


def _user_form(subject: User) -> UserForm:
    return UserForm(
        subject.name,
        subject.role.value,
        subject.availability.value,
        "" if subject.max_open is None else str(subject.max_open),
    )


def _render_user(
    request: Request,
    user: WebUser,
    subject: User,
    form: UserForm,
    errors: dict[str, str] | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    context = {
        "nav": "settings",
        "section": "users",
        "subject": subject,
        "form": form,
        "errors": errors or {},
        "saved": saved,
        "roles": list(Role),
        "availabilities": list(Availability),
        "is_self": subject.id == user.user_id,
    }
    return render(request, "settings/users_edit.html", context, user=user, status_code=status_code)


@router.get("/settings/users/invite")
def invite_page(request: Request, service: ServiceDep, user: AdminUserDep) -> Response:
    return _render_invite(request, service, user, {"email": "", "name": "", "role": "agent", "connection_id": ""})


@router.get("/settings/users/{user_id:int}")
def user_page(request: Request, service: ServiceDep, user: AdminUserDep, user_id: int, saved: int = 0) -> Response:
    with service.db.read() as session:
        subject = session.get(User, user_id)
        if subject is None:
            return not_found(request, user, f"no user {user_id}")
        return _render_user(request, user, subject, _user_form(subject), saved=bool(saved))


@router.post("/settings/users/{user_id:int}")
def update_user(
    request: Request,
    service: ServiceDep,
    user: AdminUserDep,
    user_id: int,
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "agent",
    availability: Annotated[str, Form()] = "available",
    max_open: Annotated[str, Form()] = "",
) -> Response:
    form = UserForm(name, role, availability, max_open.strip())
    errors: dict[str, str] = {}
    cap: int | None = None
    if form.max_open:
        try:
            cap = int(form.max_open)
        except ValueError:
            errors["max_open"] = "Enter a whole number, 0 or more, or leave it empty for no cap."
    if len(name) > MAX_NAME:
        errors["name"] = f"Use at most {MAX_NAME} characters."
    if role not in {r.value for r in Role}:
        errors["role"] = "Choose a role from the list."
    if availability not in {a.value for a in Availability}:
        errors["availability"] = "Choose available or away."
    if not errors and user_id == user.user_id and Role(role) is not user.role:
        errors["role"] = "You cannot change your own role: another administrator must."
    if not errors:
        try:
            with service.db.write() as session:
                service.users.update(
                    session,
                    user_id,
                    name=name,
                    role=Role(role),
                    availability=Availability(availability),
                    max_open=cap if form.max_open else None,
                )
        except NotFound as error:
            return not_found(request, user, str(error))
        except InvalidSetting as error:
            errors[error.field] = sentence(error.reason)
        except Conflict as error:
            errors["role"] = sentence(str(error))
    if errors:
        with service.db.read() as session:
            subject = session.get(User, user_id)
            if subject is None:
                return not_found(request, user, f"no user {user_id}")
            return _render_user(request, user, subject, form, errors, status_code=422)
    return RedirectResponse(f"/settings/users/{user_id}?saved=1", status_code=303)


@router.post("/settings/users/{user_id:int}/disable")
def disable_user(request: Request, service: ServiceDep, user: AdminUserDep, user_id: int) -> Response:
    if user_id == user.user_id:
        return _users_error(request, service, user, "You cannot disable yourself: another administrator must.")
    try:
        with service.db.write() as session:
            report = service.users.disable(session, user_id, actor_id=user.user_id)
            unassigned, revoked = len(report.unassigned), report.revoked_tokens
    except NotFound as error:
        return not_found(request, user, str(error))
    except Conflict as error:
        return _users_error(request, service, user, sentence(str(error)))
    return RedirectResponse(
        f"/settings/users?disabled={user_id}&unassigned={unassigned}&revoked={revoked}", status_code=303
    )


@router.post("/settings/users/{user_id:int}/enable")
def enable_user(request: Request, service: ServiceDep, user: AdminUserDep, user_id: int) -> Response:
    try:
        with service.db.write() as session:
            service.users.enable(session, user_id)
    except NotFound as error:
        return not_found(request, user, str(error))
    return RedirectResponse(f"/settings/users?enabled={user_id}", status_code=303)


def _users_error(request: Request, service: Service, user: WebUser, message: str) -> Response:
    with service.db.read() as session:
        context = _users_context(service, session, None)
    return render(request, "settings/users.html", {**context, "error": message}, user=user, status_code=409)


# -- invitations ----------------------------------------------------------------------------------


def _connections(session: Session) -> list[tuple[int, str]]:
    rows = session.execute(select(Connection.id, Connection.name).order_by(Connection.name).limit(PICKER_LIMIT))
    return [(row_id, name) for row_id, name in rows]


def _render_invite(
    request: Request,
    service: Service,
    user: WebUser,
    form: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with service.db.read() as session:
        connections = _connections(session)
    context = {
        "nav": "settings",
        "section": "users",
        "form": form,
        "errors": errors or {},
        "connections": connections,
        "roles": list(Role),
    }
    return render(request, "settings/users_invite.html", context, user=user, status_code=status_code)


@router.post("/settings/users/invite")
def invite_user(
    request: Request,
    service: ServiceDep,
    user: AdminUserDep,
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "agent",
    connection_id: Annotated[str, Form()] = "",
) -> Response:
    form = {"email": email, "name": name, "role": role, "connection_id": connection_id}
    errors: dict[str, str] = {}
    if role not in {r.value for r in Role}:
        errors["role"] = "Choose a role from the list."
    if connection_id and not connection_id.isdigit():
        errors["connection_id"] = "Choose a connection from the list."
    if not email.strip():
        errors["email"] = "Enter the address to invite."
    elif len(email) > 320:
        errors["email"] = "This is too long for an email address."
    if len(name) > MAX_NAME:
        errors["name"] = f"Use at most {MAX_NAME} characters."
    if errors:
        return _render_invite(request, service, user, form, errors, 422)
    try:
        with service.db.write() as session:
            inviter = session.get(User, user.user_id)
            invited = service.invitations().create(
                session,
                email,
                role=Role(role),
                name=name,
                connection_id=int(connection_id) if connection_id else None,
                invited_by=inviter,
            )
            invitation = invited.invitation
            connection = session.get(Connection, invitation.connection_id) if invitation.connection_id else None
            context = {
                "nav": "settings",
                "section": "users",
                "invitation": invitation,
                "accept_url": invited.accept_url,
                "mail_queued": invited.mail_queued,
                "connection_name": connection.name if connection is not None else "",
            }
    except InvalidSetting as error:
        field = "connection_id" if error.field == "connection_id" else "email"
        return _render_invite(request, service, user, form, {field: sentence(error.reason)}, 422)
    except NotFound as error:
        return _render_invite(request, service, user, form, {"connection_id": sentence(str(error))}, 422)
    except Conflict as error:
        return _render_invite(request, service, user, form, {"email": sentence(str(error))}, 422)
    if invited.mail_queued:
        service.outbox_changed()
    return render(request, "settings/users_invited.html", context, user=user)


@router.post("/settings/invitations/{invitation_id:int}/revoke")
def revoke_invitation(request: Request, service: ServiceDep, user: AdminUserDep, invitation_id: int) -> Response:
    try:
        with service.db.write() as session:
            service.invitations().revoke(session, invitation_id)
    except NotFound as error:
        return not_found(request, user, str(error))
    except Conflict as error:
        return _users_error(request, service, user, sentence(str(error)))
    return RedirectResponse(f"/settings/users?invitation_revoked={invitation_id}", status_code=303)


# -- API tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenScope:
    """Where a tokens page lives and whose tokens it shows: everyone's (Settings) or one's own (account)."""

    base: str
    all_users: bool

    @property
    def template(self) -> str:
        return "settings/tokens.html" if self.all_users else "settings/tokens_account.html"


ADMIN_TOKENS = TokenScope("/settings/tokens", all_users=True)
OWN_TOKENS = TokenScope("/account/tokens", all_users=False)


def _tokens_query(scope: TokenScope, user: WebUser, show_all: bool) -> Select[ApiToken, str, str]:
    # Browser sessions are tokens too (so that disabling a user ends them), but they are not what
    # this page is about: people manage the tokens made for programs and sign-ins over the API.
    query = (
        select(ApiToken, User.name, User.email)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.kind != TokenKind.SESSION)
    )
    if not scope.all_users:
        query = query.where(ApiToken.user_id == user.user_id)
    if not show_all:
        now = utcnow()
        query = query.where(
            ApiToken.revoked_at.is_(None), (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now)
        )
    return query


def _tokens_context(
    service: Service, scope: TokenScope, user: WebUser, show_all: bool, before: int | None
) -> dict[str, Any]:
    query = _tokens_query(scope, user, show_all)
    if before is not None:
        query = query.where(ApiToken.id < before)
    with service.db.read() as session:
        rows = session.execute(query.order_by(ApiToken.id.desc()).limit(PAGE_SIZE + 1)).all()
    now = utcnow()
    tokens = [
        {
            "token": token,
            "owner": owner_name or owner_email,
            "owner_email": owner_email,
            "state": _token_state(token, now),
        }
        for token, owner_name, owner_email in rows[:PAGE_SIZE]
    ]
    return {
        "nav": "settings" if scope.all_users else "account",
        "section": "tokens",
        "scope": scope,
        "tokens": tokens,
        "show_all": show_all,
        "next_before": rows[PAGE_SIZE - 1][0].id if len(rows) > PAGE_SIZE else None,
        "first_page": before is None,
        "created": None,
        "form": {"name": "", "expires_on": ""},
        "errors": {},
        "notice": None,
    }


def _token_state(token: ApiToken, now: datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def _tokens_page(
    request: Request, service: Service, user: WebUser, scope: TokenScope, show: str, before: int | None, revoked: int
) -> Response:
    context = _tokens_context(service, scope, user, show == "all", before)
    if revoked:
        context["notice"] = "The token is revoked: programs using it are refused from their next request."
    return render(request, scope.template, context, user=user)


def _create_token(
    request: Request, service: Service, user: WebUser, scope: TokenScope, name: str, expires_on: str
) -> Response:
    errors: dict[str, str] = {}
    expires_at: datetime | None = None
    if not name.strip():
        errors["name"] = "Give the token a name, e.g. the program that will use it."
    elif len(name.strip()) > MAX_NAME:
        errors["name"] = f"Use at most {MAX_NAME} characters."
    if expires_on.strip():
        try:
            # The start of the chosen day in UTC: a date without a time zone is read the same everywhere.
            expires_at = datetime.combine(date.fromisoformat(expires_on.strip()), time(0), tzinfo=UTC)
        except ValueError:
            errors["expires_on"] = "Enter a date such as 2030-01-31, or leave it empty."
        else:
            if expires_at <= utcnow():
                errors["expires_on"] = "Choose a day in the future."
    if errors:
        context = _tokens_context(service, scope, user, False, None)
        context.update(form={"name": name, "expires_on": expires_on}, errors=errors)
        return render(request, scope.template, context, user=user, status_code=422)
    with service.db.write() as session:
        secret = create_token(
            session, name.strip(), admin=user.is_admin, user_id=user.user_id, kind=TokenKind.API, expires_at=expires_at
        )
        made = session.scalars(
            select(ApiToken).where(ApiToken.token_sha256 == hashlib.sha256(secret.encode()).hexdigest())
        ).one()
        created = {"secret": secret, "name": made.name, "id": made.id}
    context = _tokens_context(service, scope, user, False, None)
    context["created"] = created
    return render(request, scope.template, context, user=user)


def _revoke_token(request: Request, service: Service, user: WebUser, scope: TokenScope, token_id: int) -> Response:
    try:
        with service.db.write() as session:
            # Everyone's tokens in Settings (administrators); only one's own under /account.
            service.users.revoke_token(session, token_id, owner_id=None if scope.all_users else user.user_id)
    except NotFound as error:
        return not_found(request, user, str(error))
    return RedirectResponse(f"{scope.base}?revoked=1", status_code=303)


@router.get("/settings/tokens")
def admin_tokens(
    request: Request,
    service: ServiceDep,
    user: AdminUserDep,
    show: str = "active",
    before: int | None = None,
    revoked: int = 0,
) -> Response:
    return _tokens_page(request, service, user, ADMIN_TOKENS, show, before, revoked)


@router.post("/settings/tokens")
def admin_create_token(
    request: Request,
    service: ServiceDep,
    user: AdminUserDep,
    name: Annotated[str, Form()] = "",
    expires_on: Annotated[str, Form()] = "",
) -> Response:
    return _create_token(request, service, user, ADMIN_TOKENS, name, expires_on)


@router.post("/settings/tokens/{token_id:int}/revoke")
def admin_revoke_token(request: Request, service: ServiceDep, user: AdminUserDep, token_id: int) -> Response:
    return _revoke_token(request, service, user, ADMIN_TOKENS, token_id)


@router.get("/account/tokens")
def own_tokens(
    request: Request,
    service: ServiceDep,
    user: UserDep,
    show: str = "active",
    before: int | None = None,
    revoked: int = 0,
) -> Response:
    return _tokens_page(request, service, user, OWN_TOKENS, show, before, revoked)


@router.post("/account/tokens")
def own_create_token(
    request: Request,
    service: ServiceDep,
    user: UserDep,
    name: Annotated[str, Form()] = "",
    expires_on: Annotated[str, Form()] = "",
) -> Response:
    return _create_token(request, service, user, OWN_TOKENS, name, expires_on)


@router.post("/account/tokens/{token_id:int}/revoke")
def own_revoke_token(request: Request, service: ServiceDep, user: UserDep, token_id: int) -> Response:
    return _revoke_token(request, service, user, OWN_TOKENS, token_id)
