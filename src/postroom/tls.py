"""TLS for every protocol client (IMAP, POP3, SMTP), and how socket failures become errors.

One function builds the client :class:`ssl.SSLContext`, so that "validate certificate" means the same
thing for every protocol; one function turns a socket or TLS failure into the matching
:class:`~postroom.errors.ChannelError` leaf, so that every protocol reports DNS, refusal, timeouts and
certificate problems in the same words. :func:`is_loopback` and :func:`secret_url_problem` say where a
secret may travel without TLS: to this machine only.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import threading
from urllib.parse import urlsplit

from postroom.errors import ChannelError, ConnectError, TlsError

_contexts: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def client_context(validate: bool) -> ssl.SSLContext:
    """The client context for one connection to a mail server.

    With ``validate`` the server's certificate must chain to a trusted CA (the system's default
    verify paths, which honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``) and name the host we connected to.
    Without it nothing is checked: the admin chose that for self-signed servers, and the connection
    is still encrypted.

    The context is shared between connections and must not be modified by callers. It is built once
    per combination of ``validate`` and the CA environment variables, because loading the system CA
    bundle costs about 25 ms, which would otherwise be paid for every mail sent.
    """
    key = (validate, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            context = _build_context(validate)
            _contexts[key] = context
        return context


def _build_context(validate: bool) -> ssl.SSLContext:
    # create_default_context() loads the default verify paths, requires TLS 1.2 or later and turns
    # on hostname checking (RFC 6125 through OpenSSL); the same context serves IMAP, POP3 and SMTP
    # because RFC 8314 §4 asks the same certificate checks of all mail access protocols.
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if not validate:
        # check_hostname must be switched off before verify_mode may be lowered.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def network_error(protocol: str, account: str, endpoint: str, error: OSError) -> ChannelError:
    """The :class:`ChannelError` leaf for a socket or TLS failure while talking to ``endpoint``.

    ``endpoint`` is ``host:port``; it goes into the message because "connection refused" alone does
    not tell an admin which of their settings is wrong.
    """
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = error.verify_message or error.reason or str(error)
        return TlsError(protocol, account, f"certificate of {endpoint} rejected: {reason}")
    if isinstance(error, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        # The peer closed the socket in the middle of the handshake: a lost connection (a server
        # restarting, a login process killed), not a setting that will never work, so it is retried.
        return ConnectError(protocol, account, f"connection to {endpoint} closed during the TLS handshake")
    if isinstance(error, ssl.SSLError):
        # The usual cause is a port/encryption mismatch: implicit TLS spoken to a plain-text port
        # answers with "wrong version number".
        reason = error.reason or str(error)
        return TlsError(protocol, account, f"TLS handshake with {endpoint} failed: {reason}")
    if isinstance(error, socket.gaierror):
        return ConnectError(protocol, account, f"cannot resolve {endpoint}: {error.strerror or error}")
    if isinstance(error, ConnectionRefusedError):
        return ConnectError(protocol, account, f"connection to {endpoint} refused")
    if isinstance(error, TimeoutError):
        return ConnectError(protocol, account, f"{endpoint} timed out")
    if isinstance(error, ConnectionError):
        return ConnectError(protocol, account, f"connection to {endpoint} lost: {error.strerror or error}")
    return ConnectError(protocol, account, f"{endpoint}: {error.strerror or error}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only: ``localhost``, 127.0.0.0/8 or ::1.

    Traffic to these never leaves the machine (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3), so a secret may go
    to them unencrypted (a local relay, a test server). Any other name is not resolved to decide: DNS
    could point it anywhere, and it may point elsewhere at the next connection.
    """
    name = host.strip().removeprefix("[").removesuffix("]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        # A zone index (fe80::1%eth0) names an interface, not a host; without it the address parses.
        address = ipaddress.ip_address(name.partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def secret_url_problem(url: str) -> str | None:
    """Why a secret (an API key, a client secret, a refresh token) must not be sent to ``url``; None if it may.

    It may go to an ``https://`` URL, or to ``http://`` on a loopback host only: over plain HTTP anyone on
    the path reads the Authorization header or the form body (RFC 6749 §2.3.1 and §3.2 require TLS for
    exactly that reason).
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return f"{url!r} is not a valid URL"
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        return f"{url!r} is not an http(s) URL"
    if not host:
        return f"{url!r} names no host"
    if scheme == "http" and not is_loopback(host):
        return f"{url!r} is plain http to {host}: the secret would travel unencrypted; use https://"
    return None
