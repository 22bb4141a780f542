"""Typed values at the edge of outbound transports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SmtpEncryption = Literal["auto", "ssl", "starttls", "none"]


@dataclass(frozen=True, slots=True)
class SmtpAccount:
    """Everything needed to send through one SMTP server. ``address`` names it in logs and errors."""

    address: str
    host: str
    port: int = 587
    # "auto" picks by port: 465 implicit TLS (RFC 8314), 25 none, any other port STARTTLS (RFC 3207).
    encryption: SmtpEncryption = "auto"
    validate_certificate: bool = True
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0
    local_hostname: str | None = None  # EHLO name; the machine's FQDN when None

    @property
    def login(self) -> str:
        return self.username or self.address


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """A server reply as a value (RFC 5321 §4.2), with its enhanced status code when given (RFC 3463)."""

    code: int
    message: str
    enhanced_status: str | None = None

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    def __str__(self) -> str:
        status = f" {self.enhanced_status}" if self.enhanced_status else ""
        return f"{self.code}{status} {self.message}"


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one accepted message: the final reply and recipients the server refused."""

    reply: SmtpReply
    refused: dict[str, SmtpReply] = field(default_factory=dict)
