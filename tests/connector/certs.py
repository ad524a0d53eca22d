"""A test CA, a server certificate for 127.0.0.1 and a client certificate (mTLS back-end)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Pki:
    ca_pem: str
    server_cert_pem: str
    server_key_pem: str
    client_cert_pem: str
    client_key_pem: str

    def write(self, folder: Path) -> dict[str, str]:
        """Files for uvicorn: server cert/key and the CA that client certificates must chain to."""
        files = {
            "ssl_certfile": self.server_cert_pem,
            "ssl_keyfile": self.server_key_pem,
            "ssl_ca_certs": self.ca_pem,
        }
        out = {}
        for option, pem in files.items():
            path = folder / f"{option}.pem"
            path.write_text(pem)
            out[option] = str(path)
        return out


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    cn: str,
    usage: x509.ObjectIdentifier,
    san: x509.GeneralName | None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki() -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("partnermesh test CA")
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server, server_key = _issue(
        ca_key,
        ca_name,
        "127.0.0.1",
        ExtendedKeyUsageOID.SERVER_AUTH,
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    )
    client, client_key = _issue(
        ca_key, ca_name, "mesh-connector", ExtendedKeyUsageOID.CLIENT_AUTH, None
    )
    return Pki(
        _cert_pem(ca),
        _cert_pem(server),
        _key_pem(server_key),
        _cert_pem(client),
        _key_pem(client_key),
    )
