"""/api/v1/users: the people who work here (administrators), and /users/me (every signed-in user)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from postroom.api.deps import AdminDep, PrincipalDep, ServiceDep
from postroom.api.pagination import Order, Page, PageRequest, keyset_page, link_next, page_request
from postroom.api.routes.auth import users
from postroom.api.schemas.people import DisableOut, SelfUpdate, TokenOut, UserCreate, UserOut, UserUpdate
from postroom.errors import Conflict
from postroom.helpdesk.users import KEEP
from postroom.store.models import ApiToken, User

router = APIRouter(tags=["users"])

PageDep = Annotated[PageRequest, Depends(page_request)]


def user_view(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        enabled=user.enabled,
        availability=user.availability,
        max_open=user.max_open,
        has_password=bool(user.password_hash),
        created_at=user.created_at,
        disabled_at=user.disabled_at,
        last_sign_in_at=user.last_sign_in_at,
    )


# /users/me before /users/{user_id}: the first route that matches answers.
@router.get("/users/me", response_model=UserOut)
def get_me(principal: PrincipalDep, service: ServiceDep) -> UserOut:
    with service.db.read() as session:
        return user_view(users.get(session, principal.user_id))


@router.patch("/users/me", response_model=UserOut)
def update_me(body: SelfUpdate, principal: PrincipalDep, service: ServiceDep) -> UserOut:
    """Change your own name, availability or password; the role is an administrator's to change."""
    with service.db.write() as session:
        user = users.update(
            session, principal.user_id, name=body.name, availability=body.availability, password=body.password
        )
        return user_view(user)


@router.get("/users", response_model=Page[UserOut])
def list_users(
    _admin: AdminDep, service: ServiceDep, page: PageDep, request: Request, response: Response
) -> Page[UserOut]:
    with service.db.read() as session:
        rows, next_cursor = keyset_page(session, users.list_query(), [Order(User.id)], page)
        items = [user_view(u) for u in rows]
    link_next(request, response, next_cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserCreate, _admin: AdminDep, service: ServiceDep) -> UserOut:
    with service.db.write() as session:
        user = users.create(session, body.email, name=body.name, role=body.role, password=body.password)
        users.update(session, user.id, availability=body.availability, max_open=body.max_open)
        return user_view(user)


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: int, _admin: AdminDep, service: ServiceDep) -> UserOut:
    with service.db.read() as session:
        return user_view(users.get(session, user_id))


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(user_id: int, body: UserUpdate, admin: AdminDep, service: ServiceDep) -> UserOut:
    """Change what the body sends; ``max_open: null`` removes the cap."""
    if user_id == admin.user_id and body.role is not None and body.role is not admin.role:
        raise Conflict("you cannot change your own role: another administrator must")
    with service.db.write() as session:
        user = users.update(
            session,
            user_id,
            name=body.name,
            role=body.role,
            availability=body.availability,
            max_open=body.max_open if "max_open" in body.model_fields_set else KEEP,
            password=body.password,
        )
        return user_view(user)


@router.post("/users/{user_id}/disable", response_model=DisableOut)
def disable_user(user_id: int, admin: AdminDep, service: ServiceDep) -> DisableOut:
    """Disable a user: their unresolved conversations go back to the team queue and every token of
    theirs stops working at once."""
    if user_id == admin.user_id:
        raise Conflict("you cannot disable yourself: another administrator must")
    with service.db.write() as session:
        report = users.disable(session, user_id, actor_id=admin.user_id)
        return DisableOut(
            user=user_view(report.user),
            unassigned_conversations=report.unassigned,
            revoked_tokens=report.revoked_tokens,
        )


@router.post("/users/{user_id}/enable", response_model=UserOut)
def enable_user(user_id: int, _admin: AdminDep, service: ServiceDep) -> UserOut:
    with service.db.write() as session:
        return user_view(users.enable(session, user_id))


@router.get("/users/{user_id}/tokens", response_model=Page[TokenOut])
def list_user_tokens(
    user_id: int, _admin: AdminDep, service: ServiceDep, page: PageDep, request: Request, response: Response
) -> Page[TokenOut]:
    """Any user's tokens (administrators); never the secrets."""
    with service.db.read() as session:
        users.get(session, user_id)
        rows, next_cursor = keyset_page(session, users.tokens_query(user_id), [Order(ApiToken.id)], page)
        items = [TokenOut.model_validate(t, from_attributes=True) for t in rows]
    link_next(request, response, next_cursor)
    return Page(items=items, next_cursor=next_cursor)
