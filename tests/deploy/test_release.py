"""The release is what it says: one version, a changelog entry for it, upgrade notes that are
the migration histories' own, a recorded previous release that matches its commit, a
licence in full."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from deploy import release
from deploy.migrations import PROCESSES, history
from mesh import runtime

ROOT = Path(__file__).resolve().parents[2]


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


class TestVersion:
    def test_semver_in_pyproject_and_the_installed_distribution(self) -> None:
        version = release.project_version()
        assert re.fullmatch(r"\d+\.\d+\.\d+", version)
        assert importlib.metadata.version("partnermesh") == version == runtime.VERSION

    def test_every_image_tag_and_mention_is_this_version(self) -> None:
        version = release.project_version()
        files = [ROOT / "README.md", *sorted((ROOT / "deploy").rglob("*.yaml"))]
        files.append(ROOT / "deploy" / "Dockerfile")
        tags = {
            (path.name, tag)
            for path in files
            for tag in re.findall(r"partnermesh:(\d+\.\d+\.\d+)", path.read_text())
        }
        assert tags and {tag for _, tag in tags} == {version}, tags


class TestNotesAndChangelog:
    def test_upgrading_is_what_the_histories_say(self) -> None:
        assert (ROOT / "UPGRADING.md").read_text() == release.notes(), (
            "UPGRADING.md drifted: run `python -m deploy.release notes` and commit"
        )

    def test_the_release_being_prepared_lists_every_revision_since_the_last(self) -> None:
        *published, current = release.releases()
        assert current.version == release.project_version() and current.commit is None
        listed = {(r.process, r.id) for r in release.migrations_of(current, published[-1])}
        for name in PROCESSES:
            ids = [r.revision for r in history(name).script().walk_revisions()]
            newer = ids[: ids.index(published[-1].heads[name])]  # walk: head first
            assert {(name, i) for i in newer} <= listed
        assert ("identity", "0002") in listed

    def test_keep_a_changelog_sections(self) -> None:
        text = (ROOT / "CHANGELOG.md").read_text()
        assert "keepachangelog.com" in text and "## [Unreleased]" in text
        for r in release.releases():
            assert re.search(
                rf"^## \[{re.escape(r.version)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", text, re.M
            )
        assert release.changelog_problems(release.project_version()) == []

    def test_a_changelog_without_the_version_stops_the_build(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        log = tmp_path / "CHANGELOG.md"
        log.write_text("# Changelog\n\n## [0.1.0] - 2026-12-03\n")
        monkeypatch.setattr(release, "CHANGELOG", log)
        version = release.project_version()
        assert release.changelog_problems(version) == [
            f"CHANGELOG.md has no section '## [{version}]'"
        ]
        assert release.build(tmp_path / "dist") == 1
        assert not (tmp_path / "dist").exists()

    def test_stale_notes_stop_the_build(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        stale = tmp_path / "UPGRADING.md"
        stale.write_text(release.notes().replace("| identity | 0002 |", "| identity | 0003 |"))
        monkeypatch.setattr(release, "UPGRADING", stale)
        assert release.build(tmp_path / "dist") == 1
        assert not (tmp_path / "dist").exists()


class TestRecordedReleases:
    @pytest.mark.parametrize(
        "recorded", tomllib.loads(release.RECORD.read_text())["release"], ids=lambda r: r["version"]
    )
    def test_heads_and_version_are_those_of_the_recorded_commit(
        self, recorded: dict[str, Any]
    ) -> None:
        commit = recorded["commit"]
        assert re.fullmatch(r"[0-9a-f]{40}", commit)
        try:
            git("cat-file", "-e", f"{commit}^{{commit}}")
        except subprocess.CalledProcessError:
            pytest.fail(f"commit {commit} is not in this clone: releases need the full history")
        pyproject = tomllib.loads(git("show", f"{commit}:pyproject.toml"))
        assert pyproject["project"]["version"] == recorded["version"]
        for name in PROCESSES:
            folder = history(name).directory.relative_to(ROOT)
            files = git("ls-tree", "--name-only", commit, f"{folder}/").split()
            ids = sorted(m.group(1) for f in files if (m := re.search(r"/r(\d{4})_", f)))
            assert recorded["heads"][name] == ids[-1], name


class TestLicence:
    def test_apache_2_in_full(self) -> None:
        text = (ROOT / "LICENSE").read_text()
        assert "Apache License\n                           Version 2.0, January 2004" in text
        assert "END OF TERMS AND CONDITIONS" in text and len(text) > 11000
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
