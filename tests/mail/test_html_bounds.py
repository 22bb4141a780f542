"""Bounds on HTML before the sanitiser: nesting capped by dropping tags (never text), length cut, one linear pass."""

from __future__ import annotations

import time

from postroom.mail.html import html_to_text, sanitize_html
from postroom.mail.html_bounds import HtmlLimits, bound_html
from postroom.mail.parse import parse_degraded, parse_message
from postroom.testing.hostile import make_nested_html_mail, nested_html


def test_ordinary_html_is_left_exactly_as_it_was() -> None:
    html = (
        '<table><tr><td><p>Hi<p>there<br><img src="cid:x"></td></tr></table>'
        '<script>if (a < b) { x = "<div>" }</script><!-- <div> --><div title="a>b">ok</div>'
    )
    assert bound_html(html) == bound_html(html, HtmlLimits(max_depth=4))
    assert bound_html(html).html == html and bound_html(html).defects == ()


def test_nesting_beyond_the_cap_loses_its_tags_but_not_its_text() -> None:
    html = "<div>" * 10 + "<b>deep</b>" + "</div>" * 10 + "<p>after</p>"
    bounded = bound_html(html, HtmlLimits(max_depth=4))
    assert bounded.html == "<div>" * 4 + "deep" + "</div>" * 4 + "<p>after</p>"
    assert bounded.defects == ("HTML nested deeper than 4 levels: the deeper tags were dropped",)


def test_self_closing_divs_and_unclosed_paragraphs_count_as_the_browser_counts_them() -> None:
    # HTML5 ignores "/>" on a div (each opens one), while a <p> ends the open <p> before it.
    assert bound_html("<div/>" * 10 + "x", HtmlLimits(max_depth=4)).html == "<div/>" * 4 + "x"
    paragraphs = "<p>line" * 50
    assert bound_html(paragraphs, HtmlLimits(max_depth=4)).html == paragraphs


def test_length_is_capped() -> None:
    bounded = bound_html("<p>" + "x" * 100 + "</p>", HtmlLimits(max_chars=50))
    assert len(bounded.html) == 50
    assert bounded.defects == ("HTML longer than 50 characters: the rest was cut",)


def test_a_hundred_thousand_levels_are_bounded_in_linear_time_and_sanitised_at_once() -> None:
    html = nested_html(100_000)
    started = time.perf_counter()
    bounded = bound_html(html)
    sanitized = sanitize_html(bounded.html)
    text = html_to_text(bounded.html)
    # Unbounded, nh3 alone took 80 s for this.
    assert time.perf_counter() - started < 5
    assert "deep" in sanitized and text == "deep"


def test_a_nested_mail_parses_fast_with_its_text_and_a_defect() -> None:
    started = time.perf_counter()
    parsed = parse_message(make_nested_html_mail(100_000))
    assert time.perf_counter() - started < 5
    assert parsed.text == "deep" and "deep" in parsed.html
    assert any("nested deeper than 200 levels" in d for d in parsed.defects)


def test_the_degraded_mode_keeps_headers_and_text_and_the_html_only_as_a_file() -> None:
    raw = make_nested_html_mail(1000, subject="Slow one", message_id="slow@example.test")
    parsed = parse_degraded(raw, "parsing took longer than its budget of 10 s")
    assert (parsed.subject, parsed.message_id, parsed.degraded_reason) == (
        "Slow one",
        "slow@example.test",
        "parsing took longer than its budget of 10 s",
    )
    assert parsed.html == "" and parsed.text == "deep" and parsed.reply_text == "deep"
    [body] = parsed.attachments
    assert (body.filename, body.content_type, body.inline) == ("body.html", "text/html", False)
    assert body.payload == nested_html(1000).encode()
