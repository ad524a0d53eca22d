"""Profile pictures: uploads are resized and stripped of metadata, bad files and bombs are
refused with a clear reason, and only the person (or the company's admin) changes theirs."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

import pytest
from PIL import Image

from contracts.claims import Role
from contracts.errors import ErrorCode
from contracts.policy import Operation
from contracts.v1 import profile as c
from contracts.v1 import profile_images as pi
from mesh.errors import MeshError
from tests.profile.conftest import Eco

GPS = 0x8825  # the EXIF tag that points at the GPS block


def photo(width: int = 1200, height: int = 800, fmt: str = "JPEG", gps: bool = True) -> bytes:
    """A camera-like photo: a gradient, with EXIF (make, GPS position) when ``gps``."""
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    out = io.BytesIO()
    extra = {}
    if gps:
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"  # Make
        exif.get_ifd(GPS).update({1: "N", 2: (52.0, 22.0, 7.0), 3: "E", 4: (4.0, 53.0, 42.0)})
        extra["exif"] = exif.tobytes()
    img.save(out, fmt, **extra)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def _denied(
    eco: Eco, op: Operation, who: str | None, code: ErrorCode, **body: Any
) -> MeshError:
    with pytest.raises(MeshError) as err:
        await eco.call(op, who, **body)
    assert err.value.code is code, err.value
    return err.value


async def _people(eco: Eco) -> None:
    await eco.register("anna", "northwind", Role.MEMBER, Role.PARTNER_ADMIN, name="Anna Berg")
    await eco.register("noah", "northwind")
    await eco.register("carl", "contoso", Role.MEMBER, Role.PARTNER_ADMIN)
    await eco.settle()


class TestAvatar:
    async def test_upload_resizes_and_strips_the_gps_position(self, eco: Eco) -> None:
        await _people(eco)
        upload = photo()
        assert Image.open(io.BytesIO(upload)).getexif().get_ifd(GPS), "the fixture has GPS"
        view = await eco.call(pi.SET_AVATAR, "anna", person="anna", image=b64(upload))
        assert view.avatar and view.name == "Anna Berg"
        stored = await eco.call(pi.GET_AVATAR, "noah", person="anna")
        data = base64.b64decode(stored.data)
        assert stored.hash == view.avatar == hashlib.sha256(data).hexdigest()
        assert stored.media_type == "image/webp" and (stored.width, stored.height) == (256, 256)
        img = Image.open(io.BytesIO(data))
        assert img.format == "WEBP" and img.size == (256, 256)
        assert not img.getexif() and not img.getexif().get_ifd(GPS)
        assert b"Exif" not in data and b"PhoneMaker" not in data and b"XMP" not in data
        # Everyone who sees the profile, its card and the directory learns the hash.
        assert (await eco.call(c.GET_PERSON, "carl", person="anna")).avatar == view.avatar
        assert (await eco.call(c.PERSON_CARD, "carl", person="anna")).avatar == view.avatar
        page = await eco.call(c.DIRECTORY, "carl", q="")
        images = {e.id: e.image for e in page.entries}
        assert images["anna"] == view.avatar and images["noah"] is None

    async def test_a_new_upload_replaces_the_old_and_small_pictures_are_not_enlarged(
        self, eco: Eco
    ) -> None:
        await _people(eco)
        first = await eco.call(pi.SET_AVATAR, "noah", person="noah", image=b64(photo()))
        small = photo(120, 90, "PNG", gps=False)
        second = await eco.call(pi.SET_AVATAR, "noah", person="noah", image=b64(small))
        assert second.avatar != first.avatar
        stored = await eco.call(pi.GET_AVATAR, "anna", person="noah")
        assert stored.hash == second.avatar and (stored.width, stored.height) == (90, 90)

    async def test_bad_files_are_refused_with_a_reason(self, eco: Eco) -> None:
        await _people(eco)
        refused = {
            "text": b"hello, not a picture at all",
            "svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "truncated": photo()[:200],
        }
        for name, data in refused.items():
            err = await _denied(
                eco, pi.SET_AVATAR, "anna", ErrorCode.BAD_REQUEST, person="anna", image=b64(data)
            )
            assert "upload a PNG, JPEG, WebP or GIF" in err.detail, (name, err.detail)
        big = photo(gps=False) + b"\0" * (pi.MAX_UPLOAD_BYTES + 1)
        err = await _denied(
            eco, pi.SET_AVATAR, "anna", ErrorCode.PAYLOAD_TOO_LARGE, person="anna", image=b64(big)
        )
        assert "the limit is 512 KiB" in err.detail
        err = await _denied(
            eco, pi.SET_AVATAR, "anna", ErrorCode.BAD_REQUEST, person="anna", image="abcde"
        )
        await _denied(eco, pi.GET_AVATAR, "noah", ErrorCode.NOT_FOUND, person="anna")

    async def test_a_decompression_bomb_is_refused_before_it_is_decoded(self, eco: Eco) -> None:
        await _people(eco)
        out = io.BytesIO()
        Image.new("1", (10_000, 10_000)).save(out, "PNG")  # 100 megapixels in a few KiB
        assert len(out.getvalue()) < 64 * 1024
        err = await _denied(
            eco, pi.SET_AVATAR, "anna", ErrorCode.BAD_REQUEST,
            person="anna", image=b64(out.getvalue()),
        )  # fmt: skip
        assert "10000×10000 pixels" in err.detail and "24 megapixels" in err.detail
        out = io.BytesIO()
        Image.new("1", (20_000, 20_000)).save(out, "PNG")  # past Pillow's own bound too
        err = await _denied(
            eco, pi.SET_AVATAR, "anna", ErrorCode.BAD_REQUEST,
            person="anna", image=b64(out.getvalue()),
        )  # fmt: skip
        assert "too many pixels" in err.detail and "24 megapixels" in err.detail

    async def test_nobody_changes_another_persons_picture(self, eco: Eco) -> None:
        await _people(eco)
        for who in ("noah", "carl"):  # a colleague, another company's admin
            err = await _denied(
                eco, pi.SET_AVATAR, who, ErrorCode.FORBIDDEN, person="anna", image=b64(photo())
            )
            assert "only their own picture" in err.detail
        await _denied(eco, pi.GET_AVATAR, "noah", ErrorCode.NOT_FOUND, person="anna")


class TestLogo:
    async def test_the_company_admin_uploads_a_logo_kept_whole(self, eco: Eco) -> None:
        await _people(eco)
        wide = photo(1000, 250, "PNG", gps=False)
        view = await eco.call(pi.SET_LOGO, "anna", partner="northwind", image=b64(wide))
        assert view.logo
        stored = await eco.call(pi.GET_LOGO, "carl", partner="northwind")
        assert (stored.width, stored.height) == (256, 64)  # the whole logo, not a crop
        assert (await eco.call(c.GET_COMPANY, "carl", partner="northwind")).logo == view.logo

    async def test_members_and_other_admins_cannot(self, eco: Eco) -> None:
        await _people(eco)
        for who, partner in (("noah", "northwind"), ("carl", "northwind")):
            err = await _denied(
                eco, pi.SET_LOGO, who, ErrorCode.FORBIDDEN, partner=partner, image=b64(photo())
            )
            assert "partner" in err.detail, err.detail
        await _denied(eco, pi.GET_LOGO, "anna", ErrorCode.NOT_FOUND, partner="northwind")
