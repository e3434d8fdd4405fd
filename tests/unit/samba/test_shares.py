"""Share directories: who can write, and paths that are not directories."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from nasbox.samba import shares


def stat_of(path: Path, mode: int, uid: int, gid: int) -> os.stat_result:
    path.mkdir(exist_ok=True)
    st = list(os.stat(path))
    st[0] = (st[0] & ~0o7777) | mode
    st[4], st[5] = uid, gid
    return os.stat_result(st)


@pytest.mark.parametrize("mode, owner, group, expected", [
    (0o755, 1000, 0, True),     # owner with rwx
    (0o555, 1000, 0, False),    # owner without w
    (0o775, 0, 1000, True),     # group member with rwx
    (0o755, 0, 1000, False),    # group without w
    (0o777, 0, 0, True),        # others rwx
    (0o776, 0, 0, False),       # others without x cannot create in it
    (0o077, 1000, 0, False),    # the owner class decides, even when others may write
])
def test_can_write(tmp_path, mode, owner, group, expected):
    st = stat_of(tmp_path / "d", mode, owner, group)
    assert shares.can_write(1000, 1000, st) is expected


def test_share_path_that_is_a_file_is_a_configuration_error(problems, tmp_path):
    (tmp_path / "file").write_text("data")
    found = problems({"SHARE_A": f"write a /ok,{tmp_path / 'file'} alice:pw"})
    assert found == [f"env SHARE_A: paths[1]: {tmp_path / 'file'} exists but is not a directory; expected a directory"]
    assert (tmp_path / "file").read_text() == "data"


def test_prepare_creates_missing_directory_group_writable(load, tmp_path, caplog):
    target = tmp_path / "new" / "share"
    config = load({"SHARE_A": f"write a {target} alice:pw"})
    shares.prepare(config, {"alice": 4242}, gid=4343)
    st = target.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 4343, 0o2775)
    assert "did not exist and was created inside the container" in caplog.text


def test_prepare_warns_and_changes_nothing_when_a_writer_cannot_write(load, tmp_path, caplog):
    share = tmp_path / "share"
    share.mkdir(mode=0o755)
    (share / "data.txt").write_text("keep")
    before = [(p, p.stat()) for p in [share, share / "data.txt"]]
    config = load({"SHARE_A": f"write a {share} alice:pw"})
    shares.prepare(config, {"alice": 4242}, gid=4343)
    assert "user alice (uid 4242, gid 4343) cannot write" in caplog.text
    assert [(p, p.stat()) for p, _ in before] == before  # no chown, no chmod
