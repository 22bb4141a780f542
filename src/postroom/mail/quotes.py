"""Splitting a plain-text body into what the sender newly wrote, their signature, and the quoted history.

Every line gets a kind, and rules over the sequence of kinds decide what is history:

===  ===================================================================================================
E    empty line
D    delimiter: ``--`` (RFC 3676 §4.3 signature separator), ``____`` (Outlook), ``-----``, ``~~~``, ``***``
S    a mobile client's line ("Sent from my iPhone", "Von meinem iPhone gesendet", "Get Outlook for iOS")
B    the start of earlier mail: "On … wrote:" in many languages (wrapped over several lines or not),
     "-----Original Message-----", "Begin forwarded message:", and Outlook's "From: … Sent: …" blocks
H    the other lines of such a header block
Q    a quoted line (``>``, ``|``, supercite ``JD>``)
T    anything else: text
===  ===================================================================================================

The rules (the same ones the best helpdesks and Discourse's email_reply_trimmer apply, which the test corpus
encodes): the first delimiter ends the reply; mobile lines at the end of the reply are signature; history at
the very top of a message (a forward without comment, or a reply written below the quote) is skipped to the
first text; history that starts after the text and runs to the end is cut; quotes with text after them are
an inline answer and stay; leftover attribution lines are removed. Nothing is thrown away: what is not
reply text is returned as signature or quoted text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache

from postroom.mail.model import ReplyParts
from postroom.mail.phrases import (
    ATTRIBUTION_BARE,
    ATTRIBUTION_OPENED,
    ATTRIBUTION_START,
    FORWARD_BANNERS,
    HEADER_ANY,
    HEADER_FROM,
    MOBILE_SIGNATURE,
    NUMERIC_DATE_ATTRIBUTION,
    ORIGINAL_MESSAGE,
    WROTE_SEARCH,
    WROTE_STEMS,
)
from postroom.mail.signatures import split_signature

_QUOTE = re.compile(r"^[ \t]*(?:>|\|(?:[ \t]|$)|[A-Za-z]{1,3}>)")
_DELIMITER = re.compile(r"^[ \t]*(?:ᐧ|[-_~=+*#]{2,}|[-_~=+*#]\s(?:[-_~=+*#]\s?){2,})[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^[ \t]*={3,}[ \t]*$")
_FENCE = re.compile(r"^[ \t]*(?:```|~~~)")
# Attributions wrap over at most this many lines (Gmail wraps long names and addresses at 78 columns).
_ATTRIBUTION_SPAN = 6


def _one_line(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """The pattern as a multi-line scanner whose matches cannot run over a line break.

    ``\\s`` becomes "space or tab" (inside and outside character classes) and ``^``/``$`` match at every
    line, so one C-level ``finditer`` over the whole body replaces a Python loop of matches per line.
    """
    out: list[str] = []
    source = pattern.pattern
    in_class = False
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "\\" and i + 1 < len(source):
            pair = source[i : i + 2]
            if pair == "\\s":
                out.append(" \\t" if in_class else "[ \\t]")
            else:
                out.append(pair)
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class and out and out[-1] != "[":
            in_class = False
        out.append(ch)
        i += 1
    return re.compile("".join(out), (pattern.flags | re.MULTILINE) & ~re.DOTALL)


_DELIMITER_LINES = _one_line(_DELIMITER)
_BANNER_LINES = _one_line(ORIGINAL_MESSAGE)
_FORWARD_LINES = _one_line(FORWARD_BANNERS)
_MOBILE_LINES = _one_line(MOBILE_SIGNATURE)
_HEADER_LINES = _one_line(HEADER_ANY)
_START_LINES = _one_line(ATTRIBUTION_START)
_ADDRESS_COLON_LINES = re.compile(r">[ \t]*[:：][ \t]*$", re.MULTILINE)
# Gmail in Russian and other locales writes no verb: "пн, 4 мар. 2024 г. в 10:12, Name <a@b>:".
_DATED_ADDRESS_COLON = re.compile(r"^.{0,200}\d{1,2}[:.]\d{2}.{0,200}<[^<>\s]+@[^<>\s]+>\s*[:：]\s*$")
_NUMERIC_LINES = re.compile(r"^[ \t>*]*\d{4}(?:[-/.]|年|년)", re.MULTILINE)


class _Scan:
    """The body's text lines (quotes and blank lines left out) joined, to be searched in one pass."""

    __slots__ = ("index", "starts", "text")

    def __init__(self, lines: list[str], kinds: list[str]) -> None:
        self.index = [i for i, kind in enumerate(kinds) if kind == "T"]
        picked = [lines[i] for i in self.index]
        self.text = "\n".join(picked)
        self.starts = [0]
        for line in picked[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def hits(self, pattern: re.Pattern[str]) -> set[int]:
        """Indices (into the whole body's lines) of the lines where ``pattern`` matches."""
        if not self.index:
            return set()
        return {self.index[bisect_right(self.starts, m.start()) - 1] for m in pattern.finditer(self.text)}


@lru_cache(maxsize=64)
def _stem_pattern(stems: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(stem) for stem in stems), re.IGNORECASE)


def _classify(text: str, lines: list[str]) -> list[str]:
    kinds: list[str] = []
    for line in lines:
        head = line.lstrip()[:1]
        if not head:
            kinds.append("E")
        elif (head in ">|" or ">" in line[:5]) and _QUOTE.match(line):
            kinds.append("Q")
        else:
            kinds.append("T")
    scan = _Scan(lines, kinds)
    for index in scan.hits(_MOBILE_LINES):
        kinds[index] = "S"
    for pattern in (_BANNER_LINES, _FORWARD_LINES):
        for index in scan.hits(pattern):
            kinds[index] = "B"
    for index in scan.hits(_DELIMITER_LINES):
        if kinds[index] in ("T", "S"):
            kinds[index] = "D"
    if "```" in text or "~~~" in text:
        # Inside a fenced code block every line is text ("####" there is code, not a delimiter).
        in_fence = False
        for i, line in enumerate(lines):
            if _FENCE.match(line):
                in_fence = not in_fence
                kinds[i] = "T"
            elif in_fence and kinds[i] != "E":
                kinds[i] = "T"
    candidates = scan.hits(_START_LINES) | scan.hits(_NUMERIC_LINES) | scan.hits(_ADDRESS_COLON_LINES)
    lowered = scan.text.lower()
    stems = tuple(stem for stem in WROTE_STEMS if stem in lowered)
    if stems:
        candidates |= scan.hits(_stem_pattern(stems))
    if candidates:
        _mark_attributions(lines, kinds, sorted(candidates))
    headers = scan.hits(_HEADER_LINES)
    if len(headers) >= 2:
        _mark_header_blocks(lines, kinds, headers)
    for i, kind in enumerate(kinds):
        # A line of "=" under a line of text is a Markdown/setext heading, not a delimiter.
        if kind == "D" and i and kinds[i - 1] == "T" and _SETEXT_UNDERLINE.match(lines[i]):
            kinds[i] = "T"
    return kinds


def _window(lines: list[str], kinds: list[str], i: int) -> tuple[str, int] | None:
    """Join line ``i`` with the lines that continue it up to the one holding the "wrote" verb.

    Gmail and Outlook wrap long attributions ("On …, Name <\naddress> wrote:"), sometimes with blank
    lines in between or with the closing ``> wrote:`` looking like a quote.
    """
    parts: list[str] = []
    for j in range(i, min(len(lines), i + _ATTRIBUTION_SPAN)):
        piece = lines[j].strip()
        if j > i and kinds[j] == "Q":
            # Only a short closing line such as "> wrote:" or ">:" may continue an attribution.
            if len(piece) > 30 or not piece.endswith((":", "：")):
                return None
        elif j > i and kinds[j] not in ("T", "E", "S"):
            return None
        if piece:
            parts.append(piece)
        if WROTE_SEARCH.search(piece) or (j > i and piece.endswith((":", "："))):
            return " ".join(parts), j
    return None


def _mark_attributions(lines: list[str], kinds: list[str], candidates: list[int]) -> None:
    n = len(lines)
    for i in candidates:
        if kinds[i] not in ("T", "S"):
            continue
        line = lines[i].strip()
        if len(line) > 400:
            continue
        # Gmail's numeric-date attribution may lack the verb ("2016-03-03 17:21 GMT+01:00 Name").
        numeric = line[:1].isdigit() and NUMERIC_DATE_ATTRIBUTION.match(line)
        if numeric and _numeric_attribution_plausible(lines, kinds, i):
            end = i
            # Its address may have wrapped onto the next line ("Name <\naddress>:").
            nxt = lines[i + 1].strip() if i + 1 < n else ""
            wrapped = i + 1 < n and kinds[i + 1] == "T" and nxt.endswith(":") and len(nxt) < 80
            if wrapped and not line.endswith((":", "：")):
                end = i + 1
            for k in range(i, end + 1):
                kinds[k] = "B"
            continue
        if _DATED_ADDRESS_COLON.match(line) and _quote_follows(kinds, i):
            kinds[i] = "B"
            continue
        if ATTRIBUTION_START.match(line):
            found = _window(lines, kinds, i)
            if found is not None and len(found[0]) <= 400 and ATTRIBUTION_OPENED.match(found[0]):
                for k in range(i, found[1] + 1):
                    kinds[k] = "B"
                continue
        if WROTE_SEARCH.search(line):
            # "Name <address> schrieb am Fr., 28.\nApr. 2017 um 11:53 Uhr:": the date after the verb wraps.
            joined, end = line, i
            while not joined.endswith((":", "：")) and end + 1 < n and end < i + 2:
                if kinds[end + 1] not in ("T", "Q") or len(lines[end + 1].strip()) > 80:
                    break
                end += 1
                joined = f"{joined} {lines[end].strip()}"
            if not joined.endswith((":", "：")):
                joined, end = line, i
            if ATTRIBUTION_BARE.match(joined):
                for k in range(i, end + 1):
                    kinds[k] = "B"


def _quote_follows(kinds: list[str], i: int) -> bool:
    for j in range(i + 1, min(len(kinds), i + 3)):
        if kinds[j] == "Q":
            return True
        if kinds[j] != "E":
            return False
    return False


def _numeric_attribution_plausible(lines: list[str], kinds: list[str], i: int) -> bool:
    """A numeric-date line is an attribution when history follows it (a quote, or a blank then a quote)."""
    line = lines[i]
    if "GMT" in line or "UTC" in line or "<" in line or "@" in line or line.rstrip().endswith(":"):
        return True
    for j in range(i + 1, min(len(lines), i + 3)):
        if kinds[j] == "Q":
            return True
        if kinds[j] != "E":
            return False
    return False


def _mark_header_blocks(lines: list[str], kinds: list[str], header_lines: set[int]) -> None:
    """Outlook-style ``From: / Sent: / To: / Subject:`` blocks: two or more such lines close together."""
    n = len(lines)
    i = 0
    while i < n:
        if i in header_lines and kinds[i] in ("T", "S", "B"):
            keys = 1
            has_from = bool(HEADER_FROM.match(lines[i]))
            j = i + 1
            last = i
            while j < n and j <= last + 3:
                if j in header_lines and kinds[j] in ("T", "S", "B"):
                    keys += 1
                    has_from = has_from or bool(HEADER_FROM.match(lines[j]))
                    last = j
                elif kinds[j] == "E" and keys >= 2:
                    break
                j += 1
            if keys >= 2 and has_from:
                kinds[i] = "B"
                for k in range(i + 1, last + 1):
                    if kinds[k] != "E":
                        kinds[k] = "H"
                i = last + 1
                continue
        i += 1


def _strip_block(lines: list[str]) -> str:
    """The lines without blank lines around them; the first line keeps its indentation (code, poems)."""
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    return "\n".join(lines[start:]).rstrip()


def split_reply(text: str) -> ReplyParts:
    """Split a plain-text body into reply text, signature and quoted history; all three are kept."""
    if not text or not text.strip():
        return ReplyParts("", "", "")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    kinds = _classify(text, lines)
    return _apply_rules(lines, kinds)


def _apply_rules(lines: list[str], kinds: list[str]) -> ReplyParts:
    n = len(lines)
    quoted = [False] * n  # history
    signature = [False] * n

    # 1. The first delimiter ends the reply. What follows is history when a header block or an
    #    attribution comes right after it (Outlook's "____" line above "From:"), else a signature
    #    running up to the next history.
    if "D" in kinds:
        d = kinds.index("D")
        nxt = next((k for k in range(d + 1, n) if kinds[k] != "E"), None)
        if nxt is not None and kinds[nxt] in ("B", "H"):
            for k in range(d, n):
                quoted[k] = True
        else:
            in_sig = True
            for k in range(d, n):
                if in_sig and kinds[k] in ("B", "Q") and k > d:
                    in_sig = False
                if in_sig:
                    signature[k] = True
                else:
                    quoted[k] = True
        kinds = kinds[:d]
    m = len(kinds)

    # 2. Mobile-client lines are signature when no text follows them before history or the end.
    for i in range(m - 1, -1, -1):
        if kinds[i] == "S":
            rest = kinds[i + 1 :]
            stop = next((k for k, kind in enumerate(rest) if kind in ("B", "Q", "H")), len(rest))
            if "T" not in rest[:stop]:
                signature[i] = True
                kinds[i] = "E"
            else:
                kinds[i] = "T"

    # 3. History at the very top (a forward without comment, or an answer written below the quote):
    #    skip to the first text after it.
    first = next((k for k in range(m) if kinds[k] != "E"), None)
    if first is not None and kinds[first] == "B":
        t = next((k for k in range(first, m) if kinds[k] == "T"), None)
        end = m if t is None else t
        for k in range(first, end):
            quoted[k] = True
            kinds[k] = "E"

    texts = [k for k in range(m) if kinds[k] == "T"]
    if not texts:
        # Nothing but quotes. A bare quote is the content; a quoted thread with its attributions is history.
        q_lines = [k for k in range(m) if kinds[k] == "Q"]
        if q_lines and any(WROTE_SEARCH.search(lines[k]) for k in q_lines):
            for k in range(m):
                quoted[k] = quoted[k] or not signature[k]
            return _assemble(lines, quoted, signature, n)
        for k in range(m):
            if kinds[k] == "B":
                quoted[k] = True
        return _assemble(lines, quoted, signature, n)

    # 4. History that starts after the text: the first attribution after text, when only history
    #    follows it or when it is not followed by any quote (an unquoted Outlook/Gmail history), cuts.
    first_text = texts[0]
    for b in range(first_text + 1, m):
        if kinds[b] != "B":
            continue
        after = kinds[b + 1 :]
        if "Q" not in after or all(kind in ("Q", "E", "B", "H") for kind in after):
            for k in range(b, m):
                quoted[k] = True
            kinds = kinds[:b] + ["E"] * (m - b)
            break

    # 5. Text followed by a quote block that runs to the end: the block (and the attribution lines
    #    and blank lines just above it) is history.
    last_text = max((k for k in range(m) if kinds[k] == "T"), default=-1)
    tail = kinds[last_text + 1 :]
    if any(kind == "Q" for kind in tail):
        start = last_text + 1
        while start < m and kinds[start] == "E":
            start += 1
        for k in range(start, m):
            quoted[k] = True
            kinds[k] = "E"

    # 6. Attribution lines left inside an inline answer are history too.
    for k in range(m):
        if kinds[k] in ("B", "H"):
            quoted[k] = True
    return _assemble(lines, quoted, signature, n)


def _assemble(lines: list[str], quoted: list[bool], signature: list[bool], n: int) -> ReplyParts:
    reply = [lines[k] for k in range(n) if not quoted[k] and not signature[k]]
    sig = [lines[k] for k in range(n) if signature[k]]
    hist = [lines[k] for k in range(n) if quoted[k] and not signature[k]]
    # A corporate signature or disclaimer that no delimiter marked sits at the end of the reply.
    unmarked = split_signature(_strip_block(reply))
    signature_text = "\n\n".join(p for p in (unmarked.signature, _strip_block(sig)) if p)
    return ReplyParts(unmarked.body, signature_text, _strip_block(hist))
