"""Whether a parity set is intact: every packet of its files passes its MD5, it has recovery
slices, all of one set, and it describes each file whose row names it as that row records
(MD5 and size), and no other. A set's row keeps the digest of its files as they were made
(each packet checked then), or as they were when last found intact: files that still have it
are intact, and their packets, two for each file in a set of small files, are not taken apart
again. The digest takes in each file's length before its bytes, so that bytes moved from the
end of one file to the start of the next change it. Run in a reader process
(nasbox.scrub.readers) when the scrub has them.
"""

from __future__ import annotations

import hashlib
import os

from nasbox.scrub import par2, par2format

# (dir, name, MD5, size) of each row naming the set, as recorded: compared with what the set
# describes, never acted upon, so not checked as entries are (a value of another type is no
# path any set describes).
Recorded = list[tuple[object, object, object, object]]


DIGEST_SIZE = hashlib.sha256().digest_size  # a kept value of another size (an earlier version's) is unknown


def digest_of(paths: list[bytes]) -> bytes:
    """The digest of a set's files (index first)."""
    return _digest([par2format.read_parity_file(path) for path in paths])


def known_digest(kept: object) -> bytes | None:
    """A digest a set's row keeps, when it is one digest_of makes; None: unknown."""
    return kept if isinstance(kept, bytes) and len(kept) == DIGEST_SIZE else None


def _digest(datas: list[bytes]) -> bytes:
    digest = hashlib.sha256()
    for data in datas:
        digest.update(len(data).to_bytes(8, "little"))  # where one file ends and the next begins
        digest.update(data)
    return digest.digest()


def set_intact(paths: list[bytes], files: int, recorded: Recorded, digest: bytes | None) -> tuple[bool, bytes]:
    """Whether the set is intact, and the digest of its files as read. paths: the set's files,
    index first; files: how many files it was made for; digest: the one its row keeps (the
    files are then not taken apart, nor compared with recorded)."""
    try:
        datas = [par2format.read_parity_file(path) for path in paths]
    except par2format.DamagedParity:
        return False, b""
    found = _digest(datas)
    if digest is not None:
        return found == digest, found
    return _packets_intact(datas, files, recorded), found


def _packets_intact(datas: list[bytes], files: int, recorded: Recorded) -> bool:
    described: dict[bytes, tuple[bytes, int]] = {}
    recovery = 0
    set_ids: set[bytes] = set()
    try:
        for data in datas:
            found = False
            for kind, set_id, start, end in par2format.spans(data):
                found = True
                set_ids.add(set_id)
                if kind == par2format.RECOVERY_SLICE:
                    recovery += 1
                elif kind == par2format.FILE_DESC:
                    body = start + par2format.HEADER.size
                    _file_id, md5, _head, length = par2format.FILE_DESC_BODY.unpack_from(data, body)
                    described[par2format.described_name(data, body, end)] = (md5, length)
            if not found:
                raise par2format.DamagedParity("no packets")
    except par2format.DamagedParity:
        return False
    if recovery == 0 or len(set_ids) != 1:
        return False
    where = par2.as_par2_reads_them(described)
    return len(where) == files and all(
        isinstance(directory, bytes)
        and isinstance(name, bytes)
        and where.get(par2.path_as_par2_reads_it(os.path.join(directory, name))) == (md5, size)
        for directory, name, md5, size in recorded
    )
