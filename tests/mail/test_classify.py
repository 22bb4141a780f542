"""Automated mail is recognised, with the facts a bounce carries; people's mail is left alone."""

from __future__ import annotations

import pytest

from postroom.mail.model import Kind
from postroom.mail.parse import ParseOptions, parse_message

from .helpers import corpus_dir, fixture_bytes

OWN = ParseOptions(own_addresses=frozenset({"support@example.com"}))


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("ooo_exchange.eml", Kind.AUTO_REPLY, "Auto-Submitted: auto-generated"),
        ("vacation_sieve.eml", Kind.AUTO_REPLY, "Auto-Submitted: auto-replied (vacation)"),
        ("autorespond_cpanel.eml", Kind.AUTO_REPLY, "Precedence: auto_reply"),
        ("autoreply_x_autoreply.eml", Kind.AUTO_REPLY, "x-autoreply: yes"),
        ("ooo_subject_only_de.eml", Kind.AUTO_REPLY, "auto-reply subject"),
        ("read_receipt.eml", Kind.AUTO_REPLY, "read receipt (RFC 8098)"),
        ("list_mailman.eml", Kind.BULK, "List-Id"),
        ("own_google_group.eml", Kind.HUMAN, None),
        ("loop_marker.eml", Kind.LOOP, "X-Postroom-Loop"),
    ],
)
def test_kinds(name: str, kind: Kind, reason: str | None) -> None:
    classification = parse_message(fixture_bytes("classify", name), OWN).classification
    assert classification.kind is kind
    assert classification.automated == (kind is not Kind.HUMAN)
    if reason:
        assert any(r.startswith(reason) for r in classification.reasons), classification.reasons
    assert classification.bounce is None


def test_newsletter_is_bulk() -> None:
    classification = parse_message(fixture_bytes("clients", "newsletter_preheader.eml"), OWN).classification
    assert classification.kind is Kind.BULK
    assert "List-Unsubscribe" in classification.reasons


@pytest.mark.parametrize(
    ("name", "failed", "status", "original", "permanent", "diagnostic"),
    [
        (
            "bounce_postfix.eml",
            ("no.such.user@customer.example",),
            "5.1.1",
            "pr.t.k1.m2@example.com",
            True,
            "User unknown in virtual mailbox table",
        ),
        (
            "bounce_exchange.eml",
            ("olduser@customer.example",),
            "5.1.10",
            "pr.t.n3.p4@example.com",
            True,
            "RESOLVER.ADR.RecipientNotFound",
        ),
        ("gmail_dsn.eml", ("nobody.here@gmail.example",), "5.1.1", "pr.t.w1.x2@example.com", True, "does not exist"),
        ("bounce_exim.eml", ("gone@customer.example",), "5.1.1", "pr.t.q5.r6@example.com", True, "User unknown"),
        ("bounce_qmail.eml", ("closed@isp.example",), "5.1.1", "pr.t.s7.t8@example.com", True, "no mailbox"),
        ("delay_dsn.eml", (), "4.4.1", "pr.t.u9.v0@example.com", False, "Connection timed out"),
    ],
)
def test_bounces(
    name: str, failed: tuple[str, ...], status: str, original: str, permanent: bool, diagnostic: str
) -> None:
    classification = parse_message(fixture_bytes("classify", name), OWN).classification
    assert classification.kind is Kind.BOUNCE
    bounce = classification.bounce
    assert bounce is not None
    assert bounce.failed_recipients == failed
    assert bounce.status == status
    assert bounce.original_message_id == original
    assert bounce.permanent is permanent
    assert bounce.diagnostic is not None and diagnostic in bounce.diagnostic


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: no",
        # Senders ask others not to auto-reply (Django apps do); that says nothing about this mail.
        "X-Auto-Response-Suppress: OOF, AutoReply",
        "Precedence: first-class",
        "",
    ],
)
def test_people_are_people(headers: str) -> None:
    raw = f"From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: Printer\r\n{headers}\r\n\r\nHelp!\r\n"
    assert parse_message(raw.replace("\r\n\r\n\r\n", "\r\n\r\n").encode(), OWN).classification.kind is Kind.HUMAN


def test_auto_reply_beats_bulk_and_bounce_beats_auto_reply() -> None:
    vacation = parse_message(fixture_bytes("classify", "vacation_sieve.eml"), OWN).classification
    assert vacation.kind is Kind.AUTO_REPLY  # it also says Precedence: bulk
    postfix = parse_message(fixture_bytes("classify", "bounce_postfix.eml"), OWN).classification
    assert postfix.kind is Kind.BOUNCE  # it also says Auto-Submitted: auto-replied


def test_corpus_reports_are_bounces() -> None:
    base = corpus_dir("imap_tools_messages")
    folder = base / "messages" / "multipart_report_emails"
    expected_failed = {
        "multi_address_bounce1.eml": 5,
        "multi_address_bounce2.eml": 5,
        "report_530.eml": 1,
    }
    for path in sorted(folder.glob("*.eml")):
        classification = parse_message(path.read_bytes()).classification
        assert classification.kind is Kind.BOUNCE, path.name
        assert classification.bounce is not None
        if path.name in expected_failed:
            assert len(classification.bounce.failed_recipients) == expected_failed[path.name], path.name
    delayed = parse_message((folder / "report_422.eml").read_bytes()).classification.bounce
    assert delayed is not None and delayed.status == "4.2.2" and not delayed.permanent
    assert delayed.original_message_id == "15655788.13.1200472642578.JavaMail.Administrator@mail.ttttt.com.au"
