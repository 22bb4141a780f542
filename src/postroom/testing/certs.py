"""Throwaway certificates for test servers on loopback.

:func:`make_certificates` writes a private CA, a server certificate it signed for ``localhost``,
``127.0.0.1`` and ``::1``, and a second, self-signed certificate that no one trusts. Point
``SSL_CERT_FILE`` at :attr:`Certificates.ca_file` and a client that validates certificates accepts the
first and must reject the second. Keys are ECDSA P-256: generating them takes milliseconds.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Every name a loopback test server may be reached by; 127.0.0.2 serves the untrusted certificate
# (see postroom.testing.dovecot) and is listed so that only the issuer, never the name, fails.
_LOOPBACK_NAMES: tuple[x509.GeneralName, ...] = (
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("127.0.0.2")),
    x509.IPAddress(ipaddress.ip_address("::1")),
)
_VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Certificates:
    """PEM files of one test CA, the server certificate it issued, and an untrusted certificate."""

    ca_file: Path  # the CA certificate: the whole trust store of the tests
    cert_file: Path  # server certificate for the loopback names, issued by the CA
    key_file: Path
    untrusted_cert_file: Path  # self-signed, same names: a validating client must refuse it
    untrusted_key_file: Path

    def server_context(self, *, untrusted: bool = False) -> ssl.SSLContext:
        """A server-side context presenting the trusted certificate, or the untrusted one."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if untrusted:
            context.load_cert_chain(self.untrusted_cert_file, self.untrusted_key_file)
        else:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_certificates(directory: Path) -> Certificates:
    """Create the CA, the server certificate and the untrusted certificate in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Postroom test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        _leaf_builder("localhost", server_key, now)
        .issuer_name(ca_name)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    untrusted_key = ec.generate_private_key(ec.SECP256R1())
    untrusted_cert = (
        _leaf_builder("untrusted.localhost", untrusted_key, now)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "untrusted.localhost")]))
        .sign(untrusted_key, hashes.SHA256())
    )

    certs = Certificates(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
        untrusted_cert_file=directory / "untrusted.pem",
        untrusted_key_file=directory / "untrusted.key",
    )
    _write(certs.ca_file, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(certs.cert_file, server_cert.public_bytes(serialization.Encoding.PEM))
    _write(certs.key_file, _private_pem(server_key))
    _write(certs.untrusted_cert_file, untrusted_cert.public_bytes(serialization.Encoding.PEM))
    _write(certs.untrusted_key_file, _private_pem(untrusted_key))
    return certs


def _leaf_builder(common_name: str, key: ec.EllipticCurvePrivateKey, now: datetime.datetime) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(_LOOPBACK_NAMES)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    # Servers running as another user (Dovecot's login processes) must read these; they guard
    # nothing but throwaway loopback tests.
    path.chmod(0o644)
