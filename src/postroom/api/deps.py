"""Request dependencies: the service of this process, and bearer-token authentication."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from postroom.api.tokens import usage_recorder, verify_token
from postroom.service import Service

_bearer = HTTPBearer(auto_error=False, description="An API token from `postroom token create`.")


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    service = get_service(request)
    # A read: every request passes here, and none may queue for SQLite's write lock (see tokens.py).
    with service.db.read() as session:
        token = verify_token(session, credentials.credentials)
    if token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token", headers={"WWW-Authenticate": "Bearer"})
    usage_recorder(service.db).used(token)
    return token.name


ServiceDep = Annotated[Service, Depends(get_service)]
TokenDep = Annotated[str, Depends(require_token)]
