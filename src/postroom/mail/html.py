"""HTML bodies made safe to show (nh3) and readable as text (inscriptis).

Safe means: no scripts, event handlers, forms, frames or style sheets; only inline styles from a list that
cannot move content out of the message's box (no ``position``, no ``z-index``, no ``display``); links open
without a referrer; ``cid:`` URLs kept so that the API can point them at the stored inline attachments.
Hidden preheaders (the preview text marketing tools hide with ``display:none``) are removed before
sanitising, because sanitising drops the ``display`` property and would make them visible.

Nothing in the result loads anything by itself when shown. Remote images are how senders learn that,
when and where a mail was read (tracking pixels), so every URL that a browser would fetch on display
(``src``, ``srcset``, ``background``, ``poster`` …) and that is not part of the mail (``cid:``, an
embedded ``data:image/…``) is moved to ``data-remote-<attribute>``: the HTML stays as the sender wrote it,
and a "Load images" button can move the URLs back on request (see :func:`remote_references`). This is
always on, for what is stored and for what is served, since no client may load them by default.
Inline style declarations that fetch (``url(…)`` to anything but ``cid:`` or an embedded image,
``image-set(…)``, ``@import``) or run code (``expression(…)``, ``behavior``, ``-moz-binding``,
``javascript:``) are dropped, judged on the text as a CSS parser reads it: comments removed, escapes
(``e\\78pression``) decoded, compatibility forms (full-width letters) folded, case ignored.
"""

from __future__ import annotations

import html as html_entities
import re
import unicodedata
from functools import lru_cache

import nh3

_TAGS = frozenset(nh3.ALLOWED_TAGS | {"font", "tfoot", "th", "caption", "center", "big", "address"}) - {
    "details",
    "summary",
}
_GLOBAL_ATTRIBUTES = {"style", "dir", "lang", "title", "align", "valign", "bgcolor", "width", "height"}
_ATTRIBUTES: dict[str, set[str]] = {
    "*": _GLOBAL_ATTRIBUTES,
    "a": {"href", "hreflang", "name"},
    "img": {"src", "alt", "width", "height", "border", "data-remote-src", "hspace", "vspace"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "summary", "frame", "rules"},
    "td": {"colspan", "rowspan", "nowrap", "headers", "scope", "abbr"},
    "th": {"colspan", "rowspan", "nowrap", "headers", "scope", "abbr"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value"},
    "blockquote": {"cite", "type", "class"},
    "q": {"cite"},
    "div": {"class"},
    "span": {"class"},
    "hr": {"size", "noshade"},
    "time": {"datetime"},
    "del": {"datetime", "cite"},
    "ins": {"datetime", "cite"},
}
# Classes that mark quoted history and signatures: kept so that a reader can fold them away.
_CLASSES = {
    "div": {
        "gmail_quote",
        "gmail_attr",
        "gmail_signature",
        "moz-cite-prefix",
        "moz-signature",
        "moz-forward-container",
        "yahoo_quoted",
        "protonmail_quote",
        "zmail_extra",
    },
    "blockquote": {"gmail_quote", "protonmail_quote"},
    "span": {"gmail_signature_prefix"},
}
# Inline style properties that stay inside the message's box.
_STYLE_PROPERTIES = frozenset(
    {
        "color",
        "background-color",
        "font",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "font-variant",
        "text-align",
        "text-decoration",
        "text-indent",
        "text-transform",
        "line-height",
        "letter-spacing",
        "word-spacing",
        "word-wrap",
        "word-break",
        "overflow-wrap",
        "white-space",
        "vertical-align",
        "direction",
        "unicode-bidi",
        "margin",
        "margin-top",
        "margin-right",
        "margin-bottom",
        "margin-left",
        "padding",
        "padding-top",
        "padding-right",
        "padding-bottom",
        "padding-left",
        "border",
        "border-top",
        "border-right",
        "border-bottom",
        "border-left",
        "border-color",
        "border-style",
        "border-width",
        "border-top-color",
        "border-top-style",
        "border-top-width",
        "border-right-color",
        "border-right-style",
        "border-right-width",
        "border-bottom-color",
        "border-bottom-style",
        "border-bottom-width",
        "border-left-color",
        "border-left-style",
        "border-left-width",
        "border-radius",
        "border-collapse",
        "border-spacing",
        "width",
        "height",
        "min-width",
        "max-width",
        "min-height",
        "list-style-type",
        "list-style-position",
        "table-layout",
        "caption-side",
        "empty-cells",
        "float",
        "clear",
    }
)
_URL_SCHEMES = frozenset({"http", "https", "mailto", "tel", "cid", "data"})
_CLEAN_CONTENT = frozenset(
    {
        "script",
        "style",
        "title",
        "template",
        "noscript",
        "textarea",
        "select",
        "option",
        "iframe",
        "object",
        "embed",
        "svg",
        "math",
        "frameset",
        "applet",
        "button",
    }
)

_HIDDEN_MARKS = ("display:none", "mso-hide:all", "visibility:hidden", "max-height:0", "hidden>", "hidden=")
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|mso-hide\s*:\s*all|visibility\s*:\s*hidden|"
    r"(?=.*max-height\s*:\s*0)(?=.*overflow\s*:\s*hidden)|(?=.*opacity\s*:\s*0(?:\.0*)?\s*(?:;|$))(?=.*font-size\s*:\s*0)",
    re.IGNORECASE,
)
_DATA_URL = re.compile(r"^\s*data:", re.IGNORECASE)

# Attributes whose URL a browser fetches as soon as the element is shown (HTML §4.8 embedded content,
# and the presentational ``background`` of old mail layouts). Whichever of them the allow-list above
# admits is moved to ``REMOTE_PREFIX + name`` when it points outside the mail.
_LOADING_ATTRIBUTES = ("src", "srcset", "background", "poster", "lowsrc", "dynsrc")
REMOTE_PREFIX = "data-remote-"
# nh3 serialises every attribute as name="value" with "&<> escaped (html5ever's serializer), so these
# patterns read its output exactly; they are not meant for HTML of any other origin.
_START_TAG = re.compile(r"<([a-z][a-z0-9]*)((?:\s+[^\s\"'=<>/]+(?:=\"[^\"]*\")?)*)\s*/?>")
_ATTRIBUTE = re.compile(r"\s+([^\s\"'=<>/]+)(?:=\"([^\"]*)\")?")
# What a style may hide that loads or runs something (checked again exactly in _style_danger); a
# cheap screen so that the common style="color:…" costs one search.
_STYLE_SUSPECT = (
    r"url|pression|behavio|binding|script|image|import|cross-fade|element|src\s*\(|\\|/\*|&#|&[a-z]|[^\x00-\x7f]"
)
_SUSPECT = re.compile(
    r"(?<![-\w])(?:" + "|".join(_LOADING_ATTRIBUTES) + r")\s*=(?!\s*[\"']?\s*(?:cid:|data:image/))"
    r"|(?<![-\w])style\s*=\s*(?:\"[^\"]*?|'[^']*?|[^\s\"'>]*?)(?:" + _STYLE_SUSPECT + ")",
    re.IGNORECASE,
)
_CSS_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.DOTALL)
# CSS Syntax §4.3.7: a backslash and 1-6 hex digits (one white space after them belongs to the escape),
# or a backslash and any other character standing for itself; a backslash before a newline is nothing.
_CSS_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})(?:\r\n|[ \t\r\n\f])?|(\n)|(.))", re.DOTALL)
_CSS_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")
_CSS_URL = re.compile(r"url\(([\"']?)(.*?)\1\)", re.DOTALL)
# Functions and words that load a resource or run code, in the compact form _css_plain() produces.
_CSS_DANGER = re.compile(
    r"expression\(|behaviou?r:|-moz-binding|binding:|javascript:|vbscript:|livescript:|@import|"
    r"image-set\(|image\(|cross-fade\(|element\(|src\("
)


def _is_web(value: str) -> bool:
    """Whether a URL is one a "Load images" button may fetch: http(s), or protocol-relative."""
    return _CSS_SPACE.sub("", value).lower().startswith(("http://", "https://", "//"))


def _is_local(value: str) -> bool:
    """Whether a URL is part of the mail: a ``cid:`` part (RFC 2392) or an image embedded as ``data:``."""
    compact = _CSS_SPACE.sub("", value).lower()
    return compact.startswith("cid:") or compact.startswith("data:image/")


def _css_plain(text: str) -> str:
    """CSS text as the parser reads it, compacted: comments gone, escapes decoded, forms folded, lower case."""

    def unescape(match: re.Match[str]) -> str:
        if match.group(1):
            code = int(match.group(1), 16)
            return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
        return "" if match.group(2) else match.group(3)

    text = _CSS_ESCAPE.sub(unescape, _CSS_COMMENT.sub("", text))
    # NFKC folds full-width and other compatibility letters ("ｅｘｐｒｅｓｓｉｏｎ"), which old IE accepted.
    return _CSS_SPACE.sub("", unicodedata.normalize("NFKC", text).lower())


def _style_danger(declaration: str) -> bool:
    plain = _css_plain(declaration)
    if _CSS_DANGER.search(plain):
        return True
    return any(not _is_local(match.group(2)) for match in _CSS_URL.finditer(plain)) or (
        "url(" in plain and not _CSS_URL.search(plain)
    )


def _declarations(style: str) -> list[str]:
    """The declarations of a style attribute: split at ";" outside strings, parentheses and escapes."""
    parts: list[str] = []
    depth, quote, start, i = 0, "", 0, 0
    while i < len(style):
        ch = style[i]
        if ch == "\\":
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0:
            parts.append(style[start:i])
            start = i + 1
        i += 1
    parts.append(style[start:])
    return [part for part in parts if part.strip()]


def _clean_style(escaped: str) -> str | None:
    """A style attribute's value (as serialised) without the declarations that load or run; None if none is left."""
    style = html_entities.unescape(escaped)
    declarations = _declarations(style)
    kept = [d for d in declarations if not _style_danger(d)]
    if len(kept) == len(declarations):
        # Should the split differ from a browser's, the whole value is judged as well.
        return escaped if not _style_danger(style) else None
    if not kept or _style_danger(";".join(kept)):
        return None
    return html_entities.escape(";".join(d.strip() for d in kept), quote=True)


def _block_tag(match: re.Match[str]) -> str:
    tag, attributes = match.group(1), match.group(2)
    if not attributes:
        return match.group(0)
    pairs = [(m.group(1), m.group(2)) for m in _ATTRIBUTE.finditer(attributes)]
    moved = {
        name
        for name, value in pairs
        if name in _LOADING_ATTRIBUTES and not _is_local(html_entities.unescape(value or ""))
    }
    out: list[str] = []
    changed = False
    for name, value in pairs:
        if name in moved:
            changed = True
            if not _is_web(html_entities.unescape(value or "")):
                # A relative or empty URL has no base in a mail: it could only hit the server showing it.
                continue
            name = REMOTE_PREFIX + name
        elif name.startswith(REMOTE_PREFIX) and name[len(REMOTE_PREFIX) :] in moved:
            # The sender's own data-remote-* gives way to the URL moved here.
            changed = True
            continue
        elif name == "style" and value is not None:
            cleaned = _clean_style(value)
            if cleaned != value:
                changed = True
                if cleaned is None:
                    continue
                value = cleaned
        out.append(name if value is None else f'{name}="{value}"')
    if not changed:
        return match.group(0)
    return f"<{tag}{''.join(' ' + a for a in out)}>"


def block_remote(clean_html: str) -> str:
    """nh3's output with remote URLs moved to ``data-remote-*`` and fetching or scripted styles dropped."""
    if not _SUSPECT.search(clean_html):
        return clean_html
    return _START_TAG.sub(_block_tag, clean_html)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute.startswith(REMOTE_PREFIX):
        # A held-back URL is restored by a "Load images" button: only ever a web address, never a script.
        return value if _is_web(value) else None
    # data: URLs are fine as images embedded in the message and nowhere else (a data: link can be a page).
    if _DATA_URL.match(value) and attribute in ("href", "src", "cite"):
        return value if tag == "img" and value.lstrip()[5:11].lower() == "image/" else None
    return value


@lru_cache(maxsize=1)
def _cleaner_options() -> dict[str, object]:
    attributes = {tag: set(attrs) for tag, attrs in _ATTRIBUTES.items()}
    # ammonia refuses "class" both as a free attribute and in allowed_classes; the latter wins here.
    for tag in _CLASSES:
        attributes[tag] = attributes.get(tag, set()) - {"class"}
    # A held-back URL survives sanitising again (serving re-sanitises old bodies), checked by _attribute_filter.
    for attrs in attributes.values():
        attrs.update(REMOTE_PREFIX + name for name in _LOADING_ATTRIBUTES if name in attrs)
    return {
        "tags": set(_TAGS),
        "clean_content_tags": set(_CLEAN_CONTENT),
        "attributes": attributes,
        "url_schemes": set(_URL_SCHEMES),
        "link_rel": "noopener noreferrer nofollow",
        "strip_comments": True,
        "allowed_classes": {tag: set(classes) for tag, classes in _CLASSES.items()},
        "filter_style_properties": set(_STYLE_PROPERTIES),
        "set_tag_attribute_values": {"a": {"target": "_blank"}},
    }


def remove_hidden(html: str) -> str:
    """Drop elements that the sender hid (preheaders, tracking text): ``display:none`` and friends."""
    # Substring tests in C first: the HTML parser only runs when something can be hidden.
    compact = html.lower().replace(" ", "")
    if not any(mark in compact for mark in _HIDDEN_MARKS):
        return html
    import lxml.html  # type: ignore[import-untyped]

    try:
        root = lxml.html.document_fromstring(html)
    except (ValueError, TypeError, lxml.etree.ParserError):
        return html
    removed = False
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        style = element.get("style")
        hidden = element.get("hidden") is not None
        if hidden or (style and _HIDDEN_STYLE.search(style)):
            if element.tag in ("html", "body"):
                continue
            element.drop_tree()
            removed = True
    if not removed:
        return html
    return str(lxml.html.tostring(root, encoding="unicode"))


def sanitize_html(html: str, *, block_remote_images: bool = True) -> str:
    """The HTML as it may be shown to an agent: safe, hidden parts removed, ``cid:`` references kept.

    Remote references are always held back (see the module docstring); ``block_remote_images`` is kept
    for callers that still pass it and cannot turn that off.
    """
    if not html or not html.strip():
        return ""
    html = remove_hidden(html)
    options = _cleaner_options()
    if "data:" in html or REMOTE_PREFIX in html:
        cleaned = nh3.clean(html, attribute_filter=_attribute_filter, **options)  # type: ignore[arg-type]
    else:
        cleaned = nh3.clean(html, **options)  # type: ignore[arg-type]
    return block_remote(cleaned)


def displayable_html(html: str) -> str:
    """A stored body made safe to serve: bodies stored before remote content was always held back, and
    our own outgoing HTML, are sanitised when they might load something; others are returned as they are."""
    if not html or not _SUSPECT.search(html):
        return html
    return sanitize_html(html)


def remote_references(html: str) -> int:
    """How many URLs :func:`sanitize_html` held back in ``html`` (what a "Load images" button would load)."""
    return html.count(" " + REMOTE_PREFIX)


def html_to_text(html: str) -> str:
    """A faithful plain-text rendering of an HTML body (inscriptis), hidden parts left out."""
    if not html or not html.strip():
        return ""
    from inscriptis import get_text
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.model.config import ParserConfig

    html = remove_hidden(html)
    try:
        # The "strict" profile renders block nesting without indentation, as mail clients show it.
        text = get_text(html, ParserConfig(css=CSS_PROFILES["strict"], display_links=False))
    except (ValueError, TypeError, AttributeError):
        text = re.sub(r"<[^>]*>", " ", html)
    # inscriptis pads lines to the width of tables; trailing spaces are noise in mail.
    return "\n".join(line.rstrip() for line in str(text).splitlines()).strip("\n")
