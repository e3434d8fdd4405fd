"""The one place rsync command lines are built, and the parser of its --stats output."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nasbox.sync.kind import SyncJob

PARTIAL_DIR = ".nasbox-partial"  # interrupted transfers wait here, out of sight


def sync(
    job: SyncJob, protected: list[str], dry_run: bool = False, max_delete: int | None = None, progress: bool = False
) -> list[str]:
    """rsync -a --delete --partial --sparse of SOURCE's contents into DESTINATION (--sparse: a
    disk image or a database's preallocated file takes no more room in the backup than it
    does in the source, nor in the versions that share it).

    protected: paths relative to DESTINATION that must be neither deleted nor overwritten
    (parity databases, nasbox's state); an exclude rule does both. progress: rsync reports
    its overall progress (bytes, percentage, rate, time left) as it goes."""
    argv = ["rsync", "-a", "--delete", "--sparse", f"--partial-dir={PARTIAL_DIR}", "--stats", "--no-human-readable"]
    argv += ["--itemize-changes"] * dry_run  # a preview lists what it would change
    argv += ["--info=progress2"] * progress
    argv += ["-H"] * job.hard_links + ["-A"] * job.acls + ["-X"] * job.xattrs
    if job.bwlimit:
        argv.append(f"--bwlimit={job.bwlimit}")
    if dry_run:
        argv.append("--dry-run")
    if max_delete is not None:
        argv.append(f"--max-delete={max_delete}")
    argv += [f"--exclude={pattern}" for pattern in job.exclude]
    # Anchored, and without a trailing '/': the name is left alone whatever it is (a link
    # planted in a directory's place too).
    argv += [f"--exclude=/{literal(path.strip('/'))}" for path in protected]
    return argv + ["--", job.source.rstrip("/") + "/", job.destination.rstrip("/") + "/"]


def content_check(job: SyncJob, files_from: str) -> list[str]:
    """A preview that compares the bytes (--checksum) of the files named, NUL-separated and
    relative to SOURCE, in the file files_from: a file whose bytes differ is listed as
    ">fc...", one that differs in its attributes only as ".f..." (a new mtime, say)."""
    argv = ["rsync", "-a", "--checksum", "--dry-run", "--itemize-changes", f"--files-from={files_from}", "--from0"]
    return argv + ["--", job.source.rstrip("/") + "/", job.destination.rstrip("/") + "/"]


def literal(path: str) -> str:
    """path as an rsync filter pattern that matches that name only: rsync reads * ? [ as
    wildcards, and a backslash as an escape once the pattern holds one of them."""
    return re.sub(r"([*?\[\\])", r"\\\1", path) if re.search(r"[*?\[]", path) else path


@dataclass(frozen=True)
class TransferStats:
    # Files are everything but directories (regular files, links, devices), as rsync's
    # "Number of ... files: N (reg: .., dir: ..)" lines count them less their "dir:" part.
    files: int = 0  # in SOURCE
    created: int = 0  # in DESTINATION
    transferred: int = 0  # stored in DESTINATION: files that failed or vanished are not
    deleted: int = 0  # from DESTINATION
    deleted_entries: int = 0  # the same with directories, as --max-delete counts them
    created_entries: int = 0  # created, directories included: the inodes a copy takes
    bytes_transferred: int = 0
    bytes_sent: int = 0
    bytes_per_s: float = 0.0


NUMBER = r"([\d,]+)"
ENTRY_COUNTS = {  # totals that include directories
    "files": r"^Number of files: ([\d,]+)(.*)$",
    "created": r"^Number of created files: ([\d,]+)(.*)$",
    "deleted": r"^Number of deleted files: ([\d,]+)(.*)$",
}
DIRECTORIES = re.compile(r"dir: ([\d,]+)")
PATTERNS = {
    "transferred": rf"^Number of regular files transferred: {NUMBER}",
    "bytes_transferred": rf"^Total transferred file size: {NUMBER} bytes",
    "bytes_sent": rf"^Total bytes sent: {NUMBER}",
}
RATE = re.compile(r"^sent [\d,]+ bytes\s+received [\d,]+ bytes\s+([\d,.]+) bytes/sec", re.MULTILINE)


# Lines naming a file that rsync counts as transferred ("Number of regular files transferred"
# counts attempts) but did not store: it vanished or could not be read before it was sent, or
# the receiver could not create it. The [sender]/[receiver] tags are rsync 3.2 and later.
FAILED_FILE = [
    re.compile(pattern)
    for pattern in (
        r'^file has vanished: "(.+)"',
        r'^rsync: (?:\[sender\] )?send_files failed to open "(.+)": ',
        r'^rsync: (?:\[receiver\] )?mkstemp "(.+)" failed: ',
    )
]


def failed_files(errors: str) -> set[str]:
    """The files rsync's stderr reports as not transferred after all."""
    return {found.group(1) for line in errors.splitlines() for pattern in FAILED_FILE if (found := pattern.match(line))}


# --itemize-changes lines: "*deleting name", or YXcstpoguax and a name (">f+++++++++ a.txt").
ITEMIZED = re.compile(r"^(\*deleting|[<>ch.][fdLDS][.+?cstpoguax]{9}) ", re.MULTILINE)


def changes_listed(output: str) -> bool:
    """Whether a --dry-run --itemize-changes output lists anything to change."""
    return ITEMIZED.search(output) is not None


def changes(output: str) -> list[str]:
    """The lines of an --itemize-changes output that say what changes ("*deleting   old.txt")."""
    return [line for line in output.splitlines() if ITEMIZED.match(line)]


# A regular file rsync would copy over the one in DESTINATION (a new file is ">f+++++++++");
# the flags after ">f": c checksum, s size, t mtime, then attributes.
REWRITTEN = re.compile(r"^>f(?!\+{9} )(\S{9}) (.*)$", re.MULTILINE)
ESCAPED = re.compile(r"\\#([0-7]{3})")  # rsync writes unprintable bytes of names as \#ooo


def rewrites(output: str) -> tuple[list[bytes], list[bytes]]:
    """The files an --itemize-changes output would rewrite in DESTINATION, as names relative
    to it: (those whose size changes, those of the same size). A new mtime alone makes rsync
    copy a file; whether its bytes changed, only a content_check tells."""
    resized: list[bytes] = []
    same_size: list[bytes] = []
    for flags, name in REWRITTEN.findall(output):
        (resized if flags[1] == "s" else same_size).append(unescaped(name))
    return resized, same_size


def unescaped(name: str) -> bytes:
    """A name as rsync printed it, as the bytes it names."""
    parts = ESCAPED.split(name)  # text, octal, text, ...
    return b"".join(bytes([int(part, 8)]) if i % 2 else part.encode() for i, part in enumerate(parts))


def parse_stats(output: str, errors: str = "") -> TransferStats:
    """The counts of `--stats` (rsync 3.1 and later wording); 0 where a line is absent.
    errors: rsync's stderr, whose failed and vanished files are not counted as transferred."""
    values: dict[str, int | float] = {}
    for key, pattern in ENTRY_COUNTS.items():
        found = re.search(pattern, output, re.MULTILINE)
        directories = DIRECTORIES.search(found.group(2)) if found else None
        values[key] = (number(found.group(1)) - (number(directories.group(1)) if directories else 0)) if found else 0
        if key in ("deleted", "created"):
            values[f"{key}_entries"] = number(found.group(1)) if found else 0
    for key, pattern in PATTERNS.items():
        found = re.search(pattern, output, re.MULTILINE)
        values[key] = number(found.group(1)) if found else 0
    # A vanished file named while the file list was built had not been counted: never below 0.
    values["transferred"] = max(0, int(values["transferred"]) - len(failed_files(errors)))
    rate = RATE.search(output)
    values["bytes_per_s"] = float(rate.group(1).replace(",", "")) if rate else 0.0
    return TransferStats(**values)  # type: ignore[arg-type]


def number(text: str) -> int:
    return int(text.replace(",", ""))
