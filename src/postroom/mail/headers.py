"""Header fields: read raw, decoded only when asked, and decoded the way real mail needs.

A header is kept as the bytes that arrived (RFC 5322 §2.2) until someone asks for its value; decoding then
unfolds it (§2.2.3), turns raw 8-bit bytes into text (RFC 6532 UTF-8 first, then the message's own charset),
and decodes RFC 2047 encoded words, forgiving the ways senders break them.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import _parsedate_tz  # type: ignore[attr-defined]

from postroom.mail.charsets import decode_bytes

# RFC 2047 §2: =?charset?encoding?encoded-text?=. The charset may carry an RFC 2231 language ("utf-8*de").
# Encoded text is matched up to the first "?=", which also accepts the spaces and question marks that
# broken senders leave in it.
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,60})\?([bBqQ])\?(.*?)\?=", re.DOTALL)
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_LINE_BREAKS = re.compile(r"[\r\n]+")
_WSP_ONLY = re.compile(r"[ \t\r\n]*")
_MSG_ID = re.compile(r"<([^<>\s]*)>")
_BARE_ID = re.compile(r"[^\s<>,;\"()]+@[^\s<>,;\"()]+")


def unfold(value: str) -> str:
    """Undo folding: RFC 5322 §2.2.3 removes the CRLF before whitespace; stray line breaks go too."""
    if "\n" not in value and "\r" not in value:
        return value
    return _LINE_BREAKS.sub("", _FOLD.sub("", value))


def _decode_b(text: str) -> bytes:
    data = text.strip().encode("ascii", "ignore")
    # Senders drop the padding; binascii wants it.
    data += b"=" * (-len(data.rstrip(b"=")) % 4) if not data.endswith(b"=") else b""
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        try:
            return binascii.a2b_base64(data.rstrip(b"=") + b"==")
        except binascii.Error:
            return data


def _decode_q(text: str) -> bytes:
    # RFC 2047 §4.2: "_" is a space, "=XX" an octet. Raw 8-bit in Q text (broken) is kept as UTF-8.
    return binascii.a2b_qp(text.encode("utf-8", "surrogateescape"), header=True)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words in an (unfolded) header value.

    Whitespace between two encoded words is dropped (RFC 2047 §6.2). Adjacent words in the same charset are
    joined as bytes before decoding, because senders split multi-byte characters across words. Encoded words
    glued to ordinary text, which RFC 2047 forbids but many mailers write, are decoded as well.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pos = 0
    pending = b""
    pending_charset = ""
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        charset, encoding, text = match.group(1), match.group(2), match.group(3)
        raw = _decode_b(text) if encoding in "bB" else _decode_q(text)
        charset = charset.split("*", 1)[0].lower()
        if pending and _WSP_ONLY.fullmatch(between):
            if charset == pending_charset:
                pending += raw
            else:
                out.append(decode_bytes(pending, pending_charset).text)
                pending, pending_charset = raw, charset
        else:
            if pending:
                out.append(decode_bytes(pending, pending_charset).text)
            out.append(between)
            pending, pending_charset = raw, charset
        pos = match.end()
    if pending:
        out.append(decode_bytes(pending, pending_charset).text)
    out.append(value[pos:])
    return "".join(out)


def bytes_to_str(raw: bytes, hint: str | None = None) -> str:
    """Header bytes as text: ASCII, else UTF-8 (RFC 6532), else ``hint`` (the body's charset), else a guess."""
    if raw.isascii():
        return raw.decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return decode_bytes(raw, hint).text


def decode_value(raw: bytes, hint: str | None = None, *, strip: bool = True) -> str:
    """A header's raw bytes as display text: 8-bit decoded, unfolded, encoded words decoded, ends trimmed.

    With ``strip=False`` only the whitespace after the colon goes (trailing spaces of a Subject are kept,
    as every other reader keeps them).
    """
    if raw.isascii() and b"=?" not in raw and b"\n" not in raw:
        # The common case (a plain ASCII field on one line) without the general machinery.
        text = raw.decode("ascii")
        return text.strip() if strip else text.lstrip().rstrip("\r")
    value = decode_words(unfold(bytes_to_str(raw, hint)))
    return value.strip() if strip else value.lstrip().rstrip("\r\n")


@dataclass(slots=True)
class Headers:
    """The header fields of one message or body part, in order, with names as sent and values as bytes."""

    fields: list[tuple[str, bytes]] = field(default_factory=list)
    hint: str | None = None  # charset to try for raw 8-bit values before guessing
    _index: dict[str, list[int]] | None = None

    def _lookup(self) -> dict[str, list[int]]:
        if self._index is None:
            index: dict[str, list[int]] = {}
            for i, (name, _) in enumerate(self.fields):
                index.setdefault(name.lower(), []).append(i)
            self._index = index
        return self._index

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._lookup()

    def raw(self, name: str) -> bytes | None:
        """The first field of that name, as bytes (still folded and encoded)."""
        found = self._lookup().get(name.lower())
        return self.fields[found[0]][1] if found else None

    def raw_all(self, name: str) -> list[bytes]:
        return [self.fields[i][1] for i in self._lookup().get(name.lower(), ())]

    def text(self, name: str) -> str | None:
        """The first field of that name unfolded and 8-bit decoded, but with encoded words left as they are.

        Structured fields (addresses, parameters) must be split before encoded words are decoded, because a
        decoded display name may hold commas, quotes or angle brackets (RFC 2047 §5).
        """
        raw = self.raw(name)
        return None if raw is None else unfold(bytes_to_str(raw, self.hint)).strip()

    def get(self, name: str, *, strip: bool = True) -> str | None:
        """The first field of that name as display text (encoded words decoded)."""
        raw = self.raw(name)
        return None if raw is None else decode_value(raw, self.hint, strip=strip)

    def get_all(self, name: str) -> list[str]:
        return [decode_value(raw, self.hint) for raw in self.raw_all(name)]

    def decoded(self) -> Iterator[tuple[str, str]]:
        """Every field, in order, decoded for display."""
        for name, raw in self.fields:
            yield name, decode_value(raw, self.hint)


# --- parameters (RFC 2045 §5.1, RFC 2231) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParamValue:
    """A structured header's value and its parameters, names lower-cased, values decoded."""

    value: str
    params: dict[str, str]
    defects: tuple[str, ...] = ()


def _split_params(text: str) -> list[str]:
    """Split on ``;`` outside quoted strings."""
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    escaped = False
    for ch in text:
        if escaped:
            buf.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            buf.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            buf.append(ch)
        elif ch == ";" and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        # Only \\ and \" are undone: Windows paths in filenames ("C:\dir\a.pdf") keep their backslashes so
        # that the base name can still be found, as the standard library's email.utils.unquote does.
        return value[1:-1].replace("\\\\", "\\").replace('\\"', '"')
    if value.startswith('"'):
        return value[1:].replace('\\"', '"')
    return value


def _pct_decode(value: str) -> bytes:
    out = bytearray()
    i = 0
    raw = value.encode("utf-8", "surrogateescape")
    n = len(raw)
    while i < n:
        c = raw[i]
        if c == 0x25 and i + 2 < n:
            try:
                out.append(int(raw[i + 1 : i + 3], 16))
                i += 3
                continue
            except ValueError:
                pass
        out.append(c)
        i += 1
    return bytes(out)


def parse_params(text: str, hint: str | None = None) -> ParamValue:
    """Parse ``value; name=value; name*=utf-8''%E2%82%AC; name*0*=…`` into a value and decoded parameters.

    RFC 2231 continuations and charsets are honoured; RFC 2047 encoded words inside quoted values (which
    RFC 2047 §5 forbids and Outlook and Gmail write anyway) are decoded too. For a name given both plainly
    and with RFC 2231, the RFC 2231 form wins (it is the one that can carry the real characters).
    """
    pieces = _split_params(text)
    value = pieces[0].strip()
    plain: dict[str, str] = {}
    extended: dict[str, dict[int, tuple[bool, str]]] = {}
    defects: list[str] = []
    for piece in pieces[1:]:
        if "=" not in piece:
            if piece.strip():
                defects.append(f"parameter without value: {piece.strip()[:40]!r}")
            continue
        name, _, val = piece.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if "*" in name:
            base, _, rest = name.partition("*")
            encoded = rest.endswith("*") or rest == ""
            index_text = rest.rstrip("*")
            index = int(index_text) if index_text.isdigit() else 0
            extended.setdefault(base, {}).setdefault(index, (encoded, _unquote(val)))
        elif name not in plain:
            plain[name] = _unquote(val)
    params: dict[str, str] = {}
    for name, val in plain.items():
        params[name] = decode_words(val) if "=?" in val else val
    for name, segments in extended.items():
        charset = ""
        chunks: list[bytes] = []
        for i, index in enumerate(sorted(segments)):
            encoded, val = segments[index]
            if encoded and i == 0 and val.count("'") >= 2:
                # RFC 2231 §4: the first encoded segment starts charset'language'.
                charset, _, rest = val.partition("'")
                _, _, val = rest.partition("'")
            chunks.append(_pct_decode(val) if encoded else val.encode("utf-8", "surrogateescape"))
        joined = b"".join(chunks)
        decoded = decode_bytes(joined, charset or None, hint).text if charset else bytes_to_str(joined, hint)
        params[name] = decode_words(decoded) if "=?" in decoded else decoded
    return ParamValue(value, params, tuple(defects))


# --- identifiers ---------------------------------------------------------------------------------------


def parse_msg_ids(text: str | None) -> list[str]:
    """Message-IDs in a header value, without angle brackets, in order (RFC 5322 §3.6.4).

    Values without brackets (some mailers write bare ``id@host`` lists) are accepted too.
    """
    if not text:
        return []
    found = [m for m in _MSG_ID.findall(text) if m]
    if found:
        return found
    return _BARE_ID.findall(text)


# --- dates (RFC 5322 §3.3) ------------------------------------------------------------------------------


def parse_date(text: str | None) -> datetime | None:
    """The date a Date header names, timezone-aware, or ``None`` when it cannot be read.

    A missing zone or ``-0000`` (RFC 5322 §3.3: "no information about the local time zone") is read as UTC.
    """
    if not text:
        return None
    try:
        parsed = _parsedate_tz(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    year, month, day, hour, minute, second = parsed[:6]
    offset = parsed[9] or 0
    try:
        if abs(offset) >= 86400:
            offset = 0
        zone = UTC if offset == 0 else timezone(timedelta(seconds=offset))
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=zone)
    except (ValueError, OverflowError, TypeError):
        return None
