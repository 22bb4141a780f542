"""Which parts of a MIME tree are the message's text, which its HTML, and which its files (RFC 2046, RFC 2387).

The walk mirrors what a mail client shows:

- ``multipart/alternative``: the first alternative that holds text/plain gives the text, the last one that
  holds text/html gives the HTML (RFC 2046 §5.1.4: alternatives go from plainest to richest); other
  renderings of the same content are not shown, but their files are kept;
- ``multipart/related``: the root (``start`` parameter, else the first part; RFC 2387 §3.2) is the body, the
  other parts are its inline resources;
- ``multipart/mixed`` and anything else: every part in order (Apple Mail interleaves text and images);
- ``message/rfc822``: the attached message is a file (the ``.eml``) and its text is shown after the
  message's own text, marked as forwarded history;
- ``message/delivery-status`` and ``text/rfc822-headers`` belong to a bounce report and are read by
  :mod:`postroom.mail.classify`, not listed as files;
- a text part is body text unless it is marked as an attachment or has a filename.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from postroom.mail.attachments import disposition, raw_filename
from postroom.mail.charsets import decode_bytes
from postroom.mail.mime import Part
from postroom.mail.transfer import find_uu_files

_REPORT_TYPES = frozenset(
    {
        "message/delivery-status",
        "message/global-delivery-status",
        "text/rfc822-headers",
        "message/global-headers",
        "message/disposition-notification",
        "message/feedback-report",
    }
)
_BODY_TYPES = frozenset({"text/plain", "text/html"})


@dataclass(slots=True)
class BodyText:
    text: str
    forwarded: bool  # inside an attached message: earlier history, not what the sender wrote now


@dataclass(slots=True)
class FileSource:
    """A file found in the message, with what is known of it before decoding."""

    part: Part | None
    filename: str | None
    content_type: str
    disposition: str
    forwarded: bool
    payload: bytes | None = None  # already decoded (uuencoded files found in text)
    content_id: str | None = None


@dataclass(slots=True)
class Bodies:
    plain: list[BodyText] = field(default_factory=list)
    html: list[BodyText] = field(default_factory=list)
    files: list[FileSource] = field(default_factory=list)
    reports: list[Part] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def own_plain(self) -> str:
        return _join(t.text for t in self.plain if not t.forwarded)

    def forwarded_plain(self) -> str:
        return _join(t.text for t in self.plain if t.forwarded)

    def own_html(self) -> str:
        return "".join(t.text for t in self.html if not t.forwarded)

    def all_plain(self) -> str:
        return _join(t.text for t in self.plain)

    def all_html(self) -> str:
        return "".join(t.text for t in self.html)


def _join(texts: object) -> str:
    out: list[str] = []
    for text in texts:  # type: ignore[attr-defined]
        if out and not out[-1].endswith("\n"):
            out.append("\n")
        out.append(text)
    return "".join(out)


def unflow(text: str, *, delsp: bool = False) -> str:
    """Join the soft line breaks of ``format=flowed`` text (RFC 3676 §4).

    A line ending in a space continues on the next line of the same quote depth; with ``DelSp=yes`` that
    space was added by the sender and goes (§4.2). A leading space that protects a line (space-stuffing,
    §4.4) is removed, and the signature separator "-- " is never flowed (§4.3).
    """
    if " \n" not in text and " \r\n" not in text:
        return text
    out: list[str] = []
    current: str | None = None
    current_depth = 0
    for raw_line in text.replace("\r\n", "\n").split("\n"):
        stripped = raw_line.lstrip(">")
        depth = len(raw_line) - len(stripped)
        body = stripped[1:] if stripped.startswith(" ") else stripped
        flowed = body.endswith(" ") and body != "-- "
        if delsp and flowed:
            body = body[:-1]
        if current is not None and depth == current_depth:
            current += body
        else:
            if current is not None:
                out.append((">" * current_depth + " " if current_depth else "") + current)
            current, current_depth = body, depth
        if not flowed:
            out.append((">" * current_depth + " " if current_depth else "") + current)
            current = None
    if current is not None:
        out.append((">" * current_depth + " " if current_depth else "") + current)
    return "\n".join(out)


def decode_text(part: Part) -> str:
    """A text part's body as text: transfer encoding undone, charset decoded or recovered."""
    data = part.decoded()
    decoded = decode_bytes(data, part.charset)
    if decoded.defect:
        part.defects.append(decoded.defect)
    return decoded.text


_FIELD_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*[ \t]*:")


def _report_prose(text: str) -> str:
    """Free text that some MTAs put into a message/delivery-status part instead of the text part before it.

    RFC 3464 §2 says that part holds only "Name: value" field blocks; the blocks that are not fields are
    the explanation a person should see.
    """
    blocks = re.split(r"\r?\n[ \t]*\r?\n", text)
    prose = [b.strip("\r\n") for b in blocks if b.strip() and not _FIELD_LINE.match(b.lstrip("\r\n"))]
    return "\n\n".join(prose)


def _is_body_text(part: Part) -> bool:
    return part.content_type in _BODY_TYPES and disposition(part) != "attachment" and raw_filename(part) is None


def _holds(part: Part, ctype: str) -> bool:
    if not part.children:
        return part.content_type == ctype and _is_body_text(part)
    return any(_holds(child, ctype) for child in part.children)


class _Walker:
    def __init__(self) -> None:
        self.out = Bodies()

    def visit(self, part: Part, forwarded: bool, texts: bool = True) -> None:
        if part.message is not None:
            self._file(part, forwarded)
            self.visit(part.message, True, texts)
            return
        if part.children:
            if part.content_type == "multipart/alternative":
                self._alternative(part, forwarded, texts)
            elif part.content_type == "multipart/related":
                self._related(part, forwarded, texts)
            else:
                for child in part.children:
                    self.visit(child, forwarded, texts)
            return
        ctype = part.content_type
        if ctype.startswith("multipart/"):
            return
        if ctype in _REPORT_TYPES and raw_filename(part) is None:
            self.out.reports.append(part)
            if texts and ctype == "message/delivery-status":
                prose = _report_prose(decode_text(part))
                if prose:
                    self.out.plain.append(BodyText(prose, forwarded))
            return
        if ctype in ("message/rfc822", "message/global") and not part.body.strip():
            return
        if _is_body_text(part):
            if texts:
                self._text(part, forwarded)
            return
        self._file(part, forwarded)

    def _alternative(self, part: Part, forwarded: bool, texts: bool) -> None:
        plain_source = next((c for c in part.children if _holds(c, "text/plain")), None)
        html_source = next((c for c in reversed(part.children) if _holds(c, "text/html")), None)
        for child in part.children:
            chosen = child is plain_source or child is html_source
            if chosen:
                self.visit(child, forwarded, texts)
            elif child.children or child.message is not None:
                # Another rendering of the same content: its text is not shown, its files are kept.
                self.visit(child, forwarded, texts=False)
            elif not child.content_type.startswith("text/") or child.content_type == "text/calendar":
                self.visit(child, forwarded, texts=False)

    def _related(self, part: Part, forwarded: bool, texts: bool) -> None:
        start = part.params.get("start", "").strip().strip("<>")
        root = part.children[0]
        if start:
            for child in part.children:
                cid = (child.headers.get("content-id") or "").strip().strip("<>")
                if cid == start:
                    root = child
                    break
        self.visit(root, forwarded, texts)
        for child in part.children:
            if child is not root:
                self.visit(child, forwarded, texts)

    def _text(self, part: Part, forwarded: bool) -> None:
        text = decode_text(part)
        if part.content_type == "text/plain" and part.params.get("format", "").lower() == "flowed":
            text = unflow(text, delsp=part.params.get("delsp", "").lower() == "yes")
        if part.content_type == "text/plain" and "begin " in text:
            text = self._uu_files(text, forwarded)
        target = self.out.plain if part.content_type == "text/plain" else self.out.html
        target.append(BodyText(text, forwarded))

    def _uu_files(self, text: str, forwarded: bool) -> str:
        raw = text.encode("utf-8", "surrogateescape")
        files = find_uu_files(raw)
        if not files:
            return text
        kept: list[bytes] = []
        pos = 0
        for found in files:
            kept.append(raw[pos : found.start])
            pos = found.end
            self.out.files.append(
                FileSource(None, found.filename, "application/octet-stream", "attachment", forwarded, found.data)
            )
        kept.append(raw[pos:])
        return b"".join(kept).decode("utf-8", "surrogateescape")

    def _file(self, part: Part, forwarded: bool) -> None:
        name = raw_filename(part, location=True)
        self.out.files.append(FileSource(part, name, part.content_type, disposition(part), forwarded))


def find_bodies(root: Part) -> Bodies:
    """Walk a parsed tree and sort its parts into text, HTML, files and report parts."""
    walker = _Walker()
    walker.visit(root, False)
    return walker.out
