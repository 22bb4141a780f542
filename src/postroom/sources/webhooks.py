"""Inbound webhooks: SendGrid Inbound Parse and Mailgun routes post a received mail to us over HTTP.

This module is the protocol edge only (DESIGN §6.7): it checks a request's signature and turns its form
into an :class:`InboundMail` (the raw MIME bytes, the envelope); it knows no database and no web framework.
The HTTP endpoints are :mod:`postroom.api.routes.inbound`.

Both providers post ``multipart/form-data`` (RFC 7578), which is MIME multipart, so the form is cut with
our own MIME reader (:mod:`postroom.mail.mime`); Mailgun posts ``application/x-www-form-urlencoded`` when a
mail has no attachments.

**SendGrid Inbound Parse**, with "POST the raw, full MIME message" on: the field ``email`` holds the mail,
``envelope`` the SMTP envelope as JSON (``{"to": [...], "from": "..."}``). A signed Parse webhook (a
security policy with signature verification) signs like SendGrid's Event Webhook: ECDSA over P-256 with
SHA-256, over the timestamp header's text followed by the raw request body; the signature header holds the
DER signature in base64, and the admin stores the policy's public key (base64 DER, as SendGrid shows it, or
PEM). SendGrid retries a refused post for up to three days, and we could not confirm that it signs every
attempt afresh, so no timestamp age is enforced by default: a replayed post can only deliver the same mail
again, which the raw store's Message-ID key drops.

**Mailgun routes** forwarding to a URL ending in ``mime``: the field ``body-mime`` holds the mail,
``recipient`` and ``sender`` the envelope, and ``timestamp``, ``token``, ``signature`` prove the origin:
``signature`` is the hex HMAC-SHA256, under the domain's HTTP webhook signing key, of the timestamp text
followed by the token. As Mailgun advises, posts older (or newer) than 15 minutes are refused, and so is a
token seen before (:class:`TokenReplayGuard`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from postroom.errors import (
    InvalidSetting,
    MalformedWebhook,
    WebhookSignatureInvalid,
    WebhookTooLarge,
)
from postroom.mail.addresses import parse_address_list
from postroom.mail.headers import parse_params
from postroom.mail.mime import parse_part
from postroom.sources.base import InboundMail

SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAILGUN_MAX_AGE = 15 * 60.0  # seconds a Mailgun post may be older (or newer) than our clock
SIGNING_KEY_FIELD = "webhook_signing_key"


# ── values ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class FormData:
    """The fields of a posted form, in order; a name may repeat."""

    fields: tuple[tuple[str, bytes], ...] = ()

    def first(self, name: str) -> bytes | None:
        return next((value for key, value in self.fields if key == name), None)

    def text(self, name: str) -> str | None:
        value = self.first(name)
        return None if value is None else value.decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class MailgunPost:
    """What a Mailgun route posted: the proof of origin, and the mail when the URL ends in ``mime``."""

    timestamp: str | None
    token: str | None
    signature: str | None
    form: FormData = field(repr=False)

    def mail(self, max_message_bytes: int) -> InboundMail:
        raw = self.form.first("body-mime")
        if not raw:
            raise MalformedWebhook(
                "mailgun", "no 'body-mime' field: the route's forward() URL must end in 'mime' to post raw MIME"
            )
        check_size("mailgun", raw, max_message_bytes)
        return InboundMail(
            raw=raw,
            recipients=_addresses(self.form.text("recipient")),
            envelope_from=(self.form.text("sender") or "").strip(),
        )


# ── forms (RFC 7578 multipart/form-data, application/x-www-form-urlencoded) ─────────────────────


def parse_form(provider: str, body: bytes, content_type: str) -> FormData:
    """The fields of a form body, by its Content-Type; :class:`MalformedWebhook` when it is not a form."""
    kind = parse_params(content_type or "")
    mime_type = kind.value.lower()
    if mime_type == "application/x-www-form-urlencoded":
        return _parse_urlencoded(body)
    if mime_type != "multipart/form-data":
        raise MalformedWebhook(provider, f"expected a form (multipart/form-data), got {mime_type or 'no type'!r}")
    if not kind.params.get("boundary"):
        raise MalformedWebhook(provider, "multipart/form-data without a boundary")
    # RFC 7578 §4: the body is MIME multipart, so it is read as a MIME entity with that Content-Type.
    root = parse_part(b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body)
    fields: list[tuple[str, bytes]] = []
    for part in root.children:
        disposition = part.headers.text("content-disposition")
        if disposition is None:
            continue
        parsed = parse_params(disposition)
        name = parsed.params.get("name")
        if parsed.value.lower() != "form-data" or name is None:
            continue
        fields.append((name, part.decoded()))
    if not fields:
        raise MalformedWebhook(provider, "the form has no fields")
    return FormData(tuple(fields))


def _parse_urlencoded(body: bytes) -> FormData:
    fields: list[tuple[str, bytes]] = []
    for pair in body.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        # HTML's form encoding: "+" is a space, then %XX octets; values stay bytes (the MIME is 8-bit).
        decoded_name = unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8", "replace")
        fields.append((decoded_name, unquote_to_bytes(value.replace(b"+", b" "))))
    return FormData(tuple(fields))


def _addresses(value: str | None) -> tuple[str, ...]:
    return tuple(a.email for a in parse_address_list(value or "") if a.email)


def check_size(provider: str, raw: bytes, max_message_bytes: int) -> None:
    if len(raw) > max_message_bytes:
        raise WebhookTooLarge(provider, f"the mail has {len(raw)} bytes; at most {max_message_bytes} are accepted")


# ── SendGrid ───────────────────────────────────────────────────────────────────────────────────


def load_sendgrid_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key: base64 DER (as its API and UI show it) or PEM; P-256 only."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            key = serialization.load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError) as exc:
        raise InvalidSetting(SIGNING_KEY_FIELD, "is not a public key in base64 DER or PEM form") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidSetting(SIGNING_KEY_FIELD, "SendGrid signs with ECDSA P-256; this is another kind of key")
    return key


def verify_sendgrid(
    public_key: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: float | None = None,
    max_age: float | None = None,
) -> None:
    """Check a SendGrid post's ECDSA signature over ``timestamp + body``; raise when it does not hold.

    A wrong stored key raises :class:`~postroom.errors.InvalidSetting` (the admin must fix it), anything
    wrong with the request :class:`WebhookSignatureInvalid`. ``max_age`` (seconds) refuses old posts.
    """
    key = load_sendgrid_key(public_key)
    if not signature or not timestamp:
        raise WebhookSignatureInvalid("sendgrid", f"unsigned request (no {SENDGRID_SIGNATURE_HEADER} header)")
    if max_age is not None:
        _check_age("sendgrid", timestamp, now, max_age)
    try:
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error) as exc:
        raise WebhookSignatureInvalid("sendgrid", "the signature does not match the request") from exc


def parse_sendgrid(body: bytes, content_type: str, max_message_bytes: int) -> InboundMail:
    """The mail of a SendGrid Inbound Parse post (raw mode)."""
    form = parse_form("sendgrid", body, content_type)
    raw = form.first("email")
    if not raw:
        raise MalformedWebhook(
            "sendgrid", "no 'email' field: turn on 'POST the raw, full MIME message' in the Inbound Parse settings"
        )
    check_size("sendgrid", raw, max_message_bytes)
    recipients: tuple[str, ...] = ()
    envelope_from = ""
    envelope_text = form.text("envelope")
    if envelope_text:
        try:
            envelope = json.loads(envelope_text)
        except ValueError as exc:
            raise MalformedWebhook("sendgrid", "the 'envelope' field is not JSON") from exc
        if isinstance(envelope, dict):
            to = envelope.get("to")
            if isinstance(to, list):
                recipients = tuple(str(a).strip() for a in to if isinstance(a, str) and "@" in a)
            elif isinstance(to, str):
                recipients = _addresses(to)
            sender = envelope.get("from")
            envelope_from = sender.strip() if isinstance(sender, str) else ""
    if not recipients:
        # Without the envelope, the To field SendGrid copies from the header is the next best thing.
        recipients = _addresses(form.text("to"))
    return InboundMail(raw=raw, recipients=recipients, envelope_from=envelope_from)


# ── Mailgun ────────────────────────────────────────────────────────────────────────────────────


def parse_mailgun(body: bytes, content_type: str) -> MailgunPost:
    """The fields of a Mailgun route post; the mail itself is read after the signature held."""
    form = parse_form("mailgun", body, content_type)
    return MailgunPost(
        timestamp=form.text("timestamp"),
        token=form.text("token"),
        signature=form.text("signature"),
        form=form,
    )


def verify_mailgun(
    signing_key: str,
    timestamp: str | None,
    token: str | None,
    signature: str | None,
    *,
    now: float | None = None,
    max_age: float = MAILGUN_MAX_AGE,
) -> None:
    """Check a Mailgun post's HMAC-SHA256 over ``timestamp + token`` and its age; raise when they fail."""
    if not signing_key:
        raise InvalidSetting(SIGNING_KEY_FIELD, "is empty: Mailgun posts cannot be verified")
    if not timestamp or not token or not signature:
        raise WebhookSignatureInvalid("mailgun", "unsigned request (timestamp, token or signature missing)")
    expected = hmac.new(signing_key.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256)
    # Compared in constant time, so that the answer's timing does not reveal how much of a guess was right.
    if not hmac.compare_digest(expected.hexdigest(), signature.strip().lower()):
        raise WebhookSignatureInvalid("mailgun", "the signature does not match the request")
    _check_age("mailgun", timestamp, now, max_age)


def _check_age(provider: str, timestamp: str, now: float | None, max_age: float) -> None:
    try:
        stamp = float(timestamp)
    except ValueError:
        raise WebhookSignatureInvalid(provider, "the timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - stamp) > max_age:
        raise WebhookSignatureInvalid(provider, f"the timestamp is more than {max_age:g} s away from our clock")


class TokenReplayGuard:
    """Remembers Mailgun tokens for as long as their timestamp is acceptable, so each is used once.

    In memory, per process: it stops a captured post being replayed against the same server. Several
    processes behind a load balancer would need a shared table; a replay there only delivers a mail the
    raw store already has (its Message-ID key drops it), so the memory bound below is the only cost.
    """

    def __init__(self, window: float = 2 * MAILGUN_MAX_AGE, max_tokens: int = 100_000) -> None:
        self.window = window
        self.max_tokens = max_tokens
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, token: str, now: float | None = None) -> bool:
        """True the first time a token is claimed; False when it was seen within the window."""
        current = time.monotonic() if now is None else now
        with self._lock:
            while self._seen:
                oldest, expires = next(iter(self._seen.items()))
                if expires > current and len(self._seen) < self.max_tokens:
                    break
                del self._seen[oldest]
            if token in self._seen:
                return False
            self._seen[token] = current + self.window
            return True

    def release(self, token: str) -> None:
        """Forget a claimed token, when the post it came with could not be stored (the sender may retry)."""
        with self._lock:
            self._seen.pop(token, None)
