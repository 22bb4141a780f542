"""HTML bodies made safe to show (nh3) and readable as text (inscriptis).

Safe means: no scripts, event handlers, forms, frames or style sheets; only inline styles from a list that
cannot move content out of the message's box (no ``position``, no ``z-index``, no ``display``); links open
without a referrer; ``cid:`` URLs kept so that the API can point them at the stored inline attachments; and,
when asked, remote images neutralised (their URL kept in ``data-remote-src`` so a "show images" button can
restore them). Hidden preheaders (the preview text marketing tools hide with ``display:none``) are removed
before sanitising, because sanitising drops the ``display`` property and would make them visible.
"""

from __future__ import annotations

import re
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

_REMOTE_IMG = re.compile(r"""(<img\b[^>]*?\s)src(\s*=\s*["']?\s*(?:https?:)?//)""", re.IGNORECASE)
_HIDDEN_MARKS = ("display:none", "mso-hide:all", "visibility:hidden", "max-height:0", "hidden>", "hidden=")
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|mso-hide\s*:\s*all|visibility\s*:\s*hidden|"
    r"(?=.*max-height\s*:\s*0)(?=.*overflow\s*:\s*hidden)|(?=.*opacity\s*:\s*0(?:\.0*)?\s*(?:;|$))(?=.*font-size\s*:\s*0)",
    re.IGNORECASE,
)
_DATA_URL = re.compile(r"^\s*data:", re.IGNORECASE)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    # data: URLs are fine as images embedded in the message and nowhere else (a data: link can be a page).
    if _DATA_URL.match(value) and attribute in ("href", "src", "cite"):
        return value if tag == "img" and value.lstrip()[5:11].lower() == "image/" else None
    return value


@lru_cache(maxsize=2)
def _cleaner_options(block_remote_images: bool) -> dict[str, object]:
    attributes = {tag: set(attrs) for tag, attrs in _ATTRIBUTES.items()}
    # ammonia refuses "class" both as a free attribute and in allowed_classes; the latter wins here.
    for tag in _CLASSES:
        attributes[tag] = attributes.get(tag, set()) - {"class"}
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


def sanitize_html(html: str, *, block_remote_images: bool = False) -> str:
    """The HTML as it may be shown to an agent: safe, hidden parts removed, ``cid:`` references kept."""
    if not html or not html.strip():
        return ""
    html = remove_hidden(html)
    if block_remote_images:
        html = _REMOTE_IMG.sub(r"\1data-remote-src\2", html)
    options = _cleaner_options(block_remote_images)
    if "data:" in html:
        return nh3.clean(html, attribute_filter=_attribute_filter, **options)  # type: ignore[arg-type]
    return nh3.clean(html, **options)  # type: ignore[arg-type]


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
