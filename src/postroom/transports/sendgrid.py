"""Sending one composed message through SendGrid's v3 Web API (``POST /v3/mail/send``).

The outbox stores every reply as final MIME bytes, so that SMTP sends exactly what was composed. SendGrid's
API takes JSON instead: :func:`mail_request` cuts our MIME apart again (with :mod:`postroom.mail.mime`, the
same cutter the pipeline reads with) into the documented fields — personalizations, ``from``, ``reply_to``,
``subject``, ``content`` (text/plain first, then text/html, as the API demands), ``attachments`` and
``headers``. Message-ID, In-Reply-To and References travel as custom headers, which SendGrid keeps, so that
the customer's answer threads back onto the conversation exactly as after an SMTP send.

The outcome is a value or an error with its data, as for SMTP:

- 202 Accepted → a :class:`~postroom.transports.base.SendResult` whose reply keeps SendGrid's
  ``X-Message-Id`` (the provider's id, which its event webhooks quote);
- 401 (the key is wrong, revoked, or the account out of credits) and 403 for a key that may not send
  (``access forbidden``: no ``mail.send`` scope) → :class:`AuthenticationError`, as a refused SMTP sign-in:
  the fault is the connection's, not the message's, so the outbox keeps the message queued and retries
  with backoff while an admin fixes the key;
- 403 about the sender (``The from address does not match a verified Sender Identity``, which SendGrid ties
  to the ``from`` field), 400, 413 and any other 4xx but 408 and 429 → :class:`PermanentDeliveryError`
  carrying the API's ``errors[].message`` texts: this message, as it is, would be refused again. An
  unverified sender fails the message with SendGrid's words; the agent resends once the identity is verified;
- 408, 429, 5xx and network failures → :class:`SendgridTemporaryError` (a :class:`TemporaryDeliveryError`)
  with ``retry_after`` when the API said how long to wait.

:func:`check` is the sign-in check: ``GET /v3/scopes`` answers with the scopes of the API key; a refused key
is an :class:`AuthenticationError`, and a key without ``mail.send`` cannot send at all, so it is one too.

Both refuse, with a :class:`TlsError` and before any request, an API URL that would carry the key in plain
text: ``http://`` to a host other than loopback (:func:`postroom.tls.secret_url_problem`).
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx

from postroom.errors import (
    AuthenticationError,
    ConnectError,
    PermanentDeliveryError,
    ProtocolError,
    TemporaryDeliveryError,
    TlsError,
)
from postroom.mail.addresses import email_key, normalize_email, parse_address_list
from postroom.mail.attachments import content_id, disposition, raw_filename
from postroom.mail.bodies import decode_text
from postroom.mail.mime import Part, parse_tree
from postroom.mail.model import Address
from postroom.tls import client_context, network_error, secret_url_problem
from postroom.transports.base import SendResult, SmtpReply

__all__ = [
    "DEFAULT_API_URL",
    "PROTOCOL",
    "RESERVED_HEADERS",
    "SendgridAccount",
    "SendgridTemporaryError",
    "check",
    "mail_request",
    "send",
]

PROTOCOL: Final = "sendgrid"
DEFAULT_API_URL: Final = "https://api.sendgrid.com"
MAIL_SEND_SCOPE: Final = "mail.send"
# Headers SendGrid refuses in "headers" (its Mail Send reference lists them as reserved): it writes them itself
# from the other fields or while delivering.
RESERVED_HEADERS: Final = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
# Not reserved, but described by the JSON itself (MIME structure) or stamped by SendGrid when it sends (Date):
# passing them would describe a message other than the one SendGrid builds.
_BUILT_BY_SENDGRID: Final = frozenset({"mime-version", "date", "content-disposition", "content-id", "return-path"})
# The API answers a request in well under a second; this only bounds a hung connection.
_DEFAULT_TIMEOUT: Final = 30.0
# A 429 without Retry-After or X-RateLimit-Reset leaves the wait to the outbox's backoff.
_MAX_RETRY_AFTER: Final = 3600.0


@dataclass(frozen=True, slots=True)
class SendgridAccount:
    """One mailbox sending through SendGrid. ``address`` names it in logs and errors; the key never appears."""

    address: str
    api_key: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    timeout: float = _DEFAULT_TIMEOUT

    @property
    def base_url(self) -> str:
        return self.api_url.rstrip("/") or DEFAULT_API_URL


class SendgridTemporaryError(TemporaryDeliveryError):
    """A temporary SendGrid failure; ``retry_after`` is how many seconds the API asked us to wait, if it said."""

    def __init__(self, message: str, *, code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


# ── MIME → the v3 mail/send JSON ────────────────────────────────────────────────────────────────────────────


def mail_request(raw: bytes, envelope_from: str, recipients: Sequence[str]) -> dict[str, Any]:
    """The ``/v3/mail/send`` body for a message composed by :func:`postroom.mail.compose.compose`.

    Recipients come from the envelope, as SMTP's RCPT TO would: an address the To header names goes into
    ``to``, one the Cc header names into ``cc``, every other one (Bcc, which the composer never writes into
    the headers) into ``bcc``. Raises :class:`PermanentDeliveryError` when the message cannot be expressed.
    """
    root = parse_tree(raw)
    headers = root.headers
    sender = _first(parse_address_list(headers.text("from") or "")) or Address(normalize_email(envelope_from))
    body: dict[str, Any] = {
        "personalizations": _personalizations(headers.text("to") or "", headers.text("cc") or "", recipients),
        "from": _email_object(sender),
        # SendGrid requires a subject of at least one character; a blank one goes out as a single space.
        "subject": headers.get("subject") or " ",
    }
    reply_to = [a for a in parse_address_list(headers.text("reply-to") or "") if a.email]
    if len(reply_to) == 1:
        body["reply_to"] = _email_object(reply_to[0])
    elif reply_to:
        body["reply_to_list"] = [_email_object(a) for a in reply_to]

    text, html, files = _contents(root)
    content: list[dict[str, str]] = []
    # The API demands text/plain first, then text/html, and no empty value; an empty message still needs one.
    if text or html is None:
        content.append({"type": "text/plain", "value": text or " "})
    if html is not None:
        content.append({"type": "text/html", "value": html or " "})
    body["content"] = content
    if files:
        body["attachments"] = files

    custom: dict[str, str] = {}
    for name, _raw in headers.fields:
        key = name.lower()
        if key in RESERVED_HEADERS or key in _BUILT_BY_SENDGRID or name in custom:
            continue
        # The value as written: unfolded (RFC 5322 §2.2.3) but still RFC 2047-encoded, because SendGrid puts
        # header values into the message as given and asks for them to be encoded already.
        value = headers.text(name)
        if value:
            custom[name] = value
    if custom:
        body["headers"] = custom
    return body


def _first(addresses: Sequence[Address]) -> Address | None:
    return next((a for a in addresses if a.email), None)


def _api_email(email: str) -> str:
    # Our addresses keep a Unicode domain (normalize_email decodes IDNA); the API wants the DNS form.
    local, _, domain = normalize_email(email).rpartition("@")
    if domain and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return f"{local}@{domain}"
    return f"{local}@{domain}" if local else domain


def _email_object(address: Address) -> dict[str, str]:
    item = {"email": _api_email(address.email)}
    if address.name:
        item["name"] = address.name
    return item


def _personalizations(to_header: str, cc_header: str, recipients: Sequence[str]) -> list[dict[str, Any]]:
    named_to = {email_key(a.email): a for a in parse_address_list(to_header) if a.email}
    named_cc = {email_key(a.email): a for a in parse_address_list(cc_header) if a.email}
    to: list[dict[str, str]] = []
    cc: list[dict[str, str]] = []
    bcc: list[dict[str, str]] = []
    seen: set[str] = set()
    for recipient in recipients:
        key = email_key(recipient)
        # SendGrid refuses an address twice in one request, and compares without case.
        if not key or key in seen:
            continue
        seen.add(key)
        if key in named_to:
            to.append(_email_object(named_to[key]))
        elif key in named_cc:
            cc.append(_email_object(named_cc[key]))
        else:
            bcc.append({"email": _api_email(recipient)})
    if not seen:
        raise PermanentDeliveryError("SendGrid: the message has no recipients")
    if not to:
        # Every personalization needs a "to". Without one (a message only to Bcc), each hidden recipient gets a
        # personalization of their own, so nobody learns of the others, which is what Bcc promises.
        return [{"to": [item]} for item in (*cc, *bcc)]
    block: dict[str, Any] = {"to": to}
    if cc:
        block["cc"] = cc
    if bcc:
        block["bcc"] = bcc
    return [block]


def _contents(root: Part) -> tuple[str, str | None, list[dict[str, str]]]:
    """The first text/plain and text/html bodies, and every other leaf as an attachment."""
    text: str | None = None
    html: str | None = None
    files: list[dict[str, str]] = []
    for part in root.walk():
        if part.is_multipart or part.message is not None:
            continue
        kind = disposition(part)
        filename = raw_filename(part)
        if not kind and filename is None and part.content_type == "text/plain" and text is None:
            text = _body_text(part, root)
            continue
        if not kind and filename is None and part.content_type == "text/html" and html is None:
            html = _body_text(part, root)
            continue
        cid = content_id(part)
        item = {
            "content": base64.b64encode(part.decoded()).decode("ascii"),
            "filename": filename or "attachment",
            "type": part.content_type,
            # An inline file without a Content-ID cannot be referenced from the HTML; SendGrid requires one.
            "disposition": "inline" if kind == "inline" and cid else "attachment",
        }
        if cid and item["disposition"] == "inline":
            item["content_id"] = cid
        files.append(item)
    # JSON carries line breaks as LF; SendGrid writes the CRLF of the MIME it builds.
    return _lf(text or ""), None if html is None else _lf(html), files


def _body_text(part: Part, root: Part) -> str:
    text = decode_text(part)
    # A single-part message ends with the CRLF that closes its last line; in a multipart, the boundary takes
    # it (RFC 2046 §5.1.1). Either way it is not part of what the agent wrote.
    if part is root and text.endswith("\r\n"):
        text = text[:-2]
    return text


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


# ── the API calls ───────────────────────────────────────────────────────────────────────────────────────────


async def send(
    account: SendgridAccount,
    raw: bytes,
    envelope_from: str,
    recipients: Sequence[str],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SendResult:
    """Send one composed message through ``account``; see the module docstring for outcomes and errors."""
    if not recipients:
        raise PermanentDeliveryError(f"SendGrid {account.address}: the message has no recipients")
    try:
        payload = mail_request(raw, envelope_from, recipients)
    except PermanentDeliveryError as error:
        raise PermanentDeliveryError(f"SendGrid {account.address}: {_detail(error)}") from error
    except (ValueError, UnicodeError) as error:
        raise PermanentDeliveryError(f"SendGrid {account.address}: cannot express the message: {error}") from error
    _refuse_insecure(account)
    url = f"{account.base_url}/v3/mail/send"
    try:
        async with _client(account, transport) as client:
            response = await client.post(url, content=json.dumps(payload).encode("utf-8"))
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        # Whether a request cut off mid-way was accepted cannot be known; as with SMTP it is retried, and the
        # Message-ID we set lets receivers drop a duplicate. A malformed API URL is retried too: like a wrong
        # SMTP host, it is the connection's fault, not the message's, and the admin may fix it meanwhile.
        raise SendgridTemporaryError(
            f"SendGrid {account.address}: request to {account.base_url} failed: {_http_error(error)}"
        ) from error
    status = response.status_code
    if status in (200, 202):
        # 200 is the sandbox-mode answer: valid but not delivered. Only 202 means queued for delivery.
        message_id = response.headers.get("x-message-id", "")
        text = "Accepted" if status == 202 else "OK (sandbox mode, not delivered)"
        if message_id:
            text += f"; X-Message-Id {message_id}"
        return SendResult(reply=SmtpReply(status, text))
    errors = _api_errors(response)
    message = f"SendGrid {account.address}: HTTP {status} {response.reason_phrase}: {errors}"
    if status in (408, 429) or status >= 500:
        raise SendgridTemporaryError(message, code=status, retry_after=_retry_after(response))
    if status == 401 or (status == 403 and not _about_sender(response)):
        # The key, not the message: the same words as check() at Start, so the connection shows one reason.
        raise AuthenticationError(PROTOCOL, account.address, f"the API key was refused (HTTP {status}): {errors}")
    raise PermanentDeliveryError(message, code=status)


async def check(account: SendgridAccount, *, transport: httpx.AsyncBaseTransport | None = None) -> list[str]:
    """Whether the API key is accepted and may send mail; returns its scopes, raises the ChannelError leaf."""
    _refuse_insecure(account)
    url = f"{account.base_url}/v3/scopes"
    try:
        async with _client(account, transport) as client:
            response = await client.get(url)
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        cause = _socket_error(error)
        if cause is not None:
            # The same words (and TlsError for a rejected certificate) as every other protocol.
            raise network_error(PROTOCOL, account.address, _endpoint(account), cause) from error
        raise ConnectError(PROTOCOL, account.address, f"{account.base_url}: {_http_error(error)}") from error
    if response.status_code in (401, 403):
        raise AuthenticationError(
            PROTOCOL, account.address, f"the API key was refused (HTTP {response.status_code}): {_api_errors(response)}"
        )
    if response.status_code != 200:
        raise ProtocolError(
            PROTOCOL, account.address, f"GET /v3/scopes answered HTTP {response.status_code}: {_api_errors(response)}"
        )
    try:
        scopes = response.json()["scopes"]
    except (ValueError, KeyError, TypeError) as error:
        raise ProtocolError(PROTOCOL, account.address, "GET /v3/scopes answered without a scopes list") from error
    if not isinstance(scopes, list):
        raise ProtocolError(PROTOCOL, account.address, "GET /v3/scopes answered without a scopes list")
    names = [str(scope) for scope in scopes]
    if MAIL_SEND_SCOPE not in names:
        raise AuthenticationError(
            PROTOCOL, account.address, f"the API key lacks the {MAIL_SEND_SCOPE} permission (Mail Send: Full Access)"
        )
    return names


def _refuse_insecure(account: SendgridAccount) -> None:
    # The key is a bearer credential in the Authorization header: over plain HTTP anyone on the path may
    # send mail as the customer (RFC 6750 §5.3 requires TLS for bearer tokens). Saving such a URL is refused
    # already; this also covers rows stored before that check.
    problem = secret_url_problem(account.base_url)
    if problem is not None:
        raise TlsError(PROTOCOL, account.address, f"the API key was not sent: sendgrid_api_url {problem}")


def _client(account: SendgridAccount, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    # The key goes into the Authorization header only; httpx never logs it and our messages never quote it.
    return httpx.AsyncClient(
        headers={
            "Authorization": f"Bearer {account.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
        # The shared context: the same trust store (SSL_CERT_FILE included) as every other protocol.
        verify=client_context(True),
        timeout=account.timeout,
        transport=transport,
        follow_redirects=False,
    )


def _api_errors(response: httpx.Response) -> str:
    """The ``errors[].message`` texts (with their fields) of an error answer, or its body's start."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    items = data.get("errors") if isinstance(data, Mapping) else None
    if not isinstance(items, list) or not items:
        return json.dumps(data)[:300]
    texts: list[str] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        text = str(item.get("message") or "").strip()
        where = item.get("field")
        texts.append(f"{text} ({where})" if where else text)
    return "; ".join(t for t in texts if t) or response.reason_phrase


def _about_sender(response: httpx.Response) -> bool:
    """Whether a 403 refuses the message's sender (an unverified Sender Identity) rather than the key.

    SendGrid names the ``from`` field in that error; a key without permission answers ``access forbidden``
    with no field.
    """
    try:
        data = response.json()
    except ValueError:
        return False
    items = data.get("errors") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        return False
    for item in items:
        if not isinstance(item, Mapping):
            continue
        where = str(item.get("field") or "").lower()
        text = str(item.get("message") or "").lower()
        if where.startswith("from") or "sender identity" in text:
            return True
    return False


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait: Retry-After (RFC 9110 §10.2.3, seconds or an HTTP date), else X-RateLimit-Reset."""
    value = response.headers.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return min(float(value), _MAX_RETRY_AFTER)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None and when.tzinfo is not None:
            return min(max(0.0, when.timestamp() - time.time()), _MAX_RETRY_AFTER)
    # SendGrid's rate limiter answers 429 with X-RateLimit-Reset, the Unix time the limit resets.
    reset = response.headers.get("x-ratelimit-reset")
    if reset and reset.strip().isdigit():
        wait = float(reset) - time.time()
        if math.isfinite(wait):
            return min(max(0.0, wait), _MAX_RETRY_AFTER)
    return None


def _socket_error(error: BaseException) -> OSError | None:
    """The socket or TLS error under httpx's (httpx → httpcore → ssl/socket), if there is one."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _endpoint(account: SendgridAccount) -> str:
    url = httpx.URL(account.base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.host}:{port}"


def _http_error(error: Exception) -> str:
    cause = error.__cause__ or error.__context__
    text = str(error) or type(error).__name__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text


def _detail(error: Exception) -> str:
    text = str(error)
    return text.removeprefix("SendGrid: ")
