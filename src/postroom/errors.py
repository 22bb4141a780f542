"""One exception tree for Postroom.

Every error Postroom raises on purpose is a :class:`PostroomError`. The tree is drawn here so that a
caller can decide what to catch by reading one page::

    PostroomError
     ├── ConfigurationError             a setting or a connection field is wrong (the admin must fix it)
     │    └── InvalidSetting            names the field and why
     ├── MailError                      pure mail logic (postroom.mail)
     │    ├── MessageParseError         bytes that cannot be understood at all (never for merely broken mail)
     │    └── HeaderInjectionError      CR or LF in a user-supplied header value
     ├── ChannelError                   talking to a mail server; always names account and protocol
     │    ├── ConnectError          (T) DNS, TCP refused, timeout, connection lost
     │    ├── ProtocolError         (T) the server said something we did not expect
     │    ├── TlsError              (P) TLS handshake failed or the certificate was rejected
     │    ├── AuthenticationError   (P) the server refused the credentials
     │    ├── ReauthorizationRequired (P) OAuth refresh token revoked or expired (invalid_grant)
     │    └── FolderError           (P) the configured folder does not exist or cannot be selected
     ├── DeliveryError                  sending one message; carries the SMTP reply
     │    ├── TemporaryDeliveryError (T) 4xx replies and lost connections: retried with backoff
     │    └── PermanentDeliveryError (P) 5xx replies: never retried, the agent is told
     ├── WebhookRejected                an inbound webhook request we refuse; ``status_code`` is the HTTP answer
     │    ├── MalformedWebhook          400: not a post of the kind the provider sends
     │    ├── WebhookSignatureInvalid   401: unsigned, the signature does not verify, stale or replayed
     │    └── WebhookTooLarge           413: larger than the message size limit
     ├── AccessError                    who may do what; ``status_code`` is the HTTP answer
     │    ├── SignInFailed              401: unknown address, wrong password or disabled user (never which)
     │    ├── SignInThrottled           429: too many failed sign-ins; ``retry_after`` seconds
     │    ├── InvitationInvalid         400: not a token we signed (forged, garbled, cut short)
     │    ├── InvitationUsed            409: the invitation was accepted already
     │    └── InvitationGone            410: the invitation expired or was revoked
     ├── StageError                     a pipeline stage failed; the raw message is quarantined
     └── StoreError                     the database said no
          ├── NotFound
          └── Conflict                  a unique name is taken, a state change is not allowed

(T) marks temporary errors, (P) permanent ones: ``error.temporary`` says which, so retry loops never
need to know the leaves.
"""

from __future__ import annotations

from typing import ClassVar


class PostroomError(Exception):
    """Base of every error Postroom raises on purpose."""

    temporary: ClassVar[bool] = False


class ConfigurationError(PostroomError):
    """A process setting or a connection field is wrong; retrying will not help."""


class InvalidSetting(ConfigurationError):
    """One named field has a value Postroom cannot use."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class MailError(PostroomError):
    """Raised by the pure mail logic in :mod:`postroom.mail`."""


class MessageParseError(MailError):
    """The bytes are not a mail at all (for example empty input); broken mail is parsed, not refused."""


class HeaderInjectionError(MailError):
    """A user-supplied header value holds CR or LF, which would let it add headers (RFC 5322 §2.2)."""

    def __init__(self, header: str) -> None:
        self.header = header
        super().__init__(f"header {header!r} must not contain CR or LF")


class ChannelError(PostroomError):
    """Talking to a mail server failed. The message always names the account and the protocol."""

    kind: ClassVar[str] = "error"

    def __init__(self, protocol: str, account: str, detail: str) -> None:
        self.protocol = protocol
        self.account = account
        self.detail = detail
        super().__init__(f"{display_protocol(protocol)} {account}: {self.kind}: {detail}")


# Protocol names as people write them; the rest are acronyms written in capitals (IMAP, POP3, SMTP).
_PROTOCOL_NAMES = {"sendgrid": "SendGrid", "oauth2": "OAuth2"}


def display_protocol(protocol: str) -> str:
    return _PROTOCOL_NAMES.get(protocol.lower(), protocol.upper())


class ConnectError(ChannelError):
    """The server could not be reached or the connection was lost (DNS, refused, timeout, reset)."""

    temporary = True
    kind = "cannot connect"


class ProtocolError(ChannelError):
    """The server answered something we did not expect."""

    temporary = True
    kind = "protocol error"


class TlsError(ChannelError):
    """The TLS handshake failed or the server's certificate was rejected."""

    kind = "TLS failed"


class AuthenticationError(ChannelError):
    """The server refused the credentials."""

    kind = "authentication failed"


class ReauthorizationRequired(ChannelError):
    """The OAuth provider refused the refresh token: an admin must sign in again."""

    kind = "re-authorisation required"


class FolderError(ChannelError):
    """The configured folder does not exist or cannot be selected."""

    kind = "folder unavailable"


class DeliveryError(PostroomError):
    """Sending one message failed. Carries the server's reply as data (RFC 5321 §4.2, RFC 3463)."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        enhanced_status: str | None = None,
        recipients: tuple[str, ...] = (),
    ) -> None:
        self.code = code
        self.enhanced_status = enhanced_status
        self.recipients = recipients
        super().__init__(message)


class TemporaryDeliveryError(DeliveryError):
    """A 4xx reply or a lost connection: try again later."""

    temporary = True


class PermanentDeliveryError(DeliveryError):
    """A 5xx reply: the message will never be accepted as it is."""


class WebhookRejected(PostroomError):
    """A webhook request we refuse; ``status_code`` is the HTTP answer and ``reason`` says why.

    The reason goes back to the caller, who is not yet known to be the provider: it names what is wrong
    with the request, never a connection, address or key.
    """

    status_code: ClassVar[int] = 400

    def __init__(self, provider: str, reason: str) -> None:
        self.provider = provider
        self.reason = reason
        super().__init__(f"{provider} webhook: {reason}")


class MalformedWebhook(WebhookRejected):
    """The request is not a post of the kind the provider sends (a field missing, the form unreadable)."""

    status_code = 400


class WebhookSignatureInvalid(WebhookRejected):
    """The request is unsigned, its signature does not verify, or it is stale or replayed."""

    status_code = 401


class WebhookTooLarge(WebhookRejected):
    """The request or the mail in it is larger than the listener's message size limit."""

    status_code = 413


class AccessError(PostroomError):
    """A sign-in or an invitation we refuse; ``status_code`` is the HTTP answer, the message says why."""

    status_code: ClassVar[int] = 403


class SignInFailed(AccessError):
    """Wrong credentials. One message for every cause, so that it does not tell which addresses exist."""

    status_code = 401

    def __init__(self) -> None:
        super().__init__("wrong email address or password")


class SignInThrottled(AccessError):
    """Too many failed sign-ins for this account or from this address; try again after ``retry_after`` s."""

    status_code = 429

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed sign-ins: try again in {retry_after} seconds")


class InvitationInvalid(AccessError):
    """The invitation token is not one we signed (forged, garbled or cut short)."""

    status_code = 400


class InvitationUsed(AccessError):
    """The invitation was accepted already: each link works once."""

    status_code = 409


class InvitationGone(AccessError):
    """The invitation expired or an administrator revoked it."""

    status_code = 410


class StageError(PostroomError):
    """A pipeline stage could not process a message; the runner quarantines it with this reason."""

    def __init__(self, stage: str, reason: str) -> None:
        self.stage = stage
        self.reason = reason
        super().__init__(f"{stage}: {reason}")


class StoreError(PostroomError):
    """The database refused an operation."""


class NotFound(StoreError):
    """The requested row does not exist."""


class Conflict(StoreError):
    """A unique value is taken or a state change is not allowed."""
