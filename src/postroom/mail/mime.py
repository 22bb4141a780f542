"""The MIME tree of a message, found by scanning bytes (RFC 2045, RFC 2046, RFC 5322).

Why not :mod:`email.feedparser`: it feeds every line of every part through Python code, so a 2 MB base64
attachment costs 27,000 loop turns before anyone has asked for it. Here the header block is read line by line
(it is small) and a multipart body is cut at its boundary lines with ``bytes.find``, which runs in C. Bodies
stay undecoded bytes until someone needs them. The rules where mail breaks follow the standard library's
feedparser, so that broken mail is understood the same way everyone else understands it:

- a line that is neither a header nor a continuation ends the header block and starts the body;
- a boundary line is ``--boundary`` with optional ``--`` and trailing whitespace (RFC 2046 §5.1.1);
- the line break before a boundary line belongs to the boundary, not to the part;
- a missing close boundary, an undeclared boundary, or a boundary that never appears are recorded as
  defects, and the body is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from postroom.mail.headers import Headers, parse_params
from postroom.mail.transfer import decode_transfer, normalize_cte

MAX_DEPTH = 32  # nesting beyond this is an attack or a loop, not a message
MAX_PARTS = 2000

_HEADER_LINE = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
# A header field and its continuation lines (none of them blank), ending in LF.
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:[ \t]*([^\n]*(?:\n[ \t]+[^\s][^\n]*)*)\n")
_CONTENT_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_GUESS_BOUNDARY = re.compile(rb"^--([^\s]{4,100}?)(?:--)?[ \t]*\r?$", re.MULTILINE)


@dataclass(slots=True)
class Part:
    """One node of the MIME tree: a message, a multipart container or a leaf."""

    headers: Headers
    body: bytes  # still transfer-encoded; for multiparts the whole body including boundaries
    content_type: str  # lower-case "type/subtype"
    params: dict[str, str]
    children: list[Part] = field(default_factory=list)
    message: Part | None = None  # the enclosed message of a message/rfc822 part
    defects: list[str] = field(default_factory=list)
    depth: int = 0

    @property
    def maintype(self) -> str:
        return self.content_type.partition("/")[0]

    @property
    def is_multipart(self) -> bool:
        return bool(self.children) or (self.content_type.startswith("multipart/") and not self.body)

    @property
    def charset(self) -> str | None:
        return self.params.get("charset")

    @property
    def cte(self) -> str:
        return normalize_cte(self.headers.text("content-transfer-encoding"))

    def decoded(self) -> bytes:
        """The body with its transfer encoding undone (defects are recorded on the part)."""
        result = decode_transfer(self.body, self.cte)
        if result.defect:
            self.defects.append(result.defect)
        return result.data

    def walk(self) -> list[Part]:
        """This part and every part below it, depth first, attached messages included."""
        out: list[Part] = []
        stack: list[Part] = [self]
        while stack:
            part = stack.pop()
            out.append(part)
            if part.message is not None:
                stack.append(part.message)
            stack.extend(reversed(part.children))
        return out


_HEADER_WINDOW = 65536


def _blank_line(data: bytes, limit: int) -> tuple[int, int]:
    """Positions of the first CRLF blank line and of an LF blank line before it, within ``limit``."""
    end_crlf = data.find(b"\n\r\n", 0, limit)
    end = data.find(b"\n\n", 0, limit if end_crlf == -1 else end_crlf)
    return end_crlf, end


def _fast_fields(block: bytes) -> list[tuple[str, bytes]] | None:
    """Every line of a well-formed header block matched in one C-level scan, or ``None`` to go slowly.

    Anything unusual (an mbox "From " line, a line that is no header, a blank continuation line) makes
    the scan fail to cover the block, and the line-by-line reader below handles it with its defects.
    """
    fields: list[tuple[str, bytes]] = []
    pos = 0
    for match in _FIELD.finditer(block):
        if match.start() != pos:
            return None
        value = match.group(2)
        if b"\r" in value:
            value = value.replace(b"\r\n", b"\n").rstrip(b"\r")
        fields.append((match.group(1).decode("ascii"), value))
        pos = match.end()
    return fields if pos == len(block) else None


def _split_header_block(data: bytes) -> tuple[list[tuple[str, bytes]], int, list[str]]:
    """Read header fields from the start of ``data``; return them, where the body starts, and defects."""
    fields: list[tuple[str, bytes]] = []
    defects: list[str] = []
    # Find the blank line that ends the headers without scanning a large body: line breaks are frequent
    # in a base64 body, which makes searching for a short pattern slow, and headers are short.
    end_crlf, end = _blank_line(data, min(len(data), _HEADER_WINDOW))
    if end_crlf == -1 and end == -1 and len(data) > _HEADER_WINDOW:
        end_crlf, end = _blank_line(data, len(data))
    if end_crlf != -1 and end == -1:
        end, sep = end_crlf, 3
    else:
        sep = 2
    block_end = len(data) if end == -1 else end + 1
    body_start = len(data) if end == -1 else end + sep
    if end != -1:
        fast = _fast_fields(data[:block_end])
        if fast is not None:
            return fast, body_start, defects
    if data.startswith((b"\n", b"\r\n")):
        # An empty header block: the body starts after the first line break.
        return fields, data.find(b"\n") + 1, defects
    pos = 0
    first = True
    for line in data[:block_end].split(b"\n"):
        line_len = len(line) + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            pos += line_len
            continue
        head = line[0]
        if head in (0x20, 0x09):
            if not line.strip():
                # A continuation line of only whitespace (RFC 5322 §4.2 obsolete syntax) adds nothing.
                pos += line_len
                continue
            if fields:
                name, value = fields[-1]
                fields[-1] = (name, value + b"\n" + line)
            else:
                defects.append("first header line is a continuation line")
        elif first and line.startswith(b"From "):
            # The mbox envelope line ("From sender date") is not a header (RFC 4155).
            pass
        else:
            match = _HEADER_LINE.match(line)
            if match is not None:
                fields.append((match.group(1).decode("ascii"), line[match.end() :].lstrip(b" \t")))
            elif line.startswith(b":"):
                defects.append("header line without a name")
            elif line.startswith(b"From "):
                defects.append("misplaced envelope line in headers")
            else:
                # Not a header: the sender forgot the blank line, and this is the body's first line.
                defects.append("missing blank line between headers and body")
                return fields, pos, defects
        first = False
        pos += line_len
    return fields, body_start, defects


def _find_boundaries(body: bytes, boundary: bytes) -> tuple[list[tuple[int, int]], int | None]:
    """Delimiter lines of ``boundary`` in ``body``: (line start, next line start) pairs, and the close line's."""
    delim = b"--" + boundary
    dlen = len(delim)
    found: list[tuple[int, int]] = []
    close: int | None = None
    start = 0
    n = len(body)
    while True:
        idx = body.find(delim, start)
        if idx == -1:
            break
        start = idx + dlen
        if idx and body[idx - 1] != 0x0A:
            continue
        eol = body.find(b"\n", idx)
        next_line = n if eol == -1 else eol + 1
        rest = body[idx + dlen : n if eol == -1 else eol].rstrip(b"\r \t")
        if rest == b"--":
            close = idx
            found.append((idx, next_line))
            break
        if rest:
            continue  # a longer boundary that starts with this one
        found.append((idx, next_line))
    return found, close


def _line_break_before(body: bytes, idx: int) -> int:
    """Where the part before a boundary line ends: the line break before the boundary belongs to it."""
    if idx >= 2 and body[idx - 2 : idx] == b"\r\n":
        return idx - 2
    if idx >= 1 and body[idx - 1] == 0x0A:
        return idx - 1
    return idx


class _Budget:
    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts = 0


def _content_type(headers: Headers, default: str) -> tuple[str, dict[str, str], list[str]]:
    text = headers.text("content-type")
    if text is None:
        return default, {}, []
    parsed = parse_params(text, headers.hint)
    ctype = parsed.value.lower()
    defects = list(parsed.defects)
    if not _CONTENT_TYPE.fullmatch(ctype):
        if ctype == "text" or ctype == "text/":
            ctype = "text/plain"
        elif ctype.rstrip(";").strip() and _CONTENT_TYPE.fullmatch(ctype.rstrip(";").strip()):
            ctype = ctype.rstrip(";").strip()
        else:
            # RFC 2045 §5.2: an unreadable Content-Type means text/plain; charset=us-ascii.
            defects.append(f"invalid Content-Type {parsed.value[:60]!r}")
            ctype = "text/plain"
    return ctype, parsed.params, defects


def parse_part(
    data: bytes,
    *,
    depth: int = 0,
    default_type: str = "text/plain",
    hint: str | None = None,
    budget: _Budget | None = None,
) -> Part:
    """Parse a message or body part (headers, blank line, body) into a :class:`Part` tree. Never raises."""
    budget = budget or _Budget()
    budget.parts += 1
    fields, body_start, defects = _split_header_block(data)
    headers = Headers(fields, hint)
    ctype, params, ct_defects = _content_type(headers, default_type)
    charset = params.get("charset")
    if charset:
        headers.hint = charset
    defects.extend(ct_defects)
    part = Part(headers, data[body_start:], ctype, params, defects=defects, depth=depth)
    if depth >= MAX_DEPTH or budget.parts >= MAX_PARTS:
        if ctype.startswith(("multipart/", "message/")):
            part.defects.append("nesting too deep; the rest is kept as one opaque part")
            part.content_type = "application/octet-stream"
        return part
    if ctype.startswith("multipart/"):
        _parse_multipart(part, depth, budget)
    elif ctype in ("message/rfc822", "message/global", "message/news"):
        inner = part.body
        cte = part.cte
        if cte in ("base64", "quoted-printable"):
            # RFC 2046 §5.2.1 forbids encoding a message/rfc822 body; senders do it anyway.
            part.defects.append(f"{cte} on a message/rfc822 part")
            inner = decode_transfer(inner, cte).data
        if inner.strip():
            part.message = parse_part(inner, depth=depth + 1, budget=budget)
    return part


def _parse_multipart(part: Part, depth: int, budget: _Budget) -> None:
    body = part.body
    boundary_text = part.params.get("boundary", "")
    boundary = boundary_text.encode("utf-8", "surrogateescape")
    if not boundary:
        guessed = _GUESS_BOUNDARY.search(body)
        if guessed is None:
            part.defects.append("multipart without boundary; kept as text")
            part.content_type = "text/plain"
            return
        boundary = guessed.group(1)
        part.defects.append("multipart without boundary parameter; boundary guessed from the body")
    delimiters, close = _find_boundaries(body, boundary)
    if not delimiters and boundary != boundary.strip():
        delimiters, close = _find_boundaries(body, boundary.strip())
    if not delimiters:
        part.defects.append("multipart boundary never appears; body kept as text")
        part.content_type = "text/plain"
        return
    if close is None:
        part.defects.append("multipart close boundary missing")
    child_default = "message/rfc822" if part.content_type == "multipart/digest" else "text/plain"
    openers = [d for d in delimiters if d[0] != close]
    for i, (_, content_start) in enumerate(openers):
        if i + 1 < len(delimiters):
            content_end = _line_break_before(body, delimiters[i + 1][0])
        else:
            content_end = len(body)
        if content_start > content_end:
            content_start = content_end
        child = parse_part(
            body[content_start:content_end],
            depth=depth + 1,
            default_type=child_default,
            hint=part.headers.hint,
            budget=budget,
        )
        part.children.append(child)
        if budget.parts >= MAX_PARTS:
            part.defects.append(f"more than {MAX_PARTS} parts; the rest is ignored")
            break


def parse_tree(raw: bytes) -> Part:
    """The MIME tree of a whole message. Never raises."""
    if raw.find(b"\n", 0, 65536) == -1 and b"\r" in raw:
        # Old Mac line endings (CR alone): RFC 5322 wants CRLF; the standard library accepts CR too.
        raw = raw.replace(b"\r", b"\n")
    return parse_part(raw)
