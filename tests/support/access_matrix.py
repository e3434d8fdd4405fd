"""The access rules of shares, proven with a real client against a real smbd.

A test class inherits AccessMatrix and provides the `matrix` fixture: a running server whose
share MATRIX_SHARE serves `share_dir`, with the users below. Host and container layers run
the same rules.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.smbclient import Server, output, smbclient

SHARE = "docs"
WRITER = ("alice", "alice-pw-1")
READER = ("bob", "bob-pw-2")
OUTSIDER = ("carol", "carol-pw-3")  # a valid user, not listed on SHARE
OTHER_SHARE = "other"


def matrix_env(users: dict[str, str], docs: str, other: str) -> dict[str, str]:
    """The configuration of the matrix as environment variables (users maps role names)."""
    w, r, o = users["writer"], users["reader"], users["outsider"]
    return {
        f"USER_{w.upper()}": f"{w}:{WRITER[1]}",
        f"USER_{r.upper()}": f"{r}:{READER[1]}",
        f"USER_{o.upper()}": f"{o}:{OUTSIDER[1]}",
        "SHARE_DOCS_W": f"write {SHARE} {docs} {w}",
        "SHARE_DOCS_R": f"read {SHARE} {docs} {r}",
        "SHARE_OTHER": f"write {OTHER_SHARE} {other} {o}",
    }


def populate(share_dir: Path) -> None:
    """What the matrix reads: a file, a link out of the share, a link inside it."""
    (share_dir / "hello.txt").write_text("hello from nasbox\n")
    (share_dir / "sub").mkdir(exist_ok=True)
    (share_dir / "sub" / "inner.txt").write_text("inner\n")
    for name, target in (("escape", "/etc"), ("escape-file", "/etc/passwd"), ("inside", "sub")):
        if not os.path.lexists(share_dir / name):
            os.symlink(target, share_dir / name)


@dataclass(frozen=True)
class Matrix:
    server: Server
    share_dir: Path  # the share's directory as seen by the test (host side)
    users: dict[str, str]  # role -> user name: writer, reader, outsider


class AccessMatrix:
    def test_writer_can_write(self, matrix: Matrix, tmp_path: Path) -> None:
        local = tmp_path / "upload.txt"
        local.write_text("written over SMB\n")
        result = smbclient(matrix.server, SHARE, matrix.users["writer"], WRITER[1],
                           f"put {local} upload-by-writer.txt")
        assert result.returncode == 0, output(result)
        assert (matrix.share_dir / "upload-by-writer.txt").read_text() == "written over SMB\n"

    def test_reader_can_read(self, matrix: Matrix, tmp_path: Path) -> None:
        result = smbclient(matrix.server, SHARE, matrix.users["reader"], READER[1],
                           f"lcd {tmp_path}; get hello.txt")
        assert result.returncode == 0, output(result)
        assert (tmp_path / "hello.txt").read_text() == "hello from nasbox\n"

    def test_reader_cannot_write(self, matrix: Matrix, tmp_path: Path) -> None:
        local = tmp_path / "attempt.txt"
        local.write_text("should not land\n")
        result = smbclient(matrix.server, SHARE, matrix.users["reader"], READER[1],
                           f"put {local} upload-by-reader.txt")
        assert "NT_STATUS_ACCESS_DENIED" in output(result) or "NT_STATUS_MEDIA_WRITE_PROTECTED" in output(result), output(result)
        assert not (matrix.share_dir / "upload-by-reader.txt").exists()

    def test_unlisted_user_cannot_connect(self, matrix: Matrix) -> None:
        # The same user can use its own share, so the refusal is the share's rule.
        own = smbclient(matrix.server, OTHER_SHARE, matrix.users["outsider"], OUTSIDER[1], "ls")
        assert own.returncode == 0, output(own)
        result = smbclient(matrix.server, SHARE, matrix.users["outsider"], OUTSIDER[1], "ls")
        assert result.returncode != 0
        assert "NT_STATUS_ACCESS_DENIED" in output(result), output(result)

    def test_wrong_password_fails(self, matrix: Matrix) -> None:
        result = smbclient(matrix.server, SHARE, matrix.users["writer"], "not-the-password", "ls")
        assert result.returncode != 0
        assert "NT_STATUS_LOGON_FAILURE" in output(result), output(result)

    @pytest.mark.parametrize("user", [None, "guest", "nobody"], ids=["anonymous", "guest", "nobody"])
    def test_guest_and_anonymous_fail(self, matrix: Matrix, user: str | None) -> None:
        for share in (SHARE, None):  # the share, and the list of shares
            result = smbclient(matrix.server, share, user, "", "ls" if share else None)
            assert result.returncode != 0, output(result)
            assert "NT_STATUS_" in output(result), output(result)
            assert "hello.txt" not in output(result) and f"{SHARE}  " not in output(result)

    def test_listing_shares_needs_a_login(self, matrix: Matrix) -> None:
        result = smbclient(matrix.server, None, matrix.users["writer"], WRITER[1])
        assert result.returncode == 0, output(result)
        assert SHARE in output(result)

    def test_smb1_is_refused(self, matrix: Matrix) -> None:
        smb1 = ("client min protocol=NT1", "client max protocol=NT1")
        result = smbclient(matrix.server, SHARE, matrix.users["writer"], WRITER[1], "ls", smb1)
        assert result.returncode != 0, output(result)
        assert "hello.txt" not in output(result)
        # The same client with SMB2 or newer gets in: the refusal is the protocol's.
        ok = smbclient(matrix.server, SHARE, matrix.users["writer"], WRITER[1], "ls")
        assert ok.returncode == 0 and "hello.txt" in output(ok), output(ok)

    def test_links_cannot_leave_the_share(self, matrix: Matrix, tmp_path: Path) -> None:
        user, password = matrix.users["writer"], WRITER[1]
        inside = smbclient(matrix.server, SHARE, user, password, f"lcd {tmp_path}; get inside/inner.txt inner.txt")
        assert inside.returncode == 0, output(inside)  # links within the share work
        assert (tmp_path / "inner.txt").read_text() == "inner\n"
        for command in ("get escape-file", "ls escape/", "get escape/passwd passwd", "get escape/hostname hostname"):
            result = smbclient(matrix.server, SHARE, user, password, f"lcd {tmp_path}; {command}")
            assert "NT_STATUS_" in output(result), f"{command}: {output(result)}"
        assert not (tmp_path / "escape-file").exists()
        assert not (tmp_path / "passwd").exists() and not (tmp_path / "hostname").exists()
