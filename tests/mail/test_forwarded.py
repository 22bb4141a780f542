"""The original recipient of a forwarded mail, from the headers each kind of forwarder leaves."""

from __future__ import annotations

import pytest

from postroom.mail.forwarded import original_recipient, read_headers, recipient_candidates

MAILBOXES = ["support@company.example", "sales@company.example"]
INBOUND = "3f9a1c0d2b7e4a5f6c8d9e0a@inbound.postroom.test"


def mail(*headers: str, body: str = "Hello\r\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


@pytest.mark.parametrize(
    "header",
    [
        # Gmail / Google Workspace forwarding: the forwarding mailbox, then the destination, space-separated.
        f"X-Forwarded-For: sales@company.example {INBOUND}",
        "X-Forwarded-To: sales@company.example",
        # Postfix local delivery and alias expansion.
        "X-Original-To: sales@company.example",
        "Delivered-To: sales@company.example",
        # A client's redirect (RFC 5322 §3.6.6).
        "Resent-To: Sales Team <sales@company.example>",
        # Forwarded as is: only the sender's own header names it.
        'To: "Sales, Company" <sales@company.example>',
        "Cc: someone@else.example, sales@company.example",
    ],
)
def test_each_forwarding_header_names_the_mailbox(header: str) -> None:
    # The forward itself was addressed to our generated address, which is none of the mailboxes.
    raw = mail("From: Ada <ada@customer.example>", f"To: {INBOUND}", header)

    assert original_recipient(raw, MAILBOXES) == "sales@company.example"


def test_forwarder_headers_outrank_what_the_sender_wrote() -> None:
    # The customer wrote to support and copied sales; the copy that reached us came through sales' rule.
    raw = mail(
        "Delivered-To: sales@company.example",
        "From: ada@customer.example",
        "To: support@company.example",
        "Cc: sales@company.example",
    )

    assert original_recipient(raw, MAILBOXES) == "sales@company.example"


def test_precedence_follows_the_header_list_not_the_order_in_the_mail() -> None:
    raw = mail(
        "Resent-To: support@company.example",
        "Delivered-To: sales@company.example",
    )

    assert original_recipient(raw, MAILBOXES) == "sales@company.example"


def test_several_values_first_matching_one_wins() -> None:
    # One Delivered-To per hop, newest on top: the forwarding address first, then the mailbox it was for.
    raw = mail(
        f"Delivered-To: {INBOUND}",
        "Delivered-To: other@company.example",
        "Delivered-To: support@company.example",
        "To: sales@company.example",
    )

    assert recipient_candidates(read_headers(raw))[:3] == [INBOUND, "other@company.example", "support@company.example"]
    assert original_recipient(raw, MAILBOXES) == "support@company.example"


def test_case_brackets_and_folding_do_not_matter_and_the_callers_spelling_is_returned() -> None:
    raw = mail(
        "To: Ada\r\n <SUPPORT@Company.Example>",
    )

    assert original_recipient(raw, ["Support@company.example"]) == "Support@company.example"
    assert original_recipient(mail("X-Original-To: <SALES@COMPANY.EXAMPLE>"), MAILBOXES) == "sales@company.example"


def test_display_names_and_encoded_words_are_not_addresses() -> None:
    # A display name that looks like an address must not decide; nor may a comma inside an encoded word.
    raw = mail(
        'To: "support@company.example" <someone@else.example>',
        "Cc: =?utf-8?q?Sales=2C_Team?= <sales@company.example>",
    )

    assert recipient_candidates(read_headers(raw)) == ["someone@else.example", "sales@company.example"]
    assert original_recipient(raw, MAILBOXES) == "sales@company.example"


def test_nothing_matching_gives_none() -> None:
    raw = mail("From: ada@customer.example", f"To: {INBOUND}")

    assert original_recipient(raw, MAILBOXES) is None
    assert original_recipient(raw, []) is None
    assert original_recipient(b"", MAILBOXES) is None


def test_the_body_is_never_read() -> None:
    raw = mail("To: undisclosed-recipients:;", body="To: support@company.example\r\n")

    assert original_recipient(raw, MAILBOXES) is None


def test_parsed_headers_are_accepted_too() -> None:
    headers = read_headers(mail("Delivered-To: sales@company.example"))

    assert original_recipient(headers, MAILBOXES) == "sales@company.example"


def test_lf_line_endings() -> None:
    raw = b"Delivered-To: support@company.example\nTo: sales@company.example\n\nbody\n"

    assert original_recipient(raw, MAILBOXES) == "support@company.example"
