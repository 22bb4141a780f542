from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from postroom.errors import MessageParseError
from postroom.mail.parse import ParseOptions, parse_message

RECEIVED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def mail(headers: str, body: str = "Hello\r\n") -> bytes:
    return (headers.strip().replace("\n", "\r\n") + "\r\n\r\n" + body).encode("utf-8")


def test_not_mail_at_all() -> None:
    for raw in (b"", b"   \r\n  ", b"\n"):
        with pytest.raises(MessageParseError):
            parse_message(raw)
    with pytest.raises(MessageParseError):
        parse_message("text, not bytes")  # type: ignore[arg-type]


def test_garbage_still_parses_with_defects() -> None:
    parsed = parse_message(b"\x00\xff\xfe not a mail at all \x80")
    assert parsed.text
    assert parsed.defects
    assert parsed.message_id_derived


def test_dates_missing_broken_and_future_fall_back_to_received() -> None:
    options = ParseOptions(received_at=RECEIVED)
    assert parse_message(mail("From: a@x.example"), options).date == RECEIVED
    broken = parse_message(mail("From: a@x.example\nDate: Wed, 15 Dec 2010    59:10 -0500"), options)
    assert broken.date == RECEIVED
    assert any("Date" in d for d in broken.defects)
    future = parse_message(mail("Date: Fri, 01 Jan 2100 00:00:00 +0000"), options)
    assert future.date == RECEIVED
    good = parse_message(mail("Date: Tue, 30 Apr 2024 09:00:00 +0200"), options)
    assert good.date == datetime(2024, 4, 30, 7, 0, tzinfo=UTC)
    # Without received_at, "now" is used: never in the future.
    assert parse_message(mail("From: a@x.example")).date <= datetime.now(UTC) + timedelta(seconds=1)


def test_derived_message_id_is_stable_across_deliveries() -> None:
    body = "From: a@x.example\nTo: b@y.example\nSubject: no id\nDate: Tue, 30 Apr 2024 09:00:00 +0200"
    first = parse_message(mail("Received: from mx1 by mx2; Tue, 30 Apr 2024\n" + body))
    second = parse_message(mail("Received: from mx9 by mx8; Wed, 1 May 2024\nDelivered-To: c@z.example\n" + body))
    assert first.message_id_derived and second.message_id_derived
    assert first.message_id == second.message_id
    assert "<" not in first.message_id
    other = parse_message(mail(body, "Another body\r\n"))
    assert other.message_id != first.message_id


def test_references_keep_the_last_32() -> None:
    refs = " ".join(f"<r{i}@x.example>" for i in range(50))
    parsed = parse_message(mail(f"From: a@x.example\nReferences: {refs}\nIn-Reply-To: <r49@x.example>"))
    assert len(parsed.references) == 32
    assert parsed.references[-1] == "r49@x.example"
    assert parsed.in_reply_to == "r49@x.example"


def test_attachment_size_limit_is_recorded_never_dropped() -> None:
    payload = bytes(range(256)) * 100
    raw = mail(
        'From: a@x.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"',
        "--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--b\r\n"
        "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(payload).decode() + "--b--\r\n",
    )
    small = parse_message(raw, ParseOptions(max_attachment_bytes=1000))
    (skipped,) = small.attachments
    assert skipped.filename == "big.bin"
    assert skipped.size == len(payload)
    assert skipped.payload == b""
    assert skipped.skipped_reason == "larger than 1000 bytes"
    unlimited = parse_message(raw, ParseOptions(max_attachment_bytes=0))
    assert unlimited.attachments[0].payload == payload
    assert unlimited.attachments[0].skipped_reason is None


@pytest.mark.parametrize(
    ("disposition", "name"),
    [
        ("attachment; filename*=utf-8''%E2%82%AC%20invoice.pdf", "€ invoice.pdf"),
        ('attachment; filename="=?utf-8?b?0YHQutGA0LjQvdGI0L7Rgi5wbmc=?="', "скриншот.png"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="C:\\\\Users\\\\ann\\\\report.pdf"', "report.pdf"),
        ('attachment; filename="invoice\u202efdp.exe"', "invoicefdp.exe"),
        ('attachment; filename="CON.txt"', "_CON.txt"),
        ('attachment; filename="..."', "attachment-1.pdf"),
        ("attachment", "attachment-1.pdf"),
    ],
)
def test_filenames_are_safe(disposition: str, name: str) -> None:
    raw = mail(
        'From: a@x.example\nContent-Type: multipart/mixed; boundary="b"',
        f"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: {disposition}\r\n\r\n%PDF\r\n--b--\r\n",
    )
    assert parse_message(raw).attachments[0].filename == name


def test_name_only_in_content_type() -> None:
    raw = mail(
        'From: a@x.example\nContent-Type: multipart/mixed; boundary="b"',
        '--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: image/png; name="shot.png"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n",
    )
    (attachment,) = parse_message(raw).attachments
    assert attachment.filename == "shot.png"
    assert attachment.payload == b"\x89PNG\r\n\x1a\n"
    assert not attachment.inline


def test_uuencoded_file_in_a_text_body() -> None:
    encoded = "begin 644 hello.txt\r\n%:&5L;&\\`\r\n`\r\nend\r\n"
    parsed = parse_message(mail("From: a@x.example\nSubject: uu", "See the file.\r\n\r\n" + encoded))
    assert parsed.text.strip() == "See the file."
    (attachment,) = parsed.attachments
    assert attachment.filename == "hello.txt"
    assert attachment.payload == b"hello"


def test_uuencode_transfer_encoding() -> None:
    raw = mail(
        'From: a@x.example\nContent-Type: multipart/mixed; boundary="b"',
        "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename=a.txt\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\n"
        "begin 644 a.txt\r\n%:&5L;&\\`\r\n`\r\nend\r\n--b--\r\n",
    )
    assert parse_message(raw).attachments[0].payload == b"hello"


def test_forwarded_message_is_history_and_a_file() -> None:
    inner = (
        "From: Bob <bob@y.example>\r\nSubject: Original\r\nMessage-ID: <orig@y.example>\r\n"
        'Content-Type: multipart/mixed; boundary="in"\r\n\r\n--in\r\nContent-Type: text/plain\r\n\r\n'
        "The original text.\r\n--in\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        "filename=orig.pdf\r\n\r\n%PDF\r\n--in--\r\n"
    )
    raw = mail(
        'From: a@x.example\nSubject: Fwd: Original\nContent-Type: multipart/mixed; boundary="out"',
        "--out\r\nContent-Type: text/plain\r\n\r\nPlease look at this.\r\n--out\r\n"
        "Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + inner + "--out--\r\n",
    )
    parsed = parse_message(raw)
    assert parsed.reply_text == "Please look at this."
    assert "The original text." in parsed.quoted_text
    assert "The original text." in parsed.text
    eml, pdf = parsed.attachments
    assert eml.filename == "Original.eml"
    assert eml.content_type == "message/rfc822"
    # The line break before the boundary belongs to the boundary (RFC 2046 §5.1.1).
    assert eml.payload == inner.encode()[:-2]
    assert not eml.in_history
    assert pdf.filename == "orig.pdf"
    assert pdf.in_history


def test_inline_image_only_in_the_quoted_history_is_marked() -> None:
    html = (
        '<div>New text <img src="cid:new@x"></div><div class="gmail_quote">On Mon, Bob wrote:'
        '<blockquote class="gmail_quote">old <img src="cid:old@x"></blockquote></div>'
    )
    raw = mail(
        'From: a@x.example\nContent-Type: multipart/related; boundary="r"',
        f"--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
        "--r\r\nContent-Type: image/png\r\nContent-ID: <new@x>\r\n\r\nNEW\r\n"
        "--r\r\nContent-Type: image/png\r\nContent-ID: <old@x>\r\n\r\nOLD\r\n--r--\r\n",
    )
    parsed = parse_message(raw)
    by_cid = {a.content_id: a for a in parsed.attachments}
    assert not by_cid["new@x"].in_history
    assert by_cid["old@x"].in_history
    assert all(a.inline for a in parsed.attachments)
    assert parsed.reply_text == "New text"
    assert "old" in parsed.quoted_text


def test_missing_blank_line_and_continuation_first() -> None:
    parsed = parse_message(b" folded first\r\nFrom: a@x.example\r\nSubject: hi\r\nThis is the body\r\n")
    assert parsed.subject == "hi"
    assert parsed.text == "This is the body"
    assert any("blank line" in d for d in parsed.defects)


def test_old_mac_line_endings() -> None:
    parsed = parse_message(b"From: a@x.example\rSubject: cr\r\rBody line\r")
    assert parsed.subject == "cr"
    assert parsed.text == "Body line"


def test_multipart_without_close_boundary_or_with_unknown_boundary() -> None:
    unclosed = mail('Content-Type: multipart/mixed; boundary="b"', "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n")
    parsed = parse_message(unclosed)
    assert parsed.text == "hi"
    assert any("close boundary" in d for d in parsed.defects)
    no_boundary = mail("Content-Type: multipart/mixed", "--xyz123\r\nContent-Type: text/plain\r\n\r\nhey\r\n--xyz123--")
    assert parse_message(no_boundary).text == "hey"
    wrong = mail('Content-Type: multipart/alternative; boundary="nope"', "just text\r\n")
    assert parse_message(wrong).text == "just text"


def test_deep_nesting_does_not_explode() -> None:
    depth = 200
    body = ""
    for i in range(depth):
        body += f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'
    body += "Content-Type: text/plain\r\n\r\ndeep\r\n"
    parsed = parse_message(b"From: a@x.example\r\n" + body.encode())
    assert any("nesting" in d for d in parsed.defects)


def test_bad_transfer_encodings() -> None:
    for cte, payload, text in (
        ("base64;", "aGVsbG8=", "hello"),
        (" Quoted-Printable ", "caf=C3=A9", "café"),
        ("7-bit", "plain", "plain"),
        ("base64", "aGVsbG8gd29ybGQ", "hello world"),  # missing padding
        ("base64", "aGVs bG8*gd29y!bGQ=", "hello world"),  # stray characters
        ("spam", "as is", "as is"),
    ):
        raw = mail(f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: {cte}", payload)
        assert parse_message(raw).text == text, cte


def test_to_json_is_what_postroom_parse_prints() -> None:
    parsed = parse_message(mail("From: Ann <ann@x.example>\nTo: b@y.example\nSubject: Hi"))
    data = parsed.to_json()
    assert data["from"] == {"name": "Ann", "email": "ann@x.example"}
    assert data["classification"]["kind"] == "human"
    assert data["reply_text"] == "Hello"


def test_format_flowed_is_unflowed() -> None:
    body = "This line is soft \r\nbroken here.\r\n> quoted soft \r\n> line\r\n-- \r\nSig\r\n"
    raw = mail("From: a@x.example\nContent-Type: text/plain; charset=utf-8; format=flowed", body)
    parsed = parse_message(raw)
    assert parsed.text.splitlines()[:2] == ["This line is soft broken here.", "> quoted soft line"]
    assert parsed.signature == "-- \nSig"
    # DelSp=yes: the space before the break was added by the sender (RFC 3676 §4.2).
    cjk = mail("Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes", "日本語の \r\n文章です。\r\n")
    assert parse_message(cjk).text == "日本語の文章です。"
