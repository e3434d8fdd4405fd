"""The mount table: parsed once, from /proc/self/mountinfo."""
from __future__ import annotations

from pathlib import PurePosixPath

from nasbox import mounttable
from nasbox.mounttable import Mounted, holding


def test_mount_table_reads_escaped_mountinfo(tmp_path, monkeypatch):
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "68 27 254:0 /srv/my\\040data /mnt/two\\040words rw,relatime - ext4 /dev/vda rw\n"
        "70 27 0:52 / /mnt/nas rw,relatime shared:1 - cifs //nas/my\\040docs rw,vers=3.0\n")
    monkeypatch.setattr(mounttable, "MOUNTINFO", str(mountinfo))
    assert mounttable.mount_table() == [
        Mounted(PurePosixPath("/"), "254:0", PurePosixPath("/"), "ext4", "/dev/vda"),
        Mounted(PurePosixPath("/mnt/two words"), "254:0", PurePosixPath("/srv/my data"), "ext4", "/dev/vda"),
        Mounted(PurePosixPath("/mnt/nas"), "0:52", PurePosixPath("/"), "cifs", "//nas/my docs")]
    monkeypatch.setattr(mounttable, "MOUNTINFO", str(tmp_path / "absent"))
    assert mounttable.mount_table() == []


def test_a_path_is_on_the_deepest_mount_the_last_mounted_on_top():
    table = [Mounted(PurePosixPath(p), d, PurePosixPath("/"), "ext4", "x")
             for p, d in (("/", "8:1"), ("/mnt", "8:2"), ("/mnt", "8:3"), ("/mnt/a/b", "8:4"))]
    assert holding(PurePosixPath("/mnt/a"), table).device == "8:3"
    assert holding(PurePosixPath("/mnt/a/b/c"), table).device == "8:4"
    assert holding(PurePosixPath("/etc"), table).device == "8:1"


def test_lies_in_says_what_is_relative_to_says():
    names = ["/", "/mnt", "/mnt2", "/mnt/a", "/mnt/a b", "/mnt/a/b", "/mn", "/x/../mnt", "/mnt/\udcff"]
    for path in names:
        for directory in names:
            assert mounttable.lies_in(path, directory) == PurePosixPath(path).is_relative_to(directory), (path, directory)
