"""Contracts of profile pictures: a person's avatar and a company's logo.

An upload carries the image as base64 in JSON (the gateway speaks JSON; the bus carries at
most 1 MiB, so uploads are bounded to :data:`MAX_UPLOAD_BYTES`). The profile service reads
the type from the content, refuses too many pixels, resizes to at most
:data:`SIZE` pixels a side and re-encodes without any metadata (EXIF, GPS, comments). The
stored picture is named by the hash of its bytes, which views carry (``avatar``, ``logo``)
so pages can cache it for good.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from contracts.claims import Role, Scope
from contracts.policy import Operation, Policy
from contracts.v1.profile import CompanyRef, CompanyView, PersonRef, PersonView, _op

MAX_UPLOAD_BYTES = 512 * 1024
MAX_PIXELS = 24_000_000  # 24 megapixels: any camera photo; a decompression bomb is far more
SIZE = 256
FORMATS = ("PNG", "JPEG", "WEBP", "GIF")

# Base64 of MAX_UPLOAD_BYTES, with room to say "too large" in the service's own words.
Base64Image = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1_000_000, pattern=r"^[A-Za-z0-9+/=\s]*$"),
]


class AvatarUpload(PersonRef):
    image: Base64Image = Field(description="the picture's file, base64 (PNG, JPEG, WebP or GIF)")


class LogoUpload(CompanyRef):
    image: Base64Image = Field(description="the logo's file, base64 (PNG, JPEG, WebP or GIF)")


class Picture(BaseModel):
    hash: str = Field(description="SHA-256 of the stored bytes (hex): the picture's name")
    media_type: str
    width: int
    height: int
    data: str = Field(description="the stored image, base64")


_READ = Policy(scope=Scope.PROFILE_READ)
_WRITE = Policy(scope=Scope.PROFILE_WRITE)
_ADMIN = Policy(
    scope=Scope.PROFILE_WRITE,
    roles=frozenset({Role.PARTNER_ADMIN}),
    partner_param="partner",
    partner_bypass=frozenset(),
)


SET_AVATAR = _op(
    "person.set_avatar", "PUT /people/{person}/avatar", AvatarUpload, PersonView, _WRITE,
    "Upload one's own profile picture (resized, stripped of metadata)",
)  # fmt: skip
GET_AVATAR = _op(
    "person.avatar", "GET /people/{person}/avatar", PersonRef, Picture, _READ,
    "A person's profile picture",
)  # fmt: skip
SET_LOGO = _op(
    "company.set_logo", "PUT /partners/{partner}/logo", LogoUpload, CompanyView, _ADMIN,
    "Upload one's own company's logo (partner admins of that partner only)",
)  # fmt: skip
GET_LOGO = _op(
    "company.logo", "GET /partners/{partner}/logo", CompanyRef, Picture, _READ,
    "A company's logo",
)  # fmt: skip

OPERATIONS: tuple[Operation, ...] = (SET_AVATAR, GET_AVATAR, SET_LOGO, GET_LOGO)
