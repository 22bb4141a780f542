"""/api/v1/auth/token: sign in with an address and password (OAuth 2.0 password flow, RFC 6749 §4.3).

FastAPI's convention (``OAuth2PasswordRequestForm``): a form with ``username`` (the email address) and
``password``; the answer is ``{"access_token": …, "token_type": "bearer"}``. The token is of kind
``access`` and expires after ``POSTROOM_ACCESS_TOKEN_HOURS``. No bearer token is needed here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm

from postroom.api.deps import ServiceDep
from postroom.api.schemas.people import AccessTokenOut
from postroom.api.tokens import create_token
from postroom.errors import AccessError, SignInThrottled
from postroom.helpdesk.users import UserService
from postroom.store.models import TokenKind, utcnow

router = APIRouter(tags=["auth"])

# One per process: the hasher is stateless, and the dummy hash for unknown addresses is made once.
users = UserService()


@contextmanager
def access_errors() -> Iterator[None]:
    """Answer an :class:`AccessError` with its own status (401, 409, 410, 429 …) and message."""
    try:
        yield
    except AccessError as error:
        headers: dict[str, str] = {}
        if isinstance(error, SignInThrottled):
            # RFC 9110 §10.2.3 (Retry-After, delay in seconds) with 429 (RFC 6585 §4).
            headers["Retry-After"] = str(error.retry_after)
        elif error.status_code == 401:
            headers["WWW-Authenticate"] = "Bearer"
        raise HTTPException(error.status_code, str(error), headers=headers or None) from None


@router.post("/auth/token", response_model=AccessTokenOut)
def sign_in(
    request: Request, service: ServiceDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> AccessTokenOut:
    """Exchange an email address and password for an access token. Failed attempts are counted per
    account and per client address; too many within 15 minutes lock the sign-in for 15 minutes (429 with
    Retry-After)."""
    client_ip = request.client.host if request.client else "unknown"
    with access_errors():
        signed_in = users.authenticate(service.db, form.username, form.password, client_ip)
    lifetime = timedelta(hours=service.settings.access_token_hours)
    with service.db.write() as session:
        token = create_token(
            session,
            "password sign-in",
            user_id=signed_in.user_id,
            kind=TokenKind.ACCESS,
            expires_at=utcnow() + lifetime,
        )
    return AccessTokenOut(access_token=token, expires_in=int(lifetime.total_seconds()))
