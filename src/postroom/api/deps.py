"""Request dependencies: the service of this process, and who is asking (bearer token → user and role).

Every route under ``/api/v1`` (but the inbound webhooks, which providers sign, and the sign-in routes)
depends on :func:`current_principal`; routes for administrators only depend on :func:`require_admin`,
which answers 403 naming the role needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from postroom.api.tokens import usage_recorder, verify_token
from postroom.service import Service
from postroom.store.models import Role

_bearer = HTTPBearer(
    auto_error=False,
    description="An API token (`postroom token create`, or made by a user), or an access token from "
    "`POST /api/v1/auth/token`.",
)


ADMIN_NEEDED = (
    "this needs the admin role: agents work conversations, but cannot read or change connections, "
    "users, tokens or settings"
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user behind a request, and the token it came with."""

    user_id: int
    email: str
    name: str
    role: Role
    token_id: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    service = get_service(request)
    # A read: every request passes here, and none may queue for SQLite's write lock (see tokens.py).
    with service.db.read() as session:
        token = verify_token(session, credentials.credentials)
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid, expired or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    usage_recorder(service.db).used(token)
    return Principal(token.user_id, token.user_email, token.user_name, token.role, token.id)


def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, ADMIN_NEEDED)
    return principal


# Kept for routers that only need a signed-in user of any role.
require_token = current_principal

ServiceDep = Annotated[Service, Depends(get_service)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]
AdminDep = Annotated[Principal, Depends(require_admin)]
TokenDep = PrincipalDep
