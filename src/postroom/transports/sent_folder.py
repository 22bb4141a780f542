"""Keeping a copy of what we sent over SMTP in the mailbox's Sent folder (IMAP APPEND).

SMTP only delivers; a mail client that sends also files a copy in the Sent folder, and people who open the
support mailbox in their own client expect to see the replies there. :func:`append_to_sent` does that after
the outbox delivered a message: it signs in with the mailbox's IMAP account (the opening, TLS and error
translation of :class:`~postroom.sources.imap.ImapSession`, and its authenticator seam, so XOAUTH2 fits),
finds the folder and APPENDs the exact bytes that were sent, flagged ``\\Seen`` (RFC 3501 §6.3.11) because
nobody needs to be told about their own reply.

The folder is, in this order: the one configured for the mailbox; the one the server marks ``\\Sent``
(RFC 6154 special-use, asked with ``LIST (SPECIAL-USE)`` where the server offers it); one of the names mail
clients commonly use. No such folder is a :class:`~postroom.errors.FolderError` naming the mailbox.

Filing is retried by the outbox until it works, and a retry may follow an APPEND whose result was never recorded
(the worker died in between). Such a retry passes the mail's Message-ID: the folder is searched for it first
(``SEARCH HEADER``, RFC 3501 §6.4.4) and a copy found there is reported instead of appending a second one.

Our own mail in the Sent folder is never imported as customer mail: Sent is not the folder a connection
reads, and should it be, the ``X-Postroom-Loop`` header and our Message-ID make the pipeline ignore it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, cast

from postroom.errors import FolderError, ProtocolError
from postroom.sources.base import ImapAccount
from postroom.sources.imap import PROTOCOL, SEEN, ImapAuthenticator, ImapSession, password_login, select_folder

__all__ = ["COMMON_SENT_NAMES", "ListedFolder", "SentCopy", "append_to_sent", "choose_sent_folder"]

SENT_USE: Final = "\\Sent"
# Names mail clients and servers give the Sent folder when they do not mark it (Dovecot's and Courier's
# "INBOX."-prefixed namespaces, Outlook/Exchange, Apple Mail), in the order they are tried.
COMMON_SENT_NAMES: Final = ("Sent", "Sent Items", "Sent Messages", "Sent Mail", "INBOX.Sent", "INBOX/Sent")
_NOSELECT: Final = frozenset({"\\noselect", "\\nonexistent"})
# RFC 4315 §3: "[APPENDUID <uidvalidity> <uid>]" in the tagged OK of an APPEND.
_APPENDUID: Final = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")


@dataclass(frozen=True, slots=True)
class ListedFolder:
    """One LIST answer (RFC 3501 §7.2.2): the folder's name and its attributes, e.g. ``\\Sent``."""

    name: str
    attributes: frozenset[str] = frozenset()
    delimiter: str | None = None

    @property
    def selectable(self) -> bool:
        return not ({a.lower() for a in self.attributes} & _NOSELECT)


@dataclass(frozen=True, slots=True)
class SentCopy:
    """Where the copy went: the folder and, when the server says (UIDPLUS, RFC 4315), its UID.

    ``existing`` is set when nothing was appended because the copy was found in the folder already.
    """

    folder: str
    uid: int | None = None
    uidvalidity: int | None = None
    existing: bool = False


def choose_sent_folder(folders: Sequence[ListedFolder]) -> str | None:
    """The folder marked ``\\Sent``, else the first common Sent name that exists (any case), else None."""
    usable = [f for f in folders if f.selectable]
    for folder in usable:
        if any(attribute.lower() == SENT_USE.lower() for attribute in folder.attributes):
            return folder.name
    by_name = {folder.name.lower(): folder.name for folder in usable}
    for name in COMMON_SENT_NAMES:
        found = by_name.get(name.lower())
        if found is not None:
            return found
    return None


class _AppendSession(ImapSession):
    """An :class:`ImapSession` that can list folders and append; everything else is the reading session's."""

    def list_folders(self) -> list[ListedFolder]:
        """Every folder with its attributes, special-use ones included where the server can be asked for them."""
        client = self._client
        with self._errors():
            if client.has_capability("SPECIAL-USE") and client.has_capability("LIST-EXTENDED"):
                # RFC 6154 §2 lets a server leave special-use attributes out of a plain LIST; the SPECIAL-USE
                # return option (RFC 6154 §3, on RFC 5258's extended LIST) asks for them. IMAPClient has no call
                # for return options, so the command goes through its imaplib connection and IMAPClient's own
                # parser of LIST lines (modified UTF-7 names, literals).
                typ, data = client._imap.list('""', '"*" RETURN (SPECIAL-USE)')
                if typ == "OK":
                    return [_listed(row) for row in client._proc_folder_list(data)]
            rows = client.list_folders()
        return [_listed(row) for row in rows]

    def find_filed(self, folder: str, message_id: str) -> SentCopy | None:
        """The copy of the mail with this Message-ID (no brackets) in ``folder``, if one is there."""
        if folder != self.folder.name:
            # EXAMINE, not SELECT: looking must not change the folder (RFC 3501 §6.3.2).
            self.folder = select_folder(self._client, replace(self.account, folder=folder), readonly=True)
        # With the brackets, so that a Message-ID that merely contains ours (HEADER matches substrings) is no match.
        found = self.search_header("Message-ID", f"<{message_id}>")
        if not found:
            return None
        return SentCopy(folder, uid=found[0], uidvalidity=self.folder.uidvalidity, existing=True)

    def append(self, folder: str, raw: bytes) -> SentCopy:
        """APPEND ``raw`` to ``folder`` with \\Seen (RFC 3501 §6.3.11), the server choosing the internal date."""
        try:
            with self._errors():
                response = self._client.append(folder, raw, flags=(SEEN,))
        except ProtocolError as error:
            # A NO to APPEND ("[TRYCREATE]" when the folder is missing, RFC 3501 §6.3.11; over quota) concerns
            # the folder, not the connection.
            raise FolderError(
                PROTOCOL, self.account.address, f"APPEND to {folder!r} refused: {error.detail}"
            ) from error
        match = _APPENDUID.search(response if isinstance(response, bytes) else b"")
        if match is None:
            return SentCopy(folder)
        return SentCopy(folder, uid=int(match.group(2)), uidvalidity=int(match.group(1)))


def append_to_sent(
    account: ImapAccount,
    raw: bytes,
    folder: str = "",
    *,
    authenticate: ImapAuthenticator = password_login,
    unless_filed: str = "",
) -> SentCopy:
    """APPEND ``raw`` to the Sent folder of ``account``'s mailbox, flagged \\Seen; return where it went.

    ``folder`` is the mailbox's configured Sent folder; empty means "find it". ``unless_filed`` is the mail's
    Message-ID (without brackets) when an earlier attempt may have filed it already: a copy found in the folder is
    returned (``existing``) and nothing is appended. Raises the ChannelError leaf
    of :class:`~postroom.sources.imap.ImapSession` on connection and sign-in failures, and
    :class:`~postroom.errors.FolderError` when there is no Sent folder or the server refuses the APPEND.
    """
    folder = folder.strip()
    # With a configured folder, the SELECT of opening proves it exists (a FolderError in the server's words if
    # not). Otherwise INBOX is selected, which always exists (RFC 3501 §5.1): APPEND needs no selected folder,
    # but the session opens the same way for both.
    # ImapSession.open builds ``cls(...)``, so the session is ours; its annotation only says ImapSession.
    session = cast(_AppendSession, _AppendSession.open(replace(account, folder=folder or "INBOX"), authenticate))
    try:
        if not folder:
            found = choose_sent_folder(session.list_folders())
            if found is None:
                raise FolderError(
                    PROTOCOL,
                    account.address,
                    "no Sent folder: none is marked \\Sent (RFC 6154) and none is named "
                    + ", ".join(repr(n) for n in COMMON_SENT_NAMES)
                    + "; set the mailbox's Sent folder",
                )
            folder = found
        if unless_filed:
            filed = session.find_filed(folder, unless_filed)
            if filed is not None:
                return filed
        return session.append(folder, raw)
    finally:
        session.close()


def _listed(row: tuple[Any, ...]) -> ListedFolder:
    flags, delimiter, name = row
    return ListedFolder(
        name=_text(name),
        attributes=frozenset(_text(flag) for flag in flags),
        delimiter=_text(delimiter) if delimiter is not None else None,
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# Submission servers that file what an account sends in its Sent folder themselves: Gmail always does, and
# so does Microsoft 365 / Outlook.com for mail submitted with SMTP AUTH. Appending there too would show
# every reply twice.
_SELF_FILING_SMTP_HOSTS = ("smtp.gmail.com", "smtp.googlemail.com", "smtp.office365.com", "smtp-mail.outlook.com")


def files_sent_mail_itself(smtp_host: str) -> bool:
    """Whether mail submitted to this SMTP server is already filed in the account's Sent folder."""
    return smtp_host.strip().lower().rstrip(".") in _SELF_FILING_SMTP_HOSTS
