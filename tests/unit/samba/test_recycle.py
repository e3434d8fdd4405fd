"""The recycle bin of a share: its configuration, its rendering, and how it is emptied (what
entered it before the retention, never through a link, never on another filesystem)."""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pytest

from nasbox.samba import recycle, smbconf

DAY = 86400


def test_yaml_and_env_forms(load, tmp_path):
    config = load({"SHARE_DOCS": f"write docs {tmp_path}/d alice:a", "SHARE_DOCS_RECYCLE": "12h"},
                  {"shares": {"media": {"access": "write", "paths": [str(tmp_path / "m")], "users": ["bob:b"],
                                        "recycle": "30d"}}})
    assert (config.shares["docs"].recycle, config.shares["media"].recycle) == ("12h", "30d")
    assert sorted(recycle.folders(config)) == [f"{tmp_path}/d/.nasbox-recycle", f"{tmp_path}/m/.nasbox-recycle"]


def test_problems(problems, tmp_path):
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / ".nasbox-recycle").symlink_to("/etc")
    found = problems({"SHARE_A": f"write a {tmp_path}/a alice:a", "SHARE_A_RECYCLE": "0d",
                      "SHARE_B": f"write b {tmp_path}/linked alice", "SHARE_B_RECYCLE": "7d",
                      "SHARE_C": f"write c {tmp_path}/c alice", "SHARE_C_RECYCLE": "30 days",
                      "SHARE_NONE_RECYCLE": "1d"},
                     {"shares": {"tm": {"access": "write", "paths": [f"{tmp_path}/tm"], "users": ["alice"],
                                        "time_machine": True, "recycle": "30d"}}})
    assert sorted(found) == [
        "env SHARE_A: recycle: expected a retention above zero, such as 30d",
        f"env SHARE_B: recycle: {tmp_path}/linked/.nasbox-recycle is not a folder (a link or a file); expected "
        "nasbox's recycle folder or nothing there",
        "env SHARE_C: recycle: expected a duration such as 30d (s, m, h, d or w), got '30 days'",
        "env SHARE_NONE_RECYCLE: there is no SHARE_NONE for this option",
        "nasbox.yaml: shares.tm.recycle: a Time Machine share keeps no recycle bin (Time Machine deletes old "
        "backups itself, and its size limit counts only backups); expected recycle or time_machine, not both",
    ]


@pytest.mark.skipif(shutil.which("testparm") is None, reason="testparm not installed (run .ci/setup)")
def test_rendering_puts_recycle_below_nasbox_modules_and_testparm_takes_it(load, tmp_path):
    config = load({"SHARE_DOCS": f"write docs {tmp_path}/d alice:a", "SHARE_DOCS_RECYCLE": "30d",
                   "SHARE_PLAIN": f"write plain {tmp_path}/p alice"})
    text = smbconf.render(config)
    docs, plain = text.split("\n[docs]\n")[1].split("\n[plain]\n")
    assert "    vfs objects = catia fruit streams_xattr recycle\n" in docs
    assert "    recycle:repository = .nasbox-recycle\n    recycle:keeptree = yes\n    recycle:versions = yes\n" in docs
    assert "recycle:" not in plain and "vfs objects" not in plain
    assert ".nasbox-recycle" not in text.split("veto files = ")[1].split("\n")[0]  # users restore from it
    assert smbconf.check(config) is None


def test_prepare_makes_the_folder_for_every_user_of_the_group(load, tmp_path):
    (tmp_path / "d").mkdir()
    config = load({"SHARE_DOCS": f"write docs {tmp_path}/d alice:a", "SHARE_DOCS_RECYCLE": "30d"})
    recycle.prepare(config, gid=4343)
    st = os.stat(tmp_path / "d" / ".nasbox-recycle")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 4343, 0o2770)
    os.chmod(tmp_path / "d" / ".nasbox-recycle", 0o700)  # as Samba would make it, by default
    recycle.prepare(config, gid=4343)
    assert os.stat(tmp_path / "d" / ".nasbox-recycle").st_mode & 0o7777 == 0o2770


def later(path: Path) -> Path:
    """path made after every file made so far, by its change time (a busy wait on the clock's
    tick, a few milliseconds; no sleep)."""
    before = max((p.lstat().st_ctime_ns for p in path.parent.rglob("*")), default=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        path.write_text("new\n")
        if path.stat().st_ctime_ns > before:
            return path


def test_empty_removes_what_entered_before_the_retention(tmp_path):
    bin_ = tmp_path / ".nasbox-recycle"
    old = bin_ / "Projects" / "plan.txt"
    old.parent.mkdir(parents=True)
    old.write_text("old plan\n")
    (bin_ / "Projects" / "Copy #1 of plan.txt").write_text("older plan\n")
    (bin_ / "Gone" / "deep").mkdir(parents=True)
    (bin_ / "Gone" / "deep" / "x").write_text("x")
    cutoff = max(p.lstat().st_ctime for p in bin_.rglob("*"))
    new = later(bin_ / "Projects" / "fresh.txt")

    emptied = recycle.empty(str(bin_), 30 * DAY, now=cutoff + 30 * DAY + 0.000_001)
    assert (emptied.files, emptied.folders, emptied.failures) == (3, 2, [])  # Gone and Gone/deep
    assert sorted(p.relative_to(bin_).as_posix() for p in bin_.rglob("*")) == ["Projects", "Projects/fresh.txt"]
    assert new.read_text() == "new\n"

    assert recycle.empty(str(bin_), 30 * DAY, now=time.time() + 29 * DAY).files == 0
    assert recycle.empty(str(bin_), 30 * DAY, now=time.time() + 31 * DAY).files == 1
    assert bin_.is_dir() and list(bin_.iterdir()) == []  # the bin itself stays


def test_empty_never_follows_a_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep\n")
    bin_ = tmp_path / ".nasbox-recycle"
    bin_.mkdir()
    (bin_ / "to-dir").symlink_to(outside)
    (bin_ / "to-file").symlink_to(outside / "keep.txt")
    emptied = recycle.empty(str(bin_), DAY, now=time.time() + 2 * DAY)
    assert emptied.files == 2 and list(bin_.iterdir()) == []
    assert (outside / "keep.txt").read_text() == "keep\n"
    # The bin itself replaced by a link: nothing is emptied through it.
    bin_.rmdir()
    bin_.symlink_to(outside)
    with pytest.raises(OSError):
        recycle.empty(str(bin_), DAY, now=time.time() + 2 * DAY)
    assert (outside / "keep.txt").read_text() == "keep\n"


def test_empty_all_skips_shares_without_a_bin_and_logs(load, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    config = load({"SHARE_DOCS": f"write docs {tmp_path}/docs alice:a", "SHARE_DOCS_RECYCLE": "7d",
                   "SHARE_PLAIN": f"write plain {tmp_path}/plain alice"})
    for share in ("docs", "plain"):
        (tmp_path / share / ".nasbox-recycle").mkdir(parents=True)
        (tmp_path / share / ".nasbox-recycle" / "x.txt").write_text("x")
    results = recycle.empty_all(config, now=time.time() + 8 * DAY)
    assert list(results) == ["docs"] and results["docs"].files == 1
    assert (tmp_path / "plain" / ".nasbox-recycle" / "x.txt").exists()
    assert "share docs: recycle bin: removed 1 file(s) (1 bytes) and 0 folder(s) deleted over 7d ago" in caplog.text
