"""The bus's secrets: one nkey per process (rotatable) and the TLS certificates.

A :class:`Keyring` is a directory of seed files, ``<process>.nk`` (mode 0600), one per
process in :data:`contracts.bus.PROCESSES`. Rotating a process's key keeps the old seed
as ``<process>.old.nk``: the server configuration admits both until it is retired, so
replicas move to the new key one by one without downtime (reload the server after
each step: ``nats-server --signal reload`` or SIGHUP).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

import nkeys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from contracts.bus import PROCESSES


def write_secret(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only (0600), never world-readable in between."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def new_user_seed() -> bytes:
    """A fresh nkey user seed (``SU…``)."""
    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))


def public_key(seed: bytes) -> str:
    return str(nkeys.from_seed(bytearray(seed.strip())).public_key.decode())


class Keyring:
    """Seed files of every process under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def seed_file(self, process: str) -> Path:
        return self.directory / f"{process}.nk"

    def old_seed_file(self, process: str) -> Path:
        return self.directory / f"{process}.old.nk"

    def ensure(self, processes: Iterable[str] = PROCESSES) -> Keyring:
        """Create a seed for every process that has none; keep those that exist."""
        for process in processes:
            if not self.seed_file(process).exists():
                write_secret(self.seed_file(process), new_user_seed())
        return self

    def public_keys(self, process: str) -> list[str]:
        """The keys the server admits for ``process``: current, then (while rotating) old."""
        files = [self.seed_file(process), self.old_seed_file(process)]
        return [public_key(f.read_bytes()) for f in files if f.exists()]

    def rotate(self, process: str) -> str:
        """A new key for ``process``; the current one stays admitted until :meth:`retire`."""
        if self.old_seed_file(process).exists():
            raise ValueError(f"{process}: retire the previous rotation first")
        self.seed_file(process).rename(self.old_seed_file(process))
        write_secret(self.seed_file(process), new_user_seed())
        return self.public_keys(process)[0]

    def retire(self, process: str) -> None:
        """Stop admitting the key :meth:`rotate` replaced."""
        self.old_seed_file(process).unlink(missing_ok=True)


# -- TLS -------------------------------------------------------------------------------

CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "server.pem", "server-key.pem"


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "partnermesh"),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ensure_tls(directory: Path, hosts: Iterable[str], days: int = 825) -> Path:
    """A CA and one server certificate for ``hosts`` (DNS names or IPs) under
    ``directory``, made once: for local runs and first deployments; bring your own PKI
    (cert-manager, …) in production. The certificate serves client connections and
    authenticates nodes to each other on cluster routes (server and client auth)."""
    if (directory / CERT_FILE).exists():
        return directory
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("partnermesh bus CA"))
        .issuer_name(_name("partnermesh bus CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
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
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("partnermesh nats"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CA_FILE).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    write_secret(directory / "ca-key.pem", _pem_key(ca_key))
    (directory / CERT_FILE).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_secret(directory / KEY_FILE, _pem_key(key))
    return directory
