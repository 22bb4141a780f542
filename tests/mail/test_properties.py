"""Properties over generated input: parsing never raises, and what Postroom sends it reads back unchanged."""

from __future__ import annotations

import random
import re
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from postroom.errors import MessageParseError
from postroom.mail.compose import compose
from postroom.mail.html import sanitize_html
from postroom.mail.model import Address, OutgoingAttachment, OutgoingMail
from postroom.mail.parse import parse_message

from .helpers import CORPUS

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_refuse(raw: bytes) -> None:
    try:
        parsed = parse_message(raw)
    except MessageParseError:
        # Only input that is no mail at all may be refused.
        assert not raw.strip()
        return
    parsed.to_json()
    assert parsed.message_id


@FAST
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    _parse_or_refuse(raw)


_PIECES = [
    b"\r\n",
    b"\n",
    b"\r",
    b"--",
    b"=?utf-8?b?",
    b"?=",
    b"=?",
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"--x\r\n",
    b"--x--\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"\x00",
    b"\xff\xfe",
    b"\xe2\x82",
    b": ",
    b"\t",
    b"begin 644 f\r\n",
    b"<",
    b">",
    b'"',
    b'charset="',
    b"filename*0*=",
    b"%",
    b"=\r\n",
]


def _corpus_mails() -> list[bytes]:
    folder = CORPUS / "imap_tools_messages" / "messages"
    mails = [p.read_bytes() for p in sorted(folder.rglob("*.eml"))] if folder.is_dir() else []
    mine = Path(__file__).resolve().parent / "fixtures"
    mails += [p.read_bytes() for p in sorted(mine.rglob("*.eml"))]
    return mails


MAILS = _corpus_mails()


@FAST
@given(st.data())
def test_mutated_mails_never_raise(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from(MAILS)))
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1)))
    for _ in range(data.draw(st.integers(1, 12))):
        if not raw:
            break
        at = rng.randrange(len(raw))
        action = rng.randrange(5)
        if action == 0:
            raw[at] = rng.randrange(256)
        elif action == 1:
            del raw[at : at + rng.randrange(1, 200)]
        elif action == 2:
            raw[at:at] = rng.choice(_PIECES)
        elif action == 3:
            del raw[at:]
        else:
            start = rng.randrange(len(raw))
            raw[at:at] = raw[start : start + rng.randrange(1, 300)]
    _parse_or_refuse(bytes(raw))


# --- compose → parse round trip ---------------------------------------------------------------------

_NAME_CHARS = st.characters(whitelist_categories=("L", "N"), whitelist_characters=" .,-&()!'/@:;<>[]?\"")
_LOCAL = st.from_regex(r"[a-z0-9]([a-z0-9+_-]{0,15}(\.[a-z0-9_-]{1,8})?)?", fullmatch=True)
_DOMAIN = st.sampled_from(["example.com", "mail.example.org", "bücher.example", "xn--mnchen-3ya.example", "x.io"])
_SAFE_FILE = st.from_regex(r"[A-Za-z0-9ÄÖÜäöüß가-힣一-龥][A-Za-z0-9ÄÖÜäöüß가-힣一-龥 _.()-]{0,80}", fullmatch=True)
_TYPES = st.sampled_from(
    [
        "application/pdf",
        "image/png",
        "image/jpeg",
        "audio/mpeg",
        "video/mp4",
        "text/csv",
        "application/zip",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/octet-stream",
    ]
)


@st.composite
def _addresses(draw: st.DrawFn) -> Address:
    name = " ".join(draw(st.text(_NAME_CHARS, max_size=40)).split())
    # A name wrapped in quotes loses them (Outlook's 'Name' convention); not what this property is about.
    assume(not (len(name) >= 2 and name[0] == name[-1] and name[0] in "'\""))
    return Address(email=f"{draw(_LOCAL)}@{draw(_DOMAIN)}", name=name)


def _expected_email(email: str) -> str:
    local, _, domain = email.rpartition("@")
    if domain.startswith("xn--"):
        domain = domain.encode("ascii").decode("idna")
    return f"{local}@{domain}"


@st.composite
def _html(draw: st.DrawFn) -> str:
    words = draw(
        st.lists(
            st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20), min_size=1, max_size=8
        )
    )
    tags = draw(st.lists(st.sampled_from(["p", "b", "i", "div", "span"]), min_size=len(words), max_size=len(words)))
    parts = [
        f"<{t}>{w.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</{t}>"
        for t, w in zip(tags, words, strict=True)
    ]
    return "<br>\n".join(parts)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=200),
    sender=_addresses(),
    to=st.lists(_addresses(), min_size=1, max_size=4),
    cc=st.lists(_addresses(), max_size=3),
    text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=2000),
    html=st.none() | _html(),
    files=st.lists(st.tuples(_SAFE_FILE, _TYPES, st.binary(max_size=3000)), max_size=3),
)
def test_compose_then_parse_round_trips(
    subject: str,
    sender: Address,
    to: list[Address],
    cc: list[Address],
    text: str,
    html: str | None,
    files: list[tuple[str, str, bytes]],
) -> None:
    assume(text.strip())
    names = [name.strip(" .") for name, _, _ in files]
    assume(all(names) and len(set(names)) == len(names))
    mail = OutgoingMail(
        from_=sender,
        to=tuple(to),
        cc=tuple(cc),
        subject=subject,
        text=text,
        html=html,
        attachments=tuple(OutgoingAttachment(n, t, p) for (_, t, p), n in zip(files, names, strict=True)),
    )
    parsed = parse_message(compose(mail).raw)
    assert parsed.subject == subject.lstrip()
    assert parsed.from_ == Address(_expected_email(sender.email), sender.name)
    assert list(parsed.to) == [Address(_expected_email(a.email), a.name) for a in to]
    assert list(parsed.cc) == [Address(_expected_email(a.email), a.name) for a in cc]
    # Line breaks travel as CRLF (RFC 2046 §4.1.1) and come back as "\n"; trailing ones are not content.
    assert parsed.text == re.sub(r"\r\n|\r", "\n", text).rstrip("\n")
    if html is None:
        assert parsed.html == ""
    else:
        assert parsed.html == sanitize_html(html)
    received = {a.filename: a for a in parsed.attachments}
    assert len(received) == len(files)
    for (_, ctype, payload), name in zip(files, names, strict=True):
        assert received[name].payload == payload
        assert received[name].content_type == ctype
        assert received[name].size == len(payload)
