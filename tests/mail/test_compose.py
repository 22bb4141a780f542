from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from postroom.errors import HeaderInjectionError
from postroom.mail.compose import compose, reply_subject
from postroom.mail.model import Address, Kind, OutgoingAttachment, OutgoingMail
from postroom.mail.parse import ParseOptions, parse_message

BASE = OutgoingMail(
    from_=Address("support@example.com", "Example Support"),
    to=(Address("ann@example.org", "Ann Example"),),
    subject="Re: Printer",
    text="Hello Ann,\n\nplease restart it.\n",
    date=datetime(2024, 3, 4, 10, 0, tzinfo=UTC),
)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Printer", "Re: Printer"),
        ("Re: Printer", "Re: Printer"),
        ("RE: Re: Printer", "Re: Printer"),
        ("AW: Drucker", "Re: Drucker"),
        ("Sv: Skrivare", "Re: Skrivare"),
        ("Antw: Printer", "Re: Printer"),
        ("Réf : Imprimante", "Re: Imprimante"),
        ("回复：打印机", "Re: 打印机"),
        ("Re[3]: Printer", "Re: Printer"),
        ("Fwd: Printer", "Re: Fwd: Printer"),
        ("[Ticket #7] Printer", "Re: [Ticket #7] Printer"),
        ("", "Re:"),
    ],
)
def test_reply_subject(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "Hi\r\nBcc: victim@example.net"},
        {"subject": "Hi\nX-Evil: 1"},
        {"from_": Address("support@example.com", "Support\r\nBcc: x@y.example")},
        {"to": (Address("ann@example.org\r\nBcc: x@y.example"),)},
        {"cc": (Address("c@example.org", "C\n"),)},
        {"reply_to": (Address("r@example.org\r"),)},
        {"in_reply_to": "abc@x\r\nBcc: x@y.example"},
        {"references": ("a@x", "b@x\nX-Evil: 1")},
        {"extra_headers": (("X-Ticket", "1\r\nBcc: x@y.example"),)},
        {"extra_headers": (("X-Ticket\r\nBcc", "1"),)},
        {"thread_topic": "topic\r\nX: y"},
        {"attachments": (OutgoingAttachment("a\r\n.pdf", "application/pdf", b"x"),)},
    ],
)
def test_header_injection_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(HeaderInjectionError):
        compose(replace(BASE, **change))  # type: ignore[arg-type]


def test_extra_headers_cannot_replace_structure() -> None:
    with pytest.raises(ValueError):
        compose(replace(BASE, extra_headers=(("Content-Type", "text/html"),)))
    with pytest.raises(ValueError):
        compose(replace(BASE, extra_headers=(("Bad Name", "x"),)))


def _lines(raw: bytes) -> list[bytes]:
    assert b"\n" not in raw.replace(b"\r\n", b""), "every line ends in CRLF"
    return raw.split(b"\r\n")


def test_threading_headers_and_folding() -> None:
    references = tuple(f"{i:04d}.{'x' * 60}@mail.example.org" for i in range(40))
    composed = compose(replace(BASE, in_reply_to="parent@mail.example.org", references=references))
    lines = _lines(composed.raw)
    # RFC 5322 §2.1.1: no line over 998 characters, and header lines folded near 78.
    assert max(len(line) for line in lines) <= 998
    header_block = composed.raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(len(line) <= 100 for line in header_block)
    parsed = parse_message(composed.raw)
    assert parsed.in_reply_to == "parent@mail.example.org"
    # The root of the thread and the most recent ancestors are kept (32 in all).
    assert len(composed.references) == 32
    assert composed.references[0] == references[0]
    assert composed.references[-1] == "parent@mail.example.org"
    assert parsed.references == composed.references
    assert parsed.message_id == composed.message_id


def test_bcc_goes_to_the_envelope_only() -> None:
    composed = compose(replace(BASE, bcc=(Address("audit@example.com"),), cc=(Address("boss@example.org"),)))
    assert composed.recipients == ("ann@example.org", "boss@example.org", "audit@example.com")
    assert b"audit@example.com" not in composed.raw
    assert composed.envelope_from == "support@example.com"


def test_auto_submitted_only_for_mail_no_person_wrote() -> None:
    assert b"Auto-Submitted" not in compose(BASE).raw
    automated = compose(replace(BASE, auto_submitted=True))
    assert b"\r\nAuto-Submitted: auto-generated\r\n" in automated.raw
    assert parse_message(automated.raw).classification.kind is Kind.AUTO_REPLY


def test_our_own_mail_coming_back_is_a_loop() -> None:
    composed = compose(BASE)
    options = ParseOptions(own_addresses=frozenset({"support@example.com"}))
    parsed = parse_message(composed.raw, options)
    assert parsed.classification.kind is Kind.LOOP
    assert parsed.classification.reasons
    # A customer's reply to it is not a loop (its own Message-ID is the customer's).
    reply = (
        f"From: ann@example.org\r\nTo: support@example.com\r\nMessage-ID: <r1@example.org>\r\n"
        f"In-Reply-To: <{composed.message_id}>\r\nSubject: Re: Printer\r\n\r\nThanks!\r\n"
    ).encode()
    assert parse_message(reply, options).classification.kind is Kind.HUMAN


def test_signature_placeholders() -> None:
    mail = replace(
        BASE,
        html="<p>Hello Ann,</p><p>please restart it.</p>",
        signature="{{ sender_name }}\n{{sender_email}}\nExample & Co",
        sender_name="Jürgen <Support>",
        sender_email="j@example.com",
    )
    parsed = parse_message(compose(mail).raw)
    assert parsed.text.endswith("-- \nJürgen <Support>\nj@example.com\nExample & Co")
    assert parsed.reply_text == "Hello Ann,\n\nplease restart it."
    assert parsed.signature.startswith("--")
    assert "Jürgen &lt;Support&gt;" in parsed.html
    assert "Example &amp; Co" in parsed.html


def test_html_signature() -> None:
    mail = replace(
        BASE,
        html="<html><body><p>Hi</p></body></html>",
        signature="<b>{{ sender_name }}</b><br>Support",
        sender_name="Ann & Bob",
    )
    parsed = parse_message(compose(mail).raw)
    assert "<b>Ann &amp; Bob</b>" in parsed.html
    assert parsed.text.endswith("-- \nAnn & Bob\nSupport")


def test_attachments_and_inline_images_of_any_type() -> None:
    files = (
        OutgoingAttachment("logo.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "logo@ex", True),
        OutgoingAttachment("voice note.ogg", "audio/ogg", b"OggS" + bytes(300)),
        OutgoingAttachment("clip.mp4", "video/mp4", bytes(range(256)) * 10),
        OutgoingAttachment(
            "Rechnung März 2024 – sehr langer Dateiname, der umbrochen wird.pdf", "application/pdf", b"%PDF-1.7\n"
        ),
        OutgoingAttachment("notes.txt", "text/plain", b"line one\r\nline two\nno newline at end"),
    )
    mail = replace(BASE, html='<p>See <img src="cid:logo@ex"></p>', attachments=files)
    composed = compose(mail)
    assert re.search(rb"multipart/related", composed.raw)
    parsed = parse_message(composed.raw)
    got = {a.filename: a for a in parsed.attachments}
    for sent in files:
        received = got[sent.filename]
        assert received.payload == sent.payload
        assert received.content_type == sent.content_type
    assert got["logo.png"].inline
    assert got["logo.png"].content_id == "logo@ex"
    assert not got["clip.mp4"].inline
    assert 'src="cid:logo@ex"' in parsed.html


def test_names_and_addresses_round_trip() -> None:
    mail = replace(
        BASE,
        from_=Address("support@example.com", 'Support "Team", Inc.'),
        to=(Address("jürgen@bücher.example", "Jürgen Müller"), Address("o'brien@example.ie", "O'Brien")),
        subject="Rechnung März =?utf-8?q?not-encoded?= " + "lang " * 30,
    )
    parsed = parse_message(compose(mail).raw)
    assert parsed.from_ == mail.from_
    assert parsed.to == mail.to
    assert parsed.subject == mail.subject


@pytest.mark.parametrize(
    "signature",
    [
        "-- \n{{ sender_name }}, Example Support",  # the README's example
        "--\n{{ sender_name }}, Example Support",  # saved without the trailing space
        "\n-- \r\n{{ sender_name }}, Example Support",
    ],
)
def test_a_signature_with_its_own_separator_gets_one_separator_line(signature: str) -> None:
    mail = replace(BASE, html="<p>Hello Ann,</p>", signature=signature, sender_name="Bob")
    parsed = parse_message(compose(mail).raw)
    assert parsed.text.endswith("please restart it.\n\n-- \nBob, Example Support")
    assert parsed.text.count("--") == 1
    # The HTML alternative carries one separator too.
    assert parsed.html is not None
    assert parsed.html.count("--") == 1
    assert "Bob, Example Support" in parsed.html
    assert parsed.reply_text == "Hello Ann,\n\nplease restart it."


def test_an_html_signature_with_its_own_separator_is_kept_as_written() -> None:
    mail = replace(BASE, html="<p>Hi</p>", signature="<p>-- <br><b>{{ sender_name }}</b></p>", sender_name="Bob")
    parsed = parse_message(compose(mail).raw)
    assert parsed.html is not None
    assert parsed.html.count("--") == 1
    assert "<p>-- <br><b>Bob</b></p>" in parsed.html
    assert parsed.text.endswith("-- \nBob")
    assert parsed.text.count("--") == 1


def test_a_double_dash_inside_a_signature_is_not_a_separator() -> None:
    mail = replace(BASE, signature="Bob -- Example Support\n--\nnot a separator here")
    parsed = parse_message(compose(mail).raw)
    assert parsed.text.endswith("-- \nBob -- Example Support\n--\nnot a separator here")
