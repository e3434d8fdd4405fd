"""The scrub engine against real par2 on real files.

Every test that damages, edits or deletes something checks the bytes and metadata that
must survive, so that a scrub which reverts an edit or writes through a link fails here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbox.scrub import install, par2, work
from nasbox.scrub.catalog import FILE_COLUMNS, Entry
from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.repair import Result, repair
from tests.support.parity import all_parity_files, all_sets, index_of, members, parity_of, set_files, set_of, stock_par2
from tests.support.rawdisk import loop_mount, rot

pytestmark = pytest.mark.host

DEBIAN_PAR2 = "/usr/bin/par2"  # Debian's par2cmdline 0.8.1, installed by .ci/setup


@pytest.fixture(autouse=True)
def data_disk(tmp_path: Path) -> Iterator[Path]:
    """DIRECTORY (tmp_path/data) on a filesystem image of its own, so that flip() can damage
    files underneath the filesystem, as a failing disk does."""
    with loop_mount(tmp_path / "data", size_mb=1024) as image:  # sparse: room for large test files
        yield image


def make_job(tmp_path: Path, **options) -> ScrubJob:
    directory = tmp_path / "data"
    directory.mkdir(exist_ok=True)
    return ScrubJob(
        name="t",
        directory=str(directory),
        database=str(directory / ".pardatabase"),
        redundancy=options.pop("redundancy", 5),
        schedule="weekly",
        **options,
    )


def scrub(job: ScrubJob, update_only: bool = False):
    return Scrub(job, update_only=update_only).run()


def write(path: Path, size: int, seed: int = 0) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]
    data = bytes(b ^ (i * 7 % 251) for i, b in enumerate(data))  # not periodic
    path.write_bytes(data)
    return data


def flip(path: Path, offsets: list[int]) -> None:
    """Silent corruption: bytes change, size, mtime and ctime do not."""
    rot(path, offsets)


def all_names(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def catalog_rows(job: ScrubJob) -> dict[str, tuple]:
    db = sqlite3.connect(Path(job.database) / ".nasbox-scrub" / "catalog.sqlite")
    try:
        return {
            os.fsdecode(os.path.join(d, n)): (size, md5)
            for d, n, size, md5 in db.execute("SELECT dir, name, size, md5 FROM files")
        }
    finally:
        db.close()


def test_new_files_get_standard_parity(tmp_path):
    """Each file's set is an index and one recovery file in the private folder, nothing beside the data's mirror."""
    job = make_job(tmp_path)
    write(Path(job.directory) / "a.bin", 300_000)
    write(Path(job.directory) / "sub" / "b.bin", 5_000, seed=1)
    result = scrub(job)
    assert (result.status, result.stats["new"], result.exit_code) == ("info", 2, 0)
    for relative in ("a.bin", "sub/b.bin"):
        index, *volumes = parity_of(job, relative)
        assert index.is_file() and len(volumes) == 1 and ".vol" in volumes[0].name
        assert relative in members(job, set_of(job, relative))
    assert set(all_parity_files(job)) == {p for s in all_sets(job) for p in set_files(job, s)}
    assert stock_par2(par2.binary(), "verify", job, "a.bin")
    assert stock_par2(par2.binary(), "verify", job, "sub/b.bin")
    again = scrub(job)
    assert (again.status, again.stats["verified"], again.stats["new"]) == ("good", 2, 0)


@pytest.mark.skipif(not os.path.exists(DEBIAN_PAR2), reason="Debian's par2 0.8.1 is not installed")
def test_debian_par2_verifies_and_repairs_nasbox_parity(tmp_path):
    job = make_job(tmp_path)
    original = write(Path(job.directory) / "doc.bin", 200_000)
    scrub(job)
    assert subprocess.run([DEBIAN_PAR2, "-V"], capture_output=True, text=True).stdout.startswith(
        "par2cmdline version 0.8"
    )
    assert stock_par2(DEBIAN_PAR2, "verify", job, "doc.bin")
    flip(Path(job.directory) / "doc.bin", [10, 20])  # one block of 20: within 5%
    assert not stock_par2(DEBIAN_PAR2, "verify", job, "doc.bin")
    assert stock_par2(DEBIAN_PAR2, "repair", job, "doc.bin")
    assert (Path(job.directory) / "doc.bin").read_bytes() == original


def test_bit_flips_are_repaired_with_metadata_intact(tmp_path):
    job = make_job(tmp_path)
    path = Path(job.directory) / "sub" / "photo.jpg"
    original = write(path, 1_000_000)
    os.chown(path, 4321, 4322)
    path.chmod(0o640)
    os.setxattr(path, "user.comment", b"holiday")
    os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    scrub(job)
    flip(path, [0, 123_456, 999_999])
    before = set(os.listdir(path.parent))
    result = scrub(job)
    assert path.read_bytes() == original
    st = path.stat()
    assert (st.st_mtime_ns, st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1_600_000_000_123_456_789, 4321, 4322, 0o640)
    assert os.getxattr(path, "user.comment") == b"holiday"
    assert set(os.listdir(path.parent)) == before  # no .1, no temporary files
    assert not list((Path(job.database) / ".nasbox-scrub" / "repair").iterdir())
    assert (result.status, result.stats["repaired"], result.exit_code) == ("warning", 1, 0)
    assert any("sub/photo.jpg: was corrupt and has been repaired" in d for d in result.details)
    assert scrub(job).status == "good"  # the repaired file verifies against the same parity


@pytest.mark.parametrize("edit", ["append", "rewrite", "truncate"])
def test_edits_are_never_reverted(tmp_path, edit):
    job = make_job(tmp_path)
    path = Path(job.directory) / "notes.txt"
    write(path, 100_000)
    scrub(job)
    time.sleep(0.01)  # a new mtime, as any editor gives
    if edit == "append":
        with open(path, "ab") as f:
            f.write(b"more lines\n")
    elif edit == "rewrite":
        write(path, 100_000, seed=9)  # same size, other bytes
    else:
        with open(path, "r+b") as f:
            f.truncate(50_000)
    edited = path.read_bytes()
    result = scrub(job)
    assert path.read_bytes() == edited
    assert (result.stats["updated"], result.stats["repaired"]) == (1, 0)
    assert stock_par2(par2.binary(), "verify", job, "notes.txt")  # the parity follows the edit


def test_damage_beyond_redundancy_is_an_error_and_the_file_is_untouched(tmp_path):
    job = make_job(tmp_path)
    path = Path(job.directory) / "big.bin"
    write(path, 400_000)
    scrub(job)
    flip(path, list(range(0, 400_000, 4000)))  # every block damaged; 5% cannot rebuild it
    damaged = path.read_bytes()
    inode = path.stat().st_ino
    result = scrub(job)
    assert (result.status, result.exit_code, result.stats["unrepairable"]) == ("error", 1, 1)
    assert path.read_bytes() == damaged and path.stat().st_ino == inode
    assert any("big.bin: beyond repair" in d for d in result.details)
    assert set(os.listdir(job.directory)) == {"big.bin", ".pardatabase"}


def test_parity_of_deleted_files_is_removed_and_nothing_else(tmp_path):
    job = make_job(tmp_path, max_delete=2)  # 2 of 3: more than the default half
    keep = write(Path(job.directory) / "keep.bin", 50_000)
    write(Path(job.directory) / "gone.bin", 50_000, seed=1)
    write(Path(job.directory) / "olddir" / "deep" / "x.bin", 10_000, seed=2)
    scrub(job)
    before = set(all_parity_files(job))
    (Path(job.directory) / "gone.bin").unlink()
    shutil.rmtree(Path(job.directory) / "olddir")
    result = scrub(job)
    assert result.stats["removed"] == 2
    # keep.bin's set is made again without the others; every other parity file is gone.
    assert members(job, set_of(job, "keep.bin")) == {"keep.bin"}
    assert set(all_parity_files(job)) == set(parity_of(job, "keep.bin")) and not before & set(all_parity_files(job))
    assert stock_par2(par2.binary(), "verify", job, "keep.bin")
    assert (Path(job.directory) / "keep.bin").read_bytes() == keep
    assert set(catalog_rows(job)) == {"keep.bin"}


def test_database_is_never_scrubbed(tmp_path):
    job = make_job(tmp_path)
    write(Path(job.directory) / "a.bin", 20_000)
    scrub(job)
    scrub(job)
    assert not any(n.startswith(".pardatabase") for n in all_names(Path(job.database)))
    assert set(catalog_rows(job)) == {"a.bin"}


def test_symlinks_are_not_followed(tmp_path):
    job = make_job(tmp_path)
    outside = tmp_path / "outside"
    secret = write(outside / "secret.bin", 30_000)
    os.symlink(outside, Path(job.directory) / "linkdir")
    os.symlink(outside / "secret.bin", Path(job.directory) / "linkfile")
    write(Path(job.directory) / "real.bin", 1000)
    scrub(job)
    assert set(catalog_rows(job)) == {"real.bin"}
    assert (outside / "secret.bin").read_bytes() == secret and os.listdir(outside) == ["secret.bin"]


def test_repair_never_writes_through_a_symlinked_directory(tmp_path):
    """A directory swapped for a link between verification and repair: the repair refuses."""
    job = make_job(tmp_path)
    path = Path(job.directory) / "sub" / "f.bin"
    write(path, 100_000)
    scrub(job)
    flip(path, [5])
    outside = tmp_path / "outside"
    shutil.move(Path(job.directory) / "sub", outside)  # same file, same inode, now outside
    os.symlink(outside, Path(job.directory) / "sub")
    damaged = (outside / "f.bin").read_bytes()
    with contextlib.closing(sqlite3.connect(Path(job.database) / ".nasbox-scrub" / "catalog.sqlite")) as db:
        [r] = db.execute(f"SELECT {FILE_COLUMNS} FROM files").fetchall()  # closed: a run opens it alone
    entry = Entry(*r[:6], (), *r[7:11], bool(r[11]), r[12])
    parity_files = [os.fsencode(p) for p in parity_of(job, "sub/f.bin")]
    private = os.fsencode(Path(job.database) / ".nasbox-scrub")
    outcome = repair(os.fsencode(job.directory), parity_files, private, [entry], [entry])[b"sub/f.bin"]
    assert outcome.result is Result.CHANGED  # ELOOP: the path has a link in it
    assert (outside / "f.bin").read_bytes() == damaged
    result = scrub(job)  # the engine skips it, and the link's target is left alone
    assert (outside / "f.bin").read_bytes() == damaged
    assert result.stats["repaired"] == 0


NAMES = [
    "with space.txt",
    "quote'single",
    'quote"double',
    "-leading-dash",
    "--",
    "new\nline",
    "tab\tx",
    "back\\slash",
    "ünïcödé-日本.txt",
    b"latin1-\xe9t\xe9".decode(errors="surrogateescape"),
    "star*?[x]",
]


def test_odd_names(tmp_path):
    """The files share one set: redundancy 100% lets it repair all of them damaged at once."""
    job = make_job(tmp_path, redundancy=100)
    contents = {name: write(Path(job.directory) / "d ir" / name, 3000, seed=i) for i, name in enumerate(NAMES)}
    result = scrub(job)
    assert result.stats["new"] == len(NAMES) and result.status == "info", result.details
    assert len(all_sets(job)) == 1
    for name in NAMES:
        flip(Path(job.directory) / "d ir" / name, [100])
    result = scrub(job)
    assert result.stats["repaired"] == len(NAMES), result.details
    for name, data in contents.items():
        assert (Path(job.directory) / "d ir" / name).read_bytes() == data
    # Stock par2 finds every file it reads as named (it rewrites control characters and backslashes).
    verify = subprocess.run(
        [par2.binary(), "verify", "-B", job.directory, str(index_of(job, "d ir/--"))], capture_output=True
    )
    found = {line for line in verify.stdout.split(b"\n") if line.startswith(b"Target: ") and b" - found." in line}
    plain = [name for name in NAMES if not set(name) & set("\n\t\\")]
    assert found == {b'Target: "d ir/' + os.fsencode(name) + b'" - found.' for name in plain}, verify.stdout


def test_empty_files_and_empty_tree(tmp_path):
    job = make_job(tmp_path)
    assert scrub(job).status == "good"  # nothing to do is fine
    (Path(job.directory) / "empty").touch()
    result = scrub(job)
    assert (result.status, result.stats["new"]) == ("info", 1)
    again = scrub(job)
    assert (again.status, again.stats["verified"]) == ("good", 1)
    write(Path(job.directory) / "empty", 5000)  # no longer empty: gets parity
    assert scrub(job).stats["updated"] == 1
    assert stock_par2(par2.binary(), "verify", job, "empty")
    assert set_of(job, "empty") is not None
    (Path(job.directory) / "empty").write_bytes(b"")  # empty again: its parity goes
    scrub(job)
    assert set_of(job, "empty") is None and all_parity_files(job) == [] and all_sets(job) == set()


def test_subdirectory_removed_during_a_run(tmp_path):
    job = make_job(tmp_path)
    for d in ("a", "b", "c"):
        write(Path(job.directory) / d / "f.bin", 10_000, seed=ord(d))
    scrub(job)

    class RemovingScrub(Scrub):
        def _list(self, catalog, relative, database_id, stack):
            files = super()._list(catalog, relative, database_id, stack)
            if relative == b"":
                shutil.rmtree(Path(job.directory) / "b")  # listed, then gone before its turn
            return files

    result = RemovingScrub(job).run()
    assert result.stats["removed"] == 1 and result.status == "info"
    assert set(catalog_rows(job)) == {"a/f.bin", "c/f.bin"}


def test_unreadable_directory_keeps_its_parity(tmp_path):
    job = make_job(tmp_path)
    write(Path(job.directory) / "locked" / "f.bin", 10_000)
    scrub(job)

    class FailingScrub(Scrub):
        def _list(self, catalog, relative, database_id, stack):
            if relative == b"locked":  # as EIO or EACCES would (root passes any mode bits)
                self.unreadable.append(relative)
                self._problem(relative, "cannot read the directory: Input/output error; its parity is kept", "skipped")
                return None
            return super()._list(catalog, relative, database_id, stack)

    result = FailingScrub(job).run()
    assert (result.status, result.stats["removed"]) == ("warning", 0)
    assert set(catalog_rows(job)) == {"locked/f.bin"}


def test_missing_or_unmounted_directory_is_skipped_and_parity_kept(tmp_path):
    job = make_job(tmp_path)
    missing = ScrubJob(**{**job.__dict__, "directory": str(tmp_path / "nope")})
    result = scrub(missing)
    assert (result.skipped, result.exit_code, result.status) == (True, 75, "warning")
    # DATABASE outside DIRECTORY; DIRECTORY emptied as an unmounted mountpoint would be.
    job = ScrubJob(**{**job.__dict__, "database": str(tmp_path / "parity")})
    write(Path(job.directory) / "a.bin", 10_000)
    scrub(job)
    os.unlink(Path(job.directory) / "a.bin")
    result = scrub(job)
    assert (result.skipped, result.exit_code) == (True, 75)
    assert "not mounted?" in result.summary
    kept = parity_of(job, "a.bin")
    assert set(catalog_rows(job)) == {"a.bin"} and kept and all(p.is_file() for p in kept)


def test_update_only_makes_parity_and_never_verifies(tmp_path):
    job = make_job(tmp_path)
    path = Path(job.directory) / "a.bin"
    write(path, 50_000)
    scrub(job, update_only=True)
    flip(path, [1])
    damaged = path.read_bytes()
    write(Path(job.directory) / "b.bin", 1000, seed=3)
    result = scrub(job, update_only=True)
    assert (result.stats["new"], result.stats["verified"], result.stats["repaired"]) == (1, 0, 0)
    assert path.read_bytes() == damaged
    assert "verified" not in result.summary


def test_sampled_verification_takes_least_recently_verified_first(tmp_path):
    job = make_job(tmp_path, verify_percent=50)
    for i in range(10):
        write(Path(job.directory) / f"f{i}.bin", 1000, seed=i)
    scrub(job)  # creates parity; nothing verified yet
    first = scrub(job)
    second = scrub(job)
    assert first.stats["verified"] == 5 and second.stats["verified"] == 5
    db = sqlite3.connect(Path(job.database) / ".nasbox-scrub" / "catalog.sqlite")
    assert db.execute("SELECT count(*) FROM files WHERE verified_at IS NOT NULL").fetchone()[0] == 10


def test_verify_older_than_skips_recently_verified(tmp_path):
    job = make_job(tmp_path, verify_older_than_s=3600)
    write(Path(job.directory) / "a.bin", 1000)
    scrub(job)
    assert scrub(job).stats["verified"] == 1
    assert scrub(job).stats["verified"] == 0  # verified a moment ago


def test_damaged_parity_is_rebuilt(tmp_path):
    job = make_job(tmp_path)
    write(Path(job.directory) / "a.bin", 100_000)
    scrub(job)
    [_index, volume] = parity_of(job, "a.bin")
    data = bytearray(volume.read_bytes())
    data[200] ^= 0xFF
    volume.write_bytes(bytes(data))
    result = scrub(job)
    assert (result.status, result.stats["parity_rebuilt"]) == ("warning", 1)
    assert stock_par2(par2.binary(), "verify", job, "a.bin")
    assert scrub(job).status == "good"


def test_copy_with_same_size_and_mtime(tmp_path):
    job = make_job(tmp_path)
    path = Path(job.directory) / "a.bin"
    original = write(path, 20_000)
    scrub(job)
    st = path.stat()
    for content, expected in ((original, "good"), (write(tmp_path / "other", 20_000, seed=5), "info")):
        replacement = Path(job.directory) / "tmp-copy"
        replacement.write_bytes(content)
        os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(replacement, path)  # a new inode, as rsync or a restore gives
        result = scrub(job)
        assert result.status == expected and result.stats["repaired"] == 0
        assert path.read_bytes() == content


def test_excludes(tmp_path):
    job = make_job(tmp_path, exclude=("*.tmp", "cache/", "/top-only.bin"))
    for name in ("keep.bin", "x.tmp", "cache/c.bin", "sub/cache", "top-only.bin", "sub/top-only.bin"):
        write(Path(job.directory) / name, 100)
    scrub(job)
    assert set(catalog_rows(job)) == {"keep.bin", "sub/cache", "sub/top-only.bin"}


def test_files_named_like_parity_files_are_protected_and_kept(tmp_path):
    """Parity lives in the private folder, so a user's own par2 files and names like them are plain files."""
    job = make_job(tmp_path)
    top = Path(job.directory)
    write(top / "x", 50_000)
    write(top / "x.vol0+1", 1000, seed=1)
    own = subprocess.run([par2.binary(), "create", "-q", "-q", "-n1", "x.par2", "x"], cwd=top, capture_output=True)
    assert own.returncode == 0, own.stderr
    write(top / "sub" / "y", 20_000, seed=2)
    own = subprocess.run(
        [par2.binary(), "create", "-q", "-q", "-n1", "y.par2", "y"], cwd=top / "sub", capture_output=True
    )
    assert own.returncode == 0, own.stderr
    (top / "sub" / "y").unlink()  # a par2 set whose file is not there
    contents = {
        str(p.relative_to(top)): p.read_bytes() for p in top.rglob("*") if p.is_file() and ".pardatabase" not in p.parts
    }
    assert {"x.par2", "sub/y.par2"} < set(contents) and any(".vol" in n and n.endswith(".par2") for n in contents)
    result = scrub(job)
    assert (result.stats["new"], result.stats["skipped"]) == (len(contents), 0), result.details
    assert set(catalog_rows(job)) == set(contents)
    for relative in contents:
        assert stock_par2(par2.binary(), "verify", job, relative), relative
    flip(top / "x.vol0+1", [3])
    result = scrub(job)
    assert (result.stats["repaired"], result.stats["removed"]) == (1, 0), result.details
    assert {
        str(p.relative_to(top)): p.read_bytes() for p in top.rglob("*") if p.is_file() and ".pardatabase" not in p.parts
    } == contents
    assert scrub(job).status == "good"


SCRUB_IN_CHILD = """
import sys
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub.engine import Scrub
Scrub(ScrubJob(name="t", directory=sys.argv[1], database=sys.argv[2], redundancy=5, schedule="daily")).run()
"""


@pytest.mark.parametrize("delay", [0.3, 0.6, 0.9, 1.5, 2.5])
def test_sigkill_during_parity_creation_then_a_normal_run_is_consistent(tmp_path, delay):
    job = make_job(tmp_path)
    contents = {
        f"d{i % 3}/f{i}.bin": write(Path(job.directory) / f"d{i % 3}" / f"f{i}.bin", 200_000 + i * 1000, seed=i)
        for i in range(40)
    }
    child = subprocess.Popen([sys.executable, "-c", SCRUB_IN_CHILD, job.directory, job.database])
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    result = scrub(job)
    assert result.status in ("info", "good"), result.details
    assert set(catalog_rows(job)) == set(contents)
    for relative, data in contents.items():
        assert (Path(job.directory) / relative).read_bytes() == data
        assert stock_par2(par2.binary(), "verify", job, relative), relative
    private = Path(job.database) / ".nasbox-scrub"
    assert not list((private / "staging").iterdir())
    # Only the sets the catalog names are on disk, each an index and one recovery file.
    named = {set_of(job, relative) for relative in contents}
    assert all_sets(job) == named
    assert sorted(all_parity_files(job)) == sorted(p for s in named for p in set_files(job, s))
    assert all(len(set_files(job, s)) == 2 for s in named)
    assert scrub(job).status == "good"


def test_a_run_killed_while_moving_parity_into_place_is_finished_by_the_next(tmp_path, monkeypatch):
    """The killed run's half-placed set is removed; the next run gives the edit a set again."""
    job = make_job(tmp_path)
    path = Path(job.directory) / "a.bin"
    write(path, 100_000)
    scrub(job)
    old_set = set_of(job, "a.bin")
    time.sleep(0.01)
    edited = write(path, 150_000, seed=4)

    def die_after_moving_volumes(catalog, parity, row, staging_name, members):
        staging = parity.staging(staging_name)
        target = os.path.join(parity.private, b"sets", row.id[:2])
        os.makedirs(target, exist_ok=True)
        for volume in row.volumes:  # the recovery file is in place, the index is not
            os.replace(os.path.join(staging, b"parity" + volume[len(row.id) :]), os.path.join(target, volume))
        raise KeyboardInterrupt("killed")

    with monkeypatch.context() as patched:  # only this; the test's own home stays
        patched.setattr(install, "install", die_after_moving_volumes)
        with pytest.raises(KeyboardInterrupt):
            scrub(job)
    assert len(list((Path(job.database) / ".nasbox-scrub" / "sets").glob("*/*.vol*.par2"))) == 2
    result = scrub(job)
    assert path.read_bytes() == edited
    assert stock_par2(par2.binary(), "verify", job, "a.bin")
    assert catalog_rows(job)["a.bin"][0] == 150_000
    assert (result.status, result.stats["updated"]) == ("info", 1)
    assert set_of(job, "a.bin") != old_set and all_sets(job) == {set_of(job, "a.bin")}
    assert sorted(all_parity_files(job)) == parity_of(job, "a.bin")
    assert scrub(job).status == "good"


def allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


@pytest.mark.parametrize(
    "count, size, limit", [(200, 4096, 0.15), (50, 65536, 0.08), (8, 1 << 20, 0.06), (1, 16 << 20, 0.06)]
)
def test_parity_overhead_close_to_redundancy(tmp_path, count, size, limit):
    """What parity costs on disk, beside what the files it protects take, at redundancy 5%."""
    job = make_job(tmp_path)
    files = [Path(job.directory) / f"d{i % 4}" / f"f{i}" for i in range(count)]
    for i, path in enumerate(files):
        write(path, size, seed=i)
    scrub(job)
    data = sum(allocated(p) for p in files)
    parity_files = all_parity_files(job)
    parity = sum(allocated(p) for p in parity_files)
    indexes = sum(allocated(p) for p in parity_files if ".vol" not in p.name)
    breakdown = (
        f"{len(all_sets(job))} sets, {len(parity_files)} files: index {indexes} + recovery "
        f"{parity - indexes} = {parity} bytes allocated for {data}: {parity / data:.3f}"
    )
    assert 0.05 <= parity / data <= limit, breakdown


PRIORITY_PROBE = """
import os, sys, psutil
from nasbox.scrub.kind import ScrubJob
from nasbox.scrub import par2
from nasbox.scrub.engine import Scrub
par2.binary = lambda: sys.argv[3]  # a wrapper that records its priority, then runs par2
Scrub(ScrubJob(name="t", directory=sys.argv[1], database=sys.argv[2], redundancy=5, schedule="daily",
               nice=7, ionice="idle")).run()
print(os.getpriority(os.PRIO_PROCESS, 0), psutil.Process().ionice().ioclass == psutil.IOPRIO_CLASS_IDLE)
"""


def test_job_priority_reaches_par2(tmp_path):
    job = make_job(tmp_path)
    write(Path(job.directory) / "a.bin", 10_000)
    record = tmp_path / "priority"
    wrapper = tmp_path / "par2-wrapper"
    wrapper.write_text(
        f'#!/bin/sh\n{{ cut -d" " -f19 /proc/$$/stat; ionice -p $$; }} > {record}\nexec {par2.binary()} "$@"\n'
    )
    wrapper.chmod(0o755)
    child = subprocess.run(
        [sys.executable, "-c", PRIORITY_PROBE, job.directory, job.database, str(wrapper)],
        capture_output=True,
        text=True,
    )
    assert child.returncode == 0, child.stderr
    assert record.read_text().split() == ["7", "idle"]
    assert child.stdout.split() == ["0", "False"]  # the caller keeps its own priority
    assert stock_par2(par2.binary(), "verify", job, "a.bin")


def test_corrupt_file_whose_parity_is_missing_is_an_error_and_untouched(tmp_path):
    job = make_job(tmp_path)
    path = Path(job.directory) / "a.bin"
    write(path, 50_000)
    scrub(job)
    for parity in parity_of(job, "a.bin"):
        parity.unlink()
    flip(path, [7])
    damaged = path.read_bytes()
    result = scrub(job)
    assert (result.status, result.stats["unrepairable"]) == ("error", 1)
    assert path.read_bytes() == damaged
    assert any("its parity is missing" in d for d in result.details)


def test_another_jobs_database_inside_directory_is_not_scrubbed(tmp_path):
    outer = make_job(tmp_path)
    inner_dir = Path(outer.directory) / "photos"
    inner = ScrubJob(
        name="inner", directory=str(inner_dir), database=str(inner_dir / ".par"), redundancy=5, schedule="daily"
    )
    write(inner_dir / "cat.jpg", 20_000)
    scrub(inner)
    Scrub(outer, databases=[outer.database, inner.database]).run()
    assert set(catalog_rows(outer)) == {"photos/cat.jpg"}  # not the inner job's parity or catalog


def test_user_files_named_like_repair_temporaries_are_never_removed(tmp_path):
    """Repairs write in place and create nothing beside the original, so no name in
    DIRECTORY is ever taken for nasbox's leftover."""
    job = make_job(tmp_path)
    names = [f".nasbox-repair-{'0' * 32}.tmp", ".nasbox-repair-notmine.tmp", f".nasbox-repair-{'0' * 32}.tmp.bak"]
    for name in names:
        (Path(job.directory) / name).write_text("user data")
    scrub(job)
    scrub(job)
    assert all((Path(job.directory) / name).read_text() == "user data" for name in names)
    assert set(catalog_rows(job)) == set(names)  # and they are protected like any file


# ---- parity sets shared by small files ----------------------------------------------------


def small_tree(job: ScrubJob, count: int, sizes: tuple[int, int] = (1000, 8000)) -> dict[str, bytes]:
    """count small files spread over nested directories: {relative: content}."""
    low, high = sizes
    return {
        relative: write(Path(job.directory) / relative, low + (i * 7919) % (high - low + 1), seed=i)
        for i in range(count)
        for relative in [f"d{i % 3}/e{i % 2}/f{i}.bin" if i % 4 else f"top{i}.bin"]
    }


def attributes(path: Path) -> tuple:
    st = path.stat()
    return st.st_mtime_ns, st.st_uid, st.st_gid, st.st_mode & 0o7777, st.st_ino, os.listxattr(path)


@pytest.mark.parametrize(
    "binary",
    [
        "bundled",
        pytest.param(
            DEBIAN_PAR2,
            marks=pytest.mark.skipif(not os.path.exists(DEBIAN_PAR2), reason="Debian's par2 0.8.1 is not installed"),
        ),
    ],
)
def test_stock_par2_verifies_and_repairs_a_set_of_small_files(tmp_path, binary):
    job = make_job(tmp_path)
    contents = small_tree(job, 60)
    scrub(job)
    [set_id] = {set_of(job, relative) for relative in contents}
    assert members(job, set_id) == set(contents)
    binary = par2.binary() if binary == "bundled" else binary
    assert stock_par2(binary, "verify", job, "top0.bin")
    flip(Path(job.directory) / "top0.bin", [10])
    flip(Path(job.directory) / "d1/e1/f1.bin", [500])
    assert not stock_par2(binary, "verify", job, "d2/e0/f2.bin")
    assert stock_par2(binary, "repair", job, "d2/e0/f2.bin")
    for relative, data in contents.items():
        assert (Path(job.directory) / relative).read_bytes() == data, relative
    assert stock_par2(binary, "verify", job, "top0.bin")


def test_three_corrupt_files_of_one_set_are_repaired_at_once(tmp_path):
    job = make_job(tmp_path)
    contents = small_tree(job, 80, sizes=(3000, 4000))  # 80 slices: 4 recovery slices
    damaged = ["top0.bin", "d1/e1/f1.bin", "d2/e1/f5.bin"]
    for number, relative in enumerate(damaged):
        path = Path(job.directory) / relative
        os.chown(path, 1000 + number, 2000 + number)
        path.chmod(0o600 + number)
        os.setxattr(path, "user.tag", b"keep %d" % number)
        os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000 + number))
    scrub(job)
    assert len({set_of(job, relative) for relative in contents}) == 1
    before = {relative: attributes(Path(job.directory) / relative) for relative in damaged}
    for relative in damaged:
        flip(Path(job.directory) / relative, [7, 2000])
    result = scrub(job)
    assert (result.status, result.stats["repaired"], result.stats["unrepairable"]) == ("warning", 3, 0), result.details
    for relative, data in contents.items():
        assert (Path(job.directory) / relative).read_bytes() == data, relative
    for number, relative in enumerate(damaged):
        assert attributes(Path(job.directory) / relative) == before[relative]
        assert os.getxattr(Path(job.directory) / relative, "user.tag") == b"keep %d" % number
    assert set(os.listdir(Path(job.directory) / "d1" / "e1")) == {
        n.split("/")[-1] for n in contents if n.startswith("d1/e1/")
    }
    assert scrub(job).status == "good"


def test_an_edited_member_leaves_its_set_which_is_made_again(tmp_path):
    job = make_job(tmp_path)
    contents = small_tree(job, 30)
    scrub(job)
    [old_set] = {set_of(job, relative) for relative in contents}
    old_files = set_files(job, old_set)
    time.sleep(0.01)
    edited = write(Path(job.directory) / "d1/e1/f1.bin", 5000, seed=99)
    result = scrub(job)
    assert (result.stats["updated"], result.stats["new"], result.stats["repaired"]) == (1, 0, 0), result.details
    assert (Path(job.directory) / "d1/e1/f1.bin").read_bytes() == edited
    new_sets = {set_of(job, relative) for relative in contents}
    assert old_set not in new_sets and None not in new_sets
    assert set().union(*(members(job, s) for s in new_sets)) == set(contents)  # the others keep parity
    assert not any(p.exists() for p in old_files) and all_sets(job) == new_sets
    for relative in contents:
        assert stock_par2(par2.binary(), "verify", job, relative), relative
    assert scrub(job).status == "good"


def test_a_deleted_member_leaves_the_others_regrouped(tmp_path):
    job = make_job(tmp_path)
    contents = small_tree(job, 30)
    scrub(job)
    [old_set] = {set_of(job, relative) for relative in contents}
    old_files = set_files(job, old_set)
    (Path(job.directory) / "d2/e0/f2.bin").unlink()
    del contents["d2/e0/f2.bin"]
    result = scrub(job)
    assert result.stats["removed"] == 1 and result.status == "info", result.details
    [new_set] = {set_of(job, relative) for relative in contents}
    assert new_set != old_set and members(job, new_set) == set(contents)
    assert not any(p.exists() for p in old_files) and all_sets(job) == {new_set}
    assert sorted(all_parity_files(job)) == set_files(job, new_set)
    assert stock_par2(par2.binary(), "verify", job, "top0.bin")
    assert scrub(job).status == "good"


def test_a_tree_of_small_files_costs_parity_in_proportion_to_its_bytes(tmp_path):
    job = make_job(tmp_path)
    contents = small_tree(job, 2000, sizes=(1024, 4096))
    result = scrub(job)
    assert result.stats["new"] == 2000
    assert 1 <= len(all_sets(job)) <= 3
    data = sum(allocated(Path(job.directory) / relative) for relative in contents)
    parity = sum(allocated(p) for p in all_parity_files(job))
    assert parity <= 0.15 * data, (len(all_sets(job)), parity, data)
    assert stock_par2(par2.binary(), "verify", job, "top0.bin")


def test_a_member_edited_during_its_repair_gets_one_new_set_with_the_others(tmp_path, monkeypatch):
    """The edit is kept; the file and the rest of its old set are given parity once each."""
    job = make_job(tmp_path)
    contents = small_tree(job, 30)
    scrub(job)
    [old_set] = {set_of(job, relative) for relative in contents}
    flip(Path(job.directory) / "top0.bin", [5])

    def edit_then_repair(*args, **kwargs):
        time.sleep(0.01)
        contents["top0.bin"] = write(Path(job.directory) / "top0.bin", 3000, seed=77)
        return repair(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(work, "repair", edit_then_repair)
        result = scrub(job)
    assert (result.stats["repaired"], result.stats["updated"], result.stats["skipped"]) == (0, 1, 0), result.details
    for relative, data in contents.items():
        assert (Path(job.directory) / relative).read_bytes() == data, relative
    new_sets = {set_of(job, relative) for relative in contents}
    assert old_set not in new_sets and None not in new_sets and all_sets(job) == new_sets
    for relative in contents:
        assert stock_par2(par2.binary(), "verify", job, relative), relative
    assert scrub(job).status == "good"


def test_a_run_records_what_its_parity_covers(tmp_path):
    """For the dashboard: the files protected, the parity's allocated bytes, and when the least
    recently verified file was last verified."""
    job = make_job(tmp_path)
    for i in range(5):
        write(Path(job.directory) / f"f{i}.bin", 200_000, seed=i)
    before = time.time()
    first = scrub(job)
    assert first.stats["protected"] == 5
    on_disk = sum(p.stat().st_blocks * 512 for p in all_parity_files(job))
    assert first.stats["parity_bytes"] == on_disk > 0
    assert first.stats["oldest_verified_at"] == 0  # new parity: none verified yet
    verified = scrub(job)
    assert before <= verified.stats["oldest_verified_at"] <= time.time()
