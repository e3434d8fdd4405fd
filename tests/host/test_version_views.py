"""The read-only views Samba reads versions through: real bind mounts, made when the versions
exist, made again when the versions directory is, and never writable."""
from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbox.config import load_config
from nasbox.mounttable import mount_table
from nasbox.samba import version_views
from nasbox.sync.kind import SyncJob
from nasbox.versions.store import VERSIONS_DIR

pytestmark = pytest.mark.host


@pytest.fixture
def views(tmp_path: Path) -> Iterator[Path]:
    yield version_views.views_dir()  # each test's own (tests/conftest.py)
    for _ in range(3):  # a test that failed may have stacked some
        for mounted in mount_table():
            if mounted.mountpoint.is_relative_to(tmp_path):
                subprocess.run(["umount", str(mounted.mountpoint)], check=False)


def mounts_at(place: Path) -> int:
    return sum(m.mountpoint == place for m in mount_table())


def job(tmp_path: Path, name: str = "docs") -> SyncJob:
    return SyncJob(name=name, source=str(tmp_path / "src"), destination=str(tmp_path / "dst"), schedule="daily")


def make_versions(tmp_path: Path, content: str) -> Path:
    version = tmp_path / "dst" / VERSIONS_DIR / "@GMT-2026.11.02-09.30.00"
    version.mkdir(parents=True)
    (version / "a.txt").write_text(content)
    return version


def test_a_view_is_mounted_read_only_once_the_versions_exist(views: Path, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    config = load_config({"NASBOX_CONFIG": "/dev/null", "SYNC_DOCS": f"{tmp_path}/src {tmp_path}/dst daily",
                          "SYNC_DOCS_VERSIONS": "last=2"})
    version_views.prepare(config, {"docs"})
    place = version_views.view("docs")
    assert place.is_dir() and not list(place.iterdir()) and mounts_at(place) == 0
    assert oct(place.stat().st_mode & 0o777) == oct(views.stat().st_mode & 0o777) == "0o755"
    make_versions(tmp_path, "old")
    version_views.refresh(config.sync["docs"])
    version_views.refresh(config.sync["docs"])  # already showing them: no second mount
    assert mounts_at(place) == 1
    assert (place / "@GMT-2026.11.02-09.30.00" / "a.txt").read_text() == "old"
    with pytest.raises(OSError) as refused:
        (place / "@GMT-2026.11.02-09.30.00" / "a.txt").write_text("new")
    assert refused.value.errno == errno.EROFS


def test_a_versions_directory_made_anew_is_shown_anew(views: Path, tmp_path: Path) -> None:
    place = version_views.view("docs")
    place.mkdir(parents=True)
    make_versions(tmp_path, "first")
    version_views.refresh(job(tmp_path))
    shutil.rmtree(tmp_path / "dst" / VERSIONS_DIR)
    make_versions(tmp_path, "second")
    version_views.refresh(job(tmp_path))
    assert mounts_at(place) == 1
    assert (place / "@GMT-2026.11.02-09.30.00" / "a.txt").read_text() == "second"


def test_a_job_no_share_shows_gets_no_view(views: Path, tmp_path: Path) -> None:
    make_versions(tmp_path, "x")
    version_views.refresh(job(tmp_path))
    assert not views.exists() and not any(m.mountpoint.is_relative_to(tmp_path) for m in mount_table())


def test_without_the_capability_to_mount_the_view_stays_empty_and_the_log_says_why(
        views: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    (wrappers / "mount").write_text(  # mount as in a container without SYS_ADMIN
        f'#!/bin/sh\nexec setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin {shutil.which("mount")} "$@"\n')
    (wrappers / "mount").chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrappers}:{os.environ['PATH']}")
    place = version_views.view("docs")
    place.mkdir(parents=True)
    make_versions(tmp_path, "x")
    with caplog.at_level(logging.WARNING):
        version_views.refresh(job(tmp_path))  # never raises: the versions are kept all the same
    assert mounts_at(place) == 0 and not list(place.iterdir())
    assert "the container needs cap_add SYS_ADMIN" in caplog.text
