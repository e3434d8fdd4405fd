"""The files and directories parity cannot be given.

Parity sets live apart from the data (nasbox.scrub.sets), so a file's name never has to fit
in a parity file's name. Some files still cannot be protected, and are left unprotected with
a warning each, never failing the job:
- a name that par2 reads as another path (it takes a backslash for '/': `a\\..\\x` would be
  `a/../x`), or whose control characters par2 writes as %XX past NAME_MAX, or so long that
  par2's backup of the damaged file in a repair (`name.1`) would be;
- a path so deep that DIRECTORY's path to it, or the path of its copy in a repair, would
  exceed PATH_MAX (a directory that deep is not entered at all).
"""

from __future__ import annotations

from collections.abc import Iterable

from nasbox.scrub import par2
from nasbox.scrub.catalog import is_relative

NAME_MAX = 255
BACKUP_SUFFIX = b".1"  # par2 repair renames the damaged file so before it writes the repaired one
PATH_MAX = 4096  # with the terminating NUL
# Room for the private folder's /proc/self/fd path and a repair's working directory in it.
REPAIR_PREFIX = len(b"/proc/self/fd/2147483647/repair/") + 32 + 1


def _longest_path(directory: bytes, relative: bytes, seen_by_par2: bytes) -> int:
    """The longest path nasbox or par2 builds for relative (under DIRECTORY, or as a
    repair's copy, named as par2 sees it)."""
    return max(len(directory) + 1 + len(relative), REPAIR_PREFIX + len(seen_by_par2))


def directory_problem(directory: bytes, relative: bytes) -> str | None:
    """Why the subdirectory relative (of DIRECTORY) cannot be protected, or None."""
    longest = _longest_path(directory, relative, par2.path_as_par2_reads_it(relative))
    if longest + 2 >= PATH_MAX:  # not even a one-letter file fits
        return f"too deep: its path is longer than the system allows ({PATH_MAX} bytes); not protected"
    return None


def file_problems(directory: bytes, parent: bytes, names: Iterable[bytes]) -> list[tuple[bytes, str]]:
    """(name, why) of each file of parent (relative to DIRECTORY) that cannot be protected
    (file_problem), in order of name. The common case, a name short enough with no byte
    par2 rewrites, is told apart with the lengths allowed in parent worked out once."""
    longest = min(NAME_MAX - len(BACKUP_SUFFIX), PATH_MAX - 1 - REPAIR_PREFIX - len(directory) - len(parent) - 1)
    plain = not par2.REWRITTEN.search(parent)
    found = []
    for name in names:
        if plain and len(name) <= longest and not par2.REWRITTEN.search(name):
            continue
        why = file_problem(directory, parent, name)
        if why:
            found.append((name, why))
    return sorted(found)


def file_problem(directory: bytes, parent: bytes, name: bytes) -> str | None:
    """Why the file parent/name (parent relative to DIRECTORY) cannot be protected, or None."""
    relative = parent + b"/" + name if parent else name
    short = len(name + BACKUP_SUFFIX) <= NAME_MAX and REPAIR_PREFIX + len(directory) + len(relative) < PATH_MAX
    if short and not par2.REWRITTEN.search(relative):
        return None  # the common case, decided without building par2's view of the name
    seen_by_par2 = par2.path_as_par2_reads_it(relative)
    if seen_by_par2 != relative and not is_relative(seen_by_par2):
        return "not protected: par2 would read it elsewhere (it takes a backslash for a directory separator)"
    *directories, file = seen_by_par2.split(b"/")
    if any(len(part) > NAME_MAX for part in directories) or len(file + BACKUP_SUFFIX) > NAME_MAX:
        return f"name too long to protect: par2 would write it, or its backup in a repair, longer than {NAME_MAX} bytes"
    if _longest_path(directory, relative, seen_by_par2) >= PATH_MAX:
        return f"path too long to protect: it exceeds what the system allows ({PATH_MAX} bytes)"
    return None
