"""The note a repair writes before it writes into a file: every format nasbox wrote reads back."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nasbox.scrub import repair
from nasbox.scrub.repair import RepairNote, read_repairing_note

WORK = b"0123456789abcdef0123456789abcdef"


def written(tmp_path: Path, note: RepairNote) -> RepairNote | None:
    path = repair._note_repairing(bytes(tmp_path / "repairing"), WORK + b".0", note)
    return read_repairing_note(path)


def test_a_note_with_the_repaired_bytes_of_its_blocks_reads_back(tmp_path: Path) -> None:
    repaired = {0: b"\0\1" * 100, 16140: bytes(range(256)) * 3, 4 << 20: b"last, short"}
    damaged = {offset: hashlib.md5(data[::-1]).digest() for offset, data in repaired.items()}
    note = RepairNote(b"a/b", b"big.bin", WORK, (1, 2), 0, damaged, repaired)
    assert written(tmp_path, note) == note


def test_notes_of_blocks_and_of_names_only_still_read(tmp_path: Path) -> None:
    note = RepairNote(b"", b"f.bin", WORK, (3, 4), 4096, {0: b"m" * 16, 8192: b"n" * 16})
    assert written(tmp_path, note) == note
    names_only = tmp_path / "names"
    names_only.write_bytes(b"dir\0f.bin")
    assert read_repairing_note(bytes(names_only)) == RepairNote(b"dir", b"f.bin")


def test_a_cut_note_with_repaired_bytes_is_not_a_note(tmp_path: Path) -> None:
    note = RepairNote(b"", b"f.bin", WORK, (1, 2), 0, {0: b"m" * 16}, {0: b"x" * 1000})
    path = repair._note_repairing(bytes(tmp_path / "repairing"), WORK + b".0", note)
    with open(path, "r+b") as f:
        f.truncate(len(f.read()) - 1)
    assert read_repairing_note(path) is None
