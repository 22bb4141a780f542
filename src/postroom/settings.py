"""Process settings: one documented schema, read from ``POSTROOM_*`` environment variables.

Every field below is a setting an admin may set; its default and meaning are documented on the field
and repeated in the README. Per-connection settings (servers, ports, signatures …) are not process
settings: they live on the connection in the database and are managed through the API and CLI.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import socket
import ssl
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import structlog
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from postroom.errors import InvalidSetting

log = structlog.get_logger(__name__)


def parse_bind(value: str, setting: str, *, allow_any_port: bool = False) -> tuple[str, int]:
    """Split ``host:port`` (``[v6]:port`` for IPv6) into its parts, with a clear error naming the setting.

    With ``allow_any_port``, port 0 means "a free port the system picks" (tests use it).
    """
    host, sep, port = value.rpartition(":")
    lowest = 0 if allow_any_port else 1
    if not sep or not port.isdigit() or not lowest <= int(port) < 65536:
        raise InvalidSetting(setting, f"expected HOST:PORT with a port {lowest}-65535, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


# A DNS host name (RFC 1123 §2.1): dot-separated labels of letters, digits and hyphens.
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")


def parse_domains(value: Any, setting: str) -> tuple[str, ...]:
    """A comma-separated list of domain names, lower-case, without a trailing dot or repeats; one at least."""
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list | tuple):
        parts = [str(part) for part in value]
    else:
        raise InvalidSetting(setting, f"expected a domain name or a comma-separated list, got {value!r}")
    domains: list[str] = []
    for part in parts:
        domain = part.strip().lower().rstrip(".")
        if not domain:
            continue
        # As lenient as before lists were allowed (no stricter rule for existing installations), but
        # nothing that would break an address or an SMTP command: no space, control character or "..".
        # A port ("x.com:25") or any other punctuation of a URL is not part of a mail domain (RFC 5321 §4.1.2).
        if any(c.isspace() or not c.isprintable() or c in '@/<>[]()":;,\\' for c in domain) or ".." in domain:
            raise InvalidSetting(setting, f"{part.strip()!r} is not a domain name")
        if domain not in domains:
            domains.append(domain)
    if not domains:
        raise InvalidSetting(setting, "needs a domain name")
    return tuple(domains)


def _naming_the_variable(error: ValidationError) -> InvalidSetting:
    """One :class:`InvalidSetting` for pydantic's errors, each told as ``POSTROOM_<FIELD>: why, got …``."""
    told: list[tuple[str, str]] = []
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        variable = f"POSTROOM_{field.upper()}" if field else "POSTROOM_*"
        kind, reason = item["type"], item["msg"]
        if kind == "bool_parsing":
            reason = "expected true or false (also 1/0, yes/no, on/off)"
        elif kind == "int_parsing" or kind == "int_from_float":
            reason = "expected a whole number"
        elif kind == "float_parsing":
            reason = "expected a number"
        else:
            reason = reason.removeprefix("Value error, ").replace("Input should be", "should be", 1)
        value = item.get("input")
        # The value is shown back unless it may hold a secret (a key, a database URL with its password).
        if isinstance(value, str | int | float) and not any(word in field for word in ("secret", "url")):
            reason += f", got {value!r}"
        told.append((variable, reason))
    if not told:
        return InvalidSetting("POSTROOM_*", str(error))
    first, *rest = told
    return InvalidSetting(first[0], "; ".join([first[1], *(f"{name}: {why}" for name, why in rest)]))


def _read_file(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidSetting(setting, f"cannot read {path}: {exc.strerror or exc}") from None


class Settings(BaseSettings):
    """Settings of one Postroom process (``postroom serve`` or ``postroom worker``)."""

    model_config = SettingsConfigDict(env_prefix="POSTROOM_", env_file=None, extra="ignore", frozen=True)

    def __init__(self, **values: Any) -> None:
        # pydantic's own error names the field (smtp_require_tls) over several lines; an admin sets the
        # variable, so every refusal is one InvalidSetting naming it, as the other settings errors are.
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise _naming_the_variable(error) from None

    data_dir: Annotated[Path, Field(description="Directory for the embedded database, attachments and key.")] = Path(
        "./postroom-data"
    )
    """``POSTROOM_DATA_DIR`` — where the embedded defaults live: the SQLite database, the attachment
    directory and the generated secret key. Created on first start. Default ``./postroom-data``."""

    database_url: str | None = None
    """``POSTROOM_DATABASE_URL`` — SQLAlchemy URL of the database. Default: a SQLite file
    ``postroom.db`` in the data dir. For several processes or machines use PostgreSQL, e.g.
    ``postgresql+psycopg://postroom:secret@db.internal/postroom``."""

    attachments: str | None = None
    """``POSTROOM_ATTACHMENTS`` — where attachment files are stored. Default: the directory
    ``attachments`` in the data dir. A local path is used as a directory."""

    http_bind: str = "127.0.0.1:8025"
    """``POSTROOM_HTTP_BIND`` — ``HOST:PORT`` the API and web UI listen on. Default ``127.0.0.1:8025``."""

    public_url: str = ""
    """``POSTROOM_PUBLIC_URL`` — the address people reach Postroom at, e.g. ``https://help.example.com``
    (behind a proxy, the proxy's address). Links Postroom hands out, such as invitation links, start with
    it. Default: ``http://`` and ``POSTROOM_HTTP_BIND``, which is right only on the machine itself."""

    access_token_hours: float = Field(default=12.0, gt=0, le=24 * 366)
    """``POSTROOM_ACCESS_TOKEN_HOURS`` — how long an access token from the password sign-in
    (``POST /api/v1/auth/token``) works. Default 12 hours: a working day; API tokens made for programs
    live until revoked."""

    invitation_hours: float = Field(default=72.0, gt=0, le=24 * 366)
    """``POSTROOM_INVITATION_HOURS`` — how long an invitation link works (once). Default 72 hours."""

    trusted_proxies: str = "127.0.0.1"
    """``POSTROOM_TRUSTED_PROXIES`` — comma-separated addresses (or networks, or ``*``) of reverse proxies whose
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` headers are believed. The client address they give is the one
    failed sign-ins are counted for, and the scheme decides whether session cookies are Secure. Default
    ``127.0.0.1``: a proxy on the same machine. Requests from any other address keep their own address."""

    session_hours: float = Field(default=168.0, gt=0, le=24 * 366)
    """``POSTROOM_SESSION_HOURS`` — how long a browser session lasts after signing in at ``/login``.
    Default 168 hours (a week); signing out, disabling the user or revoking the session ends it sooner."""

    secret_key: SecretStr | None = None
    """``POSTROOM_SECRET_KEY`` — Fernet key (32 url-safe base64 bytes) that encrypts stored passwords
    and tokens. Default: read from ``secret.key`` in the data dir, generated there on first start.
    Keep it safe: without it stored mailbox passwords cannot be decrypted."""

    pipeline_workers: int = Field(default=2, ge=1, le=64)
    """``POSTROOM_PIPELINE_WORKERS`` — threads per process that turn stored raw mail into conversations.
    Default 2."""

    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    """``POSTROOM_OUTBOX_POLL_SECONDS`` — how often a worker looks for outgoing mail queued by other
    processes (mail queued in the same process is sent at once). Default 1 second."""

    lease_seconds: float = Field(default=30.0, ge=5, le=600)
    """``POSTROOM_LEASE_SECONDS`` — how long a worker owns a connection without renewing its lease; a
    dead worker's connections move to another worker after this time. Default 30 seconds."""

    log_level: str = "INFO"
    """``POSTROOM_LOG_LEVEL`` — DEBUG, INFO, WARNING or ERROR. Default INFO."""

    # -- Pipeline work per mail ------------------------------------------------------------------

    parse_budget_seconds: float = Field(default=10.0, ge=0.5, le=600)
    """``POSTROOM_PARSE_BUDGET_SECONDS`` — how long parsing one incoming mail may take (its own parser
    process; a normal mail takes milliseconds). A mail over it has its parser process killed and is
    parsed again in a bounded degraded mode: headers, threading, plain text (cut at 100,000
    characters) and files, its HTML kept as a file ``body.html`` but not shown; the message says why
    (``degraded_reason``) and joins its conversation as usual. Default 10 seconds."""

    smtp_bind: str = "127.0.0.1:2525"
    """``POSTROOM_SMTP_BIND`` — ``HOST:PORT`` of the SMTP listener that receives mail for forwarding-mode
    connections. Default ``127.0.0.1:2525``; put a public MX (or your mail server's relay) in
    front of it, or bind ``0.0.0.0:25``. An empty value turns the listener off."""

    inbound_domain: str = "localhost"
    """``POSTROOM_INBOUND_DOMAIN`` — the domain of generated forwarding addresses
    (``<random>@<domain>``); its MX must lead to the SMTP listener. Default ``localhost``. Several
    domains, comma-separated (``new.example.com,old.example.com``): the first is the one new addresses
    are shown with, and the listener accepts mail to every one of them, so that forwarding rules that
    still name an address at a former domain keep working. Removing a domain from the list bounces mail
    sent to it (550 5.1.1). Here the field holds the first domain; all are in :attr:`inbound_domains`."""

    inbound_domains: Annotated[tuple[str, ...], NoDecode] = Field(default=("localhost",), exclude=True)
    """Every domain of ``POSTROOM_INBOUND_DOMAIN``, the first first. Derived from it, not a setting of its
    own (whatever is given for it is replaced)."""

    smtp_hostname: str = ""
    """``POSTROOM_SMTP_HOSTNAME`` — the name the SMTP listener gives in its greeting, its EHLO reply and
    the ``Received`` lines it adds (RFC 5321 §4.1.1.1, §4.4): the name your MX record points at, which is
    also the name in its TLS certificate. Default: the machine's fully qualified name (its host name when
    that already has a dot, else what the resolver makes of it)."""

    smtp_max_message_bytes: int = Field(default=26_214_400, ge=1024)
    """``POSTROOM_SMTP_MAX_MESSAGE_BYTES`` — largest mail the SMTP listener accepts (announced as
    SIZE, RFC 1870; larger mail is refused with 552 5.3.4). Default 25 MiB."""

    smtp_tls_cert: Path | None = None
    """``POSTROOM_SMTP_TLS_CERT`` — PEM file with the SMTP listener's certificate, followed by its
    intermediate certificates (e.g. Let's Encrypt's ``fullchain.pem``), for the name your MX record
    points at. Together with ``POSTROOM_SMTP_TLS_KEY`` (both or neither) the listener offers STARTTLS
    (RFC 3207), which Gmail and Microsoft 365 use whenever it is offered. Read when ``postroom serve``
    starts the listener (a renewed certificate needs a restart); a missing or unreadable file, or a key
    that does not belong to the certificate, stops it with an error naming the setting. Default: none
    (no STARTTLS: forwarded mail crosses the Internet in plain text)."""

    smtp_tls_key: Path | None = None
    """``POSTROOM_SMTP_TLS_KEY`` — PEM file with the private key of ``POSTROOM_SMTP_TLS_CERT``, without a
    passphrase (it may be the same file). Default: none."""

    smtp_require_tls: bool = False
    """``POSTROOM_SMTP_REQUIRE_TLS`` — refuse mail until the client has issued STARTTLS (``530 5.7.0``,
    RFC 3207 §4). Needs the two TLS settings. Default false, because RFC 3207 §4 forbids a publicly
    referenced MX to require it: a sender without TLS would bounce. Turn it on only when the listener
    is reached by known senders that always use TLS (your own relay, Gmail, Microsoft 365)."""

    smtp_max_sessions: int = Field(default=100, ge=1, le=10_000)
    """``POSTROOM_SMTP_MAX_SESSIONS`` — SMTP sessions the listener serves at once; one more is answered
    ``421 4.7.0`` at connect and the sender retries later (RFC 5321 §3.8). Default 100."""

    smtp_max_sessions_per_ip: int = Field(default=20, ge=1, le=10_000)
    """``POSTROOM_SMTP_MAX_SESSIONS_PER_IP`` — SMTP sessions one client address may hold at once (more get
    ``421 4.7.0``), so that one host cannot take every session. Default 20, what a Postfix relay opens to
    one destination by default (``default_destination_concurrency_limit``); raise it when all mail comes
    through one relay that opens more."""

    smtp_idle_seconds: float = Field(default=300.0, ge=1, le=3600)
    """``POSTROOM_SMTP_IDLE_SECONDS`` — how long the SMTP listener waits for a client's next command, or
    for the next bytes of a mail being transferred, before it answers ``421 4.4.2`` and closes. Default
    300 seconds, the server timeout of RFC 5321 §4.5.3.2.7 (at least 5 minutes)."""

    smtp_session_seconds: float = Field(default=600.0, ge=1, le=86_400)
    """``POSTROOM_SMTP_SESSION_SECONDS`` — the longest an SMTP session may last; past it the listener
    answers ``421 4.7.0`` and closes, so a client that keeps a session busy (a NOOP every minute) frees its
    place. A mail being transferred when the time is up may finish, but within one more such span; the
    session closes after its reply. Default 600 seconds: a forwarding MTA delivers a mail in seconds, and
    a 25 MiB mail needs 600 seconds only below about 350 kbit/s."""

    smtp_junk_commands: int = Field(default=100, ge=1, le=100_000)
    """``POSTROOM_SMTP_JUNK_COMMANDS`` — commands an SMTP client may send without delivering a mail (NOOP,
    VRFY, RSET, HELP, HELO/EHLO, and any command that is refused); one more is answered ``421 4.7.0`` and
    the session closed. Counted afresh after each mail delivered; the lines of a mail are no commands.
    Default 100, Postfix's ``smtpd_junk_command_limit``."""

    webhook_max_age_seconds: float = Field(default=900.0, ge=10, le=86_400)
    """``POSTROOM_WEBHOOK_MAX_AGE_SECONDS`` — how far a signed inbound webhook post's timestamp (Mailgun's
    ``timestamp`` field, SendGrid's ``X-Twilio-Email-Event-Webhook-Timestamp``) may be from our clock,
    either way; a post outside it is refused (401). Each post is accepted once: its Mailgun token or
    SendGrid signature is kept in the database for twice this long and refused when it comes again, by
    every process. Default 900 seconds (15 minutes): it absorbs clock skew, and a retry that carries the
    first post's signature (Mailgun retries 5 and 15 minutes after it) is still accepted. A post retried
    after the window with its old timestamp is refused, so a longer outage than this can lose a post that
    the provider does not sign again; a longer window only lets a post that never reached us be used later."""

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("http_bind")
    @classmethod
    def _valid_bind(cls, value: str) -> str:
        parse_bind(value, "POSTROOM_HTTP_BIND")
        return value

    @field_validator("public_url")
    @classmethod
    def _valid_public_url(cls, value: str) -> str:
        # Links in mail must be absolute, or a mail client makes nothing of them.
        if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError("expected an absolute http:// or https:// address such as https://help.example.com")
        return value

    @field_validator("smtp_bind")
    @classmethod
    def _valid_smtp_bind(cls, value: str) -> str:
        if value.strip():
            parse_bind(value, "POSTROOM_SMTP_BIND", allow_any_port=True)
        return value.strip()

    @model_validator(mode="before")
    @classmethod
    def _split_inbound_domains(cls, data: Any) -> Any:
        # POSTROOM_INBOUND_DOMAIN is one variable with a list in it: the field keeps the first domain
        # (what every address is shown with), inbound_domains all of them.
        if isinstance(data, dict):
            domains = parse_domains(data.get("inbound_domain", "localhost"), "POSTROOM_INBOUND_DOMAIN")
            data = {**data, "inbound_domain": domains[0], "inbound_domains": domains}
        return data

    @field_validator("smtp_hostname")
    @classmethod
    def _valid_hostname(cls, value: str) -> str:
        # It goes into the greeting and our Received lines, whose syntax a space or bracket would break.
        name = value.strip().rstrip(".")
        if name and not _HOSTNAME.fullmatch(name):
            raise InvalidSetting("POSTROOM_SMTP_HOSTNAME", f"{value!r} is not a host name")
        return name

    @field_validator("smtp_tls_cert", "smtp_tls_key", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: Any) -> Any:
        # An exported but empty variable means "not set", not the current directory.
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _tls_settings_fit(self) -> Settings:
        if (self.smtp_tls_cert is None) != (self.smtp_tls_key is None):
            given, missing = (
                ("POSTROOM_SMTP_TLS_CERT", "POSTROOM_SMTP_TLS_KEY")
                if self.smtp_tls_key is None
                else ("POSTROOM_SMTP_TLS_KEY", "POSTROOM_SMTP_TLS_CERT")
            )
            raise InvalidSetting(missing, f"must be set together with {given} (both or neither)")
        if self.smtp_require_tls and self.smtp_tls_cert is None:
            raise InvalidSetting(
                "POSTROOM_SMTP_REQUIRE_TLS", "needs POSTROOM_SMTP_TLS_CERT and POSTROOM_SMTP_TLS_KEY to offer STARTTLS"
            )
        return self

    def smtp_tls_context(self) -> ssl.SSLContext | None:
        """The SMTP listener's server TLS context from ``POSTROOM_SMTP_TLS_CERT``/``_KEY``; None without them.

        The files are read here, when the listener starts, not when the settings are read: only
        ``postroom serve`` needs them, and a worker on another machine may not have them. Each failure
        names the setting whose file is wrong, because OpenSSL's own error ("PEM lib") names neither.
        """
        cert_path, key_path = self.smtp_tls_cert, self.smtp_tls_key
        if cert_path is None or key_path is None:
            return None
        cert_pem = _read_file(cert_path, "POSTROOM_SMTP_TLS_CERT")
        key_pem = _read_file(key_path, "POSTROOM_SMTP_TLS_KEY")
        try:
            chain = x509.load_pem_x509_certificates(cert_pem)
        except ValueError:
            raise InvalidSetting("POSTROOM_SMTP_TLS_CERT", f"{cert_path}: no PEM certificate in it") from None
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except TypeError:
            raise InvalidSetting(
                "POSTROOM_SMTP_TLS_KEY", f"{key_path}: the key is encrypted; give it without a passphrase"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise InvalidSetting("POSTROOM_SMTP_TLS_KEY", f"{key_path}: no usable PEM private key in it") from None
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        if chain[0].public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
            raise InvalidSetting(
                "POSTROOM_SMTP_TLS_KEY",
                f"{key_path} is not the key of the certificate in {cert_path} (POSTROOM_SMTP_TLS_CERT)",
            )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # RFC 8996: TLS 1.0 and 1.1 are deprecated; every large mail provider speaks 1.2 or 1.3.
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(cert_path, key_path)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidSetting("POSTROOM_SMTP_TLS_CERT", f"{cert_path} with {key_path}: {exc}") from None
        expires = chain[0].not_valid_after_utc
        if expires <= datetime.now(UTC):
            # Not fatal: most senders use STARTTLS without checking the certificate (RFC 7435), and
            # refusing to start would bounce mail that plain text or TLS would still deliver.
            log.warning("settings.smtp_tls_certificate_expired", file=str(cert_path), expired=expires.isoformat())
        return context

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'postroom.db').resolve()}"

    @cached_property
    def attachments_dir(self) -> Path:
        if self.attachments:
            if "://" in self.attachments:
                raise InvalidSetting("POSTROOM_ATTACHMENTS", "only a local directory is supported so far")
            return Path(self.attachments)
        return self.data_dir / "attachments"

    @cached_property
    def http_host_port(self) -> tuple[str, int]:
        return parse_bind(self.http_bind, "POSTROOM_HTTP_BIND")

    def listener_hostname(self) -> str:
        """``POSTROOM_SMTP_HOSTNAME``, else the machine's fully qualified name (asked when the listener starts).

        The resolver is asked only when the host name has no dot, and only then may it wait on DNS.
        A name that resolves to nothing better (``localhost``) leaves the plain host name.
        """
        if self.smtp_hostname:
            return self.smtp_hostname
        host = socket.gethostname()
        if "." in host:
            return host
        fqdn = socket.getfqdn(host)
        return fqdn if "." in fqdn and not fqdn.startswith("localhost") else host

    @cached_property
    def smtp_host_port(self) -> tuple[str, int] | None:
        """Where the SMTP listener binds, or None when it is turned off."""
        return parse_bind(self.smtp_bind, "POSTROOM_SMTP_BIND", allow_any_port=True) if self.smtp_bind else None

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def fernet_key(self) -> bytes:
        """The key that encrypts secrets at rest, generated into the data dir on first use."""
        if self.secret_key is not None:
            key = self.secret_key.get_secret_value().encode()
        else:
            path = self.data_dir / "secret.key"
            if path.exists():
                key = path.read_bytes().strip()
            else:
                self.ensure_data_dir()
                key = Fernet.generate_key()
                # Write with owner-only permissions from the start: the key unlocks every stored password.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(key + b"\n")
        try:
            Fernet(key)
        except ValueError as exc:
            raise InvalidSetting("POSTROOM_SECRET_KEY", "must be 32 url-safe base64-encoded bytes") from exc
        return key

    @property
    def base_url(self) -> str:
        """``POSTROOM_PUBLIC_URL`` without a trailing slash, else the HTTP bind address over ``http://``."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host, port = self.http_host_port
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def invitation_key(self) -> bytes:
        """The key that signs invitation links, derived from the secret key like the reply-token key."""
        return hmac.new(self.fernet_key(), b"postroom invitation v1", hashlib.sha256).digest()

    def reply_token_key(self) -> bytes:
        """The key that signs reply tokens, derived from the secret key (so one key is enough to keep)."""
        return hmac.new(self.fernet_key(), b"postroom reply token v1", hashlib.sha256).digest()
