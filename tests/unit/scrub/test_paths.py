"""The rules every path read from the scrub catalog passes, and the names the parity layout
cannot hold."""
import pytest

from nasbox.scrub import layout, par2
from nasbox.scrub.catalog import Entry, is_relative, untrusted, untrusted_entry

MD5 = bytes(16)


@pytest.mark.parametrize("path, ok", [
    (b"", True), (b"a", True), (b"a/b c/...", True), (b".hidden/x..y", True),
    (b"/a", False), (b"a/", False), (b"a//b", False), (b".", False), (b"..", False), (b"a/../b", False),
    (b"a/./b", False), (b"../a", False), (b"a\0b", False),
])
def test_relative_paths(path, ok):
    assert is_relative(path) is ok


@pytest.mark.parametrize("row, staging, why", [
    ((b"d", b"f", 1, 2, 3, MD5, b"f.vol0+1.par2", None, 0), b"0" * 32, None),
    ((b"d", b"f", 1, 2, 3, MD5, b"", None, 0), None, None),
    ((b"/etc", b"f", 1, 2, 3, MD5, b"", None, 0), None, "its directory is not a relative path inside the job"),
    ((b".nasbox-scrub/staging", b"f", 1, 2, 3, MD5, b"", None, 0), None,
     "its parity would be inside nasbox's private folder"),
    ((b"", b"../f", 1, 2, 3, MD5, b"", None, 0), None, "its name is not a plain file name"),
    ((b"", b"f", 1, 2, 3, MD5, b"f.vol0+1.par2/../../x", None, 0), None, "its recovery files are not named after it"),
    ((b"", b"f", 1, 2, 3, MD5, b"g.vol0+1.par2", None, 0), None, "its recovery files are not named after it"),
    ((b"", b"f", 1, 2, 3, MD5, b"", None, 0), b"/data/private", "its staging directory is not one nasbox makes"),
    (("", "f", 1, 2, 3, MD5, "", None, 0), None, "it holds values of the wrong type"),
    ((b"d", b"f", 1, 2, 3, MD5, b"", 4, 1), None, None),
    ((b"d", b"f", 1, 2, 3, MD5, b"", "4", 1), None, "it holds values of the wrong type"),
    ((b"d", b"f", 1, 2, 3, MD5, b"", 4, b"1"), None, "it holds values of the wrong type"),
])
def test_catalog_rows(row, staging, why):
    assert untrusted(row, staging) == why


@pytest.mark.parametrize("entry, why", [
    (Entry(b"d", b"f", 1, 2, 0, MD5, (b"f.vol0+1.par2",), ctime_ns=None, settled=False), None),
    (Entry(b"d/../..", b"f", 1, 2, 0, MD5, ()), "its directory is not a relative path inside the job"),
    (Entry(b"", b"f", 1, 2, 0, MD5, (b"g.vol0+1.par2",)), "its recovery files are not named after it"),
])
def test_entries_recovered_from_parity_pass_the_same_rule(entry, why):
    assert untrusted_entry(entry) == why


def test_recovery_file_names_follow_par2():
    assert par2.volume_suffix(5_000, 5) == b".vol0+1.par2"
    assert par2.volume_suffix(1 << 30, 100) == b".vol0000+2000.par2"
    assert len(par2.volume_suffix(1 << 40, 100)) <= layout.LONGEST_VOLUME_SUFFIX


@pytest.mark.parametrize("name, why", [
    (b"n" * 243, None),
    (b"n" * 244, "name too long"),
    (b"a\\..\\x", "par2 would read it elsewhere"),
    (b"x", "parity directory of x.par2/"),
    (b"y.vol0+1", "recovery file of y"),
])
def test_names_the_layout_cannot_hold(name, why):
    taken = layout.taken_parity_names({b"x.par2", b"z"})
    found = layout.file_problem(b"/data", b"", name, 5_000, 5, {name, b"y"}, taken)
    assert (found is None) if why is None else (why in found)


def test_too_deep_directories():
    assert layout.directory_problem(b"/data", b"d/" * 1000 + b"d") is None
    assert "too deep" in layout.directory_problem(b"/data", b"d/" * 2100 + b"d")
    assert "private folder" in layout.directory_problem(b"/data", b".nasbox-scrub")
