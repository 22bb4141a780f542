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
PEM). A post whose signed timestamp is further than the accepted window (``POSTROOM_WEBHOOK_MAX_AGE_SECONDS``,
either way, for clock skew) from our clock is refused, and so is a signature accepted before
(:func:`sendgrid_replay_key`): the signature covers the body, so a replay can only repeat the same mail, but
it is refused all the same rather than left to the raw store's Message-ID key.

**Mailgun routes** forwarding to a URL ending in ``mime``: the field ``body-mime`` holds the mail,
``recipient`` and ``sender`` the envelope, and ``timestamp``, ``token``, ``signature`` prove the origin:
``signature`` is the hex HMAC-SHA256, under the domain's HTTP webhook signing key, of the timestamp text
followed by the token. It does not cover the body, so the one-time token is what stops a captured post
from carrying another mail: as Mailgun advises, posts outside the same window are refused, and so is a
token seen before (:func:`mailgun_replay_key`).

Both replay checks are made against the database (table ``webhook_replays``, in
:class:`postroom.channels.inbound.WebhookReplays`), in the transaction that stores the mail, so that every
process refuses a replay, after a restart too, and a post that could not be stored does not use its key
up. A refused post is answered 401, like a forged one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import time
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

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
# Seconds a signed post's timestamp may be from our clock, either way: POSTROOM_WEBHOOK_MAX_AGE_SECONDS's
# default, which says why it is 15 minutes.
DEFAULT_MAX_AGE = 15 * 60.0
# webhook_replays.key holds at most 200 characters.
_MAX_REPLAY_KEY = 200
# The order of the P-256 group (FIPS 186-4 D.1.2.3): an ECDSA signature (r, s) is also valid as (r, n - s).
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
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


@dataclass(frozen=True, slots=True)
class ReplayKey:
    """What identifies one signed post, so that it is accepted once: the row key in ``webhook_replays``.

    ``what`` names the proof in the refusal ("this token was used before").
    """

    provider: str
    what: str
    key: str


def _replay_key(provider: str, what: str, value: str) -> ReplayKey:
    key = f"{provider}:{value}"
    if len(key) > _MAX_REPLAY_KEY:
        key = f"{provider}:sha256:{hashlib.sha256(value.encode('utf-8', 'surrogateescape')).hexdigest()}"
    return ReplayKey(provider, what, key)


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
    max_age: float = DEFAULT_MAX_AGE,
) -> None:
    """Check a SendGrid post's ECDSA signature over ``timestamp + body`` and its age; raise when they fail.

    A wrong stored key raises :class:`~postroom.errors.InvalidSetting` (the admin must fix it), anything
    wrong with the request :class:`WebhookSignatureInvalid`. A post whose signed timestamp is more than
    ``max_age`` seconds from ``now`` (either way) is refused.
    """
    key = load_sendgrid_key(public_key)
    if not signature or not timestamp:
        raise WebhookSignatureInvalid("sendgrid", f"unsigned request (no {SENDGRID_SIGNATURE_HEADER} header)")
    try:
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error) as exc:
        raise WebhookSignatureInvalid("sendgrid", "the signature does not match the request") from exc
    # After the signature, so that a forged post learns nothing about our clock. The timestamp is signed,
    # so a captured post cannot be made younger.
    _check_age("sendgrid", timestamp, now, max_age)


def sendgrid_replay_key(signature: str) -> ReplayKey:
    """The replay key of a verified SendGrid post: its signature, as the numbers (r, s) it holds.

    Not the base64 text: ECDSA signatures are malleable, (r, n - s) verifies as well as (r, s), and one
    pair has several encodings, so a captured post could be replayed under a "new" signature. The pair
    with the lower s stands for both. ECDSA signs with a random nonce, so a post SendGrid signs again
    (a retry signed afresh) has another key and is accepted; the raw store keeps its mail once.
    """
    r, s = decode_dss_signature(base64.b64decode(signature.strip(), validate=True))
    s = min(s, _P256_ORDER - s)
    return _replay_key("sendgrid", "signature", f"{r:064x}{s:064x}")


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
    max_age: float = DEFAULT_MAX_AGE,
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
    # "nan" compares false with everything, so it would pass the window test.
    if not math.isfinite(stamp) or abs(current - stamp) > max_age:
        raise WebhookSignatureInvalid(provider, f"the timestamp is more than {max_age:g} s away from our clock")


def mailgun_replay_key(token: str) -> ReplayKey:
    """The replay key of a verified Mailgun post: its token (50 random characters, one per post).

    The signature covers only the timestamp and this token, so the token is what must not come twice:
    anyone who captured a post could otherwise send any mail under its signature.
    """
    return _replay_key("mailgun", "token", token)
