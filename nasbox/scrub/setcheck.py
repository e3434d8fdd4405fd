"""Whether a parity set is intact: every packet of its files passes its MD5, it has recovery
slices, all of one set, and it describes each file whose row names it as that row records
(MD5 and size), and no other. Run in a reader process (nasbox.scrub.readers) when the scrub
has them: the sets of many small files hold two packets per file, and checking them costs
as much as reading the files.
"""

from __future__ import annotations

import os

from nasbox.scrub import par2, par2format

# (dir, name, MD5, size) of each row naming the set, as recorded: compared with what the set
# describes, never acted upon, so not checked as entries are (a value of another type is no
# path any set describes).
Recorded = list[tuple[object, object, object, object]]


def set_intact(paths: list[bytes], files: int, recorded: Recorded) -> bool:
    """paths: the set's files, index first; files: how many files it was made for."""
    described: dict[bytes, tuple[bytes, int]] = {}
    recovery = 0
    set_ids: set[bytes] = set()
    try:
        for path in paths:
            data = par2format.read_parity_file(path)
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
