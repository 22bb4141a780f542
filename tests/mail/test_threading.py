from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import pytest

from postroom.mail.compose import compose
from postroom.mail.model import Address, OutgoingMail
from postroom.mail.parse import ParseOptions, parse_message
from postroom.mail.threading import (
    conversation_id_from_token,
    find_reply_token,
    is_own_message_id,
    make_message_id,
    make_reply_token,
    make_thread_index,
    normalize_subject,
    plus_address,
    read_reply_token,
    subject_key,
    thread_index_root,
    token_from_address,
)

KEY = b"0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("conversation_id", [0, 1, 42, 123_456_789, 2**40])
def test_reply_tokens_round_trip(conversation_id: int) -> None:
    token = make_reply_token(conversation_id, KEY)
    # Local-part and URL safe, and survives MTAs that change case.
    assert re.fullmatch(r"[0-9a-z]+", token)
    assert len(token) <= 23
    assert read_reply_token(token, KEY) == conversation_id
    assert read_reply_token(token.upper(), KEY) == conversation_id


def test_reply_tokens_are_signed() -> None:
    token = make_reply_token(42, KEY)
    assert read_reply_token(token, b"another key") is None
    forged = make_reply_token(43, KEY)[:-10] + token[-10:]
    assert read_reply_token(forged, KEY) is None
    assert read_reply_token("not-a-token", KEY) is None
    assert read_reply_token("", KEY) is None
    assert conversation_id_from_token(None, KEY) is None


def test_plus_address() -> None:
    token = make_reply_token(7, KEY)
    address = plus_address("Support@Example.COM", token)
    assert address == f"Support+{token}@example.com"
    assert token_from_address(address, KEY) == token
    assert token_from_address(address.upper(), KEY) == token
    assert token_from_address("support@example.com", KEY) is None


def test_message_ids_carry_tokens() -> None:
    token = make_reply_token(99, KEY)
    first = make_message_id("example.com", token)
    assert "<" not in first and first.endswith("@example.com")
    assert make_message_id("example.com", token) != first
    assert find_reply_token([], ["unrelated@x", first], KEY) == token
    assert is_own_message_id(first, frozenset({"example.com"}))
    assert not is_own_message_id(first, frozenset({"other.example"}))
    assert not is_own_message_id("CAF=abc@mail.gmail.com", frozenset({"gmail.com"}))
    with pytest.raises(ValueError):
        make_message_id("bad domain>")


def test_a_reply_finds_its_token_in_the_recipients_or_in_the_references() -> None:
    token = make_reply_token(5, KEY)
    options = ParseOptions(reply_token_key=KEY)
    to_plus = parse_message(
        f"From: a@x.example\r\nTo: Support <{plus_address('support@example.com', token)}>\r\n"
        "Subject: Re: hi\r\n\r\nthanks\r\n".encode(),
        options,
    )
    assert to_plus.reply_token == token
    ours = make_message_id("example.com", token)
    by_reference = parse_message(
        f"From: a@x.example\r\nTo: support@example.com\r\nIn-Reply-To: <{ours}>\r\n\r\nthanks\r\n".encode(), options
    )
    assert by_reference.reply_token == token
    forged = parse_message(b"From: a@x.example\r\nTo: support+abcdefghijklmnop@example.com\r\n\r\nhi\r\n", options)
    assert forged.reply_token is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: Order 123", "Order 123"),
        ("RE: RE: Re: Order 123", "Order 123"),
        ("AW: WG: Rechnung", "Rechnung"),  # German
        ("Antw: Factuur", "Factuur"),  # Dutch
        ("SV: VS: Faktura", "Faktura"),  # Swedish / Danish / Norwegian
        ("VS: Lasku", "Lasku"),  # Finnish
        ("Réf : Rép : TR: Commande", "Commande"),  # French
        ("RV: Pedido", "Pedido"),  # Spanish
        ("ENC: RES: Pedido", "Pedido"),  # Portuguese
        ("R: I: Ordine", "Ordine"),  # Italian
        ("Odp: PD: Zamówienie", "Zamówienie"),  # Polish
        ("YNT: İLT: Sipariş", "Sipariş"),  # Turkish
        ("ΑΠ: ΣΧΕΤ: Παραγγελία", "Παραγγελία"),  # Greek
        ("Ответ: Отв: Заказ", "Заказ"),  # Russian
        ("回复: 转发: 订单", "订单"),  # Chinese (simplified)
        ("回覆：轉寄：訂單", "訂單"),  # Chinese (traditional, full-width colon)
        ("返信: 転送: 注文", "注文"),  # Japanese
        ("답장: 전달: 주문", "주문"),  # Korean
        ("Re[2]: Re(3): Re^4: Fwd: thing", "thing"),
        ("[Ticket #12345] Re: [EXTERNAL] Printer broken", "Printer broken"),
        ("Fwd: holiday photos (fwd)", "holiday photos"),
        ("  Re:   spaced    out  ", "spaced out"),
        ("Regarding: not a prefix", "Regarding: not a prefix"),
        ("", ""),
    ],
)
def test_normalize_subject(subject: str, expected: str) -> None:
    assert normalize_subject(subject) == expected


def test_subject_key_ignores_case() -> None:
    assert subject_key("RE: Order ISSUE") == subject_key("order issue")


def test_thread_index_new_and_child() -> None:
    now = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    root = make_thread_index(None, now)
    raw = base64.b64decode(root)
    assert len(raw) == 22
    child = make_thread_index(root, now + timedelta(hours=2))
    child_raw = base64.b64decode(child)
    assert len(child_raw) == 27
    assert child_raw[:22] == raw
    grandchild = make_thread_index(child, now + timedelta(days=1))
    assert len(base64.b64decode(grandchild)) == 32
    assert thread_index_root(grandchild) == root
    assert make_thread_index("garbage!", now) != "garbage!"


def test_thread_index_written_and_read() -> None:
    parent = make_thread_index(None, datetime(2024, 1, 1, tzinfo=UTC))
    mail = OutgoingMail(
        from_=Address("support@example.com", "Support"),
        to=(Address("ann@example.org"),),
        subject="Re: Printer",
        text="Fixed.",
        thread_index=parent,
        thread_topic="Printer",
    )
    parsed = parse_message(compose(mail).raw)
    assert parsed.thread_topic == "Printer"
    assert parsed.thread_index is not None
    assert thread_index_root(parsed.thread_index) == parent
