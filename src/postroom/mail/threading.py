"""Threading keys: reply tokens, Message-IDs, normalised subjects and Outlook's Thread-Index.

A reply finds its conversation by, in order: a signed reply token in the address it was sent to
(``support+<token>@example.com``, which survives clients that drop threading headers), a token in a
Message-ID it references (our own Message-IDs carry it), In-Reply-To/References (RFC 5322 §3.6.4), and as a
last resort the normalised subject.

Reply tokens are ``<conversation id in base 36><10 characters of HMAC-SHA256 in base 32>``: lower-case
letters and digits only, so they are safe in URLs and in the local part of an address (RFC 5322 §3.4.1
dot-atom), and survive MTAs that lower-case local parts. 50 bits of MAC make guessing a token for a
conversation hopeless at any rate a mail server accepts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import struct
from datetime import UTC, datetime

from postroom.mail.addresses import normalize_email
from postroom.mail.model import Address

_MAC_CHARS = 10  # 50 bits of base32
_TOKEN = re.compile(r"^[0-9a-z]{1,13}[a-z2-7]{10}$")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_MSGID_TOKEN = re.compile(r"(?:^|[.])pr[.]t[.]([0-9a-z]{11,23})[.]", re.IGNORECASE)
OWN_MESSAGE_ID = re.compile(r"^pr[.](?:t[.][0-9a-z]{11,23}[.])?[0-9a-z]{16,32}@", re.IGNORECASE)
MAX_REFERENCES = 32


def _b36(number: int) -> str:
    if number == 0:
        return "0"
    digits = []
    while number:
        number, rem = divmod(number, 36)
        digits.append(_B36[rem])
    return "".join(reversed(digits))


def _mac(conversation_id: int, key: bytes) -> str:
    digest = hmac.new(key, b"postroom-reply-token:" + str(conversation_id).encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_MAC_CHARS]


def make_reply_token(conversation_id: int, key: bytes) -> str:
    """A short signed token naming a conversation, for Reply-To addresses and Message-IDs."""
    if conversation_id < 0:
        raise ValueError("conversation_id must not be negative")
    if not key:
        raise ValueError("a reply token needs a non-empty key")
    return _b36(conversation_id) + _mac(conversation_id, key)


def read_reply_token(token: str, key: bytes) -> int | None:
    """The conversation id a token names, or ``None`` when it is not a token signed with ``key``."""
    token = token.strip().lower()
    if not key or not _TOKEN.match(token):
        return None
    id_part, mac = token[:-_MAC_CHARS], token[-_MAC_CHARS:]
    try:
        conversation_id = int(id_part, 36)
    except ValueError:
        return None
    if not hmac.compare_digest(mac, _mac(conversation_id, key)):
        return None
    return conversation_id


def conversation_id_from_token(token: str | None, key: bytes) -> int | None:
    """Like :func:`read_reply_token`, accepting ``None`` (for ``ParsedMessage.reply_token``)."""
    return read_reply_token(token, key) if token else None


def plus_address(address: str, token: str) -> str:
    """``support@example.com`` + token → ``support+<token>@example.com`` (RFC 5233 subaddress)."""
    local, at, domain = normalize_email(address).rpartition("@")
    if not at:
        raise ValueError(f"not an address: {address!r}")
    local = local.split("+", 1)[0]
    return f"{local}+{token}@{domain}"


def token_from_address(address: str, key: bytes) -> str | None:
    """The verified token in a plus address, or ``None``."""
    local, at, _ = address.rpartition("@")
    if not at or "+" not in local:
        return None
    candidate = local.rsplit("+", 1)[1].lower()
    return candidate if read_reply_token(candidate, key) is not None else None


def token_from_message_id(message_id: str, key: bytes) -> str | None:
    """The verified token in one of our Message-IDs, or ``None``."""
    match = _MSGID_TOKEN.search(message_id)
    if match is None:
        return None
    candidate = match.group(1).lower()
    return candidate if read_reply_token(candidate, key) is not None else None


def find_reply_token(
    recipients: tuple[Address, ...] | list[Address], message_ids: list[str] | tuple[str, ...], key: bytes
) -> str | None:
    """The first verified token among the recipients' plus addresses, then among referenced Message-IDs."""
    for address in recipients:
        token = token_from_address(address.email, key)
        if token:
            return token
    for message_id in reversed(message_ids):
        token = token_from_message_id(message_id, key)
        if token:
            return token
    return None


def make_message_id(domain: str, reply_token: str | None = None) -> str:
    """A new globally unique Message-ID (RFC 5322 §3.6.4), without angle brackets.

    ``pr.`` marks it as ours (to recognise our own mail coming back); a reply token rides along so that
    a reply which keeps only In-Reply-To still finds its conversation.
    """
    if not domain or any(ch in domain for ch in '<>@ \t\r\n"\\()[],;:'):
        raise ValueError(f"not a domain: {domain!r}")
    domain = domain.strip(".").lower()
    unique = base64.b32encode(os.urandom(15)).decode("ascii").lower()
    if reply_token:
        if not re.fullmatch(r"[0-9a-z]{11,23}", reply_token):
            raise ValueError("not a reply token")
        return f"pr.t.{reply_token}.{unique}@{domain}"
    return f"pr.{unique}@{domain}"


def is_own_message_id(message_id: str, own_domains: frozenset[str]) -> bool:
    """Whether a Message-ID is one :func:`make_message_id` made for one of our domains."""
    if not OWN_MESSAGE_ID.match(message_id):
        return False
    return message_id.rpartition("@")[2].lower() in own_domains


def derive_message_id(raw: bytes, parts: list[bytes]) -> str:
    """A stable Message-ID for a mail that has none, from what does not change between deliveries.

    Trace fields (Received, Delivered-To, Return-Path …) differ per mailbox, so ``parts`` are the
    originator fields and the body; the same mail delivered twice gets the same id.
    """
    digest = hashlib.sha256()
    for piece in parts:
        digest.update(len(piece).to_bytes(8, "big"))
        digest.update(piece)
    if not any(parts):
        digest.update(raw)
    return f"{digest.hexdigest()[:40]}@derived.postroom.invalid"


def last_references(references: list[str], in_reply_to: str | None = None) -> tuple[str, ...]:
    """References oldest first, duplicates dropped, at most the last :data:`MAX_REFERENCES`."""
    seen: set[str] = set()
    out: list[str] = []
    for ref in [*references, *([in_reply_to] if in_reply_to else [])]:
        if ref and ref not in seen:
            seen.add(ref)
            out.append(ref)
    return tuple(out[-MAX_REFERENCES:])


# --- subjects ---------------------------------------------------------------------------------------

# Reply and forward prefixes as clients localise them: en Re/Fwd/Fw, de AW/WG, nl Antw/Doorst, sv/da/no
# SV/VS/VB, fi VS/VL, fr Réf/Rép/TR, es/pt RE/RES/RV/ENC, it R/I/Rif, pl Odp/PD, cs/sk Odp/Fwd/PŘ,
# hu Vá/Továbbítás, tr YNT/İLT, el ΑΠ/ΣΧΕΤ/ΠΡΘ, ru/uk Ответ/Отв/Пересл/Вiдп, zh 回复/回覆/答复/转发/轉寄,
# ja 返信/転送, ko 답장/회신/전달, plus numbered forms ("Re[2]:", "Re(3):", "Re^2:").
_REPLY_WORDS = (
    "re",
    "aw",
    "antw",
    "antwort",
    "sv",
    "vs",
    "odp",
    "réf",
    "ref",
    "rép",
    "rep",
    "res",
    "r",
    "rif",
    "ynt",
    "vá",
    "ΑΠ",
    "ΣΧΕΤ",
    "απ",
    "σχετ",
    "ответ",
    "отв",
    "відп",
    "вiдп",
    "回复",
    "回覆",
    "答复",
    "答覆",
    "返信",
    "답장",
    "회신",
    "tr",
)
_FORWARD_WORDS = (
    "fwd",
    "fw",
    "wg",
    "doorst",
    "vb",
    "vl",
    "tr",
    "rv",
    "enc",
    "i",
    "pd",
    "přeposlat",
    "tovább",
    "továbbítás",
    "ilt",
    "İlt",
    "ПРΘ",
    "πρθ",
    "пересл",
    "переслать",
    "fwd",
    "转发",
    "轉寄",
    "轉發",
    "転送",
    "전달",
)
_PREFIX_WORD = "|".join(sorted({re.escape(w) for w in (*_REPLY_WORDS, *_FORWARD_WORDS)}, key=len, reverse=True))
_PREFIX = re.compile(
    r"^\s*(?:(?:" + _PREFIX_WORD + r")\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]|\[[^\[\]]{1,60}\]|【[^【】]{1,60}】)\s*",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(
    r"^\s*(?:"
    + "|".join(sorted({re.escape(w) for w in _REPLY_WORDS if w not in ("tr",)}, key=len, reverse=True))
    + r")\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]\s*",
    re.IGNORECASE,
)
_TRAILING_FWD = re.compile(r"\s*\((?:fwd|fw)\)\s*$", re.IGNORECASE)
_WS = re.compile(r"\s+")


def normalize_subject(subject: str) -> str:
    """The subject without reply/forward prefixes in any language, ``[tags]`` or ``(fwd)``, spaces collapsed.

    Case is kept (it is also a readable title); compare with :func:`subject_key`.
    """
    text = _WS.sub(" ", subject or "").strip()
    for _ in range(50):
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    text = _TRAILING_FWD.sub("", text)
    return text.strip()


def subject_key(subject: str) -> str:
    """A key for matching threads by subject: normalised and case-folded."""
    return normalize_subject(subject).casefold()


# --- Outlook Thread-Index (MS-OXOMSG §2.2.1.3, PidTagConversationIndex) ----------------------------------

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def _filetime(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _FILETIME_EPOCH
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def make_thread_index(parent: str | None = None, now: datetime | None = None) -> str:
    """An Outlook Thread-Index: a new 22-byte header, or the parent's with a 5-byte child block added.

    The header is the high 48 bits of a FILETIME and a random GUID; a child block records the time since
    the header in 31 bits (units of 2^18 × 100 ns, or 2^23 when more than about 1.7 years passed) and four
    random and four sequence bits.
    """
    now = now or datetime.now(UTC)
    filetime = _filetime(now)
    header: bytes | None = None
    if parent:
        try:
            header = base64.b64decode(parent.strip() + "=" * (-len(parent.strip()) % 4), validate=False)
        except (ValueError, TypeError):
            header = None
        if header is not None and (len(header) < 22 or (len(header) - 22) % 5):
            header = None
    if header is None:
        new = struct.pack(">Q", filetime)[:6] + os.urandom(16)
        return base64.b64encode(new).decode("ascii")
    start = int.from_bytes(header[:6], "big") << 16
    delta = max(0, filetime - start)
    if delta < (1 << 49):
        code = (delta >> 18) & 0x7FFFFFFF
    else:
        code = 0x80000000 | ((delta >> 23) & 0x7FFFFFFF)
    child = struct.pack(">I", code) + bytes([(os.urandom(1)[0] & 0xF0) | ((len(header) - 22) // 5 & 0x0F)])
    return base64.b64encode(header + child).decode("ascii")


def thread_index_root(value: str | None) -> str | None:
    """The conversation part of a Thread-Index (its first 22 bytes), the same for every mail of a thread."""
    if not value:
        return None
    try:
        data = base64.b64decode(value.strip() + "=" * (-len(value.strip()) % 4))
    except (ValueError, TypeError):
        return None
    if len(data) < 22:
        return None
    return base64.b64encode(data[:22]).decode("ascii")
