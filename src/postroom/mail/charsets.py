"""Turning bytes into text when the label on them is missing, wrong or a mailer's private name.

Mail is full of charset labels that are aliases (``utf8``, ``latin1``), Microsoft names (``ks_c_5601-1987``),
subsets that the sender exceeded (``gb2312`` text holding GBK characters, ``iso-8859-1`` text holding
windows-1252 quotes) or plain lies (UTF-8 bytes labelled ``iso-8859-1``). The rules here follow what the WHATWG
Encoding Standard does for the web, because mail clients learned the same lessons: labels map to the superset
encoding, and bytes that do not fit the label are recovered, never dropped.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from functools import lru_cache

# Labels that name a subset of a more complete encoding which real senders actually use (WHATWG Encoding
# Standard §4.2 maps the same labels the same way).
_SUPERSETS: dict[str, str] = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "chinese": "gb18030",
    "csgb2312": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "cp950": "big5hkscs",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "csshiftjis": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "csiso2022jp": "iso2022_jp_ext",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "korean": "cp949",
    "iso-ir-149": "cp949",
    "windows-949": "cp949",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "iso-8859-8-i": "iso8859-8",
    "visual": "iso8859-8",
}

# Labels that carry no information: the bytes must speak for themselves.
_UNKNOWN_LABELS = frozenset(
    {"", "unknown", "unknown-8bit", "x-unknown", "x-user-defined", "default", "none", "charset", "8bit"}
)

# Codecs that Python knows but that are not text encodings a mail could honestly be in; a label naming
# one of them is treated as unknown rather than letting a sender pick an escape-processing codec.
_REFUSED_CODECS = frozenset(
    {"unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined", "mbcs", "oem", "charmap"}
)

# When a strict decode with the label fails, these are tried next, in order, before guessing.
_FALLBACKS: dict[str, tuple[str, ...]] = {
    "iso2022_jp_ext": ("iso2022_jp_2", "iso2022_jp_2004", "cp932", "euc_jp"),
    "iso2022_jp": ("iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_2004"),
    "cp932": ("shift_jis_2004", "euc_jp"),
    "euc_jp": ("euc_jis_2004", "cp932"),
    "big5hkscs": ("cp950",),
    "cp949": ("johab",),
    "koi8_r": ("koi8_u", "cp1251"),
    "ascii": ("utf-8", "cp1252"),
}
_FALLBACKS = {codecs.lookup(k).name: v for k, v in _FALLBACKS.items()}

_NOT_ASCII_SAFE = ("iso2022", "utf_7", "utf-7", "hz", "utf_16", "utf-16", "utf_32", "utf-32")
_MULTIBYTE = frozenset(
    {"cp932", "shift_jis_2004", "euc_jp", "euc_jis_2004", "gb18030", "big5hkscs", "cp950", "cp949", "johab"}
)

# Single-byte encodings in which a text that happens to be valid UTF-8 (with non-ASCII bytes) is, in
# practice, always UTF-8 under a wrong label.
_SINGLE_BYTE_PREFIXES = ("cp125", "iso8859", "latin", "koi8", "mac_", "mac-", "cp8", "cp4", "ascii")


_HIGH_BYTES = bytes(range(0x80, 0x100))


def count_8bit(data: bytes) -> int:
    """How many bytes above 0x7F ``data`` holds (in C: delete them and compare lengths)."""
    return len(data) - len(data.translate(None, _HIGH_BYTES))


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    """Decode the few bytes windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) as ISO-8859-1 does."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    chunk = error.object[error.start : error.end]
    return bytes(chunk).decode("latin-1"), error.end


codecs.register_error("postroom-latin1", _latin1_fallback)


@dataclass(frozen=True, slots=True)
class Decoded:
    """Text decoded from bytes, with the codec that decoded it and what had to be recovered."""

    text: str
    codec: str
    defect: str | None = None


@lru_cache(maxsize=512)
def resolve_charset(label: str | None) -> str | None:
    """The Python codec for a charset label as found in mail, or ``None`` when the label says nothing usable."""
    if label is None:
        return None
    name = label.strip().strip("\"'").strip().lower()
    # RFC 2231 §5 lets a language ride on the charset ("utf-8*en"); it does not change the bytes.
    name = name.split("*", 1)[0]
    if name in _UNKNOWN_LABELS:
        return None
    if name in _SUPERSETS:
        return _canonical(_SUPERSETS[name])
    for candidate in (name, name.removeprefix("x-"), name.replace("_", "-"), name.replace(" ", "-")):
        try:
            info = codecs.lookup(candidate)
        except (LookupError, ValueError):
            continue
        if info.name.replace("-", "_") in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
            return None
        superset = _SUPERSETS.get(info.name) or _SUPERSETS.get(info.name.replace("_", "-"))
        return _canonical(superset) if superset else info.name
    return None


def _canonical(codec: str) -> str:
    """The name :func:`codecs.lookup` gives a codec, so that tables below can be keyed on it."""
    return codecs.lookup(codec).name


def _is_single_byte(codec: str) -> bool:
    return codec.startswith(_SINGLE_BYTE_PREFIXES)


def _strict(data: bytes, codec: str) -> str | None:
    try:
        if codec == "cp1252":
            return data.decode("cp1252", "postroom-latin1")
        return data.decode(codec)
    except (UnicodeError, LookupError):
        return None


def guess(data: bytes) -> Decoded:
    """Decode bytes whose charset is unknown: ASCII, then UTF-8, then charset-normalizer's best guess."""
    if data.isascii():
        return Decoded(data.decode("ascii"), "ascii")
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    # charset-normalizer needs evidence: with only a few 8-bit bytes (a Latin text with two accents) it
    # picks among Latin code pages by chance, and windows-1252 is by far the most common in mail.
    high = count_8bit(data)
    if len(data) >= 32 and high >= 8:
        from charset_normalizer import from_bytes

        matches = list(from_bytes(data))
        best = matches[0] if matches else None
        if best is not None and best.encoding:
            codec = resolve_charset(best.encoding) or best.encoding
            # Latin code pages tie on most Western text (é and á sit at the same bytes in all of them);
            # on a tie windows-1252, by far the most common in mail, wins.
            for match in matches[1:6]:
                tie = match.chaos <= best.chaos + 0.02 and match.coherence >= best.coherence - 0.05
                if tie and (resolve_charset(match.encoding) or match.encoding) == "cp1252":
                    codec = "cp1252"
                    break
            text = _strict(data, codec)
            if text is not None:
                return Decoded(text, codec, f"charset guessed as {codec}")
    return Decoded(data.decode("cp1252", "postroom-latin1"), "cp1252", "charset guessed as windows-1252")


def decode_bytes(data: bytes, label: str | None, hint: str | None = None) -> Decoded:
    """Decode ``data`` labelled ``label``; never raises, records what was recovered in ``defect``.

    ``hint`` is a second label to try before guessing (for raw 8-bit headers, the charset of the body).
    """
    codec = resolve_charset(label)
    # Most codecs decode ASCII as ASCII; ISO-2022, UTF-7 and HZ escape sequences are ASCII bytes too, and
    # UTF-16/32 are not ASCII-compatible, so those go through their codec.
    if data.isascii() and (codec is None or not codec.startswith(_NOT_ASCII_SAFE)):
        return Decoded(data.decode("ascii"), codec or "ascii")
    if codec is None:
        found = guess(data) if hint is None else decode_bytes(data, hint)
        defect = None if label is None or found.codec in ("ascii", "utf-8") else f"unknown charset {label!r}"
        return Decoded(found.text, found.codec, defect or found.defect)
    if codec != "utf-8" and _is_single_byte(codec):
        # Valid UTF-8 under a single-byte label is a mislabel: real single-byte text almost never
        # happens to form valid multi-byte UTF-8 sequences.
        try:
            return Decoded(data.decode("utf-8"), "utf-8", f"UTF-8 labelled {label}")
        except UnicodeDecodeError:
            pass
    text = _strict(data, codec)
    if text is not None:
        return Decoded(text, codec)
    high = count_8bit(data)
    for other in _FALLBACKS.get(codec, ()):
        # A related encoding explains the bytes only when there are enough of them to be evidence: one
        # stray 8-bit byte in ASCII text "decodes" as half of some double-byte character in any CJK codec.
        if other in _MULTIBYTE and high < 4:
            continue
        text = _strict(data, other)
        if text is not None:
            return Decoded(text, other, f"{label} decoded as {other}")
    if codec != "utf-8":
        try:
            return Decoded(data.decode("utf-8"), "utf-8", f"UTF-8 labelled {label}")
        except UnicodeDecodeError:
            pass
    # A few broken bytes in otherwise good text (a truncated multi-byte character, one stray byte) are
    # best replaced in place; text that is mostly wrong was in another charset than its label says.
    replaced = data.decode(codec, "replace")
    if replaced.count("\ufffd") <= max(2, len(replaced) // 100):
        return Decoded(replaced, codec, f"bytes do not match {label}")
    guessed = guess(data)
    return Decoded(guessed.text, guessed.codec, f"bytes do not match {label}; decoded as {guessed.codec}")
