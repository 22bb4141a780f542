"""A local OAuth 2.0 provider for tests: a token endpoint and a token introspection endpoint.

:class:`OAuthTestServer` stands in for Google's or Microsoft's token service, which tests cannot
reach. It speaks the documented protocol on a free loopback port (a threaded ``http.server``):

- ``POST /token`` — the refresh grant of RFC 6749 §6: a form-encoded body with ``grant_type=
  refresh_token``, the ``refresh_token`` and the client's credentials (in the body, RFC 6749 §2.3.1,
  or as HTTP Basic). It answers with a fresh random access token and ``expires_in`` (§5.1), or with
  an error object (§5.2): ``invalid_client`` (401), ``invalid_grant`` (400) for an unknown or revoked
  refresh token, ``unsupported_grant_type``. With ``rotate_refresh_tokens`` every refresh also
  returns a new refresh token and retires the old one, as Microsoft's identity platform does.
- ``POST /introspect`` — RFC 7662 token introspection with ``token=<access token>``: ``{"active":
  true, "username": ...}`` for a live token, ``{"active": false}`` otherwise. Dovecot's oauth2 passdb
  calls it (``introspection_mode = post``) and a test's SMTP server can call :meth:`introspect`.

Tests script it: :meth:`grant` issues a refresh token for a user, :meth:`revoke_access_tokens`
makes every access token inactive (as when a provider revokes them early), :meth:`revoke_grant`
makes a refresh token answer ``invalid_grant``, :meth:`fail_next` answers the next refreshes with a
server error, and ``refresh_delay`` slows refreshes down so that two workers overlap.
:attr:`refreshes` counts successful refreshes, and :meth:`issued_tokens` lists every token ever handed out
(so that a test can prove none reached a log). Every token is random; the server keeps nothing on disk.

Two more peers for the sign-in side: :class:`XOAuth2SmtpHandler`, the handler of a
:class:`~postroom.testing.smtp.SmtpTestServer` that accepts AUTH XOAUTH2 for the tokens this server
calls active, and :class:`MemoryTokenStore`, a :class:`~postroom.sources.oauth.TokenStore` in memory.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

from postroom.sources.oauth import AccessToken, StoredTokens
from postroom.testing.smtp import AuthAttempt, RecordingHandler

__all__ = ["MemoryTokenStore", "OAuthTestServer", "XOAuth2SmtpHandler"]

_FORM = "application/x-www-form-urlencoded"
# A client that keeps its connection open between requests (Dovecot's HTTP client does) must not
# pin a handler thread for ever once the server stops.
_IDLE_CONNECTION_TIMEOUT = 5.0


@dataclass(slots=True)
class _Grant:
    user: str
    refresh_token: str


@dataclass(slots=True)
class _Access:
    user: str
    expires_at: float  # time.time()


class OAuthTestServer:
    """An OAuth 2.0 token and introspection endpoint on 127.0.0.1; start()/stop() or a context manager."""

    def __init__(
        self,
        *,
        client_id: str = "postroom-test-client",
        client_secret: str | None = None,
        expires_in: int = 3600,
        rotate_refresh_tokens: bool = False,
        token_bytes: int = 24,
        host: str = "127.0.0.1",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(16)
        self.expires_in = expires_in
        self.rotate_refresh_tokens = rotate_refresh_tokens
        # Random bytes per access token; Microsoft's tokens (JWTs) run to well over a kilobyte.
        self.token_bytes = token_bytes
        # Seconds each successful refresh waits before answering, so that tests can overlap two.
        self.refresh_delay = 0.0
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._grants: dict[str, _Grant] = {}  # by refresh token
        self._access: dict[str, _Access] = {}  # by access token
        self._failures: deque[int] = deque()
        self._refreshes: dict[str, int] = {}
        self._introspections = 0
        # Every token ever handed out, revoked or rotated ones too: what a test checks logs against.
        self._issued: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ── lifecycle ──────────────────────────────────────────────────────────────────────────────

    def start(self) -> OAuthTestServer:
        server = ThreadingHTTPServer((self.host, 0), _handler_for(self))
        # Handler threads may sit on a kept-alive connection; stop() must not wait for them.
        server.block_on_close = False
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="oauth-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> OAuthTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def introspection_url(self) -> str:
        return f"{self.base_url}/introspect"

    # ── scripting (test thread) ────────────────────────────────────────────────────────────────

    def grant(self, user: str) -> str:
        """A new refresh token for ``user``, as if they had just consented."""
        token = f"rt-{secrets.token_urlsafe(24)}"
        with self._lock:
            self._grants[token] = _Grant(user, token)
            self._issued.append(token)
        return token

    def issue_access_token(self, user: str, expires_in: int | None = None) -> str:
        """An access token for ``user`` without a refresh (what a provider handed out earlier)."""
        token = f"at-{secrets.token_urlsafe(self.token_bytes)}"
        lifetime = self.expires_in if expires_in is None else expires_in
        with self._lock:
            self._access[token] = _Access(user, time.time() + lifetime)
            self._issued.append(token)
        return token

    def revoke_grant(self, refresh_token: str) -> None:
        """The user withdrew consent: the refresh token now answers ``invalid_grant``."""
        with self._lock:
            self._grants.pop(refresh_token, None)

    def revoke_access_tokens(self, user: str | None = None) -> None:
        """Every access token (of ``user``, or of everyone) stops being active before it expires."""
        with self._lock:
            for token in [t for t, a in self._access.items() if user is None or a.user == user]:
                del self._access[token]

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next ``count`` token requests with ``status`` (a server error by default)."""
        with self._lock:
            self._failures.extend([status] * count)

    def refresh_tokens(self, user: str) -> list[str]:
        """The refresh tokens of ``user`` that still work."""
        with self._lock:
            return [g.refresh_token for g in self._grants.values() if g.user == user]

    def issued_tokens(self) -> list[str]:
        """Every refresh and access token this server ever handed out, still valid or not."""
        with self._lock:
            return list(self._issued)

    @property
    def refreshes(self) -> int:
        """How many refreshes succeeded, over all users."""
        with self._lock:
            return sum(self._refreshes.values())

    def refreshes_for(self, user: str) -> int:
        with self._lock:
            return self._refreshes.get(user, 0)

    @property
    def introspections(self) -> int:
        with self._lock:
            return self._introspections

    def introspect(self, token: str) -> str | None:
        """The user an access token belongs to when it is active, else None (RFC 7662 §2.2)."""
        with self._lock:
            self._introspections += 1
            access = self._access.get(token)
            if access is None or access.expires_at <= time.time():
                return None
            return access.user

    # ── the endpoints (server threads) ─────────────────────────────────────────────────────────

    def _token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict[str, Any]]:
        """RFC 6749 §6 refresh grant; returns the status and the JSON body."""
        with self._lock:
            if self._failures:
                status = self._failures.popleft()
                return status, {"error": "server_error", "error_description": "scripted failure"}
        client_id, client_secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if client_id != self.client_id or client_secret != self.client_secret:
            # RFC 6749 §5.2: invalid_client may be answered with 401.
            return HTTPStatus.UNAUTHORIZED, {"error": "invalid_client", "error_description": "unknown client"}
        if form.get("grant_type") != "refresh_token":
            return HTTPStatus.BAD_REQUEST, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._grants.get(form.get("refresh_token", ""))
        if grant is None:
            return HTTPStatus.BAD_REQUEST, {
                "error": "invalid_grant",
                "error_description": "Token has been expired or revoked.",
            }
        if self.refresh_delay:
            time.sleep(self.refresh_delay)
        access = self.issue_access_token(grant.user)
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in}
        with self._lock:
            if self.rotate_refresh_tokens and grant.refresh_token in self._grants:
                # The old refresh token is retired with the answer that carries its successor.
                del self._grants[grant.refresh_token]
                rotated = f"rt-{secrets.token_urlsafe(24)}"
                self._grants[rotated] = _Grant(grant.user, rotated)
                self._issued.append(rotated)
                body["refresh_token"] = rotated
            self._refreshes[grant.user] = self._refreshes.get(grant.user, 0) + 1
        return HTTPStatus.OK, body

    def _introspection(self, form: dict[str, str]) -> dict[str, Any]:
        user = self.introspect(form.get("token", ""))
        if user is None:
            return {"active": False}
        return {"active": True, "username": user, "client_id": self.client_id, "token_type": "Bearer"}


def _handler_for(owner: OAuthTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 keeps connections alive, as Dovecot's HTTP client expects; every answer has a length.
        protocol_version = "HTTP/1.1"
        timeout = _IDLE_CONNECTION_TIMEOUT

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if content_type != _FORM:
                self._answer(HTTPStatus.BAD_REQUEST, {"error": "invalid_request", "error_description": "not a form"})
                return
            form = {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}
            if self.path == "/token":
                status, answer = owner._token(form, _basic_credentials(self.headers.get("Authorization")))
                self._answer(status, answer)
            elif self.path == "/introspect":
                self._answer(HTTPStatus.OK, owner._introspection(form))
            else:
                self._answer(HTTPStatus.NOT_FOUND, {"error": "not_found"})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            # RFC 6749 §5.1: responses carrying tokens must not be cached.
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            # Requests carry tokens; the test output needs none of them.
            return

    return Handler


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """Client credentials from HTTP Basic (RFC 6749 §2.3.1: form-urlencoded, then base64)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, client_secret = decoded.partition(":")
    return unquote(client_id), unquote(client_secret)


class XOAuth2SmtpHandler(RecordingHandler):
    """An SMTP handler that also offers AUTH XOAUTH2, checking each token with ``provider``.

    A refused token is answered as Gmail does: a ``334`` challenge holding the error as base64 JSON,
    then, after the client's empty line, ``535 5.7.8``. Sign-ins are recorded in ``sign_ins``.
    Use it with ``SmtpTestServer(handler=..., auth_required=True)``.
    """

    def __init__(self, provider: OAuthTestServer) -> None:
        super().__init__()
        self.provider = provider

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) > 1:
            blob: Any = args[1].encode()
        else:
            blob = await server.challenge_auth("", encode_to_b64=False)
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        try:
            text = base64.b64decode(blob, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot decode the response")
        fields = dict(part.partition("=")[::2] for part in text.split("\x01") if part)
        login = fields.get("user", "")
        scheme, _, token = fields.get("auth", "").partition(" ")
        user = self.provider.introspect(token) if scheme.lower() == "bearer" else None
        success = user is not None and user == login
        with self._changed:
            self.sign_ins.append(AuthAttempt("XOAUTH2", login, success))
        if not success:
            error = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
            answer = await server.challenge_auth(json.dumps(error))
            if answer is MISSING:
                return AuthResult(success=False, handled=True)
            return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted")
        # Recorded like a password sign-in, so that ReceivedMessage.login names who sent.
        return AuthResult(success=True, auth_data=LoginPassword(login.encode(), b""))


class MemoryTokenStore:
    """A :class:`~postroom.sources.oauth.TokenStore` in memory, for one process; counts its saves."""

    def __init__(self, refresh_token: str, access: AccessToken | None = None, *, lock_wait: float = 10.0) -> None:
        self.refresh_token = refresh_token
        self.access = access
        self.saves = 0
        self.lock_wait = lock_wait
        self._refresh = threading.Lock()
        self._data = threading.Lock()

    def load(self) -> StoredTokens:
        with self._data:
            return StoredTokens(self.access, self.refresh_token)

    def save(self, access: AccessToken, rotated_refresh_token: str | None) -> None:
        with self._data:
            self.access = access
            if rotated_refresh_token:
                self.refresh_token = rotated_refresh_token
            self.saves += 1

    @contextmanager
    def refresh_lock(self) -> Iterator[None]:
        if not self._refresh.acquire(timeout=self.lock_wait):
            raise TimeoutError("the refresh lock was not granted")
        try:
            yield
        finally:
            self._refresh.release()
