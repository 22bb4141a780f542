"""Attachment downloads: file names in any script reach the browser as RFC 6266 / RFC 8187 headers."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from urllib.parse import unquote

import pytest

from postroom.api.disposition import ascii_fallback, clean_filename, content_disposition
from postroom.service import Service
from postroom.store.models import Attachment
from support import Api, Desk

PDF = b"%PDF-1.4 a small file"
_FALLBACK = re.compile(r'filename="([^"]*)"')
# RFC 8187 §3.2.1: charset, empty language, percent-encoded value of attr-chars only.
_EXTENDED = re.compile(r"filename\*=UTF-8''([A-Za-z0-9!#$&+\-.^_`|~%]+)$")


def _mail_with_file(encoded_name: str) -> bytes:
    return (
        "From: Ada <ada@customer.example>\r\nTo: support@example.test\r\nSubject: File\r\n"
        "Message-ID: <file@customer.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nHere.\r\n'
        f"--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; {encoded_name}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{base64.b64encode(PDF).decode()}\r\n--B--\r\n"
    ).encode()


def _decoded(header: str) -> str:
    """The name a client that implements RFC 6266 takes: the RFC 8187 ``filename*``, which it prefers."""
    [encoded] = _EXTENDED.findall(header)
    return unquote(encoded, encoding="utf-8", errors="strict")


def _check_header(raw_value: bytes) -> str:
    """The header is ASCII, one line, and its fallback is a clean quoted-string; returns it decoded."""
    assert raw_value.isascii()
    value = raw_value.decode("ascii")
    assert not any(ord(c) < 32 or ord(c) == 127 for c in value)
    assert value.startswith("attachment; ")
    [fallback] = _FALLBACK.findall(value)
    assert fallback and not set(fallback) & set('"\\%;/')
    assert all(" " <= c <= "~" for c in fallback)
    return value


@pytest.fixture
def desk(make_service: Callable[..., Service]) -> Desk:
    return Desk(Api(make_service(start=False)))


def _download(desk: Desk, attachment_id: int) -> bytes:
    response = desk.api.client.get(f"/api/v1/attachments/{attachment_id}")
    assert response.status_code == 200, response.text
    assert response.content == PDF
    [raw] = [v for k, v in response.headers.raw if k.lower() == b"content-disposition"]
    return raw


def test_a_chinese_name_from_mail_downloads_with_both_names(desk: Desk) -> None:
    # RFC 2231 in the mail, as clients write non-ASCII names.
    desk.deliver(_mail_with_file("filename*=utf-8''%E6%8A%A5%E5%91%8A.pdf"))
    [conversation] = desk.api.conversations()
    [attachment] = desk.api.get(f"/conversations/{conversation['id']}")["messages"][0]["attachments"]
    assert attachment["filename"] == "报告.pdf"
    value = _check_header(_download(desk, attachment["id"]))
    assert value == "attachment; filename=\"download.pdf\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf"
    assert _decoded(value) == "报告.pdf"


NAMES = [
    # (stored name, what a modern browser saves, the ASCII fallback)
    ("Résumé.pdf", "Résumé.pdf", "Resume.pdf"),
    ("报告 2024.pdf", "报告 2024.pdf", "2024.pdf"),
    ("😀 smile.png", "😀 smile.png", "smile.png"),
    ("فاتورة.pdf", "فاتورة.pdf", "download.pdf"),
    ("חשבונית מס.pdf", "חשבונית מס.pdf", "download.pdf"),
    # Right-to-left override: shown as "invoiceexe.pdf", really an .exe; the override is dropped.
    ("invoice\u202efdp.exe", "invoicefdp.exe", "invoicefdp.exe"),
    ("\u2067photo\u2069\u202egpj.scr", "photogpj.scr", "photogpj.scr"),
    ('say "hi".txt', 'say "hi".txt', "say _hi.txt"),
    ("a;b=c; filename=evil.exe", "a;b=c; filename=evil.exe", "a_b=c_ filename=evil.exe"),
    ("back\\slash.txt", "back_slash.txt", "back_slash.txt"),
    ("x\r\nSet-Cookie: a=b.txt", "x Set-Cookie: a=b.txt", "x Set-Cookie_ a=b.txt"),
    ("nul\x00bel\x07del\x7fc1\x85.txt", "nulbeldelc1.txt", "nulbeldelc1.txt"),
    ("Straße Ærø.docx", "Straße Ærø.docx", "Strasse AEro.docx"),
    ("100% sure.txt", "100% sure.txt", "100_ sure.txt"),
    ("../../etc/passwd", "_.._etc_passwd", "etc_passwd"),
    ("\u202e", "download", "download"),
]


def test_any_stored_name_gives_a_safe_header(desk: Desk) -> None:
    desk.deliver(_mail_with_file('filename="a.pdf"'))
    for name, saved, fallback in NAMES:
        with desk.api.service.db.write() as session:
            attachment = session.query(Attachment).one()
            # Whatever a parser let through: the download must not depend on the name being tidy.
            attachment.filename = name
            attachment_id = attachment.id
        value = _check_header(_download(desk, attachment_id))
        assert (_decoded(value), _FALLBACK.findall(value)) == (saved, [fallback]), repr(name)


def test_builder_keeps_plain_names_and_inline() -> None:
    assert content_disposition("a.pdf") == "attachment; filename=\"a.pdf\"; filename*=UTF-8''a.pdf"
    assert content_disposition("logo.png", "inline").startswith('inline; filename="logo.png"')
    assert clean_filename(" .. ") == "download"
    assert ascii_fallback("x" * 300 + ".pdf") == "x" * 146 + ".pdf"
