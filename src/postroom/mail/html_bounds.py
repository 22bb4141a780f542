"""Bounds on the HTML handed to the sanitiser and the text renderer, applied in one linear pass.

nh3 (html5ever and ammonia), lxml and inscriptis build a tree and walk it; their time grows faster
than the nesting depth (nh3: 0.5 s at 10,000 levels, about a minute at 100,000), so one mail of
nested ``<div>``s could hold a worker for minutes. Real mail nests far less: clients' table layouts
reach a few dozen levels. So before any of them runs, elements nested deeper than
:attr:`HtmlLimits.max_depth` lose their tags (their text stays, in order), and HTML longer than
:attr:`HtmlLimits.max_chars` is cut. Both are listed as defects of the mail.

The pass follows the HTML5 tokenizer only as far as depth needs: comments, ``<!…>`` and ``<?…>``
open nothing; void elements (``<br>``, ``<img>`` …) open nothing; the text of raw-text elements
(``<script>``, ``<style>``, ``<textarea>`` …) holds no tags; a trailing ``/`` does not close a
non-void element (HTML5 ignores it, so ``<div/>`` opens a ``div``); and the elements whose start
tag ends an open sibling (``<p>``, ``<li>``, ``<td>`` …) do so. Where it guesses differently from a
browser, it errs towards counting deeper, which at worst drops the tags (never the text) of
pathological mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Bounded", "HtmlLimits", "bound_html"]


@dataclass(frozen=True, slots=True)
class HtmlLimits:
    """How much HTML a mail may hand to the sanitiser and the text renderer."""

    # Deeper elements lose their tags; their text is kept. Real mail nests a few dozen levels; and
    # libxml2 (lxml, under inscriptis) stops at 256 levels and loses the text beyond, so the cap
    # leaves room below that for the document's own html and body.
    max_depth: int = 200
    # Characters of HTML (all HTML bodies of a mail together); the rest is cut. 4 Mi characters
    # is far above real mail (newsletters with inline images reach a few hundred KB) and keeps
    # nh3 under a second.
    max_chars: int = 4 * 1024 * 1024


DEFAULT_HTML_LIMITS = HtmlLimits()


@dataclass(frozen=True, slots=True)
class Bounded:
    html: str
    defects: tuple[str, ...] = ()


_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
    | {"basefont", "bgsound", "frame", "keygen"}
)
# Elements whose content is text up to their end tag (HTML5 §13.1.2.1: raw text and escapable raw text).
_RAW_TEXT = frozenset({"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext"})
# A start tag of these ends an open element of the same group at the top (HTML5 optional end tags).
_SIBLINGS = {
    "p": frozenset({"p"}),
    "li": frozenset({"li"}),
    "dt": frozenset({"dt", "dd"}),
    "dd": frozenset({"dt", "dd"}),
    "tr": frozenset({"tr", "td", "th"}),
    "td": frozenset({"td", "th"}),
    "th": frozenset({"td", "th"}),
    "option": frozenset({"option"}),
}
# How far down the open elements an end tag looks for its start tag; an end tag further away is
# dropped. Bounded, so that mismatched end tags cannot make the pass quadratic.
_END_TAG_REACH = 16
# A start or end tag. Attribute text stops at "<", so that a failed match costs at most the
# distance to the next "<" (quoted values may hold it); the pass stays linear.
_TAG = re.compile(r"""<(/?)([A-Za-z][^\s/<>]*)((?:[^<>"']|"[^"]*"|'[^']*')*)>""")


@lru_cache(maxsize=len(_RAW_TEXT))
def _raw_text_end(name: str) -> re.Pattern[str]:
    return re.compile(f"</{name}", re.IGNORECASE)


def bound_html(html: str, limits: HtmlLimits = DEFAULT_HTML_LIMITS) -> Bounded:
    """``html`` with its nesting capped at ``limits.max_depth`` and its length at ``limits.max_chars``."""
    defects: list[str] = []
    if len(html) > limits.max_chars:
        html = html[: limits.max_chars]
        defects.append(f"HTML longer than {limits.max_chars} characters: the rest was cut")
    # The common case costs one count in C: a mail without that many tags cannot nest that deep.
    if html.count("<") <= limits.max_depth:
        return Bounded(html, tuple(defects))
    capped = _cap_depth(html, limits.max_depth)
    if capped is not None:
        html = capped
        defects.append(f"HTML nested deeper than {limits.max_depth} levels: the deeper tags were dropped")
    return Bounded(html, tuple(defects))


def _cap_depth(html: str, max_depth: int) -> str | None:
    """The HTML with the tags beyond ``max_depth`` dropped, or None when none had to be."""
    out: list[str] = []
    # Open elements: (name, kept); only the kept ones count towards the depth.
    stack: list[tuple[str, bool]] = []
    kept_depth = 0
    dropped = False
    copied = 0  # html[:copied] is in ``out`` already
    pos = 0
    end = len(html)
    while True:
        lt = html.find("<", pos)
        if lt < 0 or lt + 1 >= end:
            break
        follower = html[lt + 1]
        if follower == "!" or follower == "?":
            # A comment, a doctype or a processing instruction: copied as it is, opens nothing.
            if html.startswith("<!--", lt):
                close = html.find("-->", lt + 4)
                pos = end if close < 0 else close + 3
            else:
                close = html.find(">", lt + 2)
                pos = end if close < 0 else close + 1
            continue
        match = _TAG.match(html, lt)
        if match is None:
            pos = lt + 1
            continue
        pos = match.end()
        name = match.group(2).lower()
        if match.group(1):
            # An end tag: closes the nearest open element of its name (near enough), else nothing.
            for reach in range(1, min(len(stack), _END_TAG_REACH) + 1):
                if stack[-reach][0] == name:
                    kept = stack[-reach][1]
                    for _ in range(reach):
                        if stack.pop()[1]:
                            kept_depth -= 1
                    break
            else:
                kept = False
            if not kept:
                out.append(html[copied:lt])
                copied = pos
            continue
        if name in _VOID:
            continue
        closes = _SIBLINGS.get(name)
        if closes is not None and stack and stack[-1][0] in closes:
            _, was_kept = stack.pop()
            kept_depth -= was_kept
        kept = kept_depth < max_depth
        if kept:
            stack.append((name, True))
            kept_depth += 1
        else:
            stack.append((name, False))
            out.append(html[copied:lt])
            copied = pos
            dropped = True
        if name in _RAW_TEXT:
            # Its text holds no tags: skip to its end tag, which the loop then reads.
            found = _raw_text_end(name).search(html, pos) if name != "plaintext" else None
            pos = end if found is None else found.start()
    if not dropped:
        return None
    out.append(html[copied:])
    return "".join(out)
