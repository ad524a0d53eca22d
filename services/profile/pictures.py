"""Profile pictures: a person's avatar and a company's logo.

An upload is checked before anything is decoded: its size, then (from the header alone) its
type and pixel count, so a decompression bomb is refused before it costs memory. What is
stored is a fresh image built from the pixels alone, resized to at most ``SIZE`` a side and
encoded as WebP: no EXIF, GPS, XMP or comments survive. It lives in this service's database,
so every replica serves it, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Claims, Role
from contracts.errors import ErrorCode
from contracts.v1 import profile as c
from contracts.v1 import profile_images as pi
from mesh.db import Database
from mesh.errors import MeshError, bad_request, forbidden, not_found
from services.profile import picture_repository as prepo
from services.profile import repository as repo
from services.profile import views

TOO_MANY = f"the limit is {pi.MAX_PIXELS // 1_000_000} megapixels"
UNREADABLE = "the file is not a picture that can be read: upload a PNG, JPEG, WebP or GIF image"


@dataclass(frozen=True)
class Processed:
    data: bytes
    hash: str
    media_type: str
    width: int
    height: int


def decode_upload(encoded: str) -> bytes:
    try:
        raw = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("the picture is not valid base64") from None
    if len(raw) > pi.MAX_UPLOAD_BYTES:
        raise MeshError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"the picture is {len(raw) // 1024} KiB; the limit is {pi.MAX_UPLOAD_BYTES // 1024}"
            " KiB: pick a smaller file",
        )
    return raw


def process(raw: bytes, shape: Literal["square", "fit"]) -> Processed:
    """Decode, bound, orient, resize and re-encode; raise a 4xx error for bad input."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bound warns above ~89 megapixels; ours below is far lower.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=list(pi.FORMATS)) as img:
                width, height = img.size
                if width * height > pi.MAX_PIXELS:
                    raise bad_request(f"the picture has {width}×{height} pixels; {TOO_MANY}")
                img.draft("RGB", (pi.SIZE * 2, pi.SIZE * 2))  # JPEG: decode at reduced size
                oriented = ImageOps.exif_transpose(img)
                pixels = _resized(_plain_mode(oriented), shape)
    except MeshError:
        raise
    except Image.DecompressionBombError:
        raise bad_request(f"the picture has far too many pixels; {TOO_MANY}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        raise bad_request(UNREADABLE) from None
    # A new image made of the pixels alone: nothing of the upload's metadata can follow.
    clean = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
    out = io.BytesIO()
    clean.save(out, "WEBP", quality=85, method=4)
    data = out.getvalue()
    return Processed(data, hashlib.sha256(data).hexdigest(), "image/webp", *clean.size)


def _plain_mode(img: Image.Image) -> Image.Image:
    transparent = "A" in img.getbands() or "transparency" in img.info
    return img.convert("RGBA" if transparent else "RGB")


def _resized(img: Image.Image, shape: Literal["square", "fit"]) -> Image.Image:
    if shape == "square":  # avatars: the centre square, never enlarged
        side = min(pi.SIZE, *img.size)
        return ImageOps.fit(img, (side, side), Image.Resampling.LANCZOS)
    img = img.copy()
    img.thumbnail((pi.SIZE, pi.SIZE), Image.Resampling.LANCZOS)  # logos: whole, never enlarged
    return img


def picture(row: Any) -> pi.Picture:
    return pi.Picture(
        hash=row.hash,
        media_type=row.media_type,
        width=row.width,
        height=row.height,
        data=base64.b64encode(row.data).decode(),
    )


class Pictures:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def set_avatar(self, claims: Claims, req: pi.AvatarUpload) -> c.PersonView:
        if claims.sub != req.person:
            raise forbidden("a person changes only their own picture")
        done = process(decode_upload(req.image), "square")
        async with self.db.transaction() as s:
            row = await repo.get_person(s, req.eco, req.person, for_update=True)
            if row is None:
                raise not_found("person")
            if row.partner != claims.partner:
                raise forbidden("the token acts for another partner than the profile's")
            await self._store(s, req.eco, "person", req.person, done)
            row = await repo.get_person_and_company(s, req.eco, req.person)
            assert row is not None
            return views.person_view(row, row.company_name, c.Visibility.PRIVATE)

    async def set_logo(self, claims: Claims, req: pi.LogoUpload) -> c.CompanyView:
        if claims.partner != req.partner or not claims.has_role(Role.PARTNER_ADMIN):
            raise forbidden("only a partner admin of this partner changes its logo")
        done = process(decode_upload(req.image), "fit")
        async with self.db.transaction() as s:
            if await repo.get_company(s, req.eco, req.partner, for_update=True) is None:
                raise not_found("company")
            await self._store(s, req.eco, "company", req.partner, done)
            row = await repo.get_company(s, req.eco, req.partner)
            return views.company_view(row, c.Visibility.PRIVATE)

    async def avatar(self, claims: Claims, req: c.PersonRef) -> pi.Picture:
        return await self._load(req.eco, "person", req.person)

    async def logo(self, claims: Claims, req: c.CompanyRef) -> pi.Picture:
        return await self._load(req.eco, "company", req.partner)

    @staticmethod
    async def _store(
        s: AsyncSession, eco: str, kind: prepo.Kind, owner: str, done: Processed
    ) -> None:
        await prepo.store(
            s, eco, kind, owner, datetime.now(UTC),
            hash=done.hash, media_type=done.media_type, width=done.width,
            height=done.height, data=done.data,
        )  # fmt: skip

    async def _load(self, eco: str, kind: prepo.Kind, owner: str) -> pi.Picture:
        async with self.db.transaction() as s:
            row = await prepo.load(s, eco, kind, owner)
        if row is None:
            raise not_found("picture")
        return picture(row)
