"""A self-signed certificate for serving the sandbox over HTTPS on 127.0.0.1.

Some client libraries refuse a plain-HTTP service root (Microsoft's Dataverse SDK sends a
bearer token only over HTTPS), so tests serve the sandbox with this certificate and point
the client's trust store at it (`REQUESTS_CA_BUNDLE` for requests-based clients).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # PEM; also the CA bundle a client trusts, as the certificate signs itself
    key: Path


def self_signed(directory: Path, host: str = "127.0.0.1") -> TlsFiles:
    """Write a key and a certificate for `host` (an IP address or a name) valid for a day."""
    # Imported here: only HTTPS sandboxes need it (it comes with azure-identity's msal).
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"p2c sandbox {host}")])
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(cert=directory / "sandbox-cert.pem", key=directory / "sandbox-key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files
