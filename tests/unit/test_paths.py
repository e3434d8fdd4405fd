"""The one overlap rule: paths compared where they lead, not as written."""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from nasbox import paths
from nasbox.mounttable import Mounted


def mounted(mountpoint: str, device: str, root: str) -> Mounted:
    return Mounted(PurePosixPath(mountpoint), device, PurePosixPath(root), "ext4", "/dev/vda")


@pytest.fixture
def places(tmp_path: Path) -> Path:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "backup").mkdir()
    (tmp_path / "src-link").symlink_to(tmp_path / "src")
    (tmp_path / "into-src").symlink_to("src/sub")  # relative target
    (tmp_path / "dangling").symlink_to(tmp_path / "src" / "not-yet")
    return tmp_path


def test_real_resolves_links_and_dotdot_and_keeps_the_missing_rest(places):
    assert paths.real(f"{places}/src/../src/sub") == f"{places}/src/sub"
    assert paths.real(f"{places}/src-link/sub") == f"{places}/src/sub"
    assert paths.real(f"{places}/into-src/new/deeper") == f"{places}/src/sub/new/deeper"
    assert paths.real(f"{places}/dangling/x") == f"{places}/src/not-yet/x"
    assert paths.real(f"{places}/missing/../backup") == f"{places}/backup"


@pytest.mark.parametrize("a, b, expected", [
    ("src", "src/../src/backup", True),
    ("src", "src-link/backup", True),
    ("src-link", "src", True),
    ("src/sub", "into-src", True),
    ("src", "dangling/later", True),
    ("backup", "src/../backup/docs", True),
    ("src", "backup", False),
    ("src-link", "backup/src", False),
    ("src/sub", "src/subway", False),  # a shared prefix of text is not a shared place
])
def test_overlap(places, a, b, expected):
    assert paths.overlap(f"{places}/{a}", f"{places}/{b}") is expected
    assert paths.overlap(f"{places}/{b}", f"{places}/{a}") is expected


def test_below_is_relative_to_the_resolved_root(places):
    assert paths.below(f"{places}/src-link/sub/.par", f"{places}/src") == "sub/.par"
    assert paths.below(f"{places}/src/sub/.par", f"{places}/into-src") == ".par"
    assert paths.below(f"{places}/src", f"{places}/src-link") == "."
    assert paths.below(f"{places}/backup", f"{places}/src") is None
    assert paths.inside(f"{places}/src", f"{places}/src-link")


def test_a_directory_mounted_at_a_second_place_is_the_same_place():
    table = [mounted("/", "8:1", "/"),
             mounted("/data", "8:2", "/"),
             mounted("/backup", "8:2", "/archive"),  # a bind mount of /data/archive
             mounted("/other", "8:3", "/archive")]
    assert paths.inside("/backup/docs", "/data", table)
    assert paths.below("/backup/docs/.par", "/data/archive", table) == "docs/.par"
    assert not paths.inside("/other/docs", "/data", table)  # another disk
    assert not paths.inside("/data/photos", "/backup", table)
    assert paths.on_device(PurePosixPath("/data/x"), table) == ("8:2", PurePosixPath("/x"))


def test_the_last_mount_at_a_place_hides_the_earlier_one():
    table = [mounted("/", "8:1", "/"),
             mounted("/mnt", "8:2", "/"),
             mounted("/mnt", "8:3", "/")]
    assert paths.on_device(PurePosixPath("/mnt/a"), table) == ("8:3", PurePosixPath("/a"))


def test_resolved_note_names_only_what_resolution_changed(places):
    assert paths.resolved_note(f"{places}/src", f"{places}/backup/") == ""
    note = paths.resolved_note(f"{places}/src-link/x", f"{places}/backup")
    assert note == f" ({places}/src-link/x is {places}/src/x)"
