"""Profile pictures in the portal and at the API: a person uploads an avatar and a partner
admin a logo; they show instead of initials, are served cached by content hash and carry no
location; bad files get a readable message (problem+json at the API); nobody changes
another person's picture."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.portal.browser import ARTIFACTS, SERIOUS, axe_source, axe_violations, signed_in_page
from tests.portal.login import csrf_of, sign_in
from tests.portal.mesh import Mesh

pytestmark = pytest.mark.browser
GPS = 0x8825


def photo_with_gps(width: int = 900, height: int = 600) -> bytes:
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(GPS).update({1: "N", 2: (52.0, 22.0, 7.0), 3: "E", 4: (4.0, 53.0, 42.0)})
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


class TestAvatarUpload:
    async def test_upload_shows_the_picture_everywhere_without_its_location(
        self, browser: Any, mesh: Mesh, tmp_path: Path
    ) -> None:
        carlos = mesh.subs["carlos"]
        upload = tmp_path / "me.jpg"
        upload.write_bytes(photo_with_gps())
        async with signed_in_page(browser, mesh, "carlos") as page:
            await page.goto(f"{mesh.portal_url}/people/{carlos}/edit")
            await page.get_by_label("Picture file").set_input_files(str(upload))
            await page.get_by_role("button", name="Upload profile picture").click()
            await page.get_by_role("status").filter(has_text="Picture saved.").wait_for()
            assert page.url.startswith(f"{mesh.portal_url}/people/{carlos}?")
            face = page.locator("main h1 img.avatar")
            await face.wait_for()
            assert await face.evaluate("img => img.decode().then(() => img.naturalWidth)") == 256
            src = await face.get_attribute("src")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "portal-desktop-avatar.png"))
            # The directory shows it too; people without one keep their initials.
            await page.goto(f"{mesh.portal_url}/directory?kind=person&q=Carlos")
            assert await page.locator(f"main img.avatar[src='{src}']").count() >= 1
            await page.locator(f"main a[data-card='{carlos}']").first.hover()
            await page.locator(f"#hovercard img.avatar[src='{src}']").wait_for()
        async with sign_in(mesh, "noah") as noah:
            served = await noah.get(src)
            again = await noah.get(src, headers={"If-None-Match": served.headers["etag"]})
            profile = (await noah.get(f"/people/{mesh.subs['noah']}")).text
            card = (await noah.get(f"/api/cards/{carlos}")).json()  # what hover cards show
        assert card["avatar"] and card["avatar"] in src
        assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
        assert "immutable" in served.headers["cache-control"]
        assert served.headers["etag"].strip('"') in src
        assert again.status_code == 304
        stored = Image.open(io.BytesIO(served.content))
        assert stored.size == (256, 256) and not stored.getexif().get_ifd(GPS)
        assert b"Exif" not in served.content and b"PhoneMaker" not in served.content
        assert ">NN</span>" in profile  # initials stay the fallback
        async with httpx.AsyncClient(base_url=mesh.portal_url) as anonymous:
            assert (await anonymous.get(src)).status_code in (302, 303, 401)

    async def test_bad_files_get_a_readable_message(
        self, browser: Any, mesh: Mesh, tmp_path: Path
    ) -> None:
        felix = mesh.subs["felix"]
        text = tmp_path / "not-a-picture.png"
        text.write_bytes(b"this is a text file with a picture's name")
        big = tmp_path / "huge.jpg"
        big.write_bytes(photo_with_gps() + b"\0" * (600 * 1024))
        async with signed_in_page(browser, mesh, "felix") as page:
            await page.goto(f"{mesh.portal_url}/people/{felix}/edit")
            for path, said in (
                (text, "not a picture that can be read: upload a PNG, JPEG, WebP or GIF"),
                (big, "the limit is 512 KiB"),
            ):
                await page.get_by_label("Picture file").set_input_files(str(path))
                await page.get_by_role("button", name="Upload profile picture").click()
                alert = page.get_by_role("alert").filter(has_text="Not saved")
                await alert.wait_for()
                assert said in await alert.inner_text()
            assert await page.locator("main h1 img.avatar").count() == 0

    async def test_nobody_changes_another_persons_picture(self, mesh: Mesh) -> None:
        carlos = mesh.subs["carlos"]
        image = base64.b64encode(photo_with_gps()).decode()
        async with mesh.api() as api:
            refused = await api.put(
                f"/people/{carlos}/avatar", headers=mesh.bearer("chloe"), json={"image": image}
            )
            bad = await api.put(
                f"/people/{mesh.subs['chloe']}/avatar",
                headers=mesh.bearer("chloe"),
                json={"image": base64.b64encode(b"plain text").decode()},
            )
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "only their own picture" in refused.json()["detail"]
        assert bad.status_code == 400
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert "upload a PNG, JPEG, WebP or GIF" in bad.json()["detail"]
        async with sign_in(mesh, "chloe", f"/people/{carlos}") as chloe:
            token = csrf_of(chloe.last_page.text)
            resp = await chloe.post(
                f"/people/{carlos}/picture",
                data={"csrf": token},
                files={"picture": ("x.jpg", photo_with_gps(), "image/jpeg")},
            )
        assert resp.status_code == 403 and "Not allowed" in resp.text


class TestLogoUpload:
    async def test_a_partner_admin_uploads_the_company_logo(
        self, browser: Any, mesh: Mesh, tmp_path: Path
    ) -> None:
        logo = tmp_path / "logo.png"
        out = io.BytesIO()
        Image.new("RGBA", (800, 200), (20, 90, 160, 255)).save(out, "PNG")
        logo.write_bytes(out.getvalue())
        async with signed_in_page(browser, mesh, "carlos") as page:
            await page.goto(f"{mesh.portal_url}/companies/contoso/edit")
            found = await axe_violations(page, axe_source())
            assert [v for v in found if v["impact"] in SERIOUS] == []
            await page.get_by_label("Picture file").set_input_files(str(logo))
            await page.get_by_role("button", name="Upload logo").click()
            await page.get_by_role("status").filter(has_text="Picture saved.").wait_for()
            shown = page.locator("main h1 img.avatar.logo")
            await shown.wait_for()
            assert await shown.evaluate("img => img.decode().then(() => img.naturalWidth)") == 256
        async with mesh.api() as api:
            refused = await api.put(
                "/partners/contoso/logo",
                headers=mesh.bearer("chloe"),  # a member of contoso, not its admin
                json={"image": base64.b64encode(out.getvalue()).decode()},
            )
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
