"""Secrets at rest: mailbox passwords, OAuth tokens and API keys are stored Fernet-encrypted.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) authenticates the ciphertext, so a wrong key
is detected instead of yielding garbage.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from postroom.errors import ConfigurationError

MASK = "********"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str) -> str:
        """Ciphertext for the database; the empty string stays empty (no secret set)."""
        if not plaintext:
            return ""
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        if not ciphertext:
            return ""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode()
        except InvalidToken as exc:
            raise ConfigurationError(
                "a stored secret cannot be decrypted: POSTROOM_SECRET_KEY (or secret.key in the data dir) "
                "is not the key it was stored with"
            ) from exc


def mask(value: str) -> str:
    """How a stored secret is shown: masked when set, empty when not."""
    return MASK if value else ""
