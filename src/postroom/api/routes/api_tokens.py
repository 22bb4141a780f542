"""/api/v1/tokens: a user's own API tokens — list (never the secret), create (shown once), revoke.

A revoked token stops working with the next request: every request reads the token's row
(``api/tokens.verify_token``). Administrators may revoke anyone's token, and list anyone's at
``/users/{id}/tokens``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from sqlalchemy import select

from postroom.api.deps import ADMIN_NEEDED, PrincipalDep, ServiceDep
from postroom.api.pagination import Order, Page, PageRequest, keyset_page, link_next, page_request
from postroom.api.routes.auth import users
from postroom.api.schemas.people import TokenCreate, TokenCreated, TokenOut
from postroom.api.tokens import create_token
from postroom.errors import InvalidSetting, NotFound
from postroom.store.models import ApiToken, TokenKind, utcnow

router = APIRouter(tags=["tokens"])


@router.get("/tokens", response_model=Page[TokenOut])
def list_tokens(
    principal: PrincipalDep,
    service: ServiceDep,
    page: Annotated[PageRequest, Depends(page_request)],
    request: Request,
    response: Response,
) -> Page[TokenOut]:
    """Your own tokens, revoked and expired ones too."""
    with service.db.read() as session:
        query = users.tokens_query(principal.user_id)
        rows, next_cursor = keyset_page(session, query, [Order(ApiToken.id)], page)
        items = [TokenOut.model_validate(t, from_attributes=True) for t in rows]
    link_next(request, response, next_cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_api_token(body: TokenCreate, principal: PrincipalDep, service: ServiceDep) -> TokenCreated:
    """Make an API token of your own, with your role; the answer is the only time its secret is shown."""
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise InvalidSetting("expires_at", "needs a time zone, e.g. 2030-01-01T00:00:00Z")
    if body.expires_at is not None and body.expires_at <= utcnow():
        raise InvalidSetting("expires_at", "is in the past")
    with service.db.write() as session:
        secret = create_token(
            session,
            body.name,
            admin=principal.is_admin,
            user_id=principal.user_id,
            kind=TokenKind.API,
            expires_at=body.expires_at,
        )
        made = session.scalars(
            select(ApiToken).where(ApiToken.token_sha256 == hashlib.sha256(secret.encode()).hexdigest())
        ).one()
        return TokenCreated(**TokenOut.model_validate(made, from_attributes=True).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: int, principal: PrincipalDep, service: ServiceDep) -> Response:
    """Revoke one of your tokens (administrators: anyone's). It stops working at once."""
    with service.db.write() as session:
        token = session.get(ApiToken, token_id)
        if token is None:
            raise NotFound(f"token {token_id} not found")
        if token.user_id != principal.user_id and not principal.is_admin:
            raise HTTPException(status.HTTP_403_FORBIDDEN, ADMIN_NEEDED)
        users.revoke_token(session, token_id, owner_id=None)
    return Response(status_code=204)
