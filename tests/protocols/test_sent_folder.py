"""Filing sent mail in the Sent folder, against real Dovecot servers.

The shared test configuration marks its "Sent" folder ``\\Sent`` (RFC 6154). Two private servers render the
same template differently: one whose ``\\Sent`` folder has a name no fallback knows ("Gesendet"), which
proves the special-use attribute is what finds it, and one without any special-use folder, for the names.
Dovecot 2.3 accepts ``CREATE "x" (USE (\\Sent))`` but ignores the attribute (it lacks CREATE-SPECIAL-USE),
so special-use folders come from the configuration here.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest

from postroom.errors import AuthenticationError, FolderError
from postroom.testing.certs import Certificates
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.transports.sent_folder import ListedFolder, append_to_sent, choose_sent_folder, files_sent_mail_itself

TEMPLATE = Path(__file__).resolve().parents[1] / "dovecot" / "dovecot.conf.in"
_SENT_BLOCK = re.compile(r"^[ \t]*mailbox Sent \{.*?\}[ \t]*\n", re.MULTILINE | re.DOTALL)


def variant(tmp: Path, name: str, sent_block: str) -> Path:
    """The shared template with its Sent mailbox block replaced (the shared file itself stays untouched)."""
    text, count = _SENT_BLOCK.subn(lambda _: sent_block, TEMPLATE.read_text())
    assert count == 1, "the shared Dovecot template no longer has one 'mailbox Sent { ... }' block"
    path = tmp / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def renamed_sent(
    dovecot: DovecotServer, certs: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DovecotServer]:
    """A Dovecot whose \\Sent folder is called "Gesendet" (created automatically)."""
    block = "  mailbox Gesendet {\n    special_use = \\Sent\n    auto = create\n  }\n"
    template = variant(tmp_path_factory.mktemp("dovecot-renamed"), "renamed.conf.in", block)
    with DovecotServer(template, certs, binary=dovecot.binary) as server:
        yield server


@pytest.fixture(scope="module")
def no_special_use(
    dovecot: DovecotServer, certs: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DovecotServer]:
    """A Dovecot that marks no folder \\Sent and creates none."""
    template = variant(tmp_path_factory.mktemp("dovecot-plain"), "plain.conf.in", "")
    with DovecotServer(template, certs, binary=dovecot.binary) as server:
        yield server


def sent_mail(subject: str = "Re: Invoice", message_id: str | None = None) -> bytes:
    return make_mail(subject, sender="Support <support@example.test>", to="cy@customer.example", message_id=message_id)


def stored(server: DovecotServer, user: MailUser, folder: str) -> list[tuple[bytes, frozenset[str]]]:
    """Every message of ``folder`` with its flags, read without changing them."""
    with server.imap(user) as client:
        client.select_folder(folder, readonly=True)
        response = client.fetch(client.search("ALL"), ["BODY.PEEK[]", "FLAGS"])
    return [
        (bytes(data[b"BODY[]"]), frozenset(f.decode() if isinstance(f, bytes) else f for f in data[b"FLAGS"]))
        for _, data in sorted(response.items())
    ]


def test_the_copy_goes_to_the_special_use_sent_folder_flagged_seen(
    dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    raw = sent_mail()
    copy = append_to_sent(dovecot.imap_account(dovecot_user), raw)

    assert copy.folder == "Sent"
    assert copy.uid == 1
    [(body, flags)] = stored(dovecot, dovecot_user, "Sent")
    assert body == raw
    assert "\\Seen" in flags
    # Nothing lands where the connection reads.
    assert stored(dovecot, dovecot_user, "INBOX") == []


def test_the_special_use_attribute_wins_over_a_familiar_name(renamed_sent: DovecotServer) -> None:
    user = renamed_sent.add_user()
    renamed_sent.create_folder(user, "Sent Items")
    copy = append_to_sent(renamed_sent.imap_account(user, "starttls"), sent_mail())
    assert copy.folder == "Gesendet"
    assert len(stored(renamed_sent, user, "Gesendet")) == 1
    assert stored(renamed_sent, user, "Sent Items") == []


def test_a_server_without_extended_list_still_shows_the_attribute_in_plain_list(renamed_sent: DovecotServer) -> None:
    # Without LIST-EXTENDED there is no RETURN (SPECIAL-USE); RFC 6154 §2 lets the attributes ride on plain LIST.
    user = renamed_sent.add_user(settings={"imap_capability": "IMAP4rev1"})
    copy = append_to_sent(renamed_sent.imap_account(user), sent_mail())
    assert copy.folder == "Gesendet"
    assert len(stored(renamed_sent, user, "Gesendet")) == 1


def test_without_special_use_a_common_name_is_found(no_special_use: DovecotServer) -> None:
    user = no_special_use.add_user()
    no_special_use.create_folder(user, "Archive")
    no_special_use.create_folder(user, "Sent Items")
    copy = append_to_sent(no_special_use.imap_account(user), sent_mail())
    assert copy.folder == "Sent Items"
    assert len(stored(no_special_use, user, "Sent Items")) == 1


def test_no_sent_folder_at_all_is_a_folder_error_naming_the_mailbox(no_special_use: DovecotServer) -> None:
    user = no_special_use.add_user()
    with pytest.raises(FolderError) as caught:
        append_to_sent(no_special_use.imap_account(user), sent_mail())
    assert caught.value.account == user.address
    assert caught.value.protocol == "imap"
    assert "no Sent folder" in str(caught.value)
    assert user.password not in str(caught.value)


def test_a_configured_folder_is_used_as_it_is(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    dovecot.create_folder(dovecot_user, "Support/Replies")
    copy = append_to_sent(dovecot.imap_account(dovecot_user), sent_mail(), "Support/Replies")
    assert copy.folder == "Support/Replies"
    assert len(stored(dovecot, dovecot_user, "Support/Replies")) == 1
    assert stored(dovecot, dovecot_user, "Sent") == []


def test_a_configured_folder_that_does_not_exist_is_a_folder_error(
    dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    with pytest.raises(FolderError) as caught:
        append_to_sent(dovecot.imap_account(dovecot_user), sent_mail(), "Gone")
    assert caught.value.account == dovecot_user.address
    assert "Gone" in str(caught.value)
    assert stored(dovecot, dovecot_user, "Sent") == []


def test_a_refused_sign_in_is_an_authentication_error(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    account = dovecot.imap_account(dovecot_user, password="not-the-password")
    with pytest.raises(AuthenticationError) as caught:
        append_to_sent(account, sent_mail())
    assert caught.value.account == dovecot_user.address
    assert "not-the-password" not in str(caught.value)


def test_non_ascii_content_arrives_byte_for_byte(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    raw = make_mail("Re: Grüße", sender="Zoë <support@example.test>", to="cy@customer.example", body="Çа va ✓")
    append_to_sent(dovecot.imap_account(dovecot_user), raw)
    [(body, _)] = stored(dovecot, dovecot_user, "Sent")
    assert body == raw
    assert email.message_from_bytes(body, policy=policy.default)["Subject"] == "Re: Grüße"


def test_a_retry_finds_the_copy_an_earlier_attempt_filed_and_appends_nothing(
    dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    raw = sent_mail(message_id="reply-1@support.example.test")
    first = append_to_sent(dovecot.imap_account(dovecot_user), raw, unless_filed="reply-1@support.example.test")
    assert (first.folder, first.existing) == ("Sent", False)

    # As after a worker died between the APPEND and recording it: the same mail is filed again.
    again = append_to_sent(dovecot.imap_account(dovecot_user), raw, unless_filed="reply-1@support.example.test")
    assert again.existing is True
    assert (again.folder, again.uid, again.uidvalidity) == ("Sent", first.uid, first.uidvalidity)
    assert [body for body, _ in stored(dovecot, dovecot_user, "Sent")] == [raw]


def test_the_search_before_filing_matches_the_whole_message_id_only(
    dovecot: DovecotServer, dovecot_user: MailUser
) -> None:
    dovecot.create_folder(dovecot_user, "Replies")
    # A Message-ID that contains ours is another mail: HEADER searches match substrings (RFC 3501 §6.4.4).
    other = sent_mail("Re: Other", message_id="x-reply-2@support.example.test")
    append_to_sent(dovecot.imap_account(dovecot_user), other, "Replies")
    ours = sent_mail(message_id="reply-2@support.example.test")
    copy = append_to_sent(
        dovecot.imap_account(dovecot_user), ours, "Replies", unless_filed="reply-2@support.example.test"
    )
    assert copy.existing is False
    assert [body for body, _ in stored(dovecot, dovecot_user, "Replies")] == [other, ours]


def test_choosing_prefers_the_attribute_then_names_and_skips_unselectable_folders() -> None:
    folders = [
        ListedFolder("INBOX"),
        ListedFolder("sent messages"),
        ListedFolder("Outbox", frozenset({"\\Sent", "\\Noselect"})),
        ListedFolder("[Gmail]/Sent Mail", frozenset({"\\HasNoChildren", "\\sent"})),
    ]
    assert choose_sent_folder(folders) == "[Gmail]/Sent Mail"
    assert choose_sent_folder(folders[:3]) == "sent messages"
    assert choose_sent_folder([ListedFolder("INBOX"), ListedFolder("INBOX.Sent")]) == "INBOX.Sent"
    assert choose_sent_folder([ListedFolder("INBOX"), ListedFolder("Drafts", frozenset({"\\Drafts"}))]) is None


@pytest.mark.parametrize(
    ("host", "files_itself"),
    [
        ("smtp.gmail.com", True),
        ("SMTP.Office365.com.", True),
        ("smtp-mail.outlook.com", True),
        ("smtp.example.com", False),
        ("127.0.0.1", False),
    ],
)
def test_providers_that_file_sent_mail_themselves_get_no_second_copy(host: str, files_itself: bool) -> None:
    assert files_sent_mail_itself(host) is files_itself
