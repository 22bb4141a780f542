"""Browser sessions and CSRF protection.

A session is a token of kind ``session`` in the same table as API tokens (``api.tokens``), so that
everything that ends a user's tokens (sign-out, disabling the user, revoking it) ends their browser
sessions too. The token travels in the ``postroom_session`` cookie: HTTP-only (no script reads it),
SameSite=Lax (sent on top-level navigation from a link in a mail, never on a cross-site form post) and
Secure whenever Postroom is reached over HTTPS (the request's scheme, or an ``https://`` public URL).

CSRF: every unsafe request (POST, PUT, PATCH, DELETE) of the web app must carry the value of the
``postroom_csrf`` cookie back, in the ``X-CSRF-Token`` header (htmx requests; the page's ``<body>``
says so in ``hx-headers``) or in the ``csrf_token`` form field (plain forms). Another site can make a
browser send the cookie but cannot read it or the page that holds it, so it cannot send the value (the
double-submit pattern); a request whose ``Origin`` names another site is refused as well.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request, Response
from starlette.datastructures import FormData

from postroom.api.tokens import create_token, usage_recorder, verify_token
from postroom.service import Service
from postroom.store.models import ApiToken, Role, TokenKind, utcnow

SESSION_COOKIE = "postroom_session"
CSRF_COOKIE = "postroom_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class WebUser:
    """The signed-in person behind a page request."""

    user_id: int
    email: str
    name: str
    role: Role
    token_id: int

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def display_name(self) -> str:
        return self.name or self.email


class LoginRequired(Exception):
    """No valid session: the page answers with a way to /login (and back to ``next_path`` after)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class Forbidden(Exception):
    """A signed-in user without the role a page needs."""


class CsrfRefused(Exception):
    """An unsafe request without the page's CSRF value (or from another site)."""


def is_secure(request: Request, service: Service) -> bool:
    return request.url.scheme == "https" or service.settings.public_url.startswith("https://")


def current_user(request: Request, service: Service) -> WebUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with service.db.read() as session:
        verified = verify_token(session, token)
    if verified is None:
        return None
    usage_recorder(service.db).used(verified)
    return WebUser(verified.user_id, verified.user_email, verified.user_name, verified.role, verified.id)


def start_session(request: Request, response: Response, service: Service, user_id: int) -> None:
    """Make a session token for ``user_id`` and hand it to the browser (and a fresh CSRF value)."""
    lifetime = timedelta(hours=service.settings.session_hours)
    agent = (request.headers.get("user-agent") or "browser")[:80]
    with service.db.write() as session:
        token = create_token(
            session, f"browser: {agent}", user_id=user_id, kind=TokenKind.SESSION, expires_at=utcnow() + lifetime
        )
    secure = is_secure(request, service)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )
    # A new CSRF value with every sign-in: one planted before it (session fixation of the value) is dropped.
    set_csrf_cookie(response, secrets.token_urlsafe(32), secure)


def end_session(request: Request, response: Response, service: Service, user: WebUser) -> None:
    with service.db.write() as session:
        row = session.get(ApiToken, user.token_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
    response.delete_cookie(SESSION_COOKIE, path="/")


def csrf_value(request: Request) -> str:
    """The CSRF value of this browser (made on its first page, see :func:`ensure_csrf_cookie`)."""
    value: str | None = getattr(request.state, "csrf", None) or request.cookies.get(CSRF_COOKIE)
    if not value:
        value = secrets.token_urlsafe(32)
    request.state.csrf = value
    return value


def ensure_csrf_cookie(request: Request, response: Response, service: Service) -> None:
    """Give the browser the CSRF value the page was rendered with, when it did not have it yet."""
    value = getattr(request.state, "csrf", None)
    if value and request.cookies.get(CSRF_COOKIE) != value:
        set_csrf_cookie(response, value, is_secure(request, service))


def set_csrf_cookie(response: Response, value: str, secure: bool) -> None:
    response.set_cookie(CSRF_COOKIE, value, httponly=True, secure=secure, samesite="strict", path="/")


def check_csrf(request: Request, form: FormData | None, public_url: str = "") -> None:
    """Refuse an unsafe request that does not carry this browser's CSRF value, or comes from another site."""
    if request.method not in UNSAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin and origin != "null":
        # This very address, or the public one (a proxy in front may pass another Host).
        allowed = {f"{request.url.scheme}://{request.headers.get('host', '')}", _origin_of(public_url)}
        if origin.rstrip("/") not in allowed:
            raise CsrfRefused(f"a request from {origin} is not accepted here")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER) or (str(form.get(CSRF_FIELD, "")) if form is not None else "")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise CsrfRefused("the form has expired; reload the page and try again")


def _origin_of(url: str) -> str:
    if not url:
        return ""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
