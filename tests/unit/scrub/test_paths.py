"""The rules every path read from the scrub catalog passes, and the names parity cannot be
given."""

import pytest

from nasbox.scrub import layout
from nasbox.scrub.catalog import Entry, is_relative, named_after, untrusted

MD5 = bytes(16)
SET = b"0123456789abcdef" * 2


@pytest.mark.parametrize(
    "path, ok",
    [
        (b"", True),
        (b"a", True),
        (b"a/b c/...", True),
        (b".hidden/x..y", True),
        (b"/a", False),
        (b"a/", False),
        (b"a//b", False),
        (b".", False),
        (b"..", False),
        (b"a/../b", False),
        (b"a/./b", False),
        (b"../a", False),
        (b"a\0b", False),
    ],
)
def test_relative_paths(path: bytes, ok: bool) -> None:
    assert is_relative(path) is ok


def row(**changes: object) -> tuple:
    """The values of a sound row (a file in a set), with changes."""
    values = dict(zip(("dir", "name", "size", "mtime_ns", "inode", "md5"), (b"d", b"f", 1, 2, 3, MD5), strict=True))
    values |= {"volumes": b"", "parity_at": 0.0, "verified_at": None, "result": "created", "ctime_ns": None}
    values |= {"settled": 0, "set_id": SET}
    values |= changes
    return tuple(values.values())


@pytest.mark.parametrize(
    "values, why",
    [
        (row(), None),
        (row(set_id=None, volumes=b"f.vol0+1.par2"), None),  # LEGACY: its own set beside its mirrored path
        (row(ctime_ns=4, settled=1), None),
        (row(dir=b"/etc"), "its directory is not a relative path inside the job"),
        (row(dir=b"a/../.."), "its directory is not a relative path inside the job"),
        (row(dir=b".nasbox-scrub/staging", set_id=None), "its parity would be inside nasbox's private folder"),
        (row(name=b"../f"), "its name is not a plain file name"),
        (row(name=b"a/b"), "its name is not a plain file name"),
        (row(set_id=b"../../etc"), "its parity set is not one nasbox names"),
        (row(set_id=b"0" * 31), "its parity set is not one nasbox names"),
        (row(set_id=None, volumes=b"f.vol0+1.par2/../../x"), "its recovery files are not named after it"),
        (row(set_id=None, volumes=b"g.vol0+1.par2"), "its recovery files are not named after it"),
        (row(dir="d", name="f"), "it holds values of the wrong type"),
        (row(ctime_ns="4"), "it holds values of the wrong type"),
        (row(settled=b"1"), "it holds values of the wrong type"),
        (row(set_id=SET.decode()), "it holds values of the wrong type"),
    ],
)
def test_catalog_rows(values: tuple, why: str | None) -> None:
    assert untrusted(values) == why


@pytest.mark.parametrize(
    "entry, why",
    [
        (Entry(b"d", b"f", 1, 2, 0, MD5, ctime_ns=None, settled=False, set_id=SET), None),
        (Entry(b"d/../..", b"f", 1, 2, 0, MD5, set_id=SET), "its directory is not a relative path inside the job"),
        (Entry(b"d", b"f", 1, 2, 0, MD5, set_id=b"../x"), "its parity set is not one nasbox names"),
        (Entry(b"", b"f", 1, 2, 0, MD5, (b"g.vol0+1.par2",)), "its recovery files are not named after it"),
    ],
)
def test_entries_recovered_from_parity_pass_the_same_rule(entry: Entry, why: str | None) -> None:
    assert untrusted(entry.row()) == why


def test_recovery_files_are_named_after_their_set() -> None:
    assert named_after((SET + b".vol0+1.par2", SET + b".vol0001+2000.par2"), SET)
    assert not named_after((SET + b".vol0+1.par2/../x",), SET)
    assert not named_after((b"other.vol0+1.par2",), SET)


@pytest.mark.parametrize(
    "name, why",
    [
        (b"n" * 253, None),
        (b"n" * 254, "name too long to protect"),  # a repair's backup <name>.1 would not fit
        (b"a\\..\\x", "par2 would read it elsewhere"),
        (b"\x01" * 100, "name too long to protect"),
        # Names of parity files: parity lives in the private folder, so these are files like any other.
        (b"x.par2", None),
        (b"x.vol0+1.par2", None),
        (b"x.vol0+1", None),
        (SET + b".par2", None),
    ],
)
def test_names_parity_can_and_cannot_be_given(name: bytes, why: str | None) -> None:
    found = layout.file_problem(b"/data", b"", name)
    assert (found is None) if why is None else (why in (found or "")), found


def test_too_deep_directories() -> None:
    assert layout.directory_problem(b"/data", b"d/" * 1000 + b"d") is None
    assert "too deep" in (layout.directory_problem(b"/data", b"d/" * 2100 + b"d") or "")
