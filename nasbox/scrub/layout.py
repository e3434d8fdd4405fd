"""Where parity lives, and the files and directories that layout cannot hold.

The parity of DIRECTORY/<dir>/<name> is <DATABASE>/<dir>/<name>.par2 with one
<name>.vol<first>+<count>.par2 beside it, so the parity of a subdirectory's files lives in
<DATABASE>/<dir>/<subdirectory>/. Some files cannot be given parity there, and are left
unprotected with a warning each, never failing the job:
- a name so long that its parity file's name would exceed NAME_MAX, or one that par2 reads
  as another path (it takes a backslash for '/': `a\\..\\x` would be `a/../x`);
- a path so deep that DIRECTORY's path to it, or the path of its copy in a repair, would
  exceed PATH_MAX (a directory that deep is not entered at all);
- a file whose parity file would have the name of a sibling directory's parity directory
  (the directory's files keep their protection), or of a sibling file's recovery file;
- at the top, a directory named like nasbox's private folder, where its parity would go.
"""

from __future__ import annotations

from collections.abc import Container

from nasbox.scrub import par2
from nasbox.scrub.catalog import is_relative, show
from nasbox.scrub.trust import PRIVATE

NAME_MAX = 255
PATH_MAX = 4096  # with the terminating NUL
LONGEST_VOLUME_SUFFIX = len(b".vol0000+9999.par2")  # par2.sizing makes at most MAX_BLOCKS
# Room for the private folder's /proc/self/fd path and a repair's working directory in it.
REPAIR_PREFIX = len(b"/proc/self/fd/2147483647/repair/") + 32 + 1


def _longest_path(directory: bytes, relative: bytes, seen_by_par2: bytes) -> int:
    """The longest path nasbox or par2 builds for relative (under DIRECTORY, in DATABASE
    through its descriptor, or as a repair's copy, named as par2 sees it)."""
    return max(
        len(directory) + 1 + len(relative),
        REPAIR_PREFIX + len(seen_by_par2),
        len(b"/proc/self/fd/2147483647/") + len(relative) + LONGEST_VOLUME_SUFFIX,
    )


def directory_problem(directory: bytes, relative: bytes) -> str | None:
    """Why the subdirectory relative (of DIRECTORY) cannot be protected, or None."""
    if relative == PRIVATE:
        return "its parity would be nasbox's private folder in DATABASE; not protected (rename it)"
    longest = _longest_path(directory, relative, par2.path_as_par2_reads_it(relative))
    if longest + 2 >= PATH_MAX:  # not even a one-letter file fits
        return f"too deep: its path is longer than the system allows ({PATH_MAX} bytes); not protected"
    return None


def taken_parity_names(subdirectories: set[bytes]) -> dict[bytes, bytes]:
    """{file name: the sibling subdirectory whose parity directory has its parity file's name}."""
    taken = {}
    for subdirectory in sorted(subdirectories, reverse=True):  # the first in order wins
        if subdirectory.endswith(b".par2"):
            stem = subdirectory[: -len(b".par2")]
            volume = par2.VOLUME_NAME.fullmatch(stem)
            taken[stem] = subdirectory
            if volume:
                taken[volume.group(1)] = subdirectory
    return taken


def file_problem(
    directory: bytes,
    parent: bytes,
    name: bytes,
    size: int,
    redundancy: int,
    files: Container[bytes],
    taken: dict[bytes, bytes],
) -> str | None:
    """Why the file parent/name (parent relative to DIRECTORY) of size bytes cannot be
    protected at redundancy%, or None; files are the other files in parent, taken what
    taken_parity_names says of its subdirectories."""
    relative = parent + b"/" + name if parent else name
    seen_by_par2 = par2.path_as_par2_reads_it(relative)
    if seen_by_par2 != relative and not is_relative(seen_by_par2):
        return "not protected: par2 would read it elsewhere (it takes a backslash for a directory separator)"
    if (
        len(name) + LONGEST_VOLUME_SUFFIX > NAME_MAX
        and len(name + par2.volume_suffix(max(size, 1), redundancy)) > NAME_MAX
    ) or (seen_by_par2 != relative and any(len(part) > NAME_MAX for part in seen_by_par2.split(b"/"))):
        return f"name too long to protect: its parity file's name would exceed {NAME_MAX} bytes"
    if _longest_path(directory, relative, seen_by_par2) >= PATH_MAX:
        return f"path too long to protect: it exceeds what the system allows ({PATH_MAX} bytes)"
    if name in taken:
        return f"its parity file would have the name of the parity directory of {show(taken[name])}/; not protected"
    clash = par2.VOLUME_NAME.fullmatch(name)
    if clash and clash.group(1) in files:
        return f"its parity file would have the name of a recovery file of {show(clash.group(1))}; not protected"
    return None
