from __future__ import annotations

import pytest

from postroom.mail.quotes import split_reply
from postroom.mail.signatures import split_signature

CORPORATE = """Hello,

the invoice is attached.

Best regards,
Anna Schmidt

Anna Schmidt
Head of Accounting | Muster GmbH
T: +49 30 1234567 | M: +49 171 7654321
https://www.muster.example/

CONFIDENTIALITY NOTICE: This e-mail message, including any attachments, is for the sole use of the
intended recipient(s) and may contain confidential and privileged information."""


def test_contact_block_and_disclaimer() -> None:
    parts = split_reply(CORPORATE)
    assert parts.reply_text == "Hello,\n\nthe invoice is attached.\n\nBest regards,\nAnna Schmidt"
    assert parts.signature.startswith("Anna Schmidt\nHead of Accounting")
    assert "CONFIDENTIALITY NOTICE" in parts.signature


@pytest.mark.parametrize(
    "disclaimer",
    [
        "Diese E-Mail enthält vertrauliche und/oder rechtlich geschützte Informationen.",
        "Ce message et toutes les pièces jointes sont confidentiels et établis à l'intention exclusive.",
        "Este mensaje y sus anexos son confidenciales y para uso exclusivo del destinatario.",
        "The information contained in this email is confidential.",
        "Please consider the environment before printing this e-mail.",
    ],
)
def test_disclaimers(disclaimer: str) -> None:
    text = f"Please find the report attached.\n\nThanks\nBob\n\n{disclaimer}"
    split = split_signature(text)
    assert split.body == "Please find the report attached.\n\nThanks\nBob"
    assert split.signature == disclaimer


@pytest.mark.parametrize(
    "text",
    [
        # The closing and the name are part of what the person wrote.
        "It works now.\n\nThanks,\nAnn",
        # Text after a closing that is not contact details stays.
        "Thanks,\nAnn\n\nPS: the second printer still jams when I print two-sided.",
        # A disclaimer-like sentence at the very start is the message itself.
        "This email is confidential?\nI did not know that.",
        # Contact details asked for in the message are not a signature without a closing above them.
        "Please call me back:\n+1 555 0100\nhttps://example.com/ticket/5",
    ],
)
def test_people_keep_their_text(text: str) -> None:
    assert split_signature(text).body == text
    assert split_signature(text).signature == ""
