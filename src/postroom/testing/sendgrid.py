"""A local stand-in for SendGrid's v3 Web API, for tests: ``POST /v3/mail/send`` and ``GET /v3/scopes``.

SendGrid itself cannot be reached from a test, so :class:`SendgridTestServer` speaks the documented API on
127.0.0.1 (a free port, one thread per request): Bearer authentication, the Mail Send validation rules a
client can break (personalizations with a ``to``, unique recipients, ``from``, a subject, content values of at
least one character with text/plain first and text/html second, attachments with content and filename and a
content_id when inline, no reserved headers, ``reply_to`` and ``reply_to_list`` not together, the 30 MB
limit) and the documented error body ``{"errors": [{"message", "field", "help"}]}``. A 202 carries an
``X-Message-Id``. Failures are scripted (:meth:`fail_next`: the next N answers are 500, 429 or 400), and every
request is recorded (:attr:`requests`; the accepted mails in :attr:`messages`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from postroom.testing.certs import Certificates
from postroom.transports.sendgrid import RESERVED_HEADERS

__all__ = ["RecordedRequest", "SendgridTestServer"]

_HOST = "127.0.0.1"
# The documented limit of the whole request (Mail Send: "The total size of your email ... must be less than 30MB").
MAX_REQUEST_BYTES = 30 * 1024 * 1024
_EMAIL = re.compile(
    r"^[^@\s\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
_HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
_UNAUTHORIZED = "The provided authorization grant is invalid, expired, or revoked"
_FORBIDDEN = "access forbidden"
_UNVERIFIED = (
    "The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved."
)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server saw it. ``body`` is the parsed JSON (None when it was not JSON)."""

    method: str
    path: str
    headers: dict[str, str] = field(repr=False)
    body: Any = field(repr=False)
    status: int = 0
    message_id: str | None = None  # the X-Message-Id answered with a 202
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)


@dataclass(frozen=True, slots=True)
class _Failure:
    status: int
    message: str
    retry_after: int | None = None


class _ApiError(Exception):
    def __init__(
        self, status: int, message: str, field_name: str | None = None, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field_name = field_name
        self.retry_after = retry_after


class SendgridTestServer:
    """SendGrid's Mail Send API on a free loopback port. Use as a context manager or start()/stop().

    ``api_keys`` maps each key the server accepts to its scopes (default: one key with ``mail.send``, in
    :attr:`api_key`). With ``verified_senders`` only those From addresses may send (403 otherwise), as for an
    account whose Sender Identities are verified one by one. With ``certs`` it speaks HTTPS, presenting the
    test CA's certificate, or with ``untrusted`` one no client trusts.
    """

    def __init__(
        self,
        api_keys: dict[str, Iterable[str]] | None = None,
        *,
        verified_senders: Iterable[str] | None = None,
        certs: Certificates | None = None,
        untrusted: bool = False,
    ) -> None:
        self.api_key = "SG.test-" + secrets.token_urlsafe(16)
        keys = api_keys if api_keys is not None else {self.api_key: ("mail.send", "scopes.read")}
        self._keys = {key: tuple(scopes) for key, scopes in keys.items()}
        self._verified = {s.lower() for s in verified_senders} if verified_senders is not None else None
        self._lock = threading.Lock()
        self._failures: deque[_Failure] = deque()
        self.requests: list[RecordedRequest] = []
        self._certs = certs
        self._untrusted = untrusted
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ── lifecycle ──────────────────────────────────────────────────────────────────────────────

    def start(self) -> SendgridTestServer:
        server = ThreadingHTTPServer((_HOST, 0), _handler_for(self))
        server.daemon_threads = True
        if self._certs is not None:
            context = self._certs.server_context(untrusted=self._untrusted)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        # shutdown() waits for the serving loop's next poll; a short interval keeps stop() quick.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="sendgrid-test", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> SendgridTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to configure as the API URL (``http://127.0.0.1:<port>``, https with ``certs``)."""
        if self._server is None:
            raise RuntimeError("the SendGrid test server is not started")
        scheme = "https" if self._certs is not None else "http"
        return f"{scheme}://{_HOST}:{self._server.server_address[1]}"

    # ── scripting ──────────────────────────────────────────────────────────────────────────────

    def fail_next(self, count: int = 1, status: int = 500, *, retry_after: int | None = None) -> None:
        """Answer the next ``count`` mail sends with ``status`` (500, 503, 429, 400 …) and the matching error."""
        message = {
            400: "Bad Request",
            413: "Payload Too Large",
            429: "too many requests",
            500: "internal server error",
            503: "service unavailable",
        }.get(status, f"error {status}")
        with self._lock:
            self._failures.extend(_Failure(status, message, retry_after) for _ in range(count))

    @property
    def messages(self) -> list[RecordedRequest]:
        """The mail sends answered with 202, in order."""
        with self._lock:
            return [r for r in self.requests if r.path == "/v3/mail/send" and r.status == 202]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until ``count`` mails were accepted; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            accepted = self.messages
            if len(accepted) >= count:
                return accepted
            time.sleep(0.02)
        raise TimeoutError(f"{count} mails not accepted within {timeout} s (got {len(self.messages)})")

    # ── request handling (called on the server's threads) ──────────────────────────────────────

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_failure(self) -> _Failure | None:
        with self._lock:
            return self._failures.popleft() if self._failures else None

    def _authorize(self, headers: dict[str, str], scope: str | None) -> None:
        value = headers.get("authorization", "")
        scheme, _, key = value.partition(" ")
        if scheme.lower() != "bearer" or key.strip() not in self._keys:
            raise _ApiError(401, _UNAUTHORIZED)
        if scope is not None and scope not in self._keys[key.strip()]:
            raise _ApiError(403, _FORBIDDEN)

    def _scopes(self, headers: dict[str, str]) -> dict[str, Any]:
        self._authorize(headers, None)
        key = headers["authorization"].partition(" ")[2].strip()
        return {"scopes": list(self._keys[key])}

    def _mail_send(self, headers: dict[str, str], data: bytes) -> Any:
        self._authorize(headers, "mail.send")
        if len(data) > MAX_REQUEST_BYTES:
            raise _ApiError(413, "Payload Too Large")
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as error:
            raise _ApiError(400, "Bad Request") from error
        if not isinstance(body, dict):
            raise _ApiError(400, "Bad Request")
        failure = self._next_failure()
        if failure is not None:
            raise _ApiError(failure.status, failure.message, retry_after=failure.retry_after)
        _validate(body)
        sender = body["from"]["email"].lower()
        if self._verified is not None and sender not in self._verified:
            raise _ApiError(403, _UNVERIFIED, "from")
        return body


def _handler_for(server: SendgridTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _headers(self) -> dict[str, str]:
            return {name.lower(): value for name, value in self.headers.items()}

        def _read(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _answer(self, status: int, body: Any = None, extra: dict[str, str] | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode("utf-8")
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            headers = self._headers()
            if self.path != "/v3/scopes":
                self._answer(404, _errors("not found"))
                return
            try:
                answer = server._scopes(headers)
            except _ApiError as error:
                server._record(RecordedRequest("GET", self.path, headers, None, error.status))
                self._answer(error.status, _errors(error.message, error.field_name))
                return
            server._record(RecordedRequest("GET", self.path, headers, None, 200))
            self._answer(200, answer)

        def do_POST(self) -> None:
            headers = self._headers()
            data = self._read()
            try:
                parsed: Any = json.loads(data)
            except (ValueError, UnicodeDecodeError):
                parsed = None
            if self.path != "/v3/mail/send":
                server._record(RecordedRequest("POST", self.path, headers, parsed, 404))
                self._answer(404, _errors("not found"))
                return
            try:
                server._mail_send(headers, data)
            except _ApiError as error:
                server._record(RecordedRequest("POST", self.path, headers, parsed, error.status))
                extra: dict[str, str] = {}
                if error.retry_after is not None:
                    extra["Retry-After"] = str(error.retry_after)
                self._answer(error.status, _errors(error.message, error.field_name), extra)
                return
            message_id = secrets.token_urlsafe(16)
            server._record(RecordedRequest("POST", self.path, headers, parsed, 202, message_id))
            self._answer(202, None, {"X-Message-Id": message_id})

    return Handler


def _errors(message: str, field_name: str | None = None) -> dict[str, Any]:
    help_url = f"{_HELP}#message.{field_name}" if field_name else None
    return {"errors": [{"message": message, "field": field_name, "help": help_url}]}


# ── the documented Mail Send validation ─────────────────────────────────────────────────────────────────────


def _validate(body: dict[str, Any]) -> None:
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        raise _ApiError(400, "You must have at least one personalization.", "personalizations")
    if len(personalizations) > 1000:
        raise _ApiError(400, "The personalization block is limited to 1000 personalizations per API request.")
    seen: set[str] = set()
    total = 0
    for i, block in enumerate(personalizations):
        if not isinstance(block, dict):
            raise _ApiError(400, "Each personalization must be an object.", f"personalizations.{i}")
        to = block.get("to")
        if not isinstance(to, list) or not to:
            raise _ApiError(
                400,
                "The to array is required for all personalization objects, and must have at least one email object "
                "with a valid email address.",
                f"personalizations.{i}.to",
            )
        for kind in ("to", "cc", "bcc"):
            items = block.get(kind, [])
            if not isinstance(items, list):
                raise _ApiError(400, f"The {kind} field must be an array.", f"personalizations.{i}.{kind}")
            for j, item in enumerate(items):
                where = f"personalizations.{i}.{kind}.{j}.email"
                email = _email_of(item, where)
                if email.lower() in seen:
                    raise _ApiError(
                        400,
                        "Each email address in the personalization block should be unique between to, cc, and bcc. "
                        f"We found the first duplicate instance of [{email}] in the personalizations.{i}.{kind} field.",
                        f"personalizations.{i}",
                    )
                seen.add(email.lower())
                total += 1
    if total > 1000:
        raise _ApiError(400, "There is a limit of 1000 total recipients (to + cc + bcc) per request.")

    sender = body.get("from")
    if not isinstance(sender, dict) or "email" not in sender:
        raise _ApiError(400, "The from object must be provided for every email send.", "from")
    _email_of(sender, "from.email")
    if "reply_to" in body and "reply_to_list" in body:
        raise _ApiError(400, "reply_to and reply_to_list cannot be used together.", "reply_to_list")
    if "reply_to" in body:
        _email_of(body["reply_to"], "reply_to.email")
    for k, item in enumerate(body.get("reply_to_list") or []):
        _email_of(item, f"reply_to_list.{k}.email")

    subject = body.get("subject")
    every_block = all(isinstance(b.get("subject"), str) and b["subject"] for b in personalizations)
    if not every_block and not body.get("template_id") and (not isinstance(subject, str) or not subject):
        raise _ApiError(
            400,
            "The subject is required. You can get around this requirement if you use a template with a subject "
            "defined or if every personalization has a subject defined.",
            "subject",
        )

    _validate_content(body)
    _validate_attachments(body.get("attachments"))
    _validate_headers(body.get("headers"), "headers")
    for i, block in enumerate(personalizations):
        _validate_headers(block.get("headers"), f"personalizations.{i}.headers")


def _email_of(item: Any, where: str) -> str:
    email = item.get("email") if isinstance(item, dict) else None
    if not isinstance(email, str) or not _EMAIL.match(email):
        raise _ApiError(400, "Does not contain a valid address.", where)
    name = item.get("name")
    if name is not None and not isinstance(name, str):
        raise _ApiError(400, "The name must be a string.", where.removesuffix(".email") + ".name")
    return email


def _validate_content(body: dict[str, Any]) -> None:
    content = body.get("content")
    if content is None:
        if not body.get("template_id"):
            raise _ApiError(
                400,
                "Unless a valid template_id is provided, the content parameter is required. There must be at least "
                "one defined content block. We typically suggest both text/plain and text/html blocks are included, "
                "but only one block is required.",
                "content",
            )
        return
    if not isinstance(content, list) or not content:
        raise _ApiError(400, "The content parameter must be an array with at least one block.", "content")
    types: list[str] = []
    for i, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        value = block.get("value") if isinstance(block, dict) else None
        if not isinstance(kind, str) or not kind:
            raise _ApiError(
                400, "The content type must be a string at least one character in length.", f"content.{i}.type"
            )
        if not isinstance(value, str) or not value:
            raise _ApiError(
                400, "The content value must be a string at least one character in length.", f"content.{i}.value"
            )
        types.append(kind.lower())
    for kind in ("text/plain", "text/html"):
        if types.count(kind) > 1:
            raise _ApiError(400, "If present, text/plain and text/html may only be provided once.", "content")
    plain_misplaced = "text/plain" in types and types[0] != "text/plain"
    html_misplaced = "text/html" in types and types.index("text/html") != (1 if "text/plain" in types else 0)
    if plain_misplaced or html_misplaced:
        raise _ApiError(
            400,
            "If present, text/plain must be first, followed by text/html, followed by any other content.",
            "content",
        )


def _validate_attachments(attachments: Any) -> None:
    if attachments is None:
        return
    if not isinstance(attachments, list):
        raise _ApiError(400, "The attachments field must be an array.", "attachments")
    for i, item in enumerate(attachments):
        if not isinstance(item, dict):
            raise _ApiError(400, "Each attachment must be an object.", f"attachments.{i}")
        content = item.get("content")
        if not isinstance(content, str) or not content:
            raise _ApiError(400, "The attachment content is required.", f"attachments.{i}.content")
        try:
            base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as error:
            raise _ApiError(
                400, "The attachment content must be base64 encoded.", f"attachments.{i}.content"
            ) from error
        if not isinstance(item.get("filename"), str) or not item["filename"]:
            raise _ApiError(400, "The attachment filename parameter is required.", f"attachments.{i}.filename")
        kind = item.get("disposition", "attachment")
        if kind not in ("attachment", "inline"):
            raise _ApiError(400, "The disposition must be either inline or attachment.", f"attachments.{i}.disposition")
        if kind == "inline" and not item.get("content_id"):
            raise _ApiError(
                400,
                "The content_id parameter is required if disposition is set to inline.",
                f"attachments.{i}.content_id",
            )


def _validate_headers(headers: Any, where: str) -> None:
    if headers is None:
        return
    if not isinstance(headers, dict):
        raise _ApiError(400, "Invalid type. Expected: object, given: array.", where)
    for name, value in headers.items():
        if not isinstance(value, str):
            raise _ApiError(400, "Invalid type. Expected: string, given: other.", f"{where}.{name}")
        # The transport's list of what Mail Send reserves: one list for the client that leaves them out and
        # for this server that refuses them.
        if name.lower() in RESERVED_HEADERS:
            raise _ApiError(400, f"The {name} header is reserved and cannot be used.", f"{where}.{name}")
