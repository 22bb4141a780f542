"""Replies as the common mail clients write them: the new text, the signature and the history apart.

Each fixture in fixtures/clients/ follows the structure its client really emits (see the docstring of
postroom.mail.html_quotes). Where a mail has both text/plain and text/html, the HTML path is checked too,
so that a client that sends only HTML is understood the same way.
"""

from __future__ import annotations

import pytest

from postroom.mail.bodies import find_bodies
from postroom.mail.html_quotes import split_html_reply
from postroom.mail.mime import parse_tree
from postroom.mail.model import Kind
from postroom.mail.parse import ParseOptions, parse_message
from postroom.mail.quotes import split_reply

from .helpers import fixture_bytes

# fixture, reply text, a line of the signature ("" = none), a line of the history
CLIENTS = [
    (
        "gmail.eml",
        "Thanks, restarting it fixed the problem!\n\nI'll let you know if it happens again.",
        "Ann Example",
        "please restart the router and tell us whether it helps.",
    ),
    (
        "outlook_desktop_de.eml",
        "Hallo,\n\ndie Lieferung ist heute angekommen, aber ein Teil fehlt.\n\nMit freundlichen Grüßen\nJürgen Müller",
        "",
        "Ihre Bestellung wurde versandt.",
    ),
    (
        "outlook_web.eml",
        "Hi, I still have not received the refund. Could you check again?",
        "Rossi Design Studio",
        "Dear Carla, we have issued the refund today.",
    ),
    ("outlook_android.eml", "Dziękuję, paczka dotarła.", "Get Outlook for Android", "Paczka została wysłana."),
    ("apple_mail.eml", "Merci, c’est parfait.\n\nLucas", "", "votre colis est parti ce matin."),
    ("iphone.eml", "It works now, thank you!", "Sent from my iPhone", "Please try logging in again."),
    ("thunderbird.eml", "Tak, jeg har betalt fakturaen i dag.", "Hansen ApS", "Hej Ole, fakturaen er vedhæftet."),
    (
        "yahoo.eml",
        "Please cancel the renewal, I no longer need the plan.\n\nPriya",
        "",
        "Your plan renews on March 15.",
    ),
]


@pytest.mark.parametrize(("name", "reply", "signature", "history"), CLIENTS)
def test_client_reply(name: str, reply: str, signature: str, history: str) -> None:
    raw = fixture_bytes("clients", name)
    parsed = parse_message(raw)
    assert parsed.reply_text == reply
    if signature:
        assert signature in parsed.signature
    else:
        assert parsed.signature == ""
    assert history in parsed.quoted_text
    assert history not in parsed.reply_text
    assert parsed.classification.kind is Kind.HUMAN
    # Nothing is lost: the whole text still holds the history.
    assert history.replace("\n", " ") in parsed.text.replace("\n", " ").replace("> ", "")


@pytest.mark.parametrize(("name", "reply", "signature", "history"), CLIENTS)
def test_client_html_alone(name: str, reply: str, signature: str, history: str) -> None:
    html = find_bodies(parse_tree(fixture_bytes("clients", name))).own_html()
    parts, text = split_html_reply(html)
    # HTML paragraphs render with blank lines between them (Outlook writes one <p> per line).
    assert parts.reply_text.replace("\n\n", "\n") == reply.replace("\n\n", "\n")
    if signature:
        assert signature in parts.signature
    assert history in parts.quoted_text
    assert history in text


def test_outlook_thread_headers_are_read() -> None:
    parsed = parse_message(fixture_bytes("clients", "outlook_desktop_de.eml"))
    assert parsed.thread_topic == "Ihre Bestellung 4711"
    assert parsed.thread_index == "AdpuELyXDP3rGfCGR0ivbL2tZrWY4AABcxaw"
    assert parsed.normalized_subject == "Ihre Bestellung 4711"
    assert parsed.from_ is not None and parsed.from_.name == "Jürgen Müller"


def test_newsletter_is_sanitised_and_its_preheader_hidden() -> None:
    raw = fixture_bytes("clients", "newsletter_preheader.eml")
    parsed = parse_message(raw)
    html = parsed.html
    for forbidden in ("<script", "onclick", "javascript:", "<form", "<input", "<iframe", "position", "<style"):
        assert forbidden not in html
    assert "Up to 50% off" not in html and "Hidden teaser" not in html
    assert "Up to 50% off" not in parsed.text and "Hidden teaser" not in parsed.text
    assert 'src="cid:logo@shop"' in html
    # The tracking pixel is held back, always: nothing loads it unless someone asks.
    assert ' src="https://track.shop.example' not in html
    assert 'data-remote-src="https://track.shop.example/open.gif"' in html
    assert 'rel="noopener noreferrer nofollow"' in html
    assert parsed.text.startswith("Spring sale")
    assert parsed.classification.kind is Kind.BULK

    blocked = parse_message(raw, ParseOptions(block_remote_images=True)).html
    assert ' src="https://track.shop.example' not in blocked
    assert 'data-remote-src="https://track.shop.example/open.gif"' in blocked
    assert 'src="cid:logo@shop"' in blocked


@pytest.mark.parametrize(
    ("body", "reply"),
    [
        # "On … wrote:" in the languages clients ship with, each above a quote.
        ("Thanks!\n\nOn Mon, 4 Mar 2024 at 10:12, Ann <ann@x.example> wrote:\n> hi", "Thanks!"),
        ("Danke!\n\nAm 04.03.2024 um 10:12 schrieb Ann <ann@x.example>:\n> hallo", "Danke!"),
        ("Merci !\n\nLe lun. 4 mars 2024 à 10:12, Ann <ann@x.example> a écrit :\n> salut", "Merci !"),
        ("¡Gracias!\n\nEl lun, 4 mar 2024 a las 10:12, Ann (<ann@x.example>) escribió:\n> hola", "¡Gracias!"),
        ("Obrigado!\n\nEm seg., 4 de mar. de 2024 às 10:12, Ann <ann@x.example> escreveu:\n> olá", "Obrigado!"),
        ("Grazie!\n\nIl giorno lun 4 mar 2024 alle ore 10:12 Ann <ann@x.example> ha scritto:\n> ciao", "Grazie!"),
        ("Bedankt!\n\nOp ma 4 mrt 2024 om 10:12 schreef Ann <ann@x.example>:\n> hoi", "Bedankt!"),
        ("Tack!\n\nDen mån 4 mars 2024 kl 10:12 skrev Ann <ann@x.example>:\n> hej", "Tack!"),
        ("Kiitos!\n\nAnn <ann@x.example> kirjoitti ma 4.3.2024 klo 10.12:\n> moi", "Kiitos!"),
        ("Dzięki!\n\npon., 4 mar 2024 o 10:12 Ann <ann@x.example> napisał(a):\n> cześć", "Dzięki!"),
        ("Díky!\n\npo 4. 3. 2024 v 10:12 odesílatel Ann <ann@x.example> napsal:\n> ahoj", "Díky!"),
        ("Спасибо!\n\nпн, 4 мар. 2024 г. в 10:12, Ann <ann@x.example>:\n> привет", "Спасибо!"),
        ("Спасибо!\n\n4 марта 2024 г., в 10:12, Ann <ann@x.example> написал(а):\n> привет", "Спасибо!"),
        ("Дякую!\n\nпн, 4 бер. 2024 р. о 10:12 Ann <ann@x.example> пише:\n> привіт", "Дякую!"),
        ("Teşekkürler!\n\nAnn <ann@x.example>, 4 Mar 2024 Pzt, 10:12 tarihinde şunu yazdı:\n> selam", "Teşekkürler!"),
        ("Ευχαριστώ!\n\nΣτις Δευ 4 Μαρ 2024 στις 10:12, ο/η Ann <ann@x.example> έγραψε:\n> γεια", "Ευχαριστώ!"),
        ("谢谢！\n\n在 2024年3月4日 10:12，Ann <ann@x.example> 写道：\n> 你好", "谢谢！"),
        ("ありがとう！\n\n2024年3月4日(月) 10:12 Ann <ann@x.example>:\n> こんにちは", "ありがとう！"),
        ("감사합니다!\n\n2024년 3월 4일 (월) 오전 10:12, Ann <ann@x.example>님이 작성:\n> 안녕하세요", "감사합니다!"),
        # Outlook plain-text header blocks in several languages, unquoted history below.
        ("Ok.\n\nDe : Ann <ann@x.example>\nEnvoyé : lundi 4 mars 2024 10:12\nÀ : Support\nObjet : Test\n\nold", "Ok."),
        ("Ok.\n\nDa: Ann <ann@x.example>\nInviato: lunedì 4 marzo 2024 10:12\nA: Support\nOggetto: Test\n\nold", "Ok."),
        ("Ok.\n\nFrån: Ann <ann@x.example>\nSkickat: den 4 mars 2024 10:12\nTill: Support\nÄmne: Test\n\nold", "Ok."),
        (
            "Ok.\n\nOd: Ann <ann@x.example>\nWysłano: poniedziałek, 4 marca 2024 10:12\nDo: Support\nTemat: Test\n\nx",
            "Ok.",
        ),
        ("Ok.\n\nОт: Ann <ann@x.example>\nОтправлено: 4 марта 2024 г. 10:12\nКому: Support\nТема: Test\n\nx", "Ok."),
        ("Ok.\n\n发件人: Ann <ann@x.example>\n发送时间: 2024年3月4日 10:12\n收件人: Support\n主题: Test\n\nx", "Ok."),
        ("Ok.\n\n-----Original Message-----\nFrom: Ann\nSent: Monday\nTo: Support\nSubject: Test\n\nx", "Ok."),
        ("Ok.\n\n-----Ursprüngliche Nachricht-----\nVon: Ann\nGesendet: Montag\n\nx", "Ok."),
        # Forwards with a comment, and a forward without one (the forwarded text is the content).
        ("FYI\n\n---------- Forwarded message ---------\nFrom: Bob <b@x.example>\nDate: Mon\nSubject: S\n\nold", "FYI"),
        (
            "---------- Forwarded message ---------\nFrom: Bob <b@x.example>\nDate: Mon\nSubject: S\n\n\nThe text.",
            "The text.",
        ),
        ("See below.\n\nBegin forwarded message:\n\n> From: Bob <b@x.example>\n> Subject: S\n>\n> old", "See below."),
        # An inline answer keeps the quotes it answers.
        (
            "> Is it broken?\n\nYes.\n\n> Since when?\n\nYesterday.",
            "> Is it broken?\n\nYes.\n\n> Since when?\n\nYesterday.",
        ),
        # Signatures and mobile footers.
        ("Done.\n\n-- \nAnn\nACME", "Done."),
        ("Done.\n\nSent from my Galaxy", "Done."),
        ("Done.\n\nVon meinem iPhone gesendet", "Done."),
        ("Done.\n\nEnviado desde mi iPhone", "Done."),
        ("Done.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>", "Done."),
        # Not history: "wrote" in the text, a date in the text, a Markdown heading.
        ("I wrote the script on Monday:\nit runs now.", "I wrote the script on Monday:\nit runs now."),
        ("Title\n=====\n\nBody text.", "Title\n=====\n\nBody text."),
    ],
)
def test_plain_text_rules(body: str, reply: str) -> None:
    assert split_reply(body).reply_text == reply


@pytest.mark.parametrize(
    "html",
    [
        # Zimbra web client
        '<div>Fine.</div><hr id="zwchr"><div><b>From: </b>Bob</div><div>old text</div>',
        # Fastmail
        '<div>Fine.</div><div id="qt"><div>On Mon, Bob wrote:</div><blockquote type="cite">old text</blockquote></div>',
        # GMX / web.de
        '<div>Fine.</div><div name="quote" style="border-left:2px solid #C3D9E5"><div>old text</div></div>',
        # Samsung Email
        '<div>Fine.</div><div id="composer_signature">Sent from my Galaxy</div><!-- originalMessage -->'
        "<div>-------- Original message --------</div><div>old text</div>",
        # ProtonMail
        '<div>Fine.</div><div class="protonmail_quote">On Monday, Bob wrote:<blockquote>old text</blockquote></div>',
    ],
)
def test_other_clients_html_marks(html: str) -> None:
    parts, _ = split_html_reply(html)
    assert parts.reply_text == "Fine."
    assert "old text" in parts.quoted_text
