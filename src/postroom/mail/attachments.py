"""Attachments: their names (RFC 2183, RFC 2231, RFC 2047 in parameters), made safe to store anywhere.

A filename comes from ``Content-Disposition: …; filename=`` first and ``Content-Type: …; name=`` second
(RFC 2183 §2.3; older mailers only wrote the second). It is then made safe: only the last path component
(no ``../``), no control or bidirectional-override characters (``invoice\\u202Efdp.exe`` shows as
``invoiceexe.pdf``), no characters that Windows, macOS or S3 keys refuse, no reserved device names, at most
255 UTF-8 bytes with the extension kept, and never empty.
"""

from __future__ import annotations

import re
import unicodedata

from postroom.mail.headers import parse_params
from postroom.mail.mime import Part

# A small table instead of :mod:`mimetypes`, which reads files from /etc on first use (mail/ does no I/O).
_EXTENSIONS: dict[str, str] = {
    "text/plain": ".txt",
    "text/html": ".html",
    "text/csv": ".csv",
    "text/calendar": ".ics",
    "text/vcard": ".vcf",
    "text/x-vcard": ".vcf",
    "text/rfc822-headers": ".txt",
    "text/markdown": ".md",
    "text/xml": ".xml",
    "application/xml": ".xml",
    "application/json": ".json",
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/gzip": ".gz",
    "application/x-7z-compressed": ".7z",
    "application/x-rar-compressed": ".rar",
    "application/msword": ".doc",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/rtf": ".rtf",
    "application/ics": ".ics",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/pkcs7-mime": ".p7m",
    "application/x-pkcs7-mime": ".p7m",
    "application/pgp-signature": ".asc",
    "application/pgp-encrypted": ".pgp",
    "application/ms-tnef": ".dat",
    "application/vnd.ms-tnef": ".dat",
    "application/octet-stream": ".bin",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
    "image/svg+xml": ".svg",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "image/x-icon": ".ico",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/ogg": ".ogg",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/amr": ".amr",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/webm": ".webm",
    "video/mpeg": ".mpeg",
    "video/3gpp": ".3gp",
}
_RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
)
_UNSAFE = re.compile(r'[<>:"|?*\\/\x00-\x1f\x7f]')
_SPACES = re.compile(r"\s+")
MAX_FILENAME_BYTES = 255


def extension_for(content_type: str) -> str:
    """A file extension for a content type (".bin" when unknown)."""
    return _EXTENSIONS.get(content_type, ".bin")


def safe_filename(name: str, content_type: str = "application/octet-stream", fallback: str = "attachment") -> str:
    """A filename that is safe on any file system and object store, keeping what the sender meant."""
    name = unicodedata.normalize("NFC", name or "")
    # Only the last component of a path: "C:\\Users\\x\\a.pdf" and "../../etc/passwd" lose their directories.
    name = re.split(r"[\\/]", name)[-1]
    # Control characters and format characters (Unicode category C*: bidi overrides, zero-width joiners)
    # can disguise an extension; they carry nothing a filename needs.
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = _UNSAFE.sub("_", name)
    name = _SPACES.sub(" ", name).strip()
    # Leading dots hide files and make "..", trailing dots and spaces are dropped by Windows.
    name = name.lstrip(". ").rstrip(". ")
    if not name:
        name = fallback + extension_for(content_type)
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if stem.split(".")[0].lower() in _RESERVED_NAMES:
        name = "_" + name
        stem = "_" + stem
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_FILENAME_BYTES:
        suffix = ("." + ext) if dot and len(ext.encode("utf-8")) <= 16 else ""
        budget = MAX_FILENAME_BYTES - len(suffix.encode("utf-8"))
        stem_bytes = (stem if suffix else name).encode("utf-8")[:budget]
        name = stem_bytes.decode("utf-8", "ignore").rstrip(". ") + suffix
    return name


def raw_filename(part: Part, *, location: bool = False) -> str | None:
    """The filename the sender gave the part, decoded, or ``None``."""
    disposition = part.headers.text("content-disposition")
    if disposition:
        params = parse_params(disposition, part.headers.hint).params
        name = params.get("filename")
        if name and name.strip():
            return name.strip()
    name = part.params.get("name")
    if name and name.strip():
        return name.strip()
    if not location:
        return None
    # Some mailers name the file only in Content-Location (RFC 2557 §4.2), as a bare name or a URL; it
    # names a file but does not make a text part an attachment, so only naming asks for it.
    value = part.headers.get("content-location")
    if value:
        last = value.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].strip()
        if "." in last and ":" not in last:
            return last
    return None


def disposition(part: Part) -> str:
    """``attachment``, ``inline`` or ``""`` (not given)."""
    value = part.headers.text("content-disposition")
    if not value:
        return ""
    head = value.split(";", 1)[0].strip().lower()
    return head if head in ("attachment", "inline") else ("attachment" if "attach" in head else head)


def content_id(part: Part) -> str | None:
    value = part.headers.get("content-id")
    if not value:
        return None
    value = value.strip().strip("<>").strip()
    return value or None
