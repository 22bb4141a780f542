"""Connections (inboxes): the admin's settings, validated, stored with secrets encrypted, shown masked.

One connection serves one or more mailboxes (several mailboxes per connection): the per-mailbox
fields take comma-separated values (or JSON lists), positional, and when a field has fewer values than
there are addresses, its last value repeats. A change of ``address`` alone keeps each mailbox's own values,
matched by address (see :func:`match_mailboxes`). The environment-variable names (``EMAIL_NAME``,
``IMAP_MAILBOX``, …) are accepted in ``env`` as per-connection settings.

What is required depends on how mail comes in (``mode``) and goes out (``outbound``):

========== ============================================ ==============================================
mode       incoming                                     required
========== ============================================ ==============================================
imap       IMAP server, folder, password or OAuth       address, imap_server, password (unless OAuth)
pop3       POP3 server (``pop3_*`` fields)              address, pop3_server, password (unless OAuth)
forwarding a generated address on our SMTP listener     address (the support address that forwards)
webhook    SendGrid Inbound Parse or Mailgun route      address, webhook_provider, webhook_signing_key
========== ============================================ ==============================================

``outbound: smtp`` needs ``smtp_server``; ``outbound: sendgrid`` needs ``sendgrid_api_key`` instead.
With ``oauth_enabled`` every mailbox needs its refresh token, client ID and client secret, and no
mailbox may use a password: password and OAuth mailboxes cannot share a connection.

Where secrets go (the API never shows a stored secret, so whoever can change a connection must not be able
to redirect one to a server of their choosing):

- A change of where a stored secret is sent needs that secret again in the same change (see
  :data:`_SECRET_ENDPOINTS`): the password follows the incoming server, port, encryption, user name and
  certificate check; ``smtp_password`` (or the password SMTP falls back to) the SMTP ones; the OAuth client
  secret and refresh token the token URI, and the refresh token also the IMAP/POP3/SMTP servers, which
  receive the access tokens minted from it; ``sendgrid_api_key`` the API URL. A value equal to the stored
  one is no change. The webhook signing key only verifies what arrives and is never sent.
- A password or token never goes unencrypted (encryption ``none``, or SMTP ``auto`` on port 25) to a host
  other than loopback unless ``allow_plaintext_auth`` is on; the view then lists it in ``warnings``.
- An API or token URL that receives a secret is ``https://``, or ``http://`` on loopback only.
"""

from __future__ import annotations

import secrets as _random
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Enum, String, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from postroom.channels.accounts import PLAINTEXT_ADVICE
from postroom.errors import Conflict, InvalidSetting, NotFound
from postroom.jobs.leases import connection_lease
from postroom.jobs.outbox import settle
from postroom.mail.addresses import unsafe_character
from postroom.sources.oauth import DEFAULT_TOKEN_URI
from postroom.sources.webhooks import load_sendgrid_key
from postroom.store.models import (
    Connection,
    ConnectionLog,
    ConnectionMode,
    ConnectionStatus,
    Grouping,
    Lease,
    Mailbox,
    OutboundKind,
    Outbox,
    OutboxStatus,
    Team,
    utcnow,
)
from postroom.store.secretbox import MASK, SecretBox, mask
from postroom.tls import is_loopback, secret_url_problem
from postroom.transports.base import SmtpAccount, SmtpEncryption
from postroom.transports.smtp import encryption_for

DEFAULT_IMAP_PORT = 993
DEFAULT_SMTP_PORT = 587
DEFAULT_CHECK_INTERVAL = 15.0
DEFAULT_MAX_ATTACHMENT_BYTES = 10_485_760
DEFAULT_SENDGRID_API_URL = "https://api.sendgrid.com"
MAX_RESPONSE_DELAY = 172_800.0  # 0-172800 seconds (two days)
CONTENT_TYPES = ("text/plain", "text/html")
WEBHOOK_PROVIDERS = ("sendgrid", "mailgun")
# Incoming default ports by protocol and encryption: implicit TLS has its own port (RFC 8314 §7).
_INCOMING_PORTS = {("imap", "ssl"): 993, ("imap", "other"): 143, ("pop3", "ssl"): 995, ("pop3", "other"): 110}
# Modes that read a mailbox themselves and so need an incoming server and credentials.
_READING_MODES = (ConnectionMode.IMAP, ConnectionMode.POP3)

# Spellings admins bring from other products ("StartTLS, TCP, SSL, or TLS"). A bare "TLS"
# means different things by port: provider guides write "Port 587, Encryption TLS" for STARTTLS
# and "993 … SSL" for implicit TLS; see _tls_by_port.
_IMAP_ENCRYPTION = {
    "ssl": "ssl",
    "tls": "ssl",
    "ssl/tls": "ssl",
    "implicit": "ssl",
    "starttls": "starttls",
    "start_tls": "starttls",
    "none": "none",
    "plain": "none",
    "tcp": "none",
}
_SMTP_ENCRYPTION = {**_IMAP_ENCRYPTION, "auto": "auto", "": "auto"}

# Fields that belong to one mailbox each and take comma-separated values.
MAILBOX_FIELDS = (
    "address",
    "email_name",
    "username",
    "password",
    "imap_server",
    "imap_port",
    "imap_encryption",
    "imap_mailbox",
    "validate_certificate",
    "smtp_server",
    "smtp_port",
    "smtp_encryption",
    "smtp_username",
    "smtp_password",
    "message_content_type",
    "reply_to",
    "sent_folder",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_refresh_token",
    "oauth_token_uri",
)
SECRET_FIELDS = ("password", "smtp_password", "oauth_client_secret", "oauth_refresh_token")
# Settings an update's null resets to "" (none, or the default): text that may be empty. Not the address
# (a connection needs one), the POP3 spellings (aliases of the imap_* fields) or the secrets; nor the ports
# and the certificate check, which the view shows as null when mailboxes differ, so that a view sent back
# as it came changes nothing.
_RESETTABLE = (
    *(
        f
        for f in MAILBOX_FIELDS
        if f not in (*SECRET_FIELDS, "address", "imap_port", "smtp_port", "validate_certificate")
    ),
    "description",
    "smtp_signature",
    "sendgrid_api_url",
)
# What a removed secret is carried as between update() and _secret(); it never reaches the database.
_CLEARED = "\x00cleared"
OAUTH_FIELDS = ("oauth_client_id", "oauth_client_secret", "oauth_refresh_token")
# One incoming server serves "POP3 or IMAP"; for a POP3 connection these spellings fill it.
POP3_ALIASES = {"pop3_server": "imap_server", "pop3_port": "imap_port", "pop3_encryption": "imap_encryption"}

# Environment-variable names → our field names. CHECK_INTERVAL and EMAIL_MAX_ATTACHMENT_BYTES
# apply to the whole connection; EMAIL_NAME, IMAP_MAILBOX and MESSAGE_CONTENT_TYPE per mailbox.
ENV_ALIASES = {
    "EMAIL_NAME": "email_name",
    "IMAP_MAILBOX": "imap_mailbox",
    "MESSAGE_CONTENT_TYPE": "message_content_type",
    "SMTP_SIGNATURE": "smtp_signature",
    "EMAIL_MAX_ATTACHMENT_BYTES": "max_attachment_bytes",
    "CHECK_INTERVAL": "check_interval",
}

MultiValue = str | int | bool | list[str | int | bool] | None


class ConnectionInput(BaseModel):
    """What an admin sends to create (all required fields) or change (any subset) a connection.

    Per-mailbox fields accept ``"a, b"`` or ``["a", "b"]``; use the list form for a password that
    contains a comma. Secrets sent back as ``********`` (as the API shows them) keep the stored value.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="Unique name of the connection.")
    description: str | None = None
    mode: Literal["imap", "pop3", "forwarding", "webhook"] | None = Field(
        default=None, description="How mail comes in: imap (default), pop3, forwarding or webhook."
    )
    outbound: Literal["smtp", "sendgrid"] | None = Field(
        default=None, description="How mail goes out: smtp (default) or sendgrid."
    )
    address: MultiValue = Field(
        default=None,
        description="Mailbox address(es), comma-separated; a change keeps each mailbox's settings (by address).",
    )
    email_name: MultiValue = Field(default=None, description="Display name in From (EMAIL_NAME).")
    username: MultiValue = Field(default=None, description="Sign-in name; defaults to the address.")
    password: MultiValue = Field(default=None, description="Password or app password (write-only).")
    imap_server: MultiValue = None
    imap_port: MultiValue = Field(default=None, description="Default 993 (143 without implicit TLS).")
    imap_encryption: MultiValue = Field(default=None, description="ssl (default), starttls or none.")
    pop3_server: MultiValue = Field(default=None, description="Incoming POP3 server (mode pop3).")
    pop3_port: MultiValue = Field(default=None, description="Default 995 (110 without implicit TLS).")
    pop3_encryption: MultiValue = Field(default=None, description="ssl (default), starttls or none.")
    imap_mailbox: MultiValue = Field(default=None, description="Folder to read (IMAP_MAILBOX), default INBOX.")
    validate_certificate: MultiValue = Field(default=None, description="Check server certificates; default on.")
    smtp_server: MultiValue = None
    smtp_port: MultiValue = Field(default=None, description="Default 587.")
    smtp_encryption: MultiValue = Field(default=None, description="auto (by port), ssl, starttls or none.")
    smtp_username: MultiValue = Field(default=None, description="Defaults to the IMAP username.")
    smtp_password: MultiValue = Field(default=None, description="Defaults to the IMAP password (write-only).")
    message_content_type: MultiValue = Field(default=None, description="text/plain (default) or text/html.")
    reply_to: MultiValue = Field(default=None, description="Reply-To of outgoing mail; default none.")
    sent_folder: MultiValue = Field(default=None, description="IMAP folder for sent mail; default the \\Sent one.")
    oauth_enabled: bool | None = Field(default=None, description="Sign in with OAuth2 (XOAUTH2); default off.")
    allow_plaintext_auth: bool | None = Field(
        default=None,
        description="Let passwords and OAuth tokens go unencrypted (encryption none, or SMTP auto on port 25) "
        "to a host other than loopback; default off. Shown as a warning while in use.",
    )
    team_id: int | None = Field(default=None, description="New conversations join this team's queue; null: none.")
    auto_assign: bool | None = Field(
        default=None, description="Assign new conversations round robin over the team's available members."
    )
    grouping: Literal["thread", "contact"] | None = Field(
        default=None,
        description="thread (default): a new thread is a new conversation; contact: while the sender has a"
        " conversation here that is not resolved, all their mail joins it.",
    )
    oauth_client_id: MultiValue = Field(default=None, description="OAuth client ID, per mailbox.")
    oauth_client_secret: MultiValue = Field(default=None, description="OAuth client secret (write-only).")
    oauth_refresh_token: MultiValue = Field(default=None, description="OAuth refresh token (write-only).")
    oauth_token_uri: MultiValue = Field(
        default=None, description=f"Token endpoint; default {DEFAULT_TOKEN_URI}; https (http on loopback only)."
    )
    sendgrid_api_key: str | None = Field(default=None, description="SendGrid API key (write-only).")
    sendgrid_api_url: str | None = Field(
        default=None, description=f"Default {DEFAULT_SENDGRID_API_URL}; https (http on loopback only)."
    )
    webhook_provider: Literal["sendgrid", "mailgun", ""] | None = Field(
        default=None,
        description='Mode webhook: who posts the mail (SendGrid Inbound Parse or Mailgun routes); "" = none.',
    )
    webhook_signing_key: str | None = Field(
        default=None,
        description="Mode webhook: Mailgun's HTTP webhook signing key, or SendGrid's verification public key.",
    )
    delete_after_import: bool | None = Field(
        default=None, description="POP3: delete mail from the server once stored; default off."
    )
    save_to_sent: bool | None = Field(default=None, description="IMAP: append sent replies to Sent; default on.")
    response_delay_min: float | None = Field(default=None, description="Seconds a reply waits at least (0).")
    response_delay_max: float | None = Field(default=None, description="Seconds a reply waits at most (0).")
    check_interval: float | str | None = Field(
        default=None,
        description="Seconds between inbox checks (CHECK_INTERVAL), default 15; smallest of several.",
    )
    mark_as_read: bool | None = Field(default=None, description="Set \\Seen after import; default on.")
    unread_only: bool | None = Field(default=None, description="Import only unread mail; default off.")
    smtp_signature: str | None = Field(
        default=None, description="Appended to outgoing mail; {{ sender_name }}, {{ sender_email }}."
    )
    max_attachment_bytes: int | None = Field(
        default=None,
        description="Per-file inbound limit (EMAIL_MAX_ATTACHMENT_BYTES), 0 = none; default 10 MB.",
    )
    env: dict[str, str] | None = Field(
        default=None, description="Environment-variable names, e.g. {'EMAIL_NAME': 'Support'}."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        if value is not None and any(unicodedata.category(c) == "Cc" for c in value):
            raise ValueError("must not contain control characters")
        return value.strip() if value is not None else None


def _cleared_fields(data: dict[str, Any], was_oauth: bool, is_oauth: bool) -> list[str]:
    """The mailbox fields an update removes.

    A secret is removed by an explicit null ("" and the mask keep it, as a form sends them back), for
    example ``smtp_password`` to sign in to SMTP with the IMAP password again. Switching ``oauth_enabled``
    changes how every mailbox signs in, and a connection cannot mix the two: the credentials of the way left
    behind (passwords, or the OAuth client and grant) are removed unless the same update gives them.
    """
    cleared = [f for f in SECRET_FIELDS if f in data and data[f] is None]
    if was_oauth != is_oauth:
        left_behind = ("password", "smtp_password") if is_oauth else (*OAUTH_FIELDS, "oauth_token_uri")
        cleared += [f for f in left_behind if data.get(f) in (None, "", MASK) and f not in cleared]
    return cleared


def split_values(value: MultiValue) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` → ``["a", "b"]``; None → []."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value]
    if isinstance(value, bool | int):
        return [str(value)]
    return [part.strip() for part in value.split(",")]


def _address_list(value: MultiValue) -> list[str]:
    """The addresses an ``address`` value lists, blanks dropped."""
    return [a for a in split_values(value) if a]


def match_mailboxes(old: Sequence[str], new: Sequence[str]) -> list[int | None]:
    """For each new address, the index of the stored mailbox it continues, or None for a new mailbox.

    A mailbox is matched by its address (case-insensitively), wherever it moved. An address replaced in
    place, where the stored address at that position is listed no more and the new one was not there
    before, is the same mailbox renamed: it keeps its row, so its import cursor, its conversations, its
    password and its settings stay. Both the merge of stored values and the reuse of rows use this.
    """
    old_keys = [a.lower() for a in old]
    new_keys = [a.lower() for a in new]
    index = {key: i for i, key in enumerate(old_keys)}
    matches: list[int | None] = [index.get(key) for key in new_keys]
    taken = {j for j in matches if j is not None}
    for i in range(len(new_keys)):
        if matches[i] is None and i < len(old_keys) and i not in taken and old_keys[i] not in new_keys:
            matches[i] = i
            taken.add(i)
    return matches


def _carried(values: list[str], match: int | None, secret: bool) -> str:
    """A stored per-mailbox value for a mailbox of the new address list (see :func:`match_mailboxes`).

    A new mailbox takes the last stored value ("the last value repeats"), except a secret:
    one mailbox's password is never another's. The caller passes the SMTP user name as a secret too: without
    the password that goes with it, another mailbox's SMTP login would sign the new one in with its own IMAP
    password (535); with neither, SMTP signs in as the mailbox's own user.
    """
    if match is not None:
        return values[match]
    if secret or not values:
        return ""
    return values[-1]


def _refuse_control_characters(field: str, value: str, where: str = "") -> None:
    # CR or LF in a value that ends up in a header or a protocol command would break (or inject into)
    # every mail sent (RFC 5322 §2.2, RFC 5321 §2.3.8); other control characters never belong there either.
    bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise InvalidSetting(field, f"must not contain control characters (found {bad!r}){where}")


def _host(field: str, raw: str) -> str:
    """A server's host name or IP address: not a URL, no spaces (the port has its own field)."""
    if "://" in raw or "/" in raw:
        raise InvalidSetting(
            field,
            f"{raw!r} looks like a URL: give the host name only (e.g. mail.example.com), the port in its own field",
        )
    if any(c.isspace() for c in raw):
        raise InvalidSetting(field, f"{raw!r} contains spaces: give the host name only (e.g. mail.example.com)")
    return raw


def _check_lengths(row: Connection | Mailbox, names: dict[str, str], where: str = "") -> None:
    """Refuse a value longer than its column, naming the field, before the database does (PostgreSQL raises)."""
    for column in type(row).__table__.columns:
        if not isinstance(column.type, String) or isinstance(column.type, Enum) or not column.type.length:
            continue
        value = getattr(row, column.key, None)
        if isinstance(value, str) and len(value) > column.type.length:
            field = names.get(column.key, column.key)
            raise InvalidSetting(field, f"is {len(value)} characters long, at most {column.type.length} fit{where}")


# Column → field name where they differ, for errors (POP3 connections say pop3_* for the incoming server).
_MAILBOX_FIELD_NAMES = {"imap_host": "imap_server", "imap_folder": "imap_mailbox", "smtp_host": "smtp_server"}
_POP3_FIELD_NAMES = {**_MAILBOX_FIELD_NAMES, "imap_host": "pop3_server"}
# Mailbox fields that are free text shown in or sent with mail; a secret is checked in _secret.
_TEXT_COLUMNS = {
    "address": "address",
    "email_name": "email_name",
    "username": "username",
    "imap_host": "imap_server",
    "imap_folder": "imap_mailbox",
    "smtp_host": "smtp_server",
    "smtp_username": "smtp_username",
    "reply_to": "reply_to",
    "sent_folder": "sent_folder",
    "oauth_client_id": "oauth_client_id",
    "oauth_token_uri": "oauth_token_uri",
}
# Changing only these does not restart a running connection: nothing that runs reads them.
_LABEL_FIELDS = ("name", "description")
# The name's unique constraint (store.models NAMING): how a lost check-then-insert race shows.
_NAME_CONSTRAINTS = ("uq_connections_name", "connections.name")


@contextmanager
def _name_race(name: str) -> Iterator[None]:
    """Turn a unique-name violation into the same Conflict as :meth:`ConnectionService._ensure_unique_name`.

    The check and the insert are two statements: on PostgreSQL two concurrent creates can both pass the
    check, and the second INSERT then fails on the constraint (SQLite serialises writers instead).
    """
    try:
        yield
    except IntegrityError as error:
        if any(constraint in str(error.orig) for constraint in _NAME_CONSTRAINTS):
            raise Conflict(f"a connection named {name!r} already exists") from None
        raise


def _positional(values: list[str], count: int) -> list[str]:
    """Stretch values to one per mailbox: the last value repeats."""
    if not values:
        return [""] * count
    return [values[i] if i < len(values) else values[-1] for i in range(count)]


def _port(field: str, raw: str, default: int) -> int:
    if raw == "":
        return default
    try:
        port = int(raw)
    except ValueError:
        raise InvalidSetting(field, f"{raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise InvalidSetting(field, f"{port} is outside the port range 1-65535")
    return port


def _bool(field: str, raw: str, default: bool) -> bool:
    lowered = raw.lower()
    if lowered == "":
        return default
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise InvalidSetting(field, f"{raw!r} is not true or false")


# Ports whose protocol starts in plain text and upgrades (RFC 3501 §6.2.1 STARTTLS, RFC 2595 STLS,
# RFC 3207 for SMTP submission and relay): "TLS" on them can only mean STARTTLS.
_UPGRADE_PORTS = {143, 110, 587, 25, 2525}


def _tls_by_port(raw_port: str, protocol: str) -> str:
    """What a bare "TLS" means on this port: STARTTLS on an upgrade port, else implicit TLS.

    For SMTP only port 465 is implicit TLS (RFC 8314 §3.3); any other port given "TLS" upgrades, so an
    admin asking for TLS never ends up unencrypted.
    """
    port = int(raw_port) if raw_port.strip().isdigit() else None
    if protocol == "smtp":
        return "ssl" if port == 465 else "starttls"
    return "starttls" if port in _UPGRADE_PORTS else "ssl"


def _encryption(
    field: str, raw: str, table: dict[str, str], default: str, *, port: str = "", protocol: str = ""
) -> str:
    if raw == "":
        return default
    if raw.strip().lower() == "tls" and protocol:
        return _tls_by_port(port, protocol)
    try:
        return table[raw.lower()]
    except KeyError:
        allowed = sorted(set(table.values()))
        raise InvalidSetting(field, f"unknown encryption {raw!r}; use one of {', '.join(allowed)}") from None


def _address(field: str, raw: str) -> str:
    # A deliberately small check: a local part, one @, a dotted or local domain, no spaces or brackets.
    # Control characters and line separators first, with the shared check of every address field.
    bad = unsafe_character(raw)
    if bad is not None:
        raise InvalidSetting(field, f"must not contain control characters or line separators (found {bad!r})")
    local, at, domain = raw.rpartition("@")
    if not at or not local or not domain or any(c in raw for c in " <>,;\r\n\t"):
        raise InvalidSetting(field, f"{raw!r} is not an email address")
    return f"{local}@{domain.lower()}"


def _check_interval(raw: float | str) -> float:
    values = split_values(raw) if isinstance(raw, str) else [str(raw)]
    try:
        numbers = [float(v) for v in values if v != ""]
    except ValueError:
        raise InvalidSetting("check_interval", f"{raw!r} is not a number of seconds") from None
    if not numbers:
        raise InvalidSetting("check_interval", "must be a number of seconds")
    # One value for the whole connection; with several values the smallest is used.
    smallest = min(numbers)
    if not 1 <= smallest <= 86_400:
        raise InvalidSetting("check_interval", f"{smallest:g} s is outside 1-86400 seconds")
    return smallest


def _apply_env(data: dict[str, Any]) -> dict[str, Any]:
    env = data.pop("env", None) or {}
    for key, value in env.items():
        target = ENV_ALIASES.get(key.upper())
        if target is None:
            raise InvalidSetting(f"env.{key}", f"unknown variable; known: {', '.join(sorted(ENV_ALIASES))}")
        # An explicit field wins over the same setting given as a variable.
        if data.get(target) is None:
            data[target] = value
    return data


def _apply_pop3_aliases(data: dict[str, Any], mode: ConnectionMode) -> dict[str, Any]:
    for alias, target in POP3_ALIASES.items():
        value = data.pop(alias, None)
        if value is None:
            continue
        if mode is not ConnectionMode.POP3:
            raise InvalidSetting(alias, f"applies to mode pop3 only (this connection's mode is {mode.value})")
        if data.get(target) is not None:
            if split_values(data[target]) == split_values(value):
                continue  # both spellings, one value: what the API shows a POP3 connection as
            raise InvalidSetting(alias, f"given together with {target} and a different value; use one of them")
        data[target] = value
    return data


def _delay(field: str, raw: float) -> float:
    if not 0 <= raw <= MAX_RESPONSE_DELAY:
        raise InvalidSetting(field, f"{raw:g} s is outside 0-{MAX_RESPONSE_DELAY:g} seconds")
    return float(raw)


def generate_inbound_key() -> str:
    """A random, lower-case local part for a forwarding address or a webhook URL (24 hex digits).

    Lower-case hex because a local part may be case-folded on its way to us, although RFC 5321 §2.4
    says it should not be; and it must be unguessable (96 bits), since knowing it is enough to send us mail.
    """
    return _random.token_hex(12)


# How a refusal of a stored secret for a changed destination ends.
_NOT_SENT = "the stored one is not sent to a new server"


def _changed(pairs: Sequence[tuple[str, object, object]]) -> list[str]:
    return [name for name, new, old in pairs if new != old]


def _check_reentry(
    connection: Connection, box: Mailbox, old: Mailbox, given: set[str], protocol: str, where: str
) -> None:
    """Refuse to keep a stored secret whose destination changed, unless this change gives it again.

    The API never shows a secret, so anyone who may change a connection could otherwise point it at a
    server of their own (a new host, or only a new port on this one) and read the password at the next
    sign-in or "Test connection". Re-entering the secret proves its sender knows it already. Values are
    compared as stored, after the defaults and spellings are applied, so the API's own view sent back (or
    a ``.env`` file repeating a setting) changes nothing. Host names compare case-insensitively (RFC 4343).
    The OAuth client ID is no destination (the secrets still go to the same token endpoint), and a stored
    user name is compared as stored: an address renamed in place may change the login, not the server.
    """
    # Turning the certificate check off lets anyone on the path pose as the server: a new destination too.
    downgraded = old.validate_certificate and not box.validate_certificate
    incoming = _changed(
        (
            (f"{protocol}_server", box.imap_host.lower(), old.imap_host.lower()),
            (f"{protocol}_port", box.imap_port, old.imap_port),
            (f"{protocol}_encryption", box.imap_encryption, old.imap_encryption),
            ("username", box.username, old.username),
        )
    ) + (["validate_certificate"] if downgraded else [])
    outgoing = _changed(
        (
            ("smtp_server", box.smtp_host.lower(), old.smtp_host.lower()),
            ("smtp_port", box.smtp_port, old.smtp_port),
            ("smtp_encryption", box.smtp_encryption, old.smtp_encryption),
            ("smtp_username", box.smtp_username, old.smtp_username),
        )
    ) + (["validate_certificate"] if downgraded else [])
    # The client secret and the refresh token go to the token endpoint; an empty URI means the default one.
    token = _changed(
        (("oauth_token_uri", box.oauth_token_uri or DEFAULT_TOKEN_URI, old.oauth_token_uri or DEFAULT_TOKEN_URI),)
    )

    def refuse(field: str, changed: list[str], secret: str) -> None:
        what = " and ".join(dict.fromkeys(changed))
        raise InvalidSetting(field, f"{what} changed: re-enter {secret}, {_NOT_SENT}{where}")

    if incoming and box.password_enc and "password" not in given:
        refuse("password", incoming, "password")
    if outgoing and box.smtp_password_enc and "smtp_password" not in given:
        refuse("smtp_password", outgoing, "smtp_password")
    if outgoing and not box.smtp_password_enc and box.password_enc and not given & {"password", "smtp_password"}:
        # SMTP signs in with the mailbox password while smtp_password is empty (channels.accounts): that
        # password would go to the new SMTP server.
        refuse("smtp_password", outgoing, "smtp_password (or password, which SMTP signs in with while it is empty)")
    if not connection.oauth_enabled:
        return
    if token:
        for field in ("oauth_client_secret", "oauth_refresh_token"):
            if getattr(box, f"{field}_enc") and field not in given:
                refuse(field, token, "oauth_client_secret and oauth_refresh_token")
    if (incoming or outgoing) and box.oauth_refresh_token_enc and "oauth_refresh_token" not in given:
        # XOAUTH2 sends an access token minted from the refresh token, as good as a password for its lifetime.
        raise InvalidSetting(
            "oauth_refresh_token",
            f"{' and '.join(dict.fromkeys(incoming + outgoing))} changed: re-enter oauth_refresh_token, access "
            f"tokens of the stored one are not sent to a new server{where}",
        )


@dataclass(frozen=True, slots=True)
class PlaintextSignIn:
    """A secret a mailbox would send unencrypted to a host other than loopback."""

    mailbox: str
    field: str  # the setting that leaves it unencrypted
    protocol: str  # IMAP, POP3 or SMTP
    endpoint: str  # host:port
    secret: str  # "password" or "OAuth access token"
    why: str

    def refusal(self) -> InvalidSetting:
        return InvalidSetting(
            self.field,
            f"{self.why}: the {self.protocol} {self.secret} would go unencrypted to {self.endpoint} "
            f"(mailbox {self.mailbox}); {PLAINTEXT_ADVICE}",
        )

    def warning(self) -> str:
        return (
            f"mailbox {self.mailbox}: the {self.protocol} {self.secret} goes unencrypted to {self.endpoint} "
            f"({self.field} {self.why}; allowed by allow_plaintext_auth)"
        )


def plaintext_sign_ins(connection: Connection) -> list[PlaintextSignIn]:
    """Where the connection's mailboxes would send a password or token without TLS to a non-loopback host.

    The same rules as the sign-in guard of :mod:`postroom.channels.accounts`: an incoming server with
    encryption none (IMAP and POP3 modes read it), and an SMTP server whose encryption resolves to none
    (``auto`` on port 25, RFC 5321 relay) when the mailbox signs in to it at all.
    """
    oauth = connection.oauth_enabled
    secret = "OAuth access token" if oauth else "password"
    found: list[PlaintextSignIn] = []
    for box in connection.mailboxes:
        if connection.mode in _READING_MODES and box.imap_encryption == "none" and not is_loopback(box.imap_host):
            protocol = "pop3" if connection.mode is ConnectionMode.POP3 else "imap"
            if oauth or box.password_enc:
                endpoint = f"{box.imap_host}:{box.imap_port}"
                found.append(
                    PlaintextSignIn(
                        box.address, f"{protocol}_encryption", protocol.upper(), endpoint, secret, "is none"
                    )
                )
        if connection.outbound is not OutboundKind.SMTP or not box.smtp_host or is_loopback(box.smtp_host):
            continue
        account = SmtpAccount(
            address=box.address,
            host=box.smtp_host,
            port=box.smtp_port,
            encryption=cast(SmtpEncryption, box.smtp_encryption),
        )
        if encryption_for(account) == "none" and (oauth or box.smtp_password_enc or box.password_enc):
            why = "is none" if box.smtp_encryption == "none" else f"is auto, which is none on port {box.smtp_port}"
            endpoint = f"{box.smtp_host}:{box.smtp_port}"
            found.append(PlaintextSignIn(box.address, "smtp_encryption", "SMTP", endpoint, secret, why))
    return found


class ConnectionService:
    """Create, change, read and delete connections. All methods work inside the caller's transaction.

    ``inbound_domain`` is the domain of forwarding addresses (``POSTROOM_INBOUND_DOMAIN``).
    """

    def __init__(self, secrets: SecretBox, inbound_domain: str = "localhost") -> None:
        self.secrets = secrets
        self.inbound_domain = inbound_domain

    # -- writing -------------------------------------------------------------------------------

    def create(self, session: Session, spec: ConnectionInput) -> Connection:
        mode = ConnectionMode(spec.mode or "imap")
        data = _apply_pop3_aliases(_apply_env(spec.model_dump()), mode)
        for required in ("name", "address"):
            if not any(split_values(data.get(required))):
                raise InvalidSetting(required, "is required")
        self._ensure_unique_name(session, data["name"])
        connection = Connection(
            name=data["name"],
            description=data.get("description") or "",
            mode=mode,
            status=ConnectionStatus.STOPPED,
        )
        self._apply_connection_fields(connection, data, creating=True)
        _apply_work_fields(session, connection, data, creating=True)
        _check_lengths(connection, {})
        connection.mailboxes = [box for box, _ in self._build_mailboxes(data, existing=[], connection=connection)]
        self._check_whole(connection)
        with _name_race(connection.name):
            session.add(connection)
            session.flush()
        self._log_warnings(session, connection)
        return connection

    def update(self, session: Session, connection_id: int, spec: ConnectionInput) -> Connection:
        connection = self.get(session, connection_id)
        with _name_race(spec.name or connection.name):
            return self._update(session, connection, spec)

    def _update(self, session: Session, connection: Connection, spec: ConnectionInput) -> Connection:
        was_oauth = connection.oauth_enabled
        data = _apply_env(spec.model_dump(exclude_unset=True))
        for field in _RESETTABLE:
            # null removes a value, as in a JSON merge patch (RFC 7396 §2): a text setting goes back to
            # none or its default, like "" (secrets: see _cleared_fields).
            if field in data and data[field] is None:
                data[field] = ""
        if data.get("mode") is not None:
            connection.mode = ConnectionMode(data["mode"])
        data = _apply_pop3_aliases(data, connection.mode)
        if data.get("name") is not None and data["name"] != connection.name:
            self._ensure_unique_name(session, data["name"])
            connection.name = data["name"]
        if data.get("description") is not None:
            connection.description = data["description"]
        self._apply_connection_fields(connection, data, creating=False)
        _apply_work_fields(session, connection, data, creating=False)
        _check_lengths(connection, {})
        mode_or_auth_changed = data.get("mode") is not None or data.get("oauth_enabled") is not None
        cleared = _cleared_fields(data, was_oauth, connection.oauth_enabled)
        if (
            mode_or_auth_changed
            or cleared
            or data.get("outbound") is not None
            or any(data.get(f) is not None for f in MAILBOX_FIELDS)
        ):
            merged = self._current_mailbox_values(connection)
            if (data.get("imap_encryption") is not None or data.get("mode") is not None) and data.get(
                "imap_port"
            ) is None:
                # A port that was the default of the old encryption or protocol follows the new one
                # (993 ↔ 143, IMAP ↔ POP3 995/110); a port the admin chose stays.
                defaults = set(_INCOMING_PORTS.values())
                merged["imap_port"] = ["" if int(p) in defaults else p for p in merged["imap_port"]]
            if data.get("address") is not None:
                # New addresses: every mailbox keeps its own stored values, matched by address (or renamed in
                # place), not by position; a removed mailbox's values go with it.
                matches = match_mailboxes(merged["address"], _address_list(data["address"]))
                for field in MAILBOX_FIELDS:
                    stored = merged[field]
                    secret = field in SECRET_FIELDS or field == "smtp_username"
                    merged[field] = [_carried(stored, j, secret) for j in matches]
            for field in MAILBOX_FIELDS:
                if data.get(field) is not None:
                    merged[field] = data[field]
            for field in cleared:
                merged[field] = [_CLEARED if field in SECRET_FIELDS else ""]
            new_boxes = self._build_mailboxes(merged, existing=list(connection.mailboxes), connection=connection)
            self._replace_mailboxes(session, connection, new_boxes)
        self._check_whole(connection)
        if any(field not in _LABEL_FIELDS for field in data):
            # Running workers compare revisions and restart with the new settings (changed
            # credentials take effect on restart; we restart for the admin). A new name or description
            # changes nothing that runs (the supervisor and runners read only the revision), so no restart.
            connection.revision += 1
            self._retry_now(session, connection)
            self._log_warnings(session, connection)
        connection.updated_at = utcnow()
        session.flush()
        return connection

    def update_mailbox(
        self, session: Session, connection_id: int, mailbox_id: int, changes: dict[str, Any]
    ) -> Connection:
        """Change one mailbox's settings (``changes``: mailbox field → value, None to reset or remove it).

        The same update as the comma-separated form with every other mailbox's values as stored, so every
        rule (secrets re-entered, plaintext sign-in, OAuth) applies alike.
        """
        connection = self.get(session, connection_id)
        boxes = list(connection.mailboxes)
        position = next((i for i, b in enumerate(boxes) if b.id == mailbox_id), None)
        if position is None:
            raise NotFound(f"no mailbox {mailbox_id} in connection {connection_id}")
        values = self._current_mailbox_values(connection)
        body: dict[str, Any] = {}
        for field, value in changes.items():
            if field not in MAILBOX_FIELDS:
                raise InvalidSetting(field, "is not a mailbox setting")
            if field == "address" and not value:
                raise InvalidSetting(field, "is required")
            column = list(values[field])
            if value is None:
                column[position] = _CLEARED if field in SECRET_FIELDS else ""
            else:
                column[position] = str(value).lower() if isinstance(value, bool) else str(value)
            body[field] = column
        with _name_race(connection.name):
            return self._update(session, connection, ConnectionInput.model_validate(body))

    def delete(self, session: Session, connection_id: int, confirm_name: str | None = None) -> None:
        connection = self.get(session, connection_id)
        if confirm_name is not None and confirm_name != connection.name:
            raise Conflict(f"confirmation {confirm_name!r} does not match the connection name {connection.name!r}")
        self._fail_queued(session, connection)
        session.delete(connection)
        session.flush()

    def _retry_now(self, session: Session, connection: Connection) -> None:
        """Saved settings may fix what failed: the queued replies that already failed are due at once.

        A reply parked for refused credentials (jobs.outbox) would otherwise wait up to the retry policy's
        longest delay after the admin fixed the password or the API key. Rows that never failed are left
        alone: their ``next_attempt_at`` may be a delay the agent chose (``send_after``).
        """
        session.execute(
            update(Outbox)
            .where(
                Outbox.connection_id == connection.id,
                Outbox.status == OutboxStatus.QUEUED,
                Outbox.last_error != "",
            )
            .values(next_attempt_at=utcnow())
        )

    def _fail_queued(self, session: Session, connection: Connection, mailbox: Mailbox | None = None) -> None:
        """Replies still queued can never go out once their connection (or ``mailbox``) is gone: say so, on the
        row and to the agent.

        Rows being sent (claimed) are left to the worker sending them. The failure is recorded as the outbox
        records one (:func:`postroom.jobs.outbox.settle`): the row's status and error, mirrored on the agent's
        message.
        """
        query = select(Outbox).where(Outbox.connection_id == connection.id, Outbox.status == OutboxStatus.QUEUED)
        if mailbox is None:
            reason = f"connection {connection.name} was deleted before it was sent"
        else:
            reason = f"mailbox {mailbox.address} was removed from connection {connection.name} before it was sent"
            query = query.where(Outbox.mailbox_id == mailbox.id)
        for row in session.scalars(query).all():
            settle(session, row, OutboxStatus.FAILED, reason)

    def start(self, session: Session, connection: Connection) -> None:
        """Ask the workers to (re)start it: a new revision makes the owner start over with what is stored now."""
        connection.enabled = True
        connection.revision += 1
        self.set_status(session, connection, ConnectionStatus.STARTING, "")
        self._log_warnings(session, connection)
        session.flush()

    def stop(self, session: Session, connection: Connection) -> None:
        """Ask the workers to stop it; the owner says STOPPED once stopped, or we do when no worker owns it."""
        connection.enabled = False
        lease = session.get(Lease, connection_lease(connection.id))
        if lease is None or lease.expires_at < utcnow():
            self.set_status(session, connection, ConnectionStatus.STOPPED, "")
        session.flush()

    def set_status(self, session: Session, connection: Connection, status: ConnectionStatus, message: str) -> None:
        if connection.status != status or connection.status_message != message:
            connection.status = status
            connection.status_message = message
            connection.status_changed_at = utcnow()

    # -- reading -------------------------------------------------------------------------------

    def get(self, session: Session, connection_id: int) -> Connection:
        connection = session.scalar(
            select(Connection).where(Connection.id == connection_id).options(selectinload(Connection.mailboxes))
        )
        if connection is None:
            raise NotFound(f"no connection {connection_id}")
        return connection

    def get_by_name(self, session: Session, name: str) -> Connection:
        connection = session.scalar(
            select(Connection).where(Connection.name == name).options(selectinload(Connection.mailboxes))
        )
        if connection is None:
            raise NotFound(f"no connection named {name!r}")
        return connection

    def list_all(self, session: Session) -> Sequence[Connection]:
        return session.scalars(
            select(Connection).options(selectinload(Connection.mailboxes)).order_by(Connection.id)
        ).all()

    def logs(
        self, session: Session, connection_id: int, *, limit: int = 200, before_id: int | None = None
    ) -> list[ConnectionLog]:
        self.get(session, connection_id)
        query = select(ConnectionLog).where(ConnectionLog.connection_id == connection_id)
        if before_id is not None:
            query = query.where(ConnectionLog.id < before_id)
        rows = session.scalars(query.order_by(ConnectionLog.id.desc()).limit(limit)).all()
        return list(reversed(rows))

    def inbound_address(self, connection: Connection) -> str | None:
        """The generated address a forwarding connection receives on."""
        if connection.mode is not ConnectionMode.FORWARDING or not connection.inbound_key:
            return None
        return f"{connection.inbound_key}@{self.inbound_domain}"

    def webhook_path(self, connection: Connection) -> str | None:
        """The URL path a webhook connection's provider posts to (prefix it with this server's public URL)."""
        if connection.mode is not ConnectionMode.WEBHOOK or not connection.inbound_key:
            return None
        path = f"/api/v1/inbound/{connection.webhook_provider}/{connection.inbound_key}"
        # Mailgun posts the raw MIME (field body-mime) only to a URL that ends in "mime".
        return f"{path}/mime" if connection.webhook_provider == "mailgun" else path

    def warnings(self, connection: Connection) -> list[str]:
        """What an admin should know about the stored settings: secrets that go unencrypted, when allowed."""
        return [exposed.warning() for exposed in plaintext_sign_ins(connection)]

    def _log_warnings(self, session: Session, connection: Connection) -> None:
        # Said in the connection log too, where the admin reads why a connection does what it does.
        for warning in self.warnings(connection):
            session.add(
                ConnectionLog(
                    connection_id=connection.id, at=utcnow(), level="warning", event="plaintext_auth", message=warning
                )
            )

    def view(self, connection: Connection) -> dict[str, Any]:
        """The connection as the API shows it: flat fields like the input (comma-joined), secrets masked."""
        boxes = connection.mailboxes
        values = self._current_mailbox_values(connection, masked=True)
        flat: dict[str, Any] = {field: ", ".join(str(v) for v in values[field]) for field in MAILBOX_FIELDS}
        # Numbers and flags keep their type: the value every mailbox shares, else null (each mailbox's own
        # is under "mailboxes"); text stays comma-joined, the form an update takes.
        for field, column in (
            ("imap_port", "imap_port"),
            ("smtp_port", "smtp_port"),
            ("validate_certificate", "validate_certificate"),
        ):
            shared = {getattr(b, column) for b in boxes}
            flat[field] = shared.pop() if len(shared) == 1 else None
        if connection.mode is ConnectionMode.POP3:
            for alias, target in POP3_ALIASES.items():
                flat[alias] = flat[target]
        return {
            "id": connection.id,
            "name": connection.name,
            "description": connection.description,
            "mode": connection.mode.value,
            "outbound": connection.outbound.value,
            "status": connection.status.value,
            "status_message": connection.status_message,
            "status_changed_at": _iso(connection.status_changed_at),
            "enabled": connection.enabled,
            "check_interval": connection.check_interval,
            "mark_as_read": connection.mark_as_read,
            "unread_only": connection.unread_only,
            "delete_after_import": connection.delete_after_import,
            "save_to_sent": connection.save_to_sent,
            "smtp_signature": connection.smtp_signature,
            "max_attachment_bytes": connection.max_attachment_bytes,
            "oauth_enabled": connection.oauth_enabled,
            "allow_plaintext_auth": connection.allow_plaintext_auth,
            "team_id": connection.team_id,
            "auto_assign": connection.auto_assign,
            "grouping": connection.grouping.value,
            "warnings": self.warnings(connection),
            "sendgrid_api_key": mask(connection.sendgrid_api_key_enc),
            "sendgrid_api_url": connection.sendgrid_api_url,
            "webhook_provider": connection.webhook_provider,
            "webhook_signing_key": mask(connection.webhook_signing_key_enc),
            "inbound_address": self.inbound_address(connection),
            "webhook_path": self.webhook_path(connection),
            "response_delay_min": connection.response_delay_min,
            "response_delay_max": connection.response_delay_max,
            **flat,
            "mailboxes": [
                {
                    "id": b.id,
                    "position": b.position,
                    "address": b.address,
                    "email_name": b.email_name,
                    "reply_to": b.reply_to,
                    "username": b.username,
                    "password": mask(b.password_enc),
                    "imap_server": b.imap_host,
                    "imap_port": b.imap_port,
                    "imap_encryption": b.imap_encryption,
                    "imap_mailbox": b.imap_folder,
                    "sent_folder": b.sent_folder,
                    "validate_certificate": b.validate_certificate,
                    "smtp_server": b.smtp_host,
                    "smtp_port": b.smtp_port,
                    "smtp_encryption": b.smtp_encryption,
                    "smtp_username": b.smtp_username,
                    "smtp_password": mask(b.smtp_password_enc),
                    "message_content_type": b.message_content_type,
                    "oauth_client_id": b.oauth_client_id,
                    "oauth_client_secret": mask(b.oauth_client_secret_enc),
                    "oauth_refresh_token": mask(b.oauth_refresh_token_enc),
                    "oauth_token_uri": b.oauth_token_uri or (DEFAULT_TOKEN_URI if connection.oauth_enabled else ""),
                }
                for b in boxes
            ],
            "created_at": _iso(connection.created_at),
            "updated_at": _iso(connection.updated_at),
        }

    # -- internals -----------------------------------------------------------------------------

    def _ensure_unique_name(self, session: Session, name: str) -> None:
        taken = session.scalar(select(func.count()).select_from(Connection).where(Connection.name == name))
        if taken:
            raise Conflict(f"a connection named {name!r} already exists")

    def _apply_connection_fields(self, connection: Connection, data: dict[str, Any], *, creating: bool) -> None:
        if data.get("check_interval") is not None:
            connection.check_interval = _check_interval(data["check_interval"])
        elif creating:
            connection.check_interval = DEFAULT_CHECK_INTERVAL
        flags = (
            ("mark_as_read", True),
            ("unread_only", False),
            ("oauth_enabled", False),
            ("delete_after_import", False),
            ("save_to_sent", True),
            ("allow_plaintext_auth", False),
        )
        for flag, default in flags:
            if data.get(flag) is not None:
                setattr(connection, flag, bool(data[flag]))
            elif creating:
                setattr(connection, flag, default)
        if data.get("smtp_signature") is not None:
            connection.smtp_signature = data["smtp_signature"]
        elif creating:
            connection.smtp_signature = ""
        if data.get("max_attachment_bytes") is not None:
            try:
                limit = int(data["max_attachment_bytes"])
            except ValueError:
                raise InvalidSetting("max_attachment_bytes", "must be a number of bytes") from None
            if limit < 0:
                raise InvalidSetting("max_attachment_bytes", "must be 0 (no limit) or more")
            connection.max_attachment_bytes = limit
        elif creating:
            connection.max_attachment_bytes = DEFAULT_MAX_ATTACHMENT_BYTES
        if data.get("outbound") is not None:
            connection.outbound = OutboundKind(data["outbound"])
        elif creating:
            connection.outbound = OutboundKind.SMTP
        key_given = data.get("sendgrid_api_key") not in (None, "", MASK)
        if data.get("sendgrid_api_url") is not None:
            url = data["sendgrid_api_url"].strip().rstrip("/") or DEFAULT_SENDGRID_API_URL
            problem = secret_url_problem(url)
            if problem is not None:
                raise InvalidSetting("sendgrid_api_url", problem)
            if (
                not creating
                and url != connection.sendgrid_api_url
                and connection.sendgrid_api_key_enc
                and not key_given
            ):
                # The stored key would go, as a bearer header, to wherever the new URL points.
                raise InvalidSetting(
                    "sendgrid_api_key",
                    f"sendgrid_api_url changed: re-enter sendgrid_api_key, {_NOT_SENT}",
                )
            connection.sendgrid_api_url = url
        elif creating:
            connection.sendgrid_api_url = DEFAULT_SENDGRID_API_URL
        if key_given:
            connection.sendgrid_api_key_enc = self.secrets.encrypt(data["sendgrid_api_key"])
        elif creating:
            connection.sendgrid_api_key_enc = ""
        if data.get("webhook_provider") is not None:
            connection.webhook_provider = data["webhook_provider"]
        elif creating:
            connection.webhook_provider = ""
        if data.get("webhook_signing_key") not in (None, "", MASK):
            connection.webhook_signing_key_enc = self.secrets.encrypt(data["webhook_signing_key"].strip())
        elif creating:
            connection.webhook_signing_key_enc = ""
        for field in ("response_delay_min", "response_delay_max"):
            if data.get(field) is not None:
                setattr(connection, field, _delay(field, data[field]))
            elif creating:
                setattr(connection, field, 0.0)
        if connection.mode in (ConnectionMode.FORWARDING, ConnectionMode.WEBHOOK):
            if not connection.inbound_key:
                connection.inbound_key = generate_inbound_key()
        else:
            connection.inbound_key = None

    def _check_whole(self, connection: Connection) -> None:
        """Rules that span several fields, checked on what the connection is after the change."""
        mode = connection.mode
        if connection.response_delay_min > connection.response_delay_max:
            if connection.response_delay_max == 0:
                # Only a minimum given: the delay is exactly that.
                connection.response_delay_max = connection.response_delay_min
            else:
                raise InvalidSetting("response_delay_min", "is larger than response_delay_max")
        if connection.outbound is OutboundKind.SENDGRID and not connection.sendgrid_api_key_enc:
            raise InvalidSetting("sendgrid_api_key", "is required when outbound is sendgrid")
        if connection.delete_after_import and mode is not ConnectionMode.POP3:
            raise InvalidSetting("delete_after_import", f"applies to mode pop3 only (mode is {mode.value})")
        if mode is ConnectionMode.WEBHOOK:
            if connection.webhook_provider not in WEBHOOK_PROVIDERS:
                raise InvalidSetting(
                    "webhook_provider", f"is required for mode webhook: {', '.join(WEBHOOK_PROVIDERS)}"
                )
            if not connection.webhook_signing_key_enc:
                raise InvalidSetting("webhook_signing_key", "is required for mode webhook: requests are verified")
            if connection.webhook_provider == "sendgrid":
                # Checked when saved, not at the first post: a key that cannot verify anything would
                # answer every post 503 while the connection shows RUNNING. (Mailgun's key is any text.)
                load_sendgrid_key(self.secrets.decrypt(connection.webhook_signing_key_enc))
        if connection.oauth_enabled and mode not in _READING_MODES and connection.outbound is not OutboundKind.SMTP:
            raise InvalidSetting("oauth_enabled", "OAuth signs in to IMAP, POP3 or SMTP; this connection uses none")
        if not connection.allow_plaintext_auth:
            for exposed in plaintext_sign_ins(connection):
                raise exposed.refusal()

    def _current_mailbox_values(self, connection: Connection, *, masked: bool = False) -> dict[str, Any]:
        boxes = connection.mailboxes

        def secret(enc: str) -> str:
            return mask(enc) if masked else (MASK if enc else "")

        return {
            "address": [b.address for b in boxes],
            "email_name": [b.email_name for b in boxes],
            "username": [b.username for b in boxes],
            "password": [secret(b.password_enc) for b in boxes],
            "imap_server": [b.imap_host for b in boxes],
            "imap_port": [str(b.imap_port) for b in boxes],
            "imap_encryption": [b.imap_encryption for b in boxes],
            "imap_mailbox": [b.imap_folder for b in boxes],
            "validate_certificate": [str(b.validate_certificate).lower() for b in boxes],
            "smtp_server": [b.smtp_host for b in boxes],
            "smtp_port": [str(b.smtp_port) for b in boxes],
            "smtp_encryption": [b.smtp_encryption for b in boxes],
            "smtp_username": [b.smtp_username for b in boxes],
            "smtp_password": [secret(b.smtp_password_enc) for b in boxes],
            "message_content_type": [b.message_content_type for b in boxes],
            "reply_to": [b.reply_to for b in boxes],
            "sent_folder": [b.sent_folder for b in boxes],
            "oauth_client_id": [b.oauth_client_id for b in boxes],
            "oauth_client_secret": [secret(b.oauth_client_secret_enc) for b in boxes],
            "oauth_refresh_token": [secret(b.oauth_refresh_token_enc) for b in boxes],
            "oauth_token_uri": [b.oauth_token_uri for b in boxes],
        }

    def _build_mailboxes(
        self, data: dict[str, Any], existing: list[Mailbox], connection: Connection
    ) -> list[tuple[Mailbox, Mailbox | None]]:
        """The mailboxes the settings describe, each with the stored mailbox it continues (None: a new one).

        The returned mailboxes are not in the session; :meth:`_replace_mailboxes` copies them onto the stored
        rows they continue, so that a kept or renamed mailbox keeps its row.
        """
        mode = connection.mode
        reads_mailbox = mode in _READING_MODES
        protocol = "pop3" if mode is ConnectionMode.POP3 else "imap"
        server_field = "pop3_server" if mode is ConnectionMode.POP3 else "imap_server"
        addresses = _address_list(data.get("address"))
        if not addresses:
            raise InvalidSetting("address", "is required")
        count = len(addresses)
        if len(set(a.lower() for a in addresses)) != count:
            raise InvalidSetting("address", "the same address is listed twice")
        columns: dict[str, list[str]] = {}
        for field in MAILBOX_FIELDS:
            values = split_values(data.get(field))
            if field in (*SECRET_FIELDS, "email_name") and isinstance(data.get(field), str) and count == 1:
                # One mailbox: a secret or a display name ("Acme, Inc.") is taken whole, commas and all.
                values = [str(data[field])]
            if len(values) > count:
                raise InvalidSetting(field, f"has {len(values)} values for {count} address(es)")
            if field == "oauth_refresh_token" and connection.oauth_enabled and 0 < len(values) < count:
                # A refresh token is one account's grant (one per mailbox); it never repeats.
                raise InvalidSetting(field, f"needs one refresh token per mailbox: {len(values)} for {count}")
            columns[field] = _positional(values, count)
        matches = match_mailboxes([b.address for b in existing], addresses)
        boxes: list[tuple[Mailbox, Mailbox | None]] = []
        for i in range(count):
            address = _address("address", columns["address"][i])
            match = matches[i]
            old = existing[match] if match is not None else None
            box = Mailbox(position=i, address=address)
            if old is not None:
                # Keep the import cursor and the access token of a mailbox that stays.
                box.uidvalidity, box.last_uid = old.uidvalidity, old.last_uid
                box.oauth_access_token_enc = old.oauth_access_token_enc
                box.oauth_access_expires_at = old.oauth_access_expires_at
            box.email_name = columns["email_name"][i]
            box.username = columns["username"][i]
            box.imap_host = _host(server_field, columns["imap_server"][i])
            encryption = _encryption(
                f"{protocol}_encryption",
                columns["imap_encryption"][i],
                _IMAP_ENCRYPTION,
                "ssl",
                port=columns["imap_port"][i],
                protocol=protocol,
            )
            box.imap_encryption = encryption
            default_port = _INCOMING_PORTS[(protocol, "ssl" if encryption == "ssl" else "other")]
            box.imap_port = _port(f"{protocol}_port", columns["imap_port"][i], default_port)
            box.imap_folder = columns["imap_mailbox"][i] or "INBOX"
            box.validate_certificate = _bool("validate_certificate", columns["validate_certificate"][i], True)
            box.smtp_host = _host("smtp_server", columns["smtp_server"][i])
            box.smtp_port = _port("smtp_port", columns["smtp_port"][i], DEFAULT_SMTP_PORT)
            box.smtp_encryption = _encryption(
                "smtp_encryption",
                columns["smtp_encryption"][i],
                _SMTP_ENCRYPTION,
                "auto",
                port=columns["smtp_port"][i],
                protocol="smtp",
            )
            box.smtp_username = columns["smtp_username"][i]
            # Media types are case-insensitive (RFC 2045 §5.1): "Text/HTML" is text/html.
            content_type = (columns["message_content_type"][i] or "text/plain").lower()
            if content_type not in CONTENT_TYPES:
                raise InvalidSetting("message_content_type", f"{content_type!r}: use text/plain or text/html")
            box.message_content_type = content_type
            box.reply_to = _address("reply_to", columns["reply_to"][i]) if columns["reply_to"][i] else ""
            box.sent_folder = columns["sent_folder"][i]
            box.oauth_client_id = columns["oauth_client_id"][i]
            box.oauth_token_uri = columns["oauth_token_uri"][i]
            if box.oauth_token_uri:
                problem = secret_url_problem(box.oauth_token_uri)
                if problem is not None:
                    raise InvalidSetting("oauth_token_uri", f"{problem} (mailbox {address})")
            where = f" (mailbox {address})"
            for column, field in _TEXT_COLUMNS.items():
                name = server_field if column == "imap_host" else field
                _refuse_control_characters(name, getattr(box, column), where)
            _check_lengths(box, _POP3_FIELD_NAMES if mode is ConnectionMode.POP3 else _MAILBOX_FIELD_NAMES, where)
            if reads_mailbox and not box.imap_host:
                raise InvalidSetting(server_field, f"is required (mailbox {address})")
            if connection.outbound is OutboundKind.SMTP and not box.smtp_host:
                raise InvalidSetting("smtp_server", f"is required (mailbox {address})")
            box.password_enc = self._secret("password", columns["password"][i], old.password_enc if old else "")
            box.smtp_password_enc = self._secret(
                "smtp_password", columns["smtp_password"][i], old.smtp_password_enc if old else ""
            )
            box.oauth_client_secret_enc = self._secret(
                "oauth_client_secret", columns["oauth_client_secret"][i], old.oauth_client_secret_enc if old else ""
            )
            refresh = self._secret(
                "oauth_refresh_token", columns["oauth_refresh_token"][i], old.oauth_refresh_token_enc if old else ""
            )
            if old is not None and refresh != old.oauth_refresh_token_enc:
                # A new refresh token (a new grant): the cached access token belongs to the old one.
                box.oauth_access_token_enc, box.oauth_access_expires_at = "", None
            box.oauth_refresh_token_enc = refresh
            if old is not None:
                given = {f for f in SECRET_FIELDS if columns[f][i] not in ("", MASK, _CLEARED)}
                _check_reentry(connection, box, old, given, protocol, where)
            self._check_credentials(connection, box, reads_mailbox)
            boxes.append((box, old))
        return boxes

    def _check_credentials(self, connection: Connection, box: Mailbox, reads_mailbox: bool) -> None:
        has_oauth = {
            "oauth_client_id": bool(box.oauth_client_id),
            "oauth_client_secret": bool(box.oauth_client_secret_enc),
            "oauth_refresh_token": bool(box.oauth_refresh_token_enc),
        }
        if connection.oauth_enabled:
            for field, present in has_oauth.items():
                if not present:
                    raise InvalidSetting(field, f"is required with oauth_enabled (mailbox {box.address})")
            if box.password_enc or box.smtp_password_enc:
                raise InvalidSetting(
                    "password",
                    f"mailbox {box.address} has a password, but oauth_enabled signs every mailbox in with OAuth: "
                    "password and OAuth mailboxes cannot share a connection; split them or remove the password (null)",
                )
            return
        if any(has_oauth.values()) or box.oauth_token_uri:
            raise InvalidSetting(
                "oauth_enabled", f"mailbox {box.address} has OAuth credentials, but oauth_enabled is off"
            )
        if reads_mailbox and not box.password_enc:
            raise InvalidSetting("password", f"is required unless oauth_enabled is on (mailbox {box.address})")

    def _secret(self, field: str, given: str, stored: str) -> str:
        # The masked value (or nothing) keeps what is stored: the API never shows secrets back.
        if given == _CLEARED:
            return ""
        if given in ("", MASK):
            return stored
        if any(c in given for c in "\r\n\x00"):
            # No sign-in can carry them: an IMAP quoted string (RFC 3501 §4.3) excludes CR and LF, and NUL
            # separates the parts of SASL PLAIN (RFC 4616 §2). A pasted line break is the usual cause.
            raise InvalidSetting(field, "must not contain line breaks or NUL characters")
        return self.secrets.encrypt(given)

    def _replace_mailboxes(
        self, session: Session, connection: Connection, boxes: list[tuple[Mailbox, Mailbox | None]]
    ) -> None:
        keep: list[Mailbox] = []
        for new, old in boxes:
            if old is not None:
                # The same row (kept, moved or renamed): its id, import cursor and conversations stay.
                for column in _MAILBOX_COLUMNS:
                    setattr(old, column, getattr(new, column))
                keep.append(old)
            else:
                keep.append(new)
        kept = {id(box) for box in keep}
        for gone in [b for b in connection.mailboxes if id(b) not in kept]:
            # Its queued replies have no mailbox to go out from any more: failed now, rather than found by the
            # worker later (or an hour later, when parked).
            self._fail_queued(session, connection, gone)
            connection.mailboxes.remove(gone)
        session.flush()
        # Positions are unique per connection: park them out of the way before renumbering.
        for i, box in enumerate(keep):
            box.position = 10_000 + i
        connection.mailboxes = keep
        session.flush()
        for i, box in enumerate(keep):
            box.position = i
        session.flush()


# The settings columns of a mailbox that an update copies over (not its id, position or import cursor).
_MAILBOX_COLUMNS = (
    "address",
    "email_name",
    "username",
    "password_enc",
    "imap_host",
    "imap_port",
    "imap_encryption",
    "imap_folder",
    "validate_certificate",
    "smtp_host",
    "smtp_port",
    "smtp_encryption",
    "smtp_username",
    "smtp_password_enc",
    "message_content_type",
    "reply_to",
    "sent_folder",
    "oauth_client_id",
    "oauth_client_secret_enc",
    "oauth_refresh_token_enc",
    "oauth_token_uri",
    "oauth_access_token_enc",
    "oauth_access_expires_at",
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _apply_work_fields(session: Session, connection: Connection, data: dict[str, Any], *, creating: bool) -> None:
    """The team work settings: the team new conversations join, auto-assignment, and grouping."""
    if "team_id" in data and (data["team_id"] is not None or not creating):
        team_id = data["team_id"] or None
        if team_id is not None and session.get(Team, team_id) is None:
            raise InvalidSetting("team_id", f"no team {team_id}")
        connection.team_id = team_id
    if data.get("auto_assign") is not None:
        connection.auto_assign = bool(data["auto_assign"])
    elif creating:
        connection.auto_assign = False
    if data.get("grouping") is not None:
        connection.grouping = Grouping(data["grouping"])
    elif creating:
        connection.grouping = Grouping.THREAD
