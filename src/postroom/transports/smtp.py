"""Sending one composed message through an SMTP server (aiosmtplib).

:func:`send` opens a connection, secures it as the account says (or as its port implies), signs in
when a password is set, runs one mail transaction and closes. The outcome is a value: a
:class:`~postroom.transports.base.SendResult` with the server's final reply and the recipients it
refused while accepting others. Failures are errors with their data:

- the server cannot be reached, TLS fails, the sign-in is refused → the
  :class:`~postroom.errors.ChannelError` leaf naming the account and "SMTP" (nothing was sent);
- a 4xx reply or a connection lost during the transaction → :class:`TemporaryDeliveryError`;
- a 5xx reply, or every recipient refused permanently → :class:`PermanentDeliveryError`.

Both delivery errors carry the reply code and its enhanced status code (RFC 3463). The outbox retries
what is temporary (``error.temporary``) and nothing else.

Sign-in goes through an :data:`SmtpAuthenticator`; the default uses the password. XOAUTH2 will be
another authenticator calling ``client.auth_xoauth2(login, access_token)``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, Literal

import aiosmtplib

from postroom.errors import (
    AuthenticationError,
    ChannelError,
    ConnectError,
    DeliveryError,
    PermanentDeliveryError,
    ProtocolError,
    TemporaryDeliveryError,
    TlsError,
)
from postroom.mail.model import ComposedMail
from postroom.tls import client_context, network_error
from postroom.transports.base import SendResult, SmtpAccount, SmtpReply

__all__ = [
    "SmtpAuthenticator",
    "check_login",
    "encryption_for",
    "parse_reply",
    "password_auth",
    "send",
]

PROTOCOL: Final = "smtp"
Encryption = Literal["ssl", "starttls", "none"]
SmtpAuthenticator = Callable[[aiosmtplib.SMTP, SmtpAccount], Awaitable[None]]
"""Signs in on a connected (and secured) client; raises aiosmtplib's errors, which :func:`send` maps."""

# RFC 3463 §2: class "." subject "." detail; RFC 2034 §3 puts it first in every line of the reply.
_ENHANCED: Final = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)\s*")


def encryption_for(account: SmtpAccount) -> Encryption:
    """The encryption to use: the account's, or by port when it says "auto".

    "auto" is implicit TLS on 465, none on 25 (server-to-server relay, where STARTTLS is optional),
    and STARTTLS on every other port: 587 and the alternative submission ports (2525, 8025, …) are
    submission, which must not send the password in plain text, and a server that does not offer
    STARTTLS fails the sign-in with a TLS error rather than being sent the password unprotected.
    """
    if account.encryption != "auto":
        return account.encryption
    if account.port == 465:
        # RFC 8314 §3.3: message submission over implicit TLS.
        return "ssl"
    if account.port == 25:
        # RFC 5321 relay; a helpdesk that really relays on 25 says "starttls" when it wants it.
        return "none"
    # RFC 6409 submission (587 and any other port), upgraded with STARTTLS (RFC 3207).
    return "starttls"


def parse_reply(code: int, message: str) -> SmtpReply:
    """A reply as a value: the enhanced status code taken off the text (RFC 2034, RFC 3463).

    The enhanced code counts only when its class matches the reply code's first digit, as RFC 2034
    §3 requires; otherwise the text is kept as it came.
    """
    lines = message.splitlines() or [""]
    first = _ENHANCED.match(lines[0])
    if first is None or first.group(1) != str(code)[:1]:
        return SmtpReply(code, message.strip())
    status = f"{first.group(1)}.{int(first.group(2))}.{int(first.group(3))}"
    text = "\n".join(_ENHANCED.sub("", line, count=1) for line in lines).strip()
    return SmtpReply(code, text, status)


async def password_auth(client: aiosmtplib.SMTP, account: SmtpAccount) -> None:
    """Sign in with the account's password when it has one (RFC 4954); otherwise send unauthenticated."""
    if account.password:
        await client.login(account.login, account.password)


async def check_login(account: SmtpAccount, *, authenticate: SmtpAuthenticator = password_auth) -> None:
    """Connect, secure, greet and sign in, then QUIT; raise the ChannelError leaf on failure."""
    async with _session(account, authenticate) as client:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPResponseException as error:
            raise ProtocolError(PROTOCOL, account.address, f"EHLO refused: {_reply(error)}") from error


async def send(
    account: SmtpAccount, mail: ComposedMail, *, authenticate: SmtpAuthenticator = password_auth
) -> SendResult:
    """Send ``mail`` through ``account``'s server as one transaction (RFC 5321 §3.3)."""
    if not mail.recipients:
        raise PermanentDeliveryError(f"SMTP {account.address}: the message has no recipients")
    async with _session(account, authenticate) as client:
        try:
            return await _transaction(client, account, mail)
        except DeliveryError:
            raise
        except aiosmtplib.SMTPResponseException as error:
            # A reply outside the steps _transaction expects, e.g. 421 closing the channel.
            raise _delivery_error(account, "the server refused the transaction", _reply(error)) from error
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as error:
            # Whether a message whose DATA was cut off was delivered cannot be known here; it is
            # temporary, and the outbox's Message-ID lets receivers drop a duplicate.
            raise TemporaryDeliveryError(f"SMTP {account.address}: connection lost while sending: {error}") from error
        except aiosmtplib.SMTPException as error:
            raise PermanentDeliveryError(f"SMTP {account.address}: {error}") from error


async def _transaction(client: aiosmtplib.SMTP, account: SmtpAccount, mail: ComposedMail) -> SendResult:
    if client.is_ehlo_or_helo_needed:
        # The extensions decide the MAIL options below; without AUTH or STARTTLS nothing asked yet.
        await client.ehlo()
    addresses = [mail.envelope_from, *mail.recipients]
    international = not all(address.isascii() for address in addresses)
    options: list[str] = []
    if international:
        # RFC 6531 §3.4: non-ASCII mailboxes need SMTPUTF8, which only an announcing server takes.
        if not client.supports_extension("smtputf8"):
            raise PermanentDeliveryError(
                f"SMTP {account.address}: the server does not accept internationalised addresses (SMTPUTF8)"
            )
        options.append("SMTPUTF8")
    if not mail.raw.isascii() and client.supports_extension("8bitmime"):
        # RFC 6152: declare 8-bit content where the server can take it.
        options.append("BODY=8BITMIME")
    if client.supports_extension("size"):
        # RFC 1870: a server with a size limit refuses at MAIL, before the body is transferred.
        options.append(f"SIZE={len(mail.raw)}")
    encoding = "utf-8" if international else "ascii"

    try:
        await client.mail(mail.envelope_from, options=options, encoding=encoding)
    except aiosmtplib.SMTPSenderRefused as error:
        raise _delivery_error(account, f"sender {mail.envelope_from} refused", _reply(error)) from error

    refused: dict[str, SmtpReply] = {}
    for recipient in mail.recipients:
        try:
            await client.rcpt(recipient, encoding=encoding)
        except aiosmtplib.SMTPRecipientRefused as error:
            refused[recipient] = _reply(error)
    if len(refused) == len(mail.recipients):
        replies = "; ".join(f"{address}: {reply}" for address, reply in refused.items())
        first = next(iter(refused.values()))
        error_type = TemporaryDeliveryError if any(r.temporary for r in refused.values()) else PermanentDeliveryError
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.rset()
        raise error_type(
            f"SMTP {account.address}: every recipient refused: {replies}",
            code=first.code,
            enhanced_status=first.enhanced_status,
            recipients=tuple(refused),
        )

    try:
        response = await client.data(mail.raw)
    except aiosmtplib.SMTPDataError as error:
        raise _delivery_error(account, "message refused", _reply(error)) from error
    return SendResult(reply=parse_reply(response.code, response.message), refused=refused)


@contextlib.asynccontextmanager
async def _session(account: SmtpAccount, authenticate: SmtpAuthenticator) -> AsyncIterator[aiosmtplib.SMTP]:
    """A connected, secured, signed-in client; every failure on the way is a ChannelError leaf."""
    mode = encryption_for(account)
    endpoint = f"{account.host}:{account.port}"
    client = aiosmtplib.SMTP(
        hostname=account.host,
        port=account.port,
        use_tls=mode == "ssl",
        # False, not None: None would try STARTTLS whenever offered, which "none" must not do.
        start_tls=mode == "starttls",
        tls_context=client_context(account.validate_certificate) if mode != "none" else None,
        timeout=account.timeout,
        local_hostname=account.local_hostname,
    )
    try:
        await _connect(client, account, endpoint)
        try:
            await authenticate(client, account)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as error:
            raise ConnectError(PROTOCOL, account.address, f"connection to {endpoint} lost: {error}") from error
        except aiosmtplib.SMTPResponseException as error:  # SMTPAuthenticationError among them
            if 400 <= error.code < 500:
                # 454 "temporary authentication failure" (RFC 4954 §6) or 421 closing: the credentials were
                # not judged, so this is retried like a lost connection, not parked as a refused sign-in.
                raise ConnectError(
                    PROTOCOL, account.address, f"{endpoint} could not check the sign-in now: {_reply(error)}"
                ) from error
            raise AuthenticationError(PROTOCOL, account.address, str(_reply(error))) from error
        except aiosmtplib.SMTPException as error:
            # For example: the server offers no AUTH (often only after STARTTLS).
            raise AuthenticationError(PROTOCOL, account.address, str(error)) from error
        yield client
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit()
    finally:
        client.close()


async def _connect(client: aiosmtplib.SMTP, account: SmtpAccount, endpoint: str) -> None:
    try:
        await client.connect()
    except ChannelError:
        raise
    except aiosmtplib.SMTPConnectResponseError as error:
        raise ConnectError(
            PROTOCOL, account.address, f"{endpoint} does not accept connections: {_reply(error)}"
        ) from error
    except aiosmtplib.SMTPConnectTimeoutError as error:
        raise ConnectError(PROTOCOL, account.address, f"{endpoint} timed out") from error
    except aiosmtplib.SMTPConnectError as error:
        # aiosmtplib wraps the socket's error (refused, DNS, TLS handshake) in its own.
        if isinstance(error.__cause__, OSError):
            raise network_error(PROTOCOL, account.address, endpoint, error.__cause__) from error
        raise ConnectError(PROTOCOL, account.address, f"{endpoint}: {error}") from error
    except aiosmtplib.SMTPResponseException as error:
        # A refused STARTTLS (e.g. "454 TLS not available"): going on in plain text would expose
        # the password, so this is a TLS failure (RFC 3207 §4).
        raise TlsError(PROTOCOL, account.address, f"{endpoint} refused STARTTLS: {_reply(error)}") from error
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as error:
        raise ConnectError(PROTOCOL, account.address, f"connection to {endpoint} lost: {error}") from error
    except aiosmtplib.SMTPException as error:
        # "STARTTLS extension not supported by server."
        raise TlsError(PROTOCOL, account.address, f"{endpoint}: {error}") from error
    except OSError as error:
        raise network_error(PROTOCOL, account.address, endpoint, error) from error


def _reply(error: aiosmtplib.SMTPResponseException) -> SmtpReply:
    return parse_reply(error.code, error.message)


def _delivery_error(account: SmtpAccount, what: str, reply: SmtpReply) -> DeliveryError:
    error_type = TemporaryDeliveryError if reply.temporary else PermanentDeliveryError
    return error_type(
        f"SMTP {account.address}: {what}: {reply}", code=reply.code, enhanced_status=reply.enhanced_status
    )
