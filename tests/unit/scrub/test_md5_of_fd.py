"""md5_of_fd, the one way the scrub hashes a file: every size, read in the calling thread or
by a thread of its own, into buffers a thread keeps from file to file."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from nasbox.scrub import files
from nasbox.scrub.files import md5_of_fd

KIB = 1024


@pytest.fixture(params=["here", "read ahead"])
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Files from 64 KiB on read in the calling thread, or by a thread of their own."""
    monkeypatch.setattr(files, "READ_SIZE", 20 * KIB)  # several reads, and buffers reused, on small files
    monkeypatch.setattr(files, "_kept", threading.local())
    if request.param == "read ahead":
        monkeypatch.setattr(files, "READ_AHEAD_FROM", 0)
    return request.param


@pytest.mark.parametrize("size", [0, 1, 64 * KIB - 1, 64 * KIB, 64 * KIB + 1, 100 * KIB + 3, 400 * KIB])
def test_every_size_hashes_as_hashlib_does(tmp_path: Path, reading: str, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        assert md5_of_fd(fd) == hashlib.md5(data).digest()
        os.lseek(fd, 0, os.SEEK_SET)
        assert md5_of_fd(fd, size) == hashlib.md5(data).digest()  # fstat's size given
    finally:
        os.close(fd)


def test_the_buffers_of_one_file_never_leak_into_the_next(tmp_path: Path, reading: str) -> None:
    """A buffer kept from a longer file holds its bytes: a shorter file hashes only its own."""
    long, short = os.urandom(300 * KIB), os.urandom(150 * KIB + 7)
    for name, data in (("long", long), ("short", short), ("long again", long)):
        (tmp_path / name).write_bytes(data)
        fd = os.open(tmp_path / name, os.O_RDONLY)
        try:
            assert md5_of_fd(fd) == hashlib.md5(data).digest(), name
        finally:
            os.close(fd)


@pytest.mark.parametrize("reading", ["here", "read ahead"], indirect=True)
def test_a_read_error_is_raised_and_no_thread_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reading: str
) -> None:
    (tmp_path / "f").write_bytes(os.urandom(300 * KIB))
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    calls = 0
    readv = os.readv

    def failing(fd: int, buffers: list[bytearray]) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(5, "Input/output error")
        return readv(fd, buffers)

    monkeypatch.setattr(os, "readv", failing)
    try:
        with pytest.raises(OSError, match="Input/output error"):
            md5_of_fd(fd)
    finally:
        os.close(fd)
    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]
