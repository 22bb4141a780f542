from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from postroom.mail.charsets import decode_bytes, resolve_charset
from postroom.mail.headers import decode_value, decode_words, parse_date, parse_msg_ids, parse_params


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"=?utf-8?q?caf=C3=A9?=", "café"),
        (b"=?UTF-8?B?0YHRgtCw0YLRg9GB?=", "статус"),
        # Whitespace between adjacent encoded words is dropped (RFC 2047 §6.2), folding too.
        (b"=?utf-8?q?a?= =?utf-8?q?b?=\r\n =?utf-8?q?c?=", "abc"),
        # A multi-byte character split across two words (Outlook does this).
        (b"=?utf-8?b?w6Q=?= =?utf-8?b?w7w=?=", "äü"),
        (b"=?utf-8?b?4oK=?= =?utf-8?b?rA==?=", "€"),
        # Missing padding, lower-case q, underscore as space, language suffix (RFC 2231 §5).
        (b"=?utf-8?b?SGVsbG8?=", "Hello"),
        (b"=?iso-8859-1*de?q?Gr=FC=DFe_aus_K=F6ln?=", "Grüße aus Köln"),
        # Glued to text (forbidden, common) and ordinary text kept around it.
        (b"Re:=?utf-8?q?caf=C3=A9?=!", "Re:café!"),
        (b"Order =?utf-8?q?n=C2=BA?= 5", "Order nº 5"),
        # ISO-2022-JP, GB2312 written as GBK, KS C 5601 (Outlook's EUC-KR), KOI8-R.
        (b"=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=", "テスト"),
        (b"=?gb2312?b?xOO6ww==?=", "你好"),
        (b"=?ks_c_5601-1987?B?x9GxuQ==?=", "한국"),
        (b"=?koi8-r?b?8NLJ18XU?=", "Привет"),
        # Raw UTF-8 (RFC 6532) and unknown charset labels.
        ("Grüße".encode(), "Grüße"),
        (b"=?x-unknown?q?caf=C3=A9?=", "café"),
        # Broken: no closing, stays as text; folded inside a word; spaces in Q text; raw 8-bit in Q text.
        (b"=?utf-8?q?broken", "=?utf-8?q?broken"),
        (b"=?utf-8?b?SGVs\r\n bG8=?= world", "Hello world"),
        (b"=?utf-8?q?hello world?=", "hello world"),
        ("=?iso-8859-1?q?caf\xe9?=".encode("latin-1"), "café"),
    ],
)
def test_decode_value(raw: bytes, expected: str) -> None:
    assert decode_value(raw) == expected


def test_raw_8bit_uses_the_hint_then_windows_1252() -> None:
    assert decode_value("Привет".encode("koi8-r"), "koi8-r") == "Привет"
    assert decode_value("Formação".encode("latin-1")) == "Formação"


def test_decode_words_keeps_plain_text() -> None:
    assert decode_words("no encoded words here") == "no encoded words here"


def test_parameters_rfc2231_and_rfc2047() -> None:
    value = parse_params("attachment; filename*0*=utf-8''R%C3%A9sum%C3%A9; filename*1*=%20final.pdf; size=3")
    assert value.value == "attachment"
    assert value.params == {"filename": "Résumé final.pdf", "size": "3"}
    assert parse_params('inline; filename="=?utf-8?b?0YHQutGA0LjQvdGI0L7Rgi5wbmc=?="').params == {
        "filename": "скриншот.png"
    }
    assert parse_params('text/plain; charset="utf-8"; format=flowed').params["charset"] == "utf-8"
    # RFC 2231 wins over the plain form of the same name.
    both = parse_params("attachment; filename=\"fallback.txt\"; filename*=utf-8''%E2%82%AC.txt")
    assert both.params["filename"] == "€.txt"
    # Windows paths keep their backslashes so the base name can be found.
    assert parse_params('attachment; filename="C:\\Users\\x\\a.pdf"').params["filename"] == "C:\\Users\\x\\a.pdf"


def test_msg_ids() -> None:
    assert parse_msg_ids("<a@b> <c@d>\r\n <e@f>") == ["a@b", "c@d", "e@f"]
    assert parse_msg_ids("a@b, c@d") == ["a@b", "c@d"]
    assert parse_msg_ids("") == []


def test_dates() -> None:
    assert parse_date("Mon, 01 Nov 2020 14:49:07 -0800 (PST)") == datetime(
        2020, 11, 1, 14, 49, 7, tzinfo=timezone(timedelta(hours=-8))
    )
    # No zone or -0000 (RFC 5322 §3.3): UTC.
    assert parse_date("1 Jan 2021 10:00:00") == datetime(2021, 1, 1, 10, 0, tzinfo=UTC)
    assert parse_date("Wed, 15 Dec 2010    59:10 -0500") is None
    assert parse_date("not a date") is None


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("iso-8859-1", "cp1252"),
        ("latin1", "cp1252"),
        ("UTF8", "utf-8"),
        ("gb2312", "gb18030"),
        ("ks_c_5601-1987", "cp949"),
        ("shift_jis", "cp932"),
        ("big5", "big5hkscs"),
        ('"koi8-r"', "koi8-r"),
        ("x-unknown", None),
        ("unicode_escape", None),
        ("base64", None),
    ],
)
def test_resolve_charset(label: str, codec: str | None) -> None:
    assert resolve_charset(label) == codec


def test_decode_bytes_recovers() -> None:
    # windows-1252 quotes under an iso-8859-1 label.
    assert decode_bytes(b"\x93quoted\x94", "iso-8859-1").text == "“quoted”"
    # UTF-8 under a single-byte label.
    decoded = decode_bytes("Grüße".encode(), "iso-8859-1")
    assert decoded.text == "Grüße"
    assert decoded.defect
    # No label: the bytes speak (Cyrillic with enough evidence).
    text = "Здравствуйте, ваш заказ доставлен. Спасибо за покупку!"
    assert decode_bytes(text.encode("windows-1251"), None).text == text
    # Shift_JIS text mislabelled as ISO-2022-JP.
    assert decode_bytes("お世話になっております".encode("cp932"), "iso-2022-jp").text == "お世話になっております"
