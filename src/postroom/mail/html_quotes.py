"""Where quoted history and signatures start in the HTML that mail clients write.

Each client marks its reply structure in its own way; these are the marks they really emit:

- Gmail: ``<div class="gmail_quote">`` (newer: ``gmail_quote gmail_quote_container``) around the attribution
  (``gmail_attr``) and ``<blockquote class="gmail_quote">``; signatures in ``<div class="gmail_signature">``.
- Outlook desktop (Word HTML): a ``<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm
  0cm 0cm">`` (``#B5C4DF`` before Outlook 2013) holding the bold "From: / Sent: / To: / Subject:" block.
- Outlook on the web and new Outlook: ``<div id="appendonsend">``, ``<hr … tabindex="-1">`` and
  ``<div id="divRplyFwdMsg">``; signatures in ``<div id="Signature">``.
- Outlook for iOS/Android: ``<div id="mail-editor-reference-message-container">``,
  ``ms-outlook-mobile-reference-message``; signature ``<div id="ms-outlook-mobile-signature">``.
- Apple Mail and iOS Mail: ``<blockquote type="cite">`` (attribution inside it, or in the ``div`` just before);
  "Sent from my iPhone" in ``<div id="AppleMailSignature">``.
- Thunderbird: ``<div class="moz-cite-prefix">`` then ``<blockquote type="cite">``; ``moz-forward-container`` for
  forwards; signature ``<div class="moz-signature">`` / ``<pre class="moz-signature">``.
- Yahoo Mail: ``<div class="yahoo_quoted">`` (also ``ydp…yahoo_quoted``, ``id="yahoo_quoted_…"``); signature
  ``<div class="signature">`` / ``ydp…signature``.
- ProtonMail ``protonmail_quote``, Zoho ``zmail_extra``, Zimbra ``<hr id="zwchr">``, Fastmail ``id="qt"``,
  GMX/web.de ``<div name="quote">``, Samsung Email ``<!-- originalMessage -->`` (signature
  ``composer_signature``), Yahoo mobile ``ymail_android_signature``, and ``<div class="OutlookMessageHeader">``.

The HTML is cut at the first mark (by offset: an HTML parser mends the halves), and each piece is rendered
to text. The plain-text rules of :mod:`postroom.mail.quotes` then run on the reply piece, which catches
what no mark labels (an attribution in a plain ``div``, "-- " signatures, Outlook's plain header blocks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from postroom.mail.html import html_to_text
from postroom.mail.model import ReplyParts
from postroom.mail.quotes import split_reply

_QUOTE_MARKS = re.compile(
    r"""<div\b[^>]*\bclass\s*=\s*["']?[^"'>]*\bgmail_quote\b"""
    r"""|<blockquote\b[^>]*\bclass\s*=\s*["']?[^"'>]*\bgmail_quote\b"""
    r"""|<div\b[^>]*\bid\s*=\s*["']?(?:x_)?(?:appendonsend|divRplyFwdMsg)\b"""
    r"""|<div\b[^>]*\bid\s*=\s*["']?(?:x_)?mail-editor-reference-message-container\b"""
    r"""|<div\b[^>]*\bclass\s*=\s*["']?[^"'>]*\bms-outlook-mobile-reference-message\b"""
    r"""|<div\b[^>]*\bstyle\s*=\s*["'][^"'>]*border-top\s*:\s*solid\s+#(?:E1E1E1|B5C4DF)\b[^"'>]*["']"""
    r"""|<div\b[^>]*\bclass\s*=\s*["']?[^"'>]*\b(?:moz-cite-prefix|moz-forward-container)\b"""
    r"""|<blockquote\b[^>]*\btype\s*=\s*["']?cite\b"""
    r"""|<div\b[^>]*\b(?:class|id)\s*=\s*["']?[^"'>]*yahoo_quoted"""
    r"""|<(?:div|blockquote)\b[^>]*\bclass\s*=\s*["']?[^"'>]*\b(?:protonmail_quote|zmail_extra)\b"""
    r"""|<div\b[^>]*\bclass\s*=\s*["']?OutlookMessageHeader\b"""
    r"""|<hr\b[^>]*\bid\s*=\s*["']?zwchr\b"""
    r"""|<(?:div|blockquote)\b[^>]*\bid\s*=\s*["']?qt\b"""
    r"""|<div\b[^>]*\bname\s*=\s*["']?quote\b"""
    r"""|<!--\s*originalMessage\s*-->""",
    re.IGNORECASE,
)
_SIGNATURE_MARKS = re.compile(
    r"""<(?:div|span)\b[^>]*\b(?:class\s*=\s*["']?[^"'>]*\bgmail_signature\b|data-smartmail\s*=\s*["']?gmail_signature)"""
    r"""|<(?:div|pre)\b[^>]*\bclass\s*=\s*["']?[^"'>]*\bmoz-signature\b"""
    r"""|<div\b[^>]*\bid\s*=\s*["']?(?:x_)?(?:Signature|AppleMailSignature|ms-outlook-mobile-signature|"""
    r"""ymail_android_signature|ymail_ios_signature|composer_signature)\b"""
    r"""|<div\b[^>]*\bclass\s*=\s*["']?(?:[^"'>]*\s)?(?:ydp[0-9a-f]+)?signature\b""",
    re.IGNORECASE,
)
_CID = re.compile(r"""cid:([^"'\s>)]+)""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class HtmlSplit:
    """Offsets into the HTML: the signature starts at ``signature_at``, the history at ``quote_at``."""

    quote_at: int | None
    signature_at: int | None


def find_marks(html: str) -> HtmlSplit:
    quote = _QUOTE_MARKS.search(html)
    quote_at = quote.start() if quote else None
    signature = _SIGNATURE_MARKS.search(html, 0, quote_at if quote_at is not None else len(html))
    return HtmlSplit(quote_at, signature.start() if signature else None)


def cids_in_history(html: str) -> tuple[set[str], set[str]]:
    """Content-IDs referenced from the new part of the HTML, and those referenced from the quoted history."""
    if "cid:" not in html.lower():
        return set(), set()
    marks = find_marks(html)
    cut = marks.quote_at if marks.quote_at is not None else len(html)
    new = {m.group(1) for m in _CID.finditer(html, 0, cut)}
    old = {m.group(1) for m in _CID.finditer(html, cut)}
    return new, old


def split_html_reply(html: str) -> tuple[ReplyParts, str]:
    """Reply text, signature and quoted history of an HTML body, and the whole body as text."""
    marks = find_marks(html)
    if marks.quote_at is None and marks.signature_at is None:
        text = html_to_text(html)
        return split_reply(text), text
    quote_at = marks.quote_at if marks.quote_at is not None else len(html)
    sig_at = marks.signature_at if marks.signature_at is not None else quote_at
    reply_html = html[:sig_at]
    signature_html = html[sig_at:quote_at]
    quoted_html = html[quote_at:]
    reply_parts = split_reply(html_to_text(reply_html))
    signature = html_to_text(signature_html) if signature_html else ""
    quoted = html_to_text(quoted_html) if quoted_html else ""
    full = html_to_text(html)
    parts = ReplyParts(
        reply_text=reply_parts.reply_text,
        signature="\n\n".join(p for p in (reply_parts.signature, signature.strip()) if p),
        quoted_text="\n\n".join(p for p in (reply_parts.quoted_text, quoted.strip()) if p),
    )
    return parts, full
