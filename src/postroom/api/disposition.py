"""``Content-Disposition`` for downloads whose file names come from mail (RFC 6266, RFC 8187).

A file name is whatever the sender wrote: any script, quotes, semicolons, line breaks, bidirectional
controls. HTTP header values are ASCII in practice (RFC 9110 §5.5: other octets are opaque, and the
server framework refuses them), so the header carries two names (RFC 6266 §4.3):

- ``filename="…"``, an ASCII fallback for old clients: accents removed, other letters transliterated
  where a plain spelling exists and replaced otherwise, no quote, backslash, percent sign, semicolon or
  control character, so that a client that parses naively still finds one well-formed quoted-string;
- ``filename*=UTF-8''…``, the real name percent-encoded (RFC 8187 §3.2, which replaced RFC 5987), which
  every current browser prefers.

Both are cleaned first of what no file name needs and what spoofs one: control characters (C0, DEL, C1)
and the bidirectional embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069), with which
``invoice\\u202Efdp.exe`` is shown as ``invoiceexe.pdf``; and path separators.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

# RFC 8187 §3.2.1 attr-char: what may stand unencoded in an ext-value.
_ATTR_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$&+-.^_`|~")
# Marks that change the order or direction in which text is shown, rather than being text: the
# embeddings and overrides (U+202A–E), the isolates (U+2066–9), and the implicit marks (LRM, RLM, ALM).
# The marks are harmless alone but have no place in a file name either.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# Letters that Unicode decomposition does not reduce to ASCII, spelled the way they are usually written.
_TRANSLITERATION = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "Th",
        "ł": "l",
        "Ł": "L",
        "ı": "i",
        "‘": "'",
        "’": "'",
        "‚": "'",
        "“": "'",
        "”": "'",
        "„": "'",
        "–": "-",
        "—": "-",
        "…": "...",
        "€": "EUR",
        "£": "GBP",
    }
)
# In the fallback: quotes and backslashes would end or escape the quoted-string, "%" is decoded by some
# clients (RFC 6266 §4.3), ";" and "," split naive parsers, and "/" "\\" ":" name directories or drives.
_UNSAFE_FALLBACK = re.compile(r"""["\\%;,/:*?<>|\x00-\x1f\x7f]+""")
_RUNS = re.compile(r"_{2,}")
_SPACES = re.compile(r" {2,}")
_FALLBACK_LENGTH = 150
_DEFAULT_STEM = "download"


def clean_filename(name: str) -> str:
    """The name without control characters, bidirectional controls or path separators; never empty."""
    kept = []
    for ch in name:
        if ch in "\t\r\n\u2028\u2029":
            # A folded or multi-line name reads as words: one space, never a line break in any header.
            kept.append(" ")
        elif ch in _BIDI_CONTROLS or unicodedata.category(ch) == "Cc":
            continue
        else:
            kept.append("_" if ch in "/\\" else ch)
    cleaned = _SPACES.sub(" ", "".join(kept)).strip().strip(".").strip()
    # A name of dots and spaces only, or none at all, would be no name.
    return cleaned or _DEFAULT_STEM


def ascii_fallback(name: str) -> str:
    """An ASCII-only, quoted-string-safe spelling of ``name`` (already cleaned) for the ``filename`` parameter."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_TRANSLITERATION))
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    ascii_only = "".join(ch if " " <= ch <= "~" else "_" for ch in letters)
    safe = _RUNS.sub("_", _UNSAFE_FALLBACK.sub("_", ascii_only))
    stem, dot, extension = safe.rpartition(".")
    if not dot or not (extension.isalnum() and len(extension) <= 10):
        stem, extension = safe, ""
    stem = stem.strip(" ._")
    if not any(ch.isalnum() for ch in stem):
        # Nothing of the name survived (Chinese, Arabic …): a neutral name, with the type's extension kept.
        stem = _DEFAULT_STEM
    stem = stem[: _FALLBACK_LENGTH - len(extension) - 1].rstrip(" ._") or _DEFAULT_STEM
    return f"{stem}.{extension}" if extension else stem


def _percent_encode(value: str) -> str:
    return "".join(ch if ch in _ATTR_CHARS else "".join(f"%{byte:02X}" for byte in ch.encode("utf-8")) for ch in value)


def content_disposition(filename: str, disposition: Literal["attachment", "inline"] = "attachment") -> str:
    """The header value for a download of ``filename``: ASCII only, whatever the name holds."""
    name = clean_filename(filename)
    return f"{disposition}; filename=\"{ascii_fallback(name)}\"; filename*=UTF-8''{_percent_encode(name)}"
