"""The scrub engine against what a share user, a full disk or an odd tree can do to it.

Real par2, real files, chattr and tmpfs; DIRECTORY is a loop-mounted ext4 image of its own
(test_scrub's data_disk), so that corruption is made below the filesystem. Each test checks
the bytes that must survive: a canary outside the job, a user's file, a repaired file's
inode and blocks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from nasbox.scrub import par2format, repair
from nasbox.scrub.kind import ScrubJob
from tests.host.test_scrub import catalog_rows, data_disk, flip, make_job, scrub, write  # noqa: F401 (a fixture)
from tests.support.parity import all_parity_files, all_sets, index_of, parity_of, set_files, set_of

pytestmark = pytest.mark.host

PRIVATE = ".nasbox-scrub"


def snapshot(root: Path) -> dict[str, tuple]:
    """Every name under root with its type, owner, mode, size, mtime and content."""
    found = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        found[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns, content)
    return found


def catalog(job: ScrubJob) -> sqlite3.Connection:
    return sqlite3.connect(Path(job.database) / PRIVATE / "catalog.sqlite", isolation_level=None)


@contextlib.contextmanager
def chattr(path: Path, flag: str) -> Iterator[None]:
    subprocess.run(["chattr", f"+{flag}", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", f"-{flag}", str(path)], check=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


# ---- DATABASE and the private folder must be nasbox's alone --------------------------


def _database_owned_by_a_user(job: ScrubJob) -> str:
    os.chown(job.database, 1000, 1000)
    return job.database


def _database_writable_by_all(job: ScrubJob) -> str:
    os.chmod(job.database, 0o777)
    return job.database


def _private_owned_by_a_user(job: ScrubJob) -> str:
    os.chown(Path(job.database) / PRIVATE, 1000, 1000)
    return str(Path(job.database) / PRIVATE)


def _private_writable_by_group(job: ScrubJob) -> str:
    os.chmod(Path(job.database) / PRIVATE, 0o770)
    return str(Path(job.database) / PRIVATE)


def _catalog_owned_by_a_user(job: ScrubJob) -> str:
    os.chown(Path(job.database) / PRIVATE / "catalog.sqlite", 1000, 1000)
    return str(Path(job.database) / PRIVATE / "catalog.sqlite")


def _database_is_a_symlink(job: ScrubJob) -> str:
    moved = Path(job.directory) / "elsewhere"
    os.rename(job.database, moved)
    os.symlink(moved, job.database)
    return job.database


def _private_is_a_symlink(job: ScrubJob) -> str:
    private = Path(job.database) / PRIVATE
    moved = Path(job.directory) / "elsewhere"
    os.rename(private, moved)
    os.symlink(moved, private)
    return str(private)


@pytest.mark.parametrize(
    "tamper",
    [
        _database_owned_by_a_user,
        _database_writable_by_all,
        _private_owned_by_a_user,
        _private_writable_by_group,
        _catalog_owned_by_a_user,
        _database_is_a_symlink,
        _private_is_a_symlink,
    ],
)
def test_a_database_others_could_write_is_refused_and_nothing_is_written(tmp_path, tamper):
    job = make_job(tmp_path)
    write(Path(job.directory) / "a.bin", 100_000)
    write(Path(job.directory) / "b.bin", 10_000, seed=1)
    scrub(job)
    flip(Path(job.directory) / "a.bin", [10])  # corruption a trusted run would repair
    (Path(job.directory) / "b.bin").unlink()  # and parity it would remove
    named = tamper(job)
    before = snapshot(Path(job.directory))
    result = scrub(job)
    assert (result.status, result.skipped, result.exit_code) == ("error", True, 75), result.summary
    assert named in result.summary
    assert snapshot(Path(job.directory)) == before


def test_a_forged_database_cannot_rewrite_a_file(tmp_path):
    """A share user renames DATABASE away and puts her own in its place: a catalog and
    parity (made with nasbox itself) that would "repair" a file into her content."""
    job = make_job(tmp_path)
    victim = Path(job.directory) / "root-only.conf"
    original = write(victim, 40_000)
    scrub(job)
    # Her parity: of a file with the same name and size but her content, with 100% redundancy.
    (tmp_path / "forge").mkdir()
    forge = make_job(tmp_path / "forge", redundancy=100)
    write(Path(forge.directory) / "root-only.conf", 40_000, seed=666)
    scrub(forge)
    st = victim.stat()
    db = catalog(forge)
    db.execute(
        "UPDATE files SET mtime_ns = ?, inode = ?, ctime_ns = ?, settled = 1",
        (st.st_mtime_ns, st.st_ino, st.st_ctime_ns),
    )
    db.close()
    os.rename(job.database, Path(job.directory) / "renamed")
    shutil.copytree(forge.database, job.database)
    for path in [Path(job.database), *Path(job.database).rglob("*")]:
        os.lchown(path, 1000, 1000)
    result = scrub(job)
    assert victim.read_bytes() == original and victim.stat().st_mtime_ns == st.st_mtime_ns
    assert (result.status, result.exit_code) == ("error", 75)
    assert f"{job.database} is owned by uid 1000" in result.summary


def test_catalog_rows_that_leave_the_job_are_never_acted_upon(tmp_path):
    """Forged file rows (paths, recovery files and set ids that leave DIRECTORY or DATABASE),
    forged set rows (ids that are paths, recovery files outside the set's folder) and the
    journal table of an older catalog are dropped, never followed."""
    job = make_job(tmp_path)
    data = write(Path(job.directory) / "a.bin", 20_000)
    scrub(job)
    canaries = {}
    for name in ("absolute", "dotdot", "in-name", "staging"):
        (tmp_path / name).mkdir()
        for file in ("canary.txt", "x.par2", "x.vol0+1.par2", f"{'0' * 32}.par2", f"{'0' * 32}.vol0+1.par2"):
            (tmp_path / name / file).write_text(f"canary {name}")
        canaries[name] = snapshot(tmp_path / name)
    fanout = set_of(job, "a.bin").encode()[:2]  # forged set ids in a folder that exists
    db = catalog(job)
    row = db.execute("SELECT size, mtime_ns, inode, md5, parity_at FROM files").fetchone()

    def forge_file(directory: object, name: object, volumes: object = b"", set_id: object = None) -> None:
        db.execute(
            "INSERT INTO files (dir, name, size, mtime_ns, inode, md5, volumes, parity_at, result, set_id) "
            "VALUES (?,?,?,?,?,?,?,?,'good',?)",
            (directory, name, *row[:4], volumes, row[4], set_id),
        )

    def forge_set(set_id: object, volumes: object) -> None:
        db.execute("INSERT INTO sets (id, volumes, files, made_at) VALUES (?,?,1,?)", (set_id, volumes, row[4]))

    forge_file(os.fsencode(tmp_path / "absolute"), b"x", b"canary.txt")  # a directory nobody saw: removed
    forge_file(b"../../dotdot", b"x", b"x.vol0+1.par2")
    forge_file(b"", b"../in-name/x", b"../in-name/canary.txt")  # a file gone from the top: removed
    forge_file(b"", b"a.bin.gone", b"a.bin.gone.vol0+1.par2/../../../staging/canary.txt")
    forge_file(b".nasbox-scrub/staging", b"x", b"")  # would empty nasbox's own folders
    forge_file("", "text", "text.vol0+1.par2")  # not even bytes
    forge_file(b"", b"s1", set_id=b"../../../../../staging")  # set ids that are paths
    forge_file(b"", b"s2", set_id=os.fsencode(tmp_path / "absolute"))
    forge_file(b"", b"s3", set_id=b"x" * 16 + b"/" + b"x" * 15)
    forge_file(b"", b"s4", set_id=b"x" * 32)
    forge_set(b"../../../../../staging", b"")  # set rows whose files would be elsewhere
    forge_set(fanout + b"1" * 30, b"../../../../../staging/canary.txt")
    forge_set(b"../../../staging/" + b"0" * 32, b"")
    forge_set(fanout + b"3" * 30, (fanout + b"3" * 30 + b".vol0+1.par2").decode())  # not even bytes
    db.execute(
        "CREATE TABLE pending (dir BLOB, name BLOB, staging BLOB, size INTEGER, mtime_ns INTEGER, "
        "inode INTEGER, md5 BLOB, volumes BLOB)"
    )  # the journal of an older catalog
    for name, staging in ((b"zz", os.fsencode(tmp_path / "staging")), (b"zy", b"../../../../staging")):
        db.execute(
            "INSERT INTO pending VALUES (?,?,?,?,?,?,?,?)", (b"", name, staging, *row[:4], name + b".vol0+1.par2")
        )
    db.close()
    result = scrub(job)
    for name, before in canaries.items():
        assert snapshot(tmp_path / name) == before, name
    assert (Path(job.directory) / "a.bin").read_bytes() == data
    # 10 forged rows, 4 forged sets and the 2 journal rows, each reported
    assert result.status == "warning" and result.stats["skipped"] == 16, result.details
    assert sum("unsafe and has been dropped" in d for d in result.details) == 16, result.details
    assert set(catalog_rows(job)) == {"a.bin"}  # the forged rows are gone
    db = catalog(job)
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'pending'").fetchone() == (0,)
    assert db.execute("SELECT id FROM sets").fetchall() == [(set_of(job, "a.bin").encode(),)]
    db.close()
    again = scrub(job)
    assert again.status == "good", again.details


@pytest.mark.parametrize("corrupt", [False, True])
def test_a_set_whose_files_are_missing_is_made_again_and_never_blesses_corruption(tmp_path, corrupt):
    """A set row whose files are gone: its members' parity is made again from them, except a
    member found corrupt, which keeps its row (an error each run) and is never given parity
    of its damaged content."""
    job = make_job(tmp_path)
    victim = Path(job.directory) / "a.bin"
    write(victim, 40_000)
    neighbour = write(Path(job.directory) / "b.bin", 40_000, seed=7)
    scrub(job)
    old = set_of(job, "a.bin")
    assert old == set_of(job, "b.bin")
    for path in set_files(job, old):
        path.unlink()
    if corrupt:
        flip(victim, [100])
    damaged = victim.read_bytes()
    result = scrub(job)
    assert victim.read_bytes() == damaged and (Path(job.directory) / "b.bin").read_bytes() == neighbour
    if corrupt:
        assert result.status == "error", result.details
        assert "a.bin: corrupt, and its parity is missing; left as it is" in result.details, result.details
        assert set_of(job, "a.bin") == old and catalog_rows(job)["a.bin"][1] != hashlib.md5(damaged).digest()
        assert set_of(job, "b.bin") not in (None, old)  # made again without the corrupt file
        assert scrub(job).status == "error"  # still corrupt, still not blessed
        assert catalog_rows(job)["a.bin"][1] != hashlib.md5(damaged).digest()
    else:
        assert result.status == "warning" and result.stats["parity_rebuilt"] == 2, result.details
        assert set_of(job, "a.bin") not in (None, old) and all(p.is_file() for p in parity_of(job, "a.bin"))
        assert scrub(job).status == "good"


def test_parity_describing_another_file_never_repairs(tmp_path):
    """A set whose FileDescs name another file (and a catalog MD5 to match) is not used."""
    job = make_job(tmp_path)
    victim = Path(job.directory) / "a.bin"
    original = write(victim, 40_000)
    scrub(job)
    write(Path(job.directory) / "b.bin", 40_000, seed=7)
    scrub(job)  # b.bin in a set of its own
    assert set_of(job, "a.bin") != set_of(job, "b.bin")
    for forged, real in zip(parity_of(job, "b.bin"), parity_of(job, "a.bin"), strict=True):
        shutil.copyfile(forged, real)  # b.bin's set under a.bin's set's names
    db = catalog(job)
    [(md5,)] = db.execute("SELECT md5 FROM files WHERE name = ?", (b"b.bin",)).fetchall()
    db.execute("UPDATE files SET md5 = ? WHERE name = ?", (md5, b"a.bin"))
    db.close()
    result = scrub(job)
    assert victim.read_bytes() == original
    assert result.status == "error"
    assert any("a.bin: corrupt, and its parity does not describe it" in d for d in result.details), result.details


def describe_as(index: Path, name: bytes, new_name: bytes) -> None:
    """Rewrite the set's index so that its FileDesc of name names new_name (packet checksums
    made again: only what it says is forged)."""
    out = []
    for packet in par2format.read_packets(str(index)):
        raw = packet.raw
        if packet.type == par2format.FILE_DESC and packet.body[56:].rstrip(b"\0") == name:
            body = packet.body[:56] + new_name + b"\0" * (-len(new_name) % 4)
            rest = packet.set_id + packet.type + body
            raw = par2format.MAGIC + struct.pack("<Q", 32 + len(rest)) + hashlib.md5(rest).digest() + rest
        out.append(raw)
    index.write_bytes(b"".join(out))


def forged_paths(tmp_path: Path) -> list[bytes]:
    """Names of a file outside DIRECTORY, and outside a repair's working directory in the
    private folder (par2 takes a backslash for '/')."""
    return [
        b"../../../../escaped",
        b"sub/../../../../escaped",
        os.fsencode(tmp_path / "escaped"),
        b"..\\..\\..\\..\\..\\..\\escaped",
        b"sub\\..\\..\\..\\..\\..\\..\\..\\escaped",
    ]


@pytest.mark.parametrize("forged", range(5))
def test_a_set_describing_a_file_outside_directory_is_never_used_for_a_repair(tmp_path, forged):
    """par2 would look for (and write) a described file wherever its name leads."""
    job = make_job(tmp_path)
    victim = Path(job.directory) / "a.bin"
    write(victim, 40_000)
    write(Path(job.directory) / "b.bin", 40_000, seed=7)
    scrub(job)
    assert set_of(job, "a.bin") == set_of(job, "b.bin")
    (tmp_path / "escaped").write_bytes(b"canary")
    describe_as(index_of(job, "a.bin"), b"b.bin", forged_paths(tmp_path)[forged])
    flip(victim, [100])
    damaged = victim.read_bytes()
    around = set(os.listdir(tmp_path)), set(os.listdir(Path(job.directory).parent.parent))
    result = scrub(job)
    assert victim.read_bytes() == damaged
    assert (tmp_path / "escaped").read_bytes() == b"canary"
    assert (set(os.listdir(tmp_path)), set(os.listdir(Path(job.directory).parent.parent))) == around
    assert result.status == "error"
    assert "a.bin: corrupt, and its parity describes files elsewhere; left as it is" in result.details, result.details


@pytest.mark.parametrize("forged", range(5))
def test_members_a_set_describes_outside_directory_are_not_recovered(tmp_path, forged):
    """The catalog is lost: a set index naming a path outside DIRECTORY gives no row for it."""
    job = make_job(tmp_path)
    a = write(Path(job.directory) / "a.bin", 40_000)
    write(Path(job.directory) / "b.bin", 40_000, seed=7)
    scrub(job)
    (tmp_path / "escaped").write_bytes(b"canary")
    describe_as(index_of(job, "a.bin"), b"b.bin", forged_paths(tmp_path)[forged])
    for path in (Path(job.database) / PRIVATE).glob("catalog.sqlite*"):
        path.unlink()
    result = scrub(job)
    assert (tmp_path / "escaped").read_bytes() == b"canary"
    assert sum("an entry of the catalog was unsafe and has been dropped" in d for d in result.details) == 1, (
        result.details
    )
    assert any("1 entries recovered from the parity files" in d for d in result.details), result.details
    assert set(catalog_rows(job)) == {"a.bin", "b.bin"}  # b.bin is found again by the walk, as a new file
    assert result.stats["new"] == 1 and (Path(job.directory) / "a.bin").read_bytes() == a
    assert scrub(job).status == "good"


@pytest.mark.parametrize("planted", ["link", "file"])
def test_a_link_planted_in_the_sets_folder_is_never_followed(tmp_path, planted):
    """Links (or files) in place of the sets' folders and of a set's files, left in the
    private folder from before it was nasbox's alone, lead nowhere: parity is neither
    written, read nor removed through them."""
    job = make_job(tmp_path)
    write(Path(job.directory) / "sub" / "edited.bin", 5_000)
    write(Path(job.directory) / "sub" / "gone.bin", 5_000, seed=1)
    write(Path(job.directory) / "kept.bin", 1_500_000, seed=3)  # a set of its own
    scrub(job)
    top = Path(job.database) / PRIVATE / "sets"
    old = set_of(job, "sub/edited.bin")
    user = Path(job.directory) / "user"  # where a share user writes: the same filesystem
    outside = user / "outside"
    user.mkdir()
    shutil.move(top / old[:2], outside)  # the set's folder is a link to its files elsewhere
    os.symlink(outside, top / old[:2])
    kept = index_of(job, "kept.bin")
    (user / "kept").mkdir()
    for path in set_files(job, set_of(job, "kept.bin")):  # the set's own files are links
        shutil.move(path, user / "kept" / path.name)
        os.symlink(user / "kept" / path.name, path)
    elsewhere = user / "elsewhere"
    elsewhere.mkdir()
    for fanout in (f"{i:02x}" for i in range(256)):  # wherever a new set goes
        if not (top / fanout).exists() and not (top / fanout).is_symlink():
            if planted == "link":
                os.symlink(elsewhere, top / fanout)
            else:
                (top / fanout).write_bytes(b"planted")
    before = snapshot(user)
    write(Path(job.directory) / "sub" / "edited.bin", 6_000, seed=2)
    (Path(job.directory) / "sub" / "gone.bin").unlink()
    flip(Path(job.directory) / "kept.bin", [100])
    result = scrub(job)
    assert snapshot(user) == before
    assert kept.is_symlink()
    assert result.status == "error", result.details
    assert (
        "kept.bin: corrupt, and could not be repaired: Too many levels of symbolic links; left as it is"
        in result.details
    )
    assert any(d.startswith("sub/edited.bin: its parity could not be put in place") for d in result.details), (
        result.details
    )


def test_a_name_par2_reads_as_a_path_out_of_the_repair_is_not_protected(tmp_path):
    """par2 takes a backslash for '/': a repair's private copy of this file would be made at
    <repair directory>/a/../../(...)/escaped, outside it."""
    job = make_job(tmp_path)
    name = "a\\" + "..\\" * 6 + "escaped"
    path = Path(job.directory) / name
    write(path, 20_000)
    first = scrub(job)
    flip(path, [100])
    damaged = path.read_bytes()
    result = scrub(job)
    assert not (tmp_path / "escaped").exists()
    assert path.read_bytes() == damaged
    assert first.stats["new"] == 0 and set(catalog_rows(job)) == set(), first.details
    assert result.exit_code == 0 and any("par2 would read it elsewhere" in d for d in result.details), result.details


# ---- per-file problems stay per-file --------------------------------------------------


def make_deep(root: Path, depth: int) -> None:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    with open(os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
        f.write(b"at the bottom")
    os.close(fd)


def remove_deep(root: Path) -> None:
    """shutil.rmtree recurses once per level: too deep for Python."""
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
    while True:
        try:
            fds.append(os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
        except FileNotFoundError:
            break
    for name in os.listdir(fds[-1]):
        os.unlink(name, dir_fd=fds[-1])
    for parent, child in zip(reversed(fds[:-1]), reversed(fds[1:]), strict=True):
        os.close(child)
        os.rmdir("d", dir_fd=parent)
    os.close(fds[0])


def test_a_tree_deeper_than_path_max_is_skipped_and_the_rest_protected(tmp_path):
    job = make_job(tmp_path)
    write(Path(job.directory) / "top.bin", 10_000)
    write(Path(job.directory) / "sub" / "f.bin", 10_000, seed=1)
    deep = Path(job.directory) / "deep"
    deep.mkdir()
    make_deep(deep, 2100)
    try:
        result = scrub(job)
        assert result.exit_code == 0 and result.status == "warning", result.summary
        assert result.stats["skipped"] == 1
        assert any("too deep" in d for d in result.details)
        assert set(catalog_rows(job)) == {"top.bin", "sub/f.bin"}
        assert scrub(job).stats["verified"] == 2
    finally:
        remove_deep(deep)


def test_a_name_too_long_for_the_repair_is_left_out(tmp_path):
    """par2 repair first renames a damaged file to <name>.1: a name with no room for that
    could never be repaired. Parity lives apart under names of its own, so any shorter name
    is protected (and repaired), in a directory with names as long as allowed."""
    job = make_job(tmp_path, redundancy=100)
    root = Path(job.directory)
    too_long = ["n" * 255, "o" * 254, "d" * 255 + "/" + "p" * 254]
    longest = ["m" * 253, "d" * 255 + "/" + "q" * 253]
    originals = {name: write(root / name, 5_000, seed=number) for number, name in enumerate(too_long + longest)}
    result = scrub(job)
    assert (result.status, result.exit_code, result.stats["skipped"], result.stats["new"]) == ("warning", 0, 3, 2)
    assert sorted(result.details) == sorted(
        f"{name}: name too long to protect: par2 would write it, or its backup in a repair, longer than 255 bytes"
        for name in too_long
    )
    assert set(catalog_rows(job)) == set(longest)
    for name in longest:
        flip(root / name, [10])
    result = scrub(job)
    assert result.stats["repaired"] == 2, result.details
    assert all((root / name).read_bytes() == originals[name] for name in originals)


@pytest.mark.parametrize("first", ["file", "directory"])
def test_files_named_like_parity_files_are_protected(tmp_path, first):
    """A file x beside directories x.par2 and x.vol0+1.par2, whichever came first: parity
    sets live in the private folder, so none of these names is in another's way."""
    job = make_job(tmp_path)
    root = Path(job.directory)
    if first == "file":  # x is protected first, then x.par2/ appears
        write(root / "x", 5_000)
        scrub(job)
        write(root / "x.par2" / "inner.bin", 5_000, seed=1)
        write(root / "x.vol0+1.par2" / "inner.bin", 5_000, seed=2)
    else:
        write(root / "x.par2" / "inner.bin", 5_000, seed=1)
        write(root / "x.vol0+1.par2" / "inner.bin", 5_000, seed=2)
        scrub(job)
        write(root / "x", 5_000)
    result = scrub(job)
    assert result.exit_code == 0 and result.status == "info" and result.details == [], result.details
    assert set(catalog_rows(job)) == {"x", "x.par2/inner.bin", "x.vol0+1.par2/inner.bin"}
    for name in ("x", "x.par2/inner.bin", "x.vol0+1.par2/inner.bin"):
        flip(root / name, [10])
        assert scrub(job).stats["repaired"] == 1, name
    assert scrub(job).status == "good"


def test_a_directory_named_like_the_private_folder_is_protected(tmp_path):
    """DATABASE outside DIRECTORY: a directory of DIRECTORY named like nasbox's private
    folder is data like any other, and nothing of it is taken for nasbox's own."""
    job = make_job(tmp_path)
    job = ScrubJob(**{**job.__dict__, "database": str(tmp_path / "parity")})
    path = Path(job.directory) / PRIVATE / "catalog.sqlite" / "f.bin"
    original = write(path, 5_000)
    write(Path(job.directory) / PRIVATE / "sets" / "00" / ("0" * 32 + ".par2"), 5_000, seed=2)
    write(Path(job.directory) / "a.bin", 5_000, seed=1)
    result = scrub(job)
    assert (result.status, result.stats["new"], result.details) == ("info", 3, []), result.summary
    assert set(catalog_rows(job)) == {f"{PRIVATE}/catalog.sqlite/f.bin", f"{PRIVATE}/sets/00/{'0' * 32}.par2", "a.bin"}
    flip(path, [10])
    assert scrub(job).stats["repaired"] == 1
    assert path.read_bytes() == original and scrub(job).status == "good"


def test_parity_that_cannot_be_put_in_place_fails_those_files_only(tmp_path):
    """Every set folder refuses new sets: the files that needed one fail, each reported; the
    files already protected are verified as always, and the next run catches up."""
    job = make_job(tmp_path)
    write(Path(job.directory) / "sub" / "a.bin", 5_000)
    scrub(job)
    write(Path(job.directory) / "sub" / "new.bin", 5_000, seed=1)
    write(Path(job.directory) / "other.bin", 1_500_000, seed=2)  # a set of its own
    top = Path(job.database) / PRIVATE / "sets"
    folders = [top / f"{i:02x}" for i in range(256)]
    for folder in folders:
        folder.mkdir(exist_ok=True)
    with contextlib.ExitStack() as stack:
        for folder in [top, *folders]:
            stack.enter_context(chattr(folder, "i"))
        result = scrub(job)
    assert (result.status, result.exit_code, result.stats["failed"], result.stats["new"]) == ("error", 1, 2, 0)
    assert result.stats["verified"] == 1, result.details
    for name in ("sub/new.bin", "other.bin"):
        assert any(
            d.startswith(f"{name}: its parity could not be put in place: Operation not permitted")
            for d in result.details
        ), result.details
    assert set(catalog_rows(job)) == {"sub/a.bin"}
    assert not list((Path(job.database) / PRIVATE / "staging").iterdir())
    again = scrub(job)  # the next run catches up
    assert (again.status, again.stats["new"]) == ("info", 2), again.details


@pytest.mark.parametrize("where", ["staging", "repair", "repairing"])
def test_links_planted_in_the_working_folders_are_never_followed(tmp_path, where):
    """A link (to a directory a user writes) left in a working folder of the private folder,
    beside an older catalog's journal table that named a staging directory: the next run
    removes the links, never what they lead to, and drops the journal."""
    job = make_job(tmp_path)
    path = Path(job.directory) / "a.bin"
    original = write(path, 40_000)
    scrub(job)
    user = Path(job.directory) / "user"
    write(user / "keep.bin", 5_000, seed=1)
    (user / "parity.par2").write_bytes(b"a user's file")
    work = Path(job.database) / PRIVATE / where
    work.mkdir(exist_ok=True)
    os.symlink(user, work / ("0" * 32))
    os.symlink(user / "keep.bin", work / ("1" * 32 + ".0"))
    db = catalog(job)
    db.execute(
        "CREATE TABLE pending (dir BLOB, name BLOB, staging BLOB, size INTEGER, mtime_ns INTEGER, "
        "inode INTEGER, md5 BLOB, volumes BLOB)"
    )
    db.execute(
        "INSERT INTO pending SELECT dir, ?, ?, size, mtime_ns, inode, md5, ? FROM files",
        (b"gone", b"0" * 32, b"gone.vol0+1.par2"),
    )
    db.close()
    before = snapshot(user)
    flip(path, [100])
    result = scrub(job)
    assert snapshot(user) == before
    assert os.listdir(work) == [], os.listdir(work)
    assert (result.stats["repaired"], path.read_bytes()) == (1, original), result.details
    assert all(not d.startswith("gone") for d in result.details), result.details
    assert scrub(job).status == "good"


# ---- links swapped in during a run are never followed --------------------------------


def test_a_directory_swapped_for_a_link_during_the_walk_is_not_entered(tmp_path):
    from nasbox.scrub.engine import Scrub

    job = make_job(tmp_path)
    write(Path(job.directory) / "a.bin", 5_000)
    write(Path(job.directory) / "b" / "f.bin", 5_000, seed=1)
    outside = tmp_path / "outside"
    secret = write(outside / "secret.bin", 5_000, seed=2)

    class SwappingScrub(Scrub):
        def _list(self, catalog, relative, database_id, stack):
            files = super()._list(catalog, relative, database_id, stack)
            if relative == b"":  # listed as a directory, a link before its turn
                shutil.rmtree(Path(job.directory) / "b")
                os.symlink(outside, Path(job.directory) / "b")
            return files

    SwappingScrub(job).run()
    assert set(catalog_rows(job)) == {"a.bin"}
    assert os.listdir(outside) == ["secret.bin"] and (outside / "secret.bin").read_bytes() == secret


@pytest.mark.parametrize("secret_head", ["other", "same"])
def test_parity_of_another_file_read_through_a_swapped_link_is_discarded(tmp_path, monkeypatch, secret_head):
    """par2 opens each file by its path: a directory swapped for a link while it runs makes it
    read a root-only file instead (its first 16 KiB too, or only what follows). The set is
    never kept with that content, so no repair can ever write it into the user's file; the
    other files of the set are protected."""
    job = make_job(tmp_path)
    real = write(Path(job.directory) / "b" / "f.bin", 40_000, seed=1)
    neighbour = write(Path(job.directory) / "c.bin", 20_000, seed=3)
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    secret = (real[:20_000] if secret_head == "same" else write(tmp_path / "x", 20_000, seed=2)) + os.urandom(20_000)
    (outside / "f.bin").write_bytes(secret)
    (outside / "f.bin").chmod(0o600)
    directory = Path(job.directory)
    real_run = repair.commands.run

    def run_through_a_link(argv, **kwargs):
        os.rename(directory / "b", directory / "b-away")
        os.symlink(outside, directory / "b")
        try:
            return real_run(argv, **kwargs)
        finally:
            os.unlink(directory / "b")
            os.rename(directory / "b-away", directory / "b")

    with monkeypatch.context() as patched:  # only this; the test's own home stays
        patched.setattr(repair.commands, "run", run_through_a_link)
        result = scrub(job)
    assert "b/f.bin" not in catalog_rows(job), result.details
    assert any(d.startswith("b/f.bin: ") and "again next run" in d for d in result.details), result.details
    assert set(catalog_rows(job)) == {"c.bin"} and catalog_rows(job)["c.bin"][1] == hashlib.md5(neighbour).digest()
    secret_md5 = hashlib.md5(secret).digest()
    for parity in all_parity_files(job):  # no set describes the secret
        described = par2format.descriptions(par2format.read_packets(str(parity)))
        assert secret_md5 not in {d.md5 for d in described.values()}, parity
    result = scrub(job)
    assert catalog_rows(job)["b/f.bin"][1] == hashlib.md5(real).digest()
    flip(Path(job.directory) / "b" / "f.bin", [30_000])
    result = scrub(job)
    assert result.stats["repaired"] == 1 and (Path(job.directory) / "b" / "f.bin").read_bytes() == real


def test_a_link_swapped_in_during_a_repair_is_never_written_through(tmp_path, monkeypatch):
    """The corrupt file's directory is a link to a root-only folder while the repair opens
    the set's files: nothing is read from there into a file a user can read, nothing there
    is written, and the next run repairs the file."""
    from nasbox.scrub import work

    job = make_job(tmp_path, redundancy=100)
    victim = Path(job.directory) / "b" / "a.bin"
    original = write(victim, 20_000)
    neighbour = write(Path(job.directory) / "c.bin", 20_000, seed=1)
    scrub(job)
    assert set_of(job, "b/a.bin") == set_of(job, "c.bin")
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    secret = os.urandom(20_000)
    (outside / "a.bin").write_bytes(secret)
    (outside / "a.bin").chmod(0o600)
    before = snapshot(outside)
    directory = Path(job.directory)
    real_repair = work.repair

    def repair_through_a_link(*args, **kwargs):
        os.rename(directory / "b", directory / "b-away")
        os.symlink(outside, directory / "b")
        try:
            return real_repair(*args, **kwargs)
        finally:
            os.unlink(directory / "b")
            os.rename(directory / "b-away", directory / "b")

    flip(victim, [100])
    damaged = victim.read_bytes()
    with monkeypatch.context() as patched:
        patched.setattr(work, "repair", repair_through_a_link)
        result = scrub(job)
    assert snapshot(outside) == before
    assert victim.read_bytes() == damaged and (directory / "c.bin").read_bytes() == neighbour
    assert (result.status, result.stats["repaired"], result.stats["updated"]) == ("error", 0, 0), result.details
    assert result.details == [
        "b/a.bin: corrupt, and it was not where it was found when the repair opened it; again next run"
    ]
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink() and PRIVATE not in path.parts:
            assert secret[:4096] not in path.read_bytes(), path
    again = scrub(job)
    assert again.stats["repaired"] == 1 and victim.read_bytes() == original, again.details


# ---- par2 sees only the file it is given ----------------------------------------------

ODD_NAMES = (
    "--",
    "-r100",
    "-",
    "a.bin",
    "sub/--",
    "sub/b.bin",
    "sub/-q",
    "back\\slash",
    "ctl\x01char",
    "new\nline",
    "-\\-",
    "sub/-\x1b[31m",
    "x\\y\\z",
)
# Names par2 would take for another file of their set (itself, or a file on its way).
CLASHING = {"back\\slash": "back/slash", "ctl\x01char": "ctl%01char", "-\\-": "-/-"}


def test_par2_never_takes_a_name_in_its_working_directory_for_a_file(tmp_path, monkeypatch):
    """Names par2 could read as options or as other names, in one set with plain files:
    each file is described by its own name, once, and repaired; a name par2 would take for
    another member of the set is left out of it, never the set."""
    job = make_job(tmp_path, redundancy=100)  # every member damaged at once, every one repaired
    root = Path(job.directory)
    names = [*ODD_NAMES, "back/slash", "ctl%01char"]
    for number, name in enumerate(names):
        write(root / name, 3_000, seed=number)
    monkeypatch.chdir(root)  # scrub started from inside DIRECTORY
    result = scrub(job)
    assert result.stats["new"] == len(names) - len(CLASHING), result.details
    assert sorted(result.details) == sorted(
        f"{odd}: par2 would take it for {plain}, which another file of its parity set is in the way of; again next run"
        for odd, plain in CLASHING.items()
    )
    protected = [name for name in names if name not in CLASHING]
    assert set(catalog_rows(job)) == set(protected) and len(all_sets(job)) == 1
    described = {d.name for d in par2format.descriptions(par2format.read_packets(str(index_of(job, "a.bin")))).values()}
    assert described == {os.fsencode(name) for name in protected}
    for name in protected:
        flip(root / name, [7])
    result = scrub(job)
    assert result.stats["repaired"] == len(protected), result.details
    for number, name in enumerate(names):
        if name in protected:
            assert (root / name).read_bytes() == write(tmp_path / "expected", 3_000, seed=number), name


# ---- repairs change the bytes that were damaged, and nothing else ---------------------


def test_a_repaired_hard_link_keeps_its_inode(tmp_path):
    job = make_job(tmp_path)
    path = Path(job.directory) / "a.bin"
    original = write(path, 200_000)
    os.link(path, Path(job.directory) / "link.bin")
    scrub(job)
    inode = path.stat().st_ino
    flip(path, [1000])
    result = scrub(job)
    assert result.stats["repaired"] >= 1 and result.status == "warning", result.details
    assert path.stat().st_ino == inode and path.stat().st_nlink == 2
    assert path.read_bytes() == original and (Path(job.directory) / "link.bin").read_bytes() == original
    # Writing moved its change time: the catalog records the file as the repair left it.
    db = catalog(job)
    assert db.execute("SELECT ctime_ns FROM files WHERE name = ?", (b"a.bin",)).fetchone() == (path.stat().st_ctime_ns,)
    db.close()
    assert scrub(job).status == "good"


def test_a_repaired_sparse_file_stays_sparse(tmp_path):
    job = make_job(tmp_path)
    path = Path(job.directory) / "disk.img"
    with open(path, "wb") as f:
        f.write(write(tmp_path / "head", 8192))
        f.seek(32 << 20)
        f.write(b"tail" * 1024)
    scrub(job)
    original, blocks = path.read_bytes(), path.stat().st_blocks
    flip(path, [100])
    result = scrub(job)
    assert result.stats["repaired"] == 1, result.details
    assert path.read_bytes() == original
    assert path.stat().st_blocks == blocks


def test_a_repair_in_an_append_only_directory(tmp_path):
    job = make_job(tmp_path)
    folder = Path(job.directory) / "log"
    path = folder / "a.bin"
    original = write(path, 100_000)
    scrub(job)
    flip(path, [50])
    with chattr(folder, "a"):
        result = scrub(job)
        assert (result.status, result.stats["repaired"]) == ("warning", 1), result.details
        assert os.listdir(folder) == ["a.bin"]  # no temporary file left behind
        assert path.read_bytes() == original
        assert scrub(job).status == "good"


def test_an_edit_during_a_repair_is_kept_and_reported_as_a_change(tmp_path, monkeypatch):
    job = make_job(tmp_path)
    path = Path(job.directory) / "a.bin"
    write(path, 3_000_000)
    scrub(job)
    flip(path, [10, 2_500_000])
    real_run = repair.commands.run

    def run_then_edit(argv, **kwargs):
        result = real_run(argv, **kwargs)
        # par2 repair, or par2 making recovery of the damaged file for a repair by slices
        if b"repair" not in argv and not any(a.startswith(b"-f") for a in argv):
            return result
        with open(path, "r+b") as f:  # the owner saves while par2 works
            f.seek(2_500_000)
            f.write(b"EDITED")
        return result

    with monkeypatch.context() as patched:  # only this; the test's own home stays
        patched.setattr(repair.commands, "run", run_then_edit)
        result = scrub(job)
    edited = path.read_bytes()
    assert edited[2_500_000:2_500_006] == b"EDITED"
    assert (result.status, result.exit_code, result.stats["updated"], result.stats["repaired"]) == ("info", 0, 1, 0)
    assert any(d.startswith("a.bin: changed") and d.endswith("the edit is kept") for d in result.details), (
        result.details
    )
    assert scrub(job).status == "good" and path.read_bytes() == edited  # its parity follows the edit


def writes_to(path: Path, action) -> object:
    """A stand-in for repair._pwrite_all that calls action(n) before the nth write to path."""
    real = repair._pwrite_all
    count = 0

    def pwrite_all(fd: int, data: bytes, offset: int) -> None:
        nonlocal count
        if os.readlink(f"/proc/self/fd/{fd}") == str(path):
            count += 1
            action(count)
        real(fd, data, offset)

    return pwrite_all


def test_a_repair_killed_midway_is_finished_by_the_next_run(tmp_path, monkeypatch):
    job = make_job(tmp_path)
    path = Path(job.directory) / "a.bin"
    original = write(path, 3_000_000)
    scrub(job)
    mtime = path.stat().st_mtime_ns
    flip(path, [10, 2_500_000])  # two chunks to write back

    def killed_before_the_second(n: int) -> None:
        if n == 2:
            raise KeyboardInterrupt("killed")

    with monkeypatch.context() as patched:  # only this; the test's own home stays
        patched.setattr(repair, "_pwrite_all", writes_to(path, killed_before_the_second))
        with pytest.raises(KeyboardInterrupt):
            scrub(job)
    assert path.read_bytes()[10] == original[10] and path.read_bytes()[2_500_000] != original[2_500_000]
    assert path.stat().st_mtime_ns == mtime  # still looks unedited
    result = scrub(job)
    assert (result.stats["repaired"], result.stats["updated"]) == (1, 0), result.details
    assert path.read_bytes() == original


def test_an_edit_behind_the_repair_is_never_hidden(tmp_path, monkeypatch):
    """The owner saves into a part the repair has written already: restoring the file's
    times must not make that edit look like corruption to be reverted."""
    job = make_job(tmp_path)
    path = Path(job.directory) / "a.bin"
    write(path, 3_000_000)
    scrub(job)
    flip(path, [10, 2_500_000])

    def edit_before_the_second(n: int) -> None:
        if n == 2:
            with open(path, "r+b") as f:
                f.seek(20)
                f.write(b"EDITED")

    with monkeypatch.context() as patched:  # only this; the test's own home stays
        patched.setattr(repair, "_pwrite_all", writes_to(path, edit_before_the_second))
        result = scrub(job)
    assert any("a.bin: changed during the repair; the edit is kept" in d for d in result.details), result.details
    assert result.stats["repaired"] == 0
    edited = path.read_bytes()
    assert edited[20:26] == b"EDITED"
    scrub(job)
    assert path.read_bytes() == edited


# ---- a repair that cannot be done is an error -----------------------------------------


def test_corruption_in_an_immutable_file_is_an_error(tmp_path):
    job = make_job(tmp_path)
    path = Path(job.directory) / "a.bin"
    write(path, 100_000)
    with chattr(path, "i"):  # before its parity is made: chattr moves the change time, as an edit does
        scrub(job)
        flip(path, [5])
        damaged = path.read_bytes()
        result = scrub(job)
    assert (result.status, result.exit_code, result.stats["failed"]) == ("error", 1, 1)
    assert any(
        d == "a.bin: corrupt, and could not be repaired: Operation not permitted; left as it is" for d in result.details
    ), result.details
    assert path.read_bytes() == damaged


@pytest.mark.parametrize(
    "room, reason",
    [
        (256 << 10, "No space left on device"),  # for the catalog, not for the private copy
        (6 << 20, "par2 exited"),  # for the copy, not for par2's repaired file beside it
    ],
)
def test_a_repair_without_space_for_its_work_is_an_error(tmp_path, room, reason):
    """A recovery packet damaged too: the repair copies the file for par2 (no repair by slices)."""
    with tmpfs(tmp_path / "parity", "16m") as database:
        job = ScrubJob(**{**make_job(tmp_path).__dict__, "database": str(database)})
        path = Path(job.directory) / "a.bin"
        write(path, 4 << 20)
        scrub(job)
        volume = set_files(job, set_of(job, "a.bin"))[1]
        volume.write_bytes(volume.read_bytes()[:-100] + b"\0" * 100)
        flip(path, [5])
        damaged = path.read_bytes()
        free = os.statvfs(database).f_bavail * os.statvfs(database).f_frsize
        (database / "filler").write_bytes(b"\1" * (free - room))
        result = scrub(job)
        assert (result.status, result.exit_code, result.stats["failed"]) == ("error", 1, 1), result.details
        assert any(d.startswith(f"a.bin: corrupt, and could not be repaired: {reason}") for d in result.details), (
            result.details
        )
        assert path.read_bytes() == damaged
        assert not list((database / PRIVATE / "repair").iterdir())


def test_a_repair_by_slices_needs_no_room_for_a_copy(tmp_path):
    with tmpfs(tmp_path / "parity", "16m") as database:
        job = ScrubJob(**{**make_job(tmp_path).__dict__, "database": str(database)})
        path = Path(job.directory) / "a.bin"
        original = write(path, 4 << 20)
        scrub(job)
        flip(path, [5])
        free = os.statvfs(database).f_bavail * os.statvfs(database).f_frsize
        (database / "filler").write_bytes(b"\1" * (free - (256 << 10)))
        result = scrub(job)
        assert (result.status, result.stats["repaired"]) == ("warning", 1), result.details
        assert path.read_bytes() == original
        assert not list((database / PRIVATE / "repair").iterdir())


SCRUB_IN_CHILD = """
import sys
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.engine import Scrub
Scrub(ScrubJob(name="t", directory=sys.argv[1], database=sys.argv[2], redundancy=100, schedule="daily")).run()
"""


def test_par2_dies_with_a_killed_scrub(tmp_path):
    """Else it keeps writing into the staging directory the next run cleans up."""
    job = make_job(tmp_path)
    (Path(job.directory) / "big.bin").write_bytes(os.urandom(60 << 20))  # par2 needs seconds for it
    child = subprocess.Popen([sys.executable, "-c", SCRUB_IN_CHILD, job.directory, job.database])
    try:
        deadline = time.monotonic() + 30
        while not (par2s := [p for p in psutil.Process(child.pid).children(recursive=True) if "create" in p.cmdline()]):
            assert time.monotonic() < deadline and child.poll() is None, "par2 never started"
            time.sleep(0.02)
        child.kill()
        child.wait()
        time.sleep(0.5)
        assert not [p for p in par2s if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    finally:
        child.kill()
        for orphan in psutil.process_iter(["cmdline"]):
            if job.directory in " ".join(orphan.info["cmdline"] or ()):
                orphan.kill()
