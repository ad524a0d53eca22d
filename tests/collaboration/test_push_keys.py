"""The deployment's VAPID key: generated into its file on first start and kept, or given as
PEM; nothing but a P-256 key is accepted."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.collaboration.push import vapid_key
from services.collaboration.settings import CollaborationSettings


def _raw(public_key: str) -> bytes:
    return base64.urlsafe_b64decode(public_key + "=" * (-len(public_key) % 4))


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_generated_on_first_start_then_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "vapid.pem"
    settings = CollaborationSettings(vapid_key_file=str(path))
    first = vapid_key(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, "readable by the service only"
    raw = _raw(first.public_key)
    assert len(raw) == 65 and raw[0] == 4, "an uncompressed P-256 point"
    assert vapid_key(settings) == first, "the same key on every start"


def test_a_configured_key_wins_over_the_file(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    settings = CollaborationSettings(
        vapid_private_key=_pem(key), vapid_key_file=str(tmp_path / "unused.pem")
    )
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert _raw(vapid_key(settings).public_key) == point
    assert not (tmp_path / "unused.pem").exists()


def test_only_p256_keys(tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ValueError, match="P-256"):
        vapid_key(CollaborationSettings(vapid_private_key=_pem(other)))
