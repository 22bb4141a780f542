"""OAuth 2.0 sign-in for mail protocols: access tokens kept fresh, and XOAUTH2 authenticators.

A mailbox that signs in with OAuth holds a long-lived refresh token; the protocols want a short-lived
access token. :class:`TokenManager` hands out the current access token of one mailbox and refreshes
it (RFC 6749 §6) when there is none, when it expires within ``skew``, or when a server has just
refused it (``force=True``). Every worker of every process shares one token per mailbox through a
:class:`TokenStore` (``postroom.channels.oauth_tokens`` keeps it on the mailbox row): a refresh runs
under the store's lock and first reads the store again, because another worker may have refreshed
while this one waited. A refresh token that the provider rotated (Microsoft does, Google does not)
is stored with the access token, or the next refresh would present a retired one.

What the token endpoint answers becomes an error naming the mailbox and "OAuth2":

- ``invalid_grant`` (RFC 6749 §5.2: the grant was revoked or expired) → :class:`ReauthorizationRequired`:
  an admin must sign in again, retrying cannot help;
- 5xx, 429, timeouts and network failures → :class:`ConnectError` (temporary);
- any other refusal (``invalid_client``, ``unauthorized_client``, …) → :class:`AuthenticationError`;
- a success without a usable access token → :class:`ProtocolError`;
- a token URI that would carry the secrets in plain text (``http://`` to a host other than loopback) →
  :class:`TlsError`, before any request.

The authenticator factories put a manager into the protocols' sign-in seams: :func:`imap_xoauth2`
(``ImapSource(authenticate=...)``), :func:`smtp_xoauth2` (``send(authenticate=...)``) and
:func:`pop3_xoauth2`. Each signs in with SASL XOAUTH2 (Google's and Microsoft's bearer-token
mechanism) and, when the server refuses the token, forces one refresh and tries once more: a
provider may revoke an access token before it expires.

Tokens never reach a log or an error message: :class:`AccessToken` and :class:`OAuthClient` keep
them out of ``repr``, and errors carry the provider's error code and description only.
"""

from __future__ import annotations

import asyncio
import contextlib
import poplib
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import aiosmtplib
import httpx
import structlog
from imapclient.exceptions import IMAPClientAbortError, LoginError

from postroom.errors import (
    AuthenticationError,
    ConnectError,
    ProtocolError,
    ReauthorizationRequired,
    TlsError,
)
from postroom.sources.base import ImapAccount, xoauth2_string
from postroom.sources.pop3 import Pop3Account, Pop3Authenticator, Pop3Client, xoauth2_login
from postroom.tls import client_context, secret_url_problem

__all__ = [
    "DEFAULT_TOKEN_URI",
    "PROTOCOL",
    "AccessToken",
    "OAuthClient",
    "StoredTokens",
    "TokenManager",
    "TokenStore",
    "imap_xoauth2",
    "pop3_xoauth2",
    "smtp_xoauth2",
    "xoauth2_string",
]

log = structlog.get_logger(__name__)

PROTOCOL: Final = "OAuth2"
DEFAULT_TOKEN_URI: Final = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
# Seconds a token request may take. The store's lock is held meanwhile (on SQLite: the write lock).
DEFAULT_TIMEOUT: Final = 15.0
# RFC 6749 §5.1 only recommends expires_in; without it the token is taken to last an hour (what
# Google and Microsoft issue). Should the guess be long, the server's refusal forces a refresh.
_ASSUMED_LIFETIME: Final = 3600
# Errors that mean the grant itself is gone: RFC 6749 §5.2 invalid_grant, and Microsoft's
# interaction_required (OpenID Connect Core §3.1.2.6), answered when the user must sign in again.
_REAUTHORIZE: Final = frozenset({"invalid_grant", "interaction_required"})
_DESCRIPTION_LIMIT: Final = 200
# RFC 5034 §4: an AUTH command with its initial response must fit in 255 octets.


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """The application registered with the provider, and where its token endpoint is."""

    client_id: str
    client_secret: str = field(repr=False)
    token_uri: str = DEFAULT_TOKEN_URI


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token and the moment it stops being valid (aware UTC)."""

    token: str = field(repr=False)
    expires_at: datetime

    def valid_for(self, seconds: float, now: datetime | None = None) -> bool:
        """Whether the token is still valid ``seconds`` from ``now``."""
        return self.expires_at - (now or datetime.now(UTC)) > timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class StoredTokens:
    """What a :class:`TokenStore` holds for one mailbox: the cached access token (if any) and the grant."""

    access: AccessToken | None
    refresh_token: str = field(repr=False)


class TokenStore(Protocol):
    """Where one mailbox's tokens live, shared by every worker that signs in to it.

    :meth:`load` and :meth:`save` called inside :meth:`refresh_lock`, from the thread that holds it,
    read and write under that lock. ``refresh_lock`` raises :class:`TimeoutError` when the lock is not
    granted in time; what the block raises ends the lock without saving anything.
    """

    def load(self) -> StoredTokens: ...

    def save(self, access: AccessToken, rotated_refresh_token: str | None) -> None:
        """Store a new access token, and the new refresh token when the provider rotated it."""
        ...

    def refresh_lock(self) -> AbstractContextManager[None]:
        """Held by at most one refresh of this mailbox at a time, across threads and processes."""
        ...


class TokenManager:
    """The current access token of one mailbox, refreshed when needed; safe to share between threads.

    ``address`` names the mailbox in errors. ``http`` is the client for the token endpoint (one is
    made, and closed by :meth:`close`, when not given); ``skew`` is how many seconds before its
    expiry a token counts as expired, so that it does not lapse between the refresh and its use.
    """

    def __init__(
        self,
        address: str,
        client: OAuthClient,
        store: TokenStore,
        *,
        http: httpx.Client | None = None,
        skew: float = 60.0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.address = address
        self.client = client
        self.store = store
        self.skew = skew
        self._timeout = timeout
        self._http = http
        self._owns_http = http is None
        self._lock = threading.Lock()
        # The token this manager handed out last: a forced refresh replaces it, or takes the one
        # another worker stored after it.
        self._current: AccessToken | None = None

    def access_token(self, force: bool = False) -> str:
        """A valid access token; ``force`` after a server refused the last one handed out."""
        with self._lock:
            handed = self._current
        if not force and handed is not None and handed.valid_for(self.skew):
            return handed.token
        if not force:
            stored = self.store.load()
            if stored.access is not None and stored.access.valid_for(self.skew):
                return self._keep(stored.access)
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(self.store.refresh_lock())
            except TimeoutError as error:
                # Only the wait for the lock is meant here, not what happens while it is held.
                raise ConnectError(
                    PROTOCOL, self.address, "another worker's token refresh did not finish in time"
                ) from error
            stored = self.store.load()
            current = stored.access
            if current is not None and current.valid_for(self.skew):
                refused = handed.token if force and handed is not None else None
                if current.token != refused:
                    # Another worker refreshed while this one waited for the lock (or, without force,
                    # between the read above and the lock).
                    return self._keep(current)
            access, rotated = self._refresh(stored.refresh_token)
            self.store.save(access, rotated)
        return self._keep(access)

    def close(self) -> None:
        """Close the HTTP client this manager made (a client passed in stays open)."""
        if not self._owns_http:
            return
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()

    def _keep(self, access: AccessToken) -> str:
        with self._lock:
            self._current = access
        return access.token

    def _http_client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                # The same trust store as IMAP and SMTP (postroom.tls), so "a trusted CA" means one thing.
                self._http = httpx.Client(timeout=self._timeout, verify=client_context(True))
            return self._http

    def _refresh(self, refresh_token: str) -> tuple[AccessToken, str | None]:
        """POST the refresh grant (RFC 6749 §6); the new access token and the rotated refresh token."""
        if not refresh_token:
            raise ReauthorizationRequired(PROTOCOL, self.address, "no refresh token is stored; sign in again")
        endpoint = _endpoint(self.client.token_uri)
        problem = secret_url_problem(self.client.token_uri)
        if problem is not None:
            # RFC 6749 §2.3.1 and §3.2: the client secret and the grant go to the token endpoint over TLS only.
            raise TlsError(PROTOCOL, self.address, f"the token request was not sent: oauth_token_uri {problem}")
        # RFC 6749 §2.3.1 allows the client's credentials in the form body, which Google and
        # Microsoft both accept; the body is form-encoded as §6 requires.
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self.client.client_id,
            "client_secret": self.client.client_secret,
        }
        requested_at = datetime.now(UTC)
        try:
            response = self._http_client().post(
                self.client.token_uri,
                data=form,
                headers={"Accept": "application/json"},
                timeout=self._timeout,
            )
        except httpx.TimeoutException as error:
            raise ConnectError(PROTOCOL, self.address, f"token endpoint {endpoint} timed out") from error
        except httpx.HTTPError as error:
            raise ConnectError(
                PROTOCOL, self.address, f"token endpoint {endpoint} unreachable: {type(error).__name__}: {error}"
            ) from error
        body = _json_object(response)
        if response.status_code != httpx.codes.OK:
            raise self._refusal(endpoint, response.status_code, body)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise ProtocolError(PROTOCOL, self.address, f"token endpoint {endpoint} answered without an access token")
        expires_in = body.get("expires_in")
        lifetime = expires_in if isinstance(expires_in, int | float) and expires_in > 0 else _ASSUMED_LIFETIME
        # Counted from the request, not the answer: the token's clock started no later than that.
        access = AccessToken(token, requested_at + timedelta(seconds=float(lifetime)))
        rotated = body.get("refresh_token")
        new_refresh = rotated if isinstance(rotated, str) and rotated and rotated != refresh_token else None
        log.info(
            "oauth.refreshed",
            address=self.address,
            endpoint=endpoint,
            expires_in=lifetime,
            refresh_token_rotated=new_refresh is not None,
        )
        return access, new_refresh

    def _refusal(self, endpoint: str, status: int, body: dict[str, Any]) -> Exception:
        code = body.get("error")
        error = code if isinstance(code, str) and code else f"HTTP {status}"
        description = body.get("error_description")
        detail = f"token endpoint {endpoint} answered {error}"
        if isinstance(description, str) and description:
            detail += f": {description[:_DESCRIPTION_LIMIT]}"
        if error in _REAUTHORIZE:
            return ReauthorizationRequired(PROTOCOL, self.address, f"{detail} (the refresh token is no longer valid)")
        if status >= 500 or status == httpx.codes.TOO_MANY_REQUESTS:
            # The provider is down or asks us to slow down (RFC 6585 §4): later may work.
            return ConnectError(PROTOCOL, self.address, detail)
        return AuthenticationError(PROTOCOL, self.address, detail)


# ── the protocols' sign-in seams ──────────────────────────────────────────────────────────────


def imap_xoauth2(manager: TokenManager) -> Callable[[Any, ImapAccount], None]:
    """An ``ImapAuthenticator``: AUTHENTICATE XOAUTH2 with the mailbox's access token."""

    def authenticate(client: Any, account: ImapAccount) -> None:
        if not client.has_capability("AUTH=XOAUTH2"):
            raise AuthenticationError("imap", account.address, "the server does not offer AUTH=XOAUTH2")
        try:
            client.oauth2_login(account.login, manager.access_token())
        except LoginError as error:
            if isinstance(error.__context__, IMAPClientAbortError):
                # IMAPClient reports a connection lost during AUTHENTICATE as a LoginError; it is no
                # refusal, and the session turns the abort into a ConnectError.
                raise error.__context__ from None
            # The provider may have revoked the token before its expiry: one fresh token, one more try.
            client.oauth2_login(account.login, manager.access_token(force=True))

    return authenticate


class _SmtpAccount(Protocol):
    @property
    def address(self) -> str: ...

    @property
    def login(self) -> str: ...


def smtp_xoauth2(manager: TokenManager) -> Callable[[aiosmtplib.SMTP, _SmtpAccount], Awaitable[None]]:
    """An ``SmtpAuthenticator``: AUTH XOAUTH2 with the mailbox's access token.

    The token may need a refresh over HTTP, which blocks; it runs in a thread so that the event
    loop of the sending worker keeps serving its other connections meanwhile.
    """

    async def authenticate(client: aiosmtplib.SMTP, account: _SmtpAccount) -> None:
        if client.is_ehlo_or_helo_needed:
            # The AUTH mechanisms are in the EHLO answer (RFC 4954 §3), which STARTTLS reset.
            await client.ehlo()
        if "xoauth2" not in client.server_auth_methods:
            raise AuthenticationError("smtp", account.address, "the server does not offer AUTH XOAUTH2")
        token = await asyncio.to_thread(manager.access_token)
        try:
            await client.auth_xoauth2(account.login, token)
        except aiosmtplib.SMTPAuthenticationError:
            # RFC 4954 §4: after a failed AUTH the client may try again in the same session.
            token = await asyncio.to_thread(manager.access_token, True)
            await client.auth_xoauth2(account.login, token)

    return authenticate


def pop3_xoauth2(manager: TokenManager) -> Pop3Authenticator:
    """A ``Pop3Authenticator``: AUTH XOAUTH2 (RFC 5034) with the mailbox's access token.

    A refused token is refreshed once and tried again on the same connection, which stays in the
    AUTHORIZATION state after a failed AUTH (RFC 1939 §4). Raises ``poplib.error_proto`` with the
    server's ``-ERR`` line when the token is refused twice.
    """
    first = xoauth2_login(manager.access_token)
    again = xoauth2_login(lambda: manager.access_token(force=True))

    def authenticate(client: Pop3Client, account: Pop3Account) -> None:
        try:
            first(client, account)
        except poplib.error_proto:
            again(client, account)

    return authenticate


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _endpoint(uri: str) -> str:
    """The token endpoint as it may appear in messages: scheme, host and path, no credentials or query."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
