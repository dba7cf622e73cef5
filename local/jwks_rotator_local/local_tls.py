"""A throwaway certificate authority for HTTPS stand-ins on loopback (the local STS front end, in benchmarks and tests).

On Lambda the sign function replays proofs to STS over HTTPS, and the first
proof of a container pays for ``import ssl``, a TLS context and a handshake.
To measure that locally, a stand-in serves HTTPS with a certificate for
``127.0.0.1`` and ``localhost`` issued by this CA, and the function trusts
the CA's PEM file through ``STS_CA_BUNDLE`` instead of Amazon's roots. Keys
are P-256 (cheap to make, and what a TLS 1.3 handshake with AWS uses too);
the CA's key never leaves memory, and the CA's files live in a private
temporary directory removed by :meth:`LocalCertificateAuthority.close`.
"""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALIDITY = timedelta(days=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class LocalCertificateAuthority:
    """A CA certificate (``ca_file``) and a server certificate for loopback signed by it, for one process's stand-ins."""

    def __init__(self, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> None:
        now = datetime.now(UTC) - timedelta(minutes=5)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("jwks-rotator local test CA")
        ca_cert = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        server_cert = (
            x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(ca_name).public_key(server_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        self._dir = Path(tempfile.mkdtemp(prefix="jwks-rotator-ca-"))
        self.ca_file = self._dir / "ca.pem"
        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        self._chain = self._dir / "server.pem"
        self._chain.write_bytes(
            server_cert.public_bytes(serialization.Encoding.PEM)
            + server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        self._chain.chmod(0o600)

    def server_context(self) -> ssl.SSLContext:
        """A TLS server context presenting the loopback certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._chain)
        return context

    def close(self) -> None:
        """Remove the CA's and the server's files."""
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> LocalCertificateAuthority:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
