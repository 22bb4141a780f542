"""Sanitised HTML loads nothing by itself: remote URLs are held back, fetching or scripted styles dropped."""

from __future__ import annotations

import re

import pytest

from postroom.mail.html import _css_plain, displayable_html, remote_references, sanitize_html

# What a browser would fetch on display: a loading attribute with a URL that is not cid: or data:.
_LOADS = re.compile(r"(?<![-\w])(?:src|srcset|background|poster|lowsrc|dynsrc)=\"(?!cid:|data:image/)", re.I)
_STYLES = re.compile(r'style="([^"]*)"')


def _assert_inert(html: str) -> None:
    assert not _LOADS.search(html), html
    for style in _STYLES.findall(html):
        plain = _css_plain(style.replace("&quot;", '"').replace("&amp;", "&"))
        for word in ("expression(", "behavior", "binding", "javascript:", "@import", "image-set(", "http"):
            assert word not in plain, html
        for url in re.findall(r"url\(\"?([^\")]*)", plain):
            assert url.startswith(("cid:", "data:image/")), html


@pytest.mark.parametrize(
    ("source", "url"),
    [
        (
            '<img src="https://track.example/open.gif?u=1&amp;m=2" width="1">',
            "https://track.example/open.gif?u=1&amp;m=2",
        ),
        ('<img src="http://track.example/p.gif">', "http://track.example/p.gif"),
        ('<img src="//track.example/p.gif">', "//track.example/p.gif"),
        ('<IMG SRC="HTTPS://TRACK.EXAMPLE/P.GIF">', "HTTPS://TRACK.EXAMPLE/P.GIF"),
        ('<img\nsrc = "https://track.example/p.gif">', "https://track.example/p.gif"),
        ("<img src=https://track.example/p.gif>", "https://track.example/p.gif"),
        ("<img src='https://track.example/p.gif'>", "https://track.example/p.gif"),
        # Entities decoded by the HTML parser, and a ">" inside an earlier attribute.
        ('<img alt="a > b" src="&#104;ttps://track.example/p.gif">', "https://track.example/p.gif"),
        ('<img src="&#x68;&#x74;&#x74;&#x70;s://track.example/p.gif">', "https://track.example/p.gif"),
        # A sender's own data-remote-src gives way to the real one.
        (
            '<img data-remote-src="https://decoy.example/x" src="https://track.example/p.gif">',
            "https://track.example/p.gif",
        ),
    ],
)
def test_remote_image_urls_are_held_back(source: str, url: str) -> None:
    html = sanitize_html(f"<p>Hi</p>{source}<p>Bye</p>")
    _assert_inert(html)
    assert f'data-remote-src="{url}"' in html
    assert remote_references(html) == 1
    assert "decoy" not in html


def test_always_on_whatever_the_caller_asks() -> None:
    html = sanitize_html('<img src="https://track.example/p.gif">', block_remote_images=False)
    assert html == '<img data-remote-src="https://track.example/p.gif">'


def test_parts_of_the_mail_stay_shown() -> None:
    source = '<img src="cid:logo@shop"><img src="data:image/png;base64,iVBORw0KGgo=" alt="dot">'
    html = sanitize_html(source)
    assert html == source
    assert remote_references(html) == 0


@pytest.mark.parametrize(
    "source",
    [
        '<img src="logo.png">',  # relative: no base in a mail, only the server showing it could answer
        '<img src="/api/v1/conversations">',
        '<img src="">',
        '<img data-remote-src="javascript:alert(1)">',  # what a "Load images" button would restore
        '<img data-remote-src=" java\tscript:alert(1)">',
        '<img data-remote-src="data:text/html,x">',
    ],
)
def test_urls_that_are_neither_the_mail_nor_the_web_are_dropped(source: str) -> None:
    html = sanitize_html(source)
    assert html == "<img>"


def test_a_sender_web_url_in_data_remote_src_is_kept_for_the_button() -> None:
    html = sanitize_html('<img data-remote-src="https://ok.example/a.png">')
    assert html == '<img data-remote-src="https://ok.example/a.png">'
    assert remote_references(html) == 1


SCRIPTED_STYLES = [
    "width: expression(alert(1))",
    "width: EXPRESSION(alert(1))",
    "width: e\\78pression(alert(1))",  # CSS hex escape
    "width: e\\000078pression(alert(1))",
    "width: \\65 \\78 \\70 ression(alert(1))",  # escapes ending in a space
    "width: e\\xpression(alert(1))",  # an escaped ordinary letter is the letter
    "width: ex/**/pression(alert(1))",  # a comment inside the word
    "width: ex/* a comment */pression(alert(1))",
    "width: &#101;xpression(alert(1))",  # an HTML entity, decoded before CSS sees it
    "width: ｅｘｐｒｅｓｓｉｏｎ(alert(1))",  # full-width letters
    "behavior: url(evil.htc)",
    "-moz-binding: url(https://evil.example/x.xml#x)",
    "background-color: url(javascript:alert(1))",
    "background-color: url(https://track.example/p.gif)",
    "background-color: url('//track.example/p.gif')",
    'background-color: URL( "https://track.example/p.gif" )',
    "background-color: u\\72l(https://track.example/p.gif)",
    "background-color: image-set('https://track.example/p.gif' 1x)",
    "font-family: a; width: expression(alert(1))",
]


@pytest.mark.parametrize("style", SCRIPTED_STYLES)
def test_styles_that_load_or_run_are_dropped_and_the_rest_kept(style: str) -> None:
    html = sanitize_html(f'<p style="color: red; {style}">Hello</p>')
    _assert_inert(html)
    assert "Hello" in html
    # Declarations before the bad one stay (after it, an unclosed "(" swallows the rest, as in a browser).
    assert 'style="color:red' in html


def test_plain_styles_pass_unchanged() -> None:
    source = '<p style="color:red;font-family:&quot;Calibri&quot;, sans-serif;background-color:#fff">x</p>'
    html = sanitize_html(source)
    assert html == sanitize_html(html)
    assert "Calibri" in html and "background-color:#fff" in html and "color:red" in html


def test_an_embedded_image_in_a_style_stays() -> None:
    html = sanitize_html('<p style="background-color: url(cid:bg@mail)">x</p>')
    assert "cid:bg@mail" in html


NASTY = [
    '<table background="https://t.example/bg.gif"><tr><td background="//t.example/x">a</td></tr></table>',
    '<img srcset="https://t.example/a.png 1x, https://t.example/b.png 2x">',
    '<video poster="https://t.example/p.png"></video><audio src="https://t.example/a.mp3"></audio>',
    '<svg><image href="https://t.example/a.png"/></svg><input type="image" src="https://t.example/i">',
    '<link rel="stylesheet" href="https://t.example/s.css"><style>@import "https://t.example/x.css";</style>',
    '<div style="background: url(https://t.example/bg.png)">x</div>',
    '<p style="list-style-type: url(https://t.example/x)">x</p>',
    '<object data="https://t.example/o"></object><embed src="https://t.example/e">',
    '<body background="https://t.example/b.gif"><p>x</p></body>',
]


@pytest.mark.parametrize("source", NASTY)
def test_nothing_else_loads_either(source: str) -> None:
    html = sanitize_html(source)
    _assert_inert(html)
    # Whatever survives of a URL survives only where nothing fetches it.
    outside = re.sub(r'data-remote-[a-z]+="[^"]*"', "", html)
    assert "t.example" not in outside, html


def test_sanitising_twice_changes_nothing() -> None:
    source = (
        '<p style="color:red;width:e\\78pression(1)">a</p><img src="https://t.example/p.gif" alt="x">'
        '<img src="cid:a"><a href="https://ok.example/">link</a>'
    )
    once = sanitize_html(source)
    assert sanitize_html(once) == once
    assert displayable_html(once) is once


def test_bodies_stored_before_are_held_back_when_served() -> None:
    # Sanitised HTML as older versions stored it: the remote image still in src.
    stored = '<p>Hi</p><img src="https://t.example/p.gif" width="1"><p style="width:expression(alert(1))">x</p>'
    served = displayable_html(stored)
    _assert_inert(served)
    assert 'data-remote-src="https://t.example/p.gif"' in served
    assert remote_references(served) == 1
    assert displayable_html("") == ""
    plain = "<p>Nothing to load</p>"
    assert displayable_html(plain) is plain
