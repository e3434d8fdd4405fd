"""The shortcuts of a full scrub's verify, attacked: a set judged intact by the digest of its
files, a set checked in a reader process, files listed without their metadata and marked
intact many at a time. Real par2 on a loop-mounted ext4 image, in the scrub's threads and in
its reader processes (nasbox.scrub.readers)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from nasbox.scrub import par2, readers
from nasbox.scrub.engine import Scrub
from tests.host import test_scrub_readers
from tests.host.test_scrub import data_disk, make_job, write  # noqa: F401 (data_disk: the loop-mounted DIRECTORY)
from tests.host.test_scrub_readers import Reading, in_catalog
from tests.support.parity import set_files, set_of, stock_par2

pytestmark = pytest.mark.host

reading = test_scrub_readers.reading  # the fixture: the reads in threads, or in processes


def small_files(root: Path, count: int, first_seed: int = 0) -> dict[str, bytes]:
    """count files of about 3 KB in root/a, which share one set."""
    return {f"a/f{i}": write(root / "a" / f"f{i}", 3000 + i, seed=first_seed + i) for i in range(count)}


# ---- a set judged intact by the digest of its files ---------------------------------------


@pytest.mark.parametrize("kept", ["made by this version", "an earlier version's MD5"])
@pytest.mark.parametrize("moved", [40, 150])  # the last packet cut in two; the one before it too
def test_bytes_moved_from_the_index_into_its_recovery_file_are_damage(
    tmp_path: Path, reading: Reading, moved: int, kept: str
) -> None:
    """The index loses its last bytes and its recovery file begins with them: the two files
    one after the other are what they were, each file is not. The packets cut in two fail
    their checksums, so the set is made again; also when its row keeps the MD5 of the two
    files one after the other, as an earlier version did (unknown now: the packets decide)."""
    job = make_job(tmp_path)
    root = Path(job.directory)
    small_files(root, 5)
    Scrub(job).run()
    time.sleep(0.1)
    set_id = set_of(job, "a/f0")
    index, volume = set_files(job, set_id)
    head, tail = index.read_bytes(), volume.read_bytes()
    if kept == "an earlier version's MD5":
        in_catalog(job, f"UPDATE sets SET digest = x'{hashlib.md5(head + tail).hexdigest()}'")
    index.write_bytes(head[:-moved])
    volume.write_bytes(head[-moved:] + tail)

    result = Scrub(job).run()
    assert (result.status, result.stats["verified"], result.stats["parity_rebuilt"]) == ("warning", 5, 5), (
        result.summary
    )
    assert set_of(job, "a/f0") not in (set_id, None)
    assert stock_par2(par2.binary(), "verify", job, "a/f0")
    assert Scrub(job).run().status == "good"
    reading.check()


# ---- a set checked in a reader process ---------------------------------------------------


def test_a_set_whose_checking_process_ends_is_still_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader process that ends while it checks a set (killed, out of memory) leaves that
    set to be checked all the same: its damage is found and the set made again."""
    monkeypatch.setattr(readers, "PROCESSES_FROM", 0)
    monkeypatch.setattr(readers, "SMALL_BATCH", 1 << 30)
    job = make_job(tmp_path)
    root = Path(job.directory)
    small_files(root, 5)
    Scrub(job).run()
    time.sleep(0.1)
    set_id = set_of(job, "a/f0")
    volume = set_files(job, set_id)[1]
    data = bytearray(volume.read_bytes())
    data[len(data) // 2] ^= 0xFF
    volume.write_bytes(bytes(data))
    ends = "import os; from nasbox.scrub import readers; readers.TASKS['check_set'] = lambda *_: os._exit(9); "
    monkeypatch.setattr(readers, "SERVE", ends + readers.SERVE)

    result = Scrub(job).run()
    assert (result.status, result.stats["verified"], result.stats["parity_rebuilt"]) == ("warning", 5, 5), (
        result.summary
    )
    assert set_of(job, "a/f0") not in (set_id, None)
    assert stock_par2(par2.binary(), "verify", job, "a/f0")


def test_reader_processes_never_import_code_from_the_working_directory_whatever_pythonpath_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty entry in PYTHONPATH (`PYTHONPATH=$PYTHONPATH:/x` with PYTHONPATH unset) means
    the working directory, whatever `python -P` says: a scrub started from a share must still
    never run a `nasbox` package planted there in its reader processes (root)."""
    monkeypatch.setattr(readers, "PROCESSES_FROM", 0)
    monkeypatch.setattr(readers, "SMALL_BATCH", 1 << 30)
    job = make_job(tmp_path)
    small_files(Path(job.directory), 3)
    Scrub(job).run()
    planted = tmp_path / "share"
    marker = tmp_path / "planted code ran"
    (planted / "nasbox" / "scrub").mkdir(parents=True)
    (planted / "nasbox" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (planted / "nasbox" / "scrub" / "__init__.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", f":{Path(readers.__file__).parents[2]}")  # first the working directory
    monkeypatch.chdir(planted)
    result = Scrub(job).run()
    assert not marker.exists()
    assert (result.status, result.stats["verified"]) == ("good", 3), result.summary
