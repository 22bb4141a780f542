"""Content-Transfer-Encoding (RFC 2045 §6) undone, forgiving the labels and bodies real mail carries."""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

_BASE64_TAIL = re.compile(rb"=[\s=]*[A-Za-z0-9+/]")
_UU_BEGIN = re.compile(rb"^begin(?:-base64)?[ \t]+([0-7]{3,4})[ \t]+([^\r\n]+?)[ \t]*\r?$", re.MULTILINE)
_UU_END = re.compile(rb"^end[ \t]*\r?$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class DecodedBody:
    data: bytes
    defect: str | None = None


def normalize_cte(value: str | None) -> str:
    """The transfer encoding a label means: ``"Base64;"``, ``" quoted-printable "``, ``"7-bit"`` included.

    Unknown labels mean identity: RFC 2045 §6.4 says an unrecognised encoding must be treated as opaque, and
    showing the bytes beats hiding them.
    """
    if not value:
        return "7bit"
    token = value.strip().strip("\"'").lower()
    token = re.split(r"[;\s]", token, maxsplit=1)[0]
    if token in ("base64", "quoted-printable", "7bit", "8bit", "binary"):
        return token
    if "base64" in token or token in ("b", "b64"):
        return "base64"
    if token.startswith("quoted") or token in ("qp", "q"):
        return "quoted-printable"
    if token in ("x-uuencode", "uuencode", "uue", "x-uue", "x-uu"):
        return "uuencode"
    if token in ("8-bit", "8bits"):
        return "8bit"
    return "7bit"


def decode_base64(data: bytes) -> DecodedBody:
    """Decode base64, ignoring line breaks and stray characters (RFC 2045 §6.8 says to ignore them)."""
    try:
        out = binascii.a2b_base64(data)
    except binascii.Error:
        cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        # Length 1 more than a multiple of 4 cannot be decoded: drop the stray last character.
        if len(cleaned) % 4 == 1:
            cleaned = cleaned[:-1]
        cleaned += b"=" * (-len(cleaned) % 4)
        try:
            return DecodedBody(binascii.a2b_base64(cleaned), "base64 body was damaged and repaired")
        except binascii.Error:
            return DecodedBody(b"", "base64 body could not be decoded")
    # binascii stops at the first padding; some mailers concatenate separately padded chunks.
    pad = data.find(b"=")
    if pad != -1 and _BASE64_TAIL.search(data, pad):
        chunks = re.split(rb"(?<==)(?=[\s]*[A-Za-z0-9+/])", data)
        parts = []
        for chunk in chunks:
            try:
                parts.append(binascii.a2b_base64(chunk))
            except binascii.Error:
                continue
        return DecodedBody(b"".join(parts), "base64 body holds several padded chunks")
    return DecodedBody(out)


def decode_uu(data: bytes) -> DecodedBody:
    """Decode a uuencoded block (``begin 644 name`` … ``end``), tolerating missing begin/end lines."""
    start = _UU_BEGIN.search(data)
    lines = data[start.end() :] if start else data
    out = bytearray()
    for line in lines.splitlines():
        stripped = line.rstrip(b"\r")
        if not stripped or stripped in (b"`", b" "):
            continue
        if stripped.startswith(b"end") and stripped.strip() == b"end":
            break
        try:
            out += binascii.a2b_uu(stripped)
        except binascii.Error:
            # Encoders disagree on trailing padding; cut or pad the line to what its length byte promises.
            count = (stripped[0] - 32) & 63
            chars = 1 + (count + 2) // 3 * 4
            try:
                out += binascii.a2b_uu(stripped[:chars].ljust(chars, b"`"))
            except binascii.Error:
                continue
    return DecodedBody(bytes(out), None if start else "uuencoded body without begin line")


def decode_transfer(body: bytes, cte: str) -> DecodedBody:
    """Undo one of :func:`normalize_cte`'s encodings."""
    if cte == "base64":
        return decode_base64(body)
    if cte == "quoted-printable":
        return DecodedBody(binascii.a2b_qp(body))
    if cte == "uuencode":
        return decode_uu(body)
    return DecodedBody(body)


@dataclass(frozen=True, slots=True)
class UuFile:
    """A file uuencoded inside a text body (Outlook Express and old Unix mailers did this)."""

    filename: str
    data: bytes
    start: int
    end: int


def find_uu_files(text: bytes) -> list[UuFile]:
    """uuencoded files embedded in a plain-text body, with where each one sits in it."""
    if b"begin " not in text:
        return []
    found: list[UuFile] = []
    for begin in _UU_BEGIN.finditer(text):
        end = _UU_END.search(text, begin.end())
        if end is None:
            continue
        block = text[begin.end() : end.start()]
        lines = [ln for ln in block.splitlines() if ln.strip()]
        # A real uuencoded block is lines that all start with a length character ('M' for full lines).
        if not lines or not all(32 <= ln[0] <= 96 for ln in lines):
            continue
        decoded = decode_uu(text[begin.start() : end.end()])
        name = begin.group(2).decode("utf-8", "replace")
        found.append(UuFile(name, decoded.data, begin.start(), end.end()))
    return found
