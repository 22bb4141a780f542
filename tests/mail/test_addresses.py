from __future__ import annotations

import pytest

from postroom.mail.addresses import email_key, normalize_email, parse_address, parse_address_list
from postroom.mail.model import Address


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("John Doe <john@Example.COM>", [Address("john@example.com", "John Doe")]),
        ('"Smith, Jane" <jane@x.org>, bob@y.org', [Address("jane@x.org", "Smith, Jane"), Address("bob@y.org")]),
        ("a@b.example (Alice A)", [Address("a@b.example", "Alice A")]),
        ("undisclosed-recipients:;", []),
        (
            "Team: a@b.example, Bob <b@c.example>;, z@z.example",
            [Address("a@b.example"), Address("b@c.example", "Bob"), Address("z@z.example")],
        ),
        # RFC 2047 in the display name, decoded after splitting: the comma inside stays in the name.
        ("=?utf-8?q?M=C3=BCller=2C_Hans?= <h@m.example>", [Address("h@m.example", "Müller, Hans")]),
        # Outlook's single quotes inside the quoted name.
        ("\"'Bob'\" <bob@x.example>", [Address("bob@x.example", "Bob")]),
        # Unclosed bracket, missing brackets, mailto:, source routes.
        ("Name <a@b.example", [Address("a@b.example", "Name")]),
        ("John Doe john@x.example", [Address("john@x.example", "John Doe")]),
        ("<mailto:info@x.example>", [Address("info@x.example")]),
        ("<@relay.example:x@y.example>", [Address("x@y.example")]),
        # IDNA domains are decoded for display and matching.
        ("joe@xn--mnchen-3ya.example", [Address("joe@münchen.example")]),
        # RFC 6532: UTF-8 straight in the header.
        ("Jürgen <jürgen@bücher.example>", [Address("jürgen@bücher.example", "Jürgen")]),
        # Comments inside an address are not part of it (RFC 5322 §3.2.2).
        ("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", [Address("pete@silly.test", "Pete")]),
        ("jdoe@test   . example", [Address("jdoe@test.example")]),
        # A group inside brackets names nobody.
        ("<Undisclosed-Recipient:@mailman.example;>", []),
        # An encoded word that hides a whole "Name <address>".
        ("=?utf-8?b?QW5uIDxhbm5AZXhhbXBsZS5vcmc+?=", [Address("ann@example.org", "Ann")]),
        ("", []),
    ],
)
def test_parse_address_list(value: str, expected: list[Address]) -> None:
    assert list(parse_address_list(value)) == expected


def test_names_without_address_are_kept_with_empty_email() -> None:
    assert parse_address_list("Mary Smith") == (Address("", "Mary Smith"),)
    assert parse_address("Mary Smith") is None


def test_parse_address_takes_the_first_real_mailbox() -> None:
    assert parse_address("Nobody, Ann <ann@example.org>") == Address("ann@example.org", "Ann")


def test_normalize_email() -> None:
    assert normalize_email(" <John.Doe@Example.COM> ") == "John.Doe@example.com"
    assert normalize_email("mailto:x@Y.example") == "x@y.example"
    assert normalize_email('"john doe"@example.com') == '"john doe"@example.com'
    assert email_key("John.Doe@Example.COM") == "john.doe@example.com"
