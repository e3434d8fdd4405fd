"""The access rules of shares, proven with a real client against a real smbd.

A test class inherits AccessMatrix and provides the `matrix` fixture: a running server whose
share MATRIX_SHARE serves `share_dir`, with the users below. Host and container layers run
the same rules.
"""
from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.smbclient import Server, output, smbclient

SHARE = "docs"
WRITER = ("alice", "alice-pw-1")
READER = ("bob", "bob-pw-2")
OUTSIDER = ("carol", "carol-pw-3")  # a valid user, not listed on SHARE
OTHER_SHARE = "other"
FOREIGN = "foreign.txt"  # in SHARE, a file the writer does not own
REFUSED = ("NT_STATUS_ACCESS_DENIED", "NT_STATUS_MEDIA_WRITE_PROTECTED")


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
    # Writable by everyone on disk, so only Samba's rules keep a read-only user from changing it.
    (share_dir / "open").mkdir(exist_ok=True)
    (share_dir / "open" / "open.txt").write_text("anyone may write this on disk\n")
    (share_dir / "open").chmod(0o777)
    (share_dir / "open" / "open.txt").chmod(0o666)
    add_foreign_file(share_dir)


def add_foreign_file(share_dir: Path) -> None:
    """FOREIGN: root's, mode 0644, so every share user may read it and none may change it."""
    path = share_dir / FOREIGN
    path.write_text("not the writer's\n")
    os.chown(path, 0, 0)
    path.chmod(0o644)


def snapshot(directory: Path) -> dict[str, tuple[object, ...]]:
    """What a refused change must leave as it was: each entry's mode, owner, link count,
    modification time, content and extended attributes (links are not followed)."""
    entries: dict[str, tuple[object, ...]] = {}
    for path in [directory, *sorted(directory.rglob("*"))]:
        st = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(st.st_mode) else b""
        xattrs = {name: os.getxattr(path, name, follow_symlinks=False)
                  for name in os.listxattr(path, follow_symlinks=False)}
        entries[str(path.relative_to(directory))] = (st.st_mode, st.st_uid, st.st_gid, st.st_nlink,
                                                     st.st_mtime_ns, content, xattrs)
    return entries


def refused(result: subprocess.CompletedProcess[str]) -> bool:
    return any(status in output(result) for status in REFUSED)


# What a read-only user tries, each refused ({local} is a local file to upload). The targets
# are writable by everyone on disk: the refusal must be Samba's.
READER_CHANGES = {
    "put": "put {local} open/new-by-reader.txt",
    "overwrite": "put {local} open/open.txt",
    "rename": "rename open/open.txt open/renamed.txt",
    "delete": "del open/open.txt",
    "mkdir": "mkdir open/new-dir",
    "hard link": "hardlink open/open.txt open/open-link.txt",
    "hidden attribute": "setmode open/open.txt +h",
    "read-only attribute": "setmode open/open.txt +r",
    "stream": "put {local} open/open.txt:stream",
    "symlink": "symlink open.txt open/open-symlink",
}
# What a write user tries on a file she does not own, each refused.
FOREIGN_CHANGES = {
    "overwrite": f"put {{local}} {FOREIGN}",
    "hard link": f"hardlink {FOREIGN} foreign-link.txt",
    "hidden attribute": f"setmode {FOREIGN} +h",
    "read-only attribute": f"setmode {FOREIGN} +r",
    "stream": f"put {{local}} {FOREIGN}:stream",
}


@dataclass(frozen=True)
class Matrix:
    server: Server
    share_dir: Path  # the share's directory as seen by the test (host side)
    other_dir: Path  # OTHER_SHARE's directory, share_dir's sibling on both layers
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
        assert refused(result), output(result)
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

    def test_uploads_give_the_owner_full_control_and_others_no_more_than_before(self, matrix: Matrix,
                                                                                 tmp_path: Path) -> None:
        # Windows asks for full control (execute included) when it opens a file of its own.
        local = tmp_path / "mode.txt"
        local.write_text("mode\n")
        result = smbclient(matrix.server, SHARE, matrix.users["writer"], WRITER[1], f"put {local} mode-by-writer.txt")
        assert result.returncode == 0, output(result)
        assert stat.S_IMODE((matrix.share_dir / "mode-by-writer.txt").stat().st_mode) == 0o764

    @pytest.mark.parametrize("change", sorted(READER_CHANGES))
    def test_reader_cannot_change_anything(self, matrix: Matrix, tmp_path: Path, change: str) -> None:
        local = tmp_path / "attempt.txt"
        local.write_text("should not land\n")
        before = snapshot(matrix.share_dir)
        result = smbclient(matrix.server, SHARE, matrix.users["reader"], READER[1],
                           READER_CHANGES[change].format(local=local))
        assert refused(result), output(result)
        assert snapshot(matrix.share_dir) == before

    @pytest.mark.parametrize("change", sorted(FOREIGN_CHANGES))
    def test_writer_cannot_change_a_file_she_does_not_own(self, matrix: Matrix, tmp_path: Path,
                                                         change: str) -> None:
        local = tmp_path / "attempt.txt"
        local.write_text("should not land\n")
        before = snapshot(matrix.share_dir)
        result = smbclient(matrix.server, SHARE, matrix.users["writer"], WRITER[1],
                           FOREIGN_CHANGES[change].format(local=local))
        assert refused(result), output(result)
        assert snapshot(matrix.share_dir) == before

    def test_writer_can_make_the_same_changes_to_her_own_file(self, matrix: Matrix, tmp_path: Path) -> None:
        # The refusals above come from ownership, not from commands that never work.
        local = tmp_path / "own.txt"
        local.write_text("her own\n")
        result = smbclient(matrix.server, SHARE, matrix.users["writer"], WRITER[1],
                           f"put {local} own.txt; hardlink own.txt own-link.txt; setmode own.txt +h; "
                           f"put {local} own.txt:stream")
        assert result.returncode == 0 and not refused(result), output(result)
        assert (matrix.share_dir / "own.txt").stat().st_nlink == 2
        assert (matrix.share_dir / "own-link.txt").read_text() == "her own\n"

    def test_dotdot_cannot_leave_the_share(self, matrix: Matrix, tmp_path: Path) -> None:
        # Readable by the writer on disk, one `..` away: only the share's boundary keeps it out.
        # smbclient resolves `..` itself before sending a path, as Windows does: this proves what
        # a client reaches with `..`; the container layer also sends smbd a raw `..`.
        (matrix.other_dir / "dotdot-marker.txt").write_text("in the other share\n")
        (matrix.other_dir / "dotdot-marker.txt").chmod(0o644)
        other = matrix.other_dir.name
        for command in (f"get ../{other}/dotdot-marker.txt marker.txt",
                        f"cd ..; get {other}/dotdot-marker.txt marker.txt",
                        f"get ..\\{other}\\dotdot-marker.txt marker.txt",
                        "get ../../../../../../../../../etc/passwd passwd"):
            result = smbclient(matrix.server, SHARE, matrix.users["writer"], WRITER[1], f"lcd {tmp_path}; {command}")
            assert "NT_STATUS_" in output(result), f"{command}: {output(result)}"
        assert list(tmp_path.iterdir()) == []

    def test_symlinks_made_by_clients_are_not_followed(self, matrix: Matrix, tmp_path: Path) -> None:
        user, password = matrix.users["writer"], WRITER[1]
        made = smbclient(matrix.server, SHARE, user, password, "symlink /etc client-link")
        # Refused, or kept as a Windows reparse point for the client to resolve: never a link on disk.
        assert not (matrix.share_dir / "client-link").is_symlink(), output(made)
        for command in ("get client-link/passwd passwd", "ls client-link/", "get client-link client-link"):
            result = smbclient(matrix.server, SHARE, user, password, f"lcd {tmp_path}; {command}")
            assert "NT_STATUS_" in output(result), f"{command}: {output(result)}"
        assert not (tmp_path / "passwd").exists() and not (tmp_path / "client-link").exists()
