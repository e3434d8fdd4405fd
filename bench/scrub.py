"""The scrub engine against par2 and md5sum run by hand: creating parity, verifying, a no-op
parity update, and parity overhead, on large files, many small files and a large tree.

Baselines: par2cmdline-turbo (the binary nasbox runs) and Debian's par2 0.8.1, one process
per file in sequence, with par2's default block count and with nasbox's sizing; md5sum over
the same files for verify. Times are wall time (time.perf_counter) around the engine call or
the whole loop of commands. Each target is printed beside what was measured.

    python3 bench/scrub.py [--large-mib 256] [--large-count 4] [--small-count 20000]
                           [--noop-count 100000] [--runs 3] [--dir /var/tmp]
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import _common as c
from nasbox.scrub.kind import ScrubJob
from nasbox.result import JobResult
from nasbox.scrub import par2 as nasbox_par2
from nasbox.scrub.engine import Scrub
from nasbox.scrub.trust import PRIVATE

DEBIAN_PAR2 = "/usr/bin/par2"
REDUNDANCY = 5
SUBDIRS = 100
DATABASE = ".pardatabase"  # inside the data directory; the md5sum baseline skips it
MB = 1e6
KIB, MIB = 1 << 10, 1 << 20
OVERHEAD_SIZES = (4 * KIB, 64 * KIB, 1 * MIB, 100 * MIB)

# Targets, printed beside what was measured
VERIFY_VS_MD5SUM = 1.2       # large files: nasbox verify time <= 1.2 x md5sum time
SMALL_VERIFY_FILES_S = 5000  # 4 KiB files verified per second
NOOP_SECONDS = 5.0           # no-op update of 100,000 files
NOOP_TARGET_FILES = 100_000
CREATE_VS_TURBO = 0.9        # large files: nasbox speed >= 0.9 x par2cmdline-turbo's


@dataclass
class Row:
    """One measured line: `seconds` for `files` files holding `nbytes` bytes."""
    label: str
    files: int
    seconds: float
    nbytes: int
    total_files: int  # the workload's file count; > files when a subset was measured
    parity: int | None = None  # parity bytes written, where that was measured

    @property
    def per_file(self) -> float:
        return self.seconds / self.files

    @property
    def all_files_s(self) -> str:
        """Seconds for the whole workload; scaled linearly (and marked ~) for a subset."""
        if self.files == self.total_files:
            return f"{self.seconds:.2f}"
        return f"~{self.per_file * self.total_files:.1f}"


@dataclass
class Target:
    what: str
    goal: str
    measured: str
    met: bool


# ---- environment -----------------------------------------------------------------------

def drop_caches() -> None:
    """Dirty data written back, then the page cache, dentries and inodes dropped."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def settle(cold: bool) -> None:
    """Before every timed run: sync (so no writeback of earlier steps lands in it); with
    cold, drop the page cache too."""
    drop_caches() if cold else os.sync()


def version(argv: Sequence[str]) -> str:
    out = subprocess.run(list(argv), capture_output=True, text=True)
    return (out.stdout + out.stderr).strip().splitlines()[0]


@contextlib.contextmanager
def scratch(parent: str) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="nasbox-bench-scrub-", dir=parent))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---- workloads -------------------------------------------------------------------------

def write_random(path: Path, size: int, chunk: int = 4 * MIB) -> None:
    with path.open("wb") as f:
        for offset in range(0, size, chunk):
            f.write(os.urandom(min(chunk, size - offset)))


def make_large(tree: Path, count: int, size: int) -> list[str]:
    tree.mkdir()
    names = [f"large-{i}.bin" for i in range(count)]
    for name in names:
        write_random(tree / name, size)
    return names


def make_small(tree: Path, count: int, size: int) -> list[str]:
    """count files of size random bytes, spread over SUBDIRS directories; relative paths."""
    tree.mkdir()
    for d in range(SUBDIRS):
        (tree / f"d{d:02d}").mkdir()
    names = [f"d{i % SUBDIRS:02d}/f{i:06d}" for i in range(count)]
    data = os.urandom(count * size)
    for i, name in enumerate(names):
        with open(tree / name, "wb") as f:
            f.write(data[i * size:(i + 1) * size])
    return sorted(names)


def job_for(tree: Path) -> ScrubJob:
    return ScrubJob(name="bench", directory=str(tree), database=str(tree / DATABASE),
                    redundancy=REDUNDANCY, schedule="daily")


def nasbox_parity_bytes(tree: Path) -> int:
    """The .par2 and .vol*.par2 files in DATABASE (not nasbox's private directory)."""
    total = 0
    for top, dirs, files in os.walk(tree / DATABASE):
        dirs[:] = [d for d in dirs if d != os.fsdecode(PRIVATE)]
        total += sum(os.lstat(os.path.join(top, f)).st_size for f in files)
    return total


def tree_bytes(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file())


# ---- timed runs ------------------------------------------------------------------------

def run_nasbox(tree: Path, update_only: bool, cold: bool) -> tuple[float, JobResult]:
    settle(cold)
    t0 = time.perf_counter()
    result = Scrub(job_for(tree), update_only=update_only).run()
    seconds = time.perf_counter() - t0
    if result.status == "error" or result.stats.get("skipped") or result.stats.get("failed"):
        print(f"  ODD: nasbox run ended {result.status}: {result.summary}")
    return seconds, result


def nasbox_create(tree: Path, names: list[str], size_each: int, cold: bool, runs: int) -> Row:
    """The first full scrub, `runs` times (DATABASE removed between runs)."""
    times = []
    for run in range(1, runs + 1):
        shutil.rmtree(tree / DATABASE, ignore_errors=True)
        seconds, result = run_nasbox(tree, update_only=False, cold=cold)
        if result.stats["new"] != len(names):
            print(f"  ODD: first scrub made parity for {result.stats['new']} of {len(names)} files")
        times.append(seconds)
        print(f"  nasbox first full scrub (creation), run {run}: {seconds:.2f} s ({result.summary})", flush=True)
    return Row("nasbox, first full scrub (creation)", len(names), c.median(times), len(names) * size_each,
               len(names), nasbox_parity_bytes(tree))


def nasbox_verify(tree: Path, names: list[str], size_each: int, cold: bool, runs: int,
                  label: str) -> Row:
    times = []
    for run in range(1, runs + 1):
        seconds, result = run_nasbox(tree, update_only=False, cold=cold)
        if result.stats["verified"] != len(names):
            print(f"  ODD: verified {result.stats['verified']} of {len(names)} files: {result.summary}")
        times.append(seconds)
        print(f"  {label}, run {run}: {seconds:.2f} s", flush=True)
    return Row(label, len(names), c.median(times), len(names) * size_each, len(names))


def par2_create_argv(binary: str, tree: Path, out: Path, name: str, size: int, sized: bool) -> list[str]:
    if sized:
        block_size, recovery = nasbox_par2.sizing(size, REDUNDANCY)
        options = [f"-s{block_size}", f"-c{recovery}", "-n1"]
    else:
        options = [f"-r{REDUNDANCY}", "-n1"]
    return [binary, "create", *options, "-q", "-q", "-B", str(tree), str(out / f"{name}.par2"), "--",
            str(tree / name)]


def par2_verify_argv(binary: str, tree: Path, out: Path, name: str) -> list[str]:
    return [binary, "verify", "-q", "-q", "-B", str(tree), str(out / f"{name}.par2")]


def run_each(argvs: list[list[str]]) -> float:
    """Seconds for running the commands one after another; each must succeed."""
    t0 = time.perf_counter()
    for argv in argvs:
        result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if result.returncode != 0:
            raise RuntimeError(f"{shlex.join(argv)} exited {result.returncode}: {result.stderr.decode()[-300:]}")
    return time.perf_counter() - t0


def per_file_tool(label: str, argvs: list[list[str]], nbytes: int, total_files: int, cold: bool,
                  runs: int, out: Path | None = None) -> Row:
    """A par2 process per file, in sequence, `runs` times; out, when given, is the directory
    the parity goes to (emptied before every run)."""
    times = []
    for run in range(1, runs + 1):
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)
            for d in {Path(argv[-3]).parent for argv in argvs}:  # create: ... OUT.par2 -- FILE
                d.mkdir(parents=True, exist_ok=True)
        settle(cold)
        times.append(run_each(argvs))
        print(f"  {label}, run {run}: {times[-1]:.2f} s for {len(argvs)} files", flush=True)
    return Row(label, len(argvs), c.median(times), nbytes, total_files, tree_bytes(out) if out else None)


def md5sum(tree: Path, files: int, nbytes: int, parallel: int, cold: bool, runs: int) -> Row:
    # -P alone runs one md5sum while all names fit one command line (always, for 4 large
    # files): -n splits the names into 4 batches per process.
    batch = max(1, -(-files // (4 * parallel)))
    xargs = "xargs -0 md5sum" if parallel == 1 else f"xargs -0 -P{parallel} -n{batch} md5sum"
    command = (f"find {shlex.quote(str(tree))} -type f -not -path '*/{DATABASE}/*' -print0"
               f" | {xargs} > /dev/null")
    label = f"md5sum: {xargs}"  # no "|": the tables are Markdown
    times = []
    for run in range(1, runs + 1):
        settle(cold)
        seconds, _ = c.timed(["bash", "-o", "pipefail", "-c", command])
        times.append(seconds)
        print(f"  {label}, run {run}: {seconds:.2f} s", flush=True)
    return Row(label, files, c.median(times), nbytes, files)


# ---- tables ----------------------------------------------------------------------------

def rate_cells(row: Row) -> list[str]:
    return [f"{row.files}", f"{row.seconds:.2f}", row.all_files_s,
            f"{row.nbytes / row.seconds / MB:.1f}", f"{row.files / row.seconds:,.0f}"]


RATE_HEADERS = ["files run", "seconds", "all files, s", "MB/s", "files/s"]


def print_create(rows: list[Row], baseline: Row) -> None:
    """Parity creation; speed relative to par2cmdline-turbo with its defaults (per file)."""
    table = []
    for row in rows:
        parity = "-" if row.parity is None else f"{row.parity / row.nbytes:.1%}"
        table.append([row.label, *rate_cells(row), parity, f"{baseline.per_file / row.per_file:.2f}x"])
    c.print_table(["create parity", *RATE_HEADERS, "parity/data", "speed vs turbo -r5"], table)


def print_verify(rows: list[Row], baseline: Row) -> None:
    """Verification; time relative to single-process md5sum (per file)."""
    table = [[row.label, *rate_cells(row), f"{row.per_file / baseline.per_file:.2f}x"] for row in rows]
    c.print_table(["verify", *RATE_HEADERS, "time vs md5sum"], table)


def subset_note(label: str, files: int, total: int) -> str:
    return label if files == total else f"{label} [first {files} of {total} files]"


# ---- the workloads ---------------------------------------------------------------------

@dataclass
class Setup:
    args: argparse.Namespace
    root: Path
    turbo: str
    targets: list[Target]


def par2_rows(s: Setup, tree: Path, names: list[str], size: int, debian_count: int, cold: bool,
              kind: str, runs: int) -> tuple[list[Row], list[Row]]:
    """create and verify rows of the per-file par2 baselines for one workload; the turbo rows
    are run `runs` times, Debian's (slow) once."""
    total = len(names)
    default = f"-r{REDUNDANCY} -n1"
    variants = [("par2cmdline-turbo", default, s.turbo, False, names, "turbo-default"),
                ("par2cmdline-turbo", "nasbox's -s/-c", s.turbo, True, names, "turbo-sized"),
                ("Debian par2 0.8.1", default, DEBIAN_PAR2, False, names[:debian_count], "debian")]
    created, verified = [], []
    for tool, options, binary, sized, subset, tag in variants:
        if not subset:
            continue
        repeat = 1 if binary == DEBIAN_PAR2 else runs
        out = s.root / f"{kind}-{tag}"
        argvs = [par2_create_argv(binary, tree, out, n, size, sized) for n in subset]
        label = subset_note(f"{tool} per file, {options}", len(subset), total)
        created.append(per_file_tool(label, argvs, len(subset) * size, total, cold, repeat, out))
        if not sized:  # each tool verifies its own parity, made with par2's default block count
            argvs = [par2_verify_argv(binary, tree, out, n) for n in subset]
            label = subset_note(f"{tool} per file, par2 verify", len(subset), total)
            verified.append(per_file_tool(label, argvs, len(subset) * size, total, cold, repeat))
        shutil.rmtree(out)
    return created, verified


def large_files(s: Setup) -> None:
    a = s.args
    size = a.large_mib * MIB
    print(f"\n== A. large files: {a.large_count} x {a.large_mib} MiB; page cache dropped before every "
          "timed run ==", flush=True)
    tree = s.root / "large"
    names = make_large(tree, a.large_count, size)
    debian = min(a.debian_large_count, len(names))
    created = [nasbox_create(tree, names, size, cold=True, runs=a.runs)]
    verified = [nasbox_verify(tree, names, size, True, a.runs, "nasbox, full scrub of the unchanged tree")]
    par2_created, par2_verified = par2_rows(s, tree, names, size, debian, cold=True, kind="large", runs=a.runs)
    created += par2_created
    verified += par2_verified
    verified.append(md5sum(tree, len(names), len(names) * size, 1, True, a.runs))
    verified.append(md5sum(tree, len(names), len(names) * size, 2, True, a.runs))
    shutil.rmtree(tree)

    print(f"\nA. Large files, {a.large_count} x {a.large_mib} MiB: create parity ({REDUNDANCY}%), "
          f"page cache dropped before each run; median of {a.runs} runs, Debian par2: one run\n")
    print_create(created, created[1])
    print(f"\nA. Large files: verify; page cache dropped before each run; median of {a.runs} runs, "
          "Debian par2: one run\n")
    print_verify(verified, verified[-2])
    ratio_create = created[1].per_file / created[0].per_file
    ratio_verify = verified[0].per_file / verified[-2].per_file
    s.targets += [
        Target("A. create, large files", f">= {CREATE_VS_TURBO}x turbo's speed (nasbox s <= turbo s / 0.9)",
               f"{ratio_create:.2f}x ({created[0].seconds:.2f} s vs {created[1].seconds:.2f} s)",
               ratio_create >= CREATE_VS_TURBO),
        Target("A. verify, large files", f"<= {VERIFY_VS_MD5SUM}x md5sum's time",
               f"{ratio_verify:.2f}x ({verified[0].seconds:.2f} s vs {verified[-2].seconds:.2f} s)",
               ratio_verify <= VERIFY_VS_MD5SUM)]
    print_targets(s.targets[-2:])


def small_files(s: Setup) -> None:
    a = s.args
    size = 4 * KIB
    print(f"\n== B. small files: {a.small_count} x 4 KiB in {SUBDIRS} directories; warm page cache "
          "(sync before each run) unless a row says 'cache dropped' ==", flush=True)
    tree = s.root / "small"
    names = make_small(tree, a.small_count, size)
    nbytes = len(names) * size
    debian = min(a.debian_small_count, len(names))
    created = [nasbox_create(tree, names, size, cold=False, runs=1)]
    verified = [nasbox_verify(tree, names, size, False, a.runs, "nasbox, full scrub of the unchanged tree"),
                nasbox_verify(tree, names, size, True, a.runs, "nasbox, full scrub, cache dropped")]
    par2_created, par2_verified = par2_rows(s, tree, names, size, debian, cold=False, kind="small", runs=1)
    created += par2_created
    verified += par2_verified
    md5 = md5sum(tree, len(names), nbytes, 1, False, a.runs)
    verified += [md5, md5sum(tree, len(names), nbytes, 2, False, a.runs)]
    cold_md5 = md5sum(tree, len(names), nbytes, 1, True, a.runs)
    cold_md5.label += ", cache dropped"
    verified.append(cold_md5)
    shutil.rmtree(tree)

    print(f"\nB. Small files, {a.small_count} x 4 KiB: create parity ({REDUNDANCY}%), warm page cache; "
          "one run each; nasbox uses both cores, the par2 rows one process at a time\n")
    print_create(created, created[1])
    print(f"\nB. Small files: verify (nasbox and md5sum: median of {a.runs} runs; par2: one run)\n")
    print_verify(verified, md5)
    for row, what in ((verified[0], "warm cache"), (verified[1], "cache dropped (not a stated target)")):
        rate = row.files / row.seconds
        s.targets.append(Target(f"B. verify, 4 KiB files, {what}", f">= {SMALL_VERIFY_FILES_S:,} files/s",
                                f"{rate:,.0f} files/s ({row.seconds:.2f} s)", rate >= SMALL_VERIFY_FILES_S))
    print_targets(s.targets[-2:])


def noop_update(s: Setup) -> None:
    a = s.args
    size = KIB
    print(f"\n== C. no-op update: {a.noop_count} x 1 KiB in {SUBDIRS} directories ==", flush=True)
    tree = s.root / "noop"
    t0 = time.perf_counter()
    names = make_small(tree, a.noop_count, size)
    print(f"  tree written in {time.perf_counter() - t0:.1f} s", flush=True)
    setup_s, result = run_nasbox(tree, update_only=False, cold=False)
    print(f"  setup (first full scrub, creating parity): {setup_s:.1f} s ({result.summary})", flush=True)
    rows = []
    for cold, label in ((False, "warm cache"), (True, "cache dropped")):
        times = []
        for run in range(1, a.runs + 1):
            seconds, result = run_nasbox(tree, update_only=True, cold=cold)
            if result.stats["files"] != len(names) or result.stats["new"] or result.stats["updated"]:
                print(f"  ODD: no-op update did work: {result.summary}")
            times.append(seconds)
            print(f"  no-op update ({label}), run {run}: {seconds:.2f} s", flush=True)
        rows.append((label, times))
    shutil.rmtree(tree)

    print(f"\nC. No-op parity update (Scrub(job, update_only=True).run()) of {a.noop_count:,} unchanged files; "
          f"setup: the engine's first full scrub created their parity in {setup_s:.1f} s "
          f"({a.noop_count / setup_s:,.0f} files/s)\n")
    table = []
    for label, times in rows:
        median = c.median(times)
        cells = [f"{t:.2f}" for t in times] + [f"{median:.2f}", f"{a.noop_count / median:,.0f}"]
        table.append([f"nasbox update-only, {label}", *cells])
        if a.noop_count != NOOP_TARGET_FILES:
            scaled = median * NOOP_TARGET_FILES / a.noop_count
            table.append([f"  extrapolated linearly to {NOOP_TARGET_FILES:,} files", *([""] * a.runs),
                          f"~{scaled:.2f}", ""])
    c.print_table(["no-op update", *[f"run {i}" for i in range(1, a.runs + 1)], "median s", "files/s"], table)
    warm = c.median(rows[0][1]) * NOOP_TARGET_FILES / a.noop_count
    note = "" if a.noop_count == NOOP_TARGET_FILES else f" (EXTRAPOLATED from {a.noop_count:,} files)"
    s.targets.append(Target(f"C. no-op update of {NOOP_TARGET_FILES:,} files, warm cache",
                            f"< {NOOP_SECONDS:.0f} s", f"{warm:.2f} s{note}", warm < NOOP_SECONDS))
    print_targets(s.targets[-1:])


def overhead(s: Setup) -> None:
    """Parity bytes / data bytes for one file of each size."""
    print(f"\n== D. parity overhead at {REDUNDANCY}% ==", flush=True)
    table = []
    for size in OVERHEAD_SIZES:
        tree = s.root / f"overhead-{size}"
        tree.mkdir()
        write_random(tree / "file", size)
        run_nasbox(tree, update_only=False, cold=False)
        cells = [human(size), *share(nasbox_parity_bytes(tree), size)]
        for label, options in (("defaults", [f"-r{REDUNDANCY}"]), ("-n1", [f"-r{REDUNDANCY}", "-n1"])):
            out = s.root / f"overhead-out-{label}"
            out.mkdir()
            c.timed([s.turbo, "create", *options, "-q", "-q", "-B", str(tree), str(out / "file.par2"), "--",
                     str(tree / "file")])
            cells += share(tree_bytes(out), size)
            shutil.rmtree(out)
        block_size, recovery = nasbox_par2.sizing(size, REDUNDANCY)
        cells.append(f"-s{block_size} -c{recovery}")
        table.append(cells)
        shutil.rmtree(tree)
    print(f"\nD. Parity overhead at {REDUNDANCY}%: parity bytes (index .par2 + recovery .vol*.par2) / data bytes\n")
    c.print_table(["file", "nasbox bytes", "nasbox", f"turbo -r{REDUNDANCY} bytes", f"turbo -r{REDUNDANCY}",
                   f"turbo -r{REDUNDANCY} -n1 bytes", f"turbo -r{REDUNDANCY} -n1", "nasbox sizing"], table)


def share(parity: int, size: int) -> list[str]:
    return [f"{parity:,}", f"{parity / size:.1%}"]


def human(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"


def print_targets(targets: list[Target]) -> None:
    print()
    c.print_table(["target", "goal", "measured", "met?"],
                  [[t.what, t.goal, t.measured, "met" if t.met else "NOT MET"] for t in targets])


def describe(s: Setup) -> str:
    a = s.args
    job = job_for(s.root)
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(s.root)], capture_output=True, text=True).stdout.strip()
    return (f"scrub benchmark, {datetime.date.today()}, {os.cpu_count()} cores, kernel {platform.release()}, "
            f"Python {platform.python_version()}\n"
            f"nasbox: ScrubJob defaults (redundancy {REDUNDANCY}%, nice {job.nice}, ionice {job.ionice}), "
            f"workers = cores; "
            f"the baselines run at the bench's normal priority\n"
            f"par2cmdline-turbo: {s.turbo} ({version([s.turbo, '--version'])}); "
            f"Debian: {DEBIAN_PAR2} ({version([DEBIAN_PAR2, '--version'])})\n"
            f"scratch: {s.root} ({fs}); large files: page cache dropped (sync; echo 3 > "
            "/proc/sys/vm/drop_caches) before every timed run; small files and no-op: warm unless marked")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large-mib", type=int, default=256, help="size of each large file (default 256)")
    parser.add_argument("--large-count", type=int, default=4, help="number of large files (default 4)")
    parser.add_argument("--small-count", type=int, default=20000, help="number of 4 KiB files (default 20000)")
    parser.add_argument("--noop-count", type=int, default=100000, help="files in the no-op tree (default 100000)")
    parser.add_argument("--debian-large-count", type=int, default=1_000_000,
                        help="large files given to Debian's par2 (default all)")
    parser.add_argument("--debian-small-count", type=int, default=2000,
                        help="small files given to Debian's par2 (default 2000; rates scale)")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of nasbox verify, md5sum and no-op update; median shown (default 3)")
    parser.add_argument("--dir", default="/var/tmp", help="parent of the scratch directory (default /var/tmp)")
    parser.add_argument("--only", default="large,small,noop,overhead",
                        help="comma-separated workloads to run (default: large,small,noop,overhead)")
    args = parser.parse_args()
    c.exit_cleanly_on_sigterm()
    if os.geteuid() != 0:
        sys.exit("run as root: the page cache is dropped before timed runs")
    workloads: dict[str, Callable[[Setup], None]] = {
        "large": large_files, "small": small_files, "noop": noop_update, "overhead": overhead}
    chosen = args.only.split(",")
    if unknown := set(chosen) - set(workloads):
        sys.exit(f"unknown workloads: {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    with scratch(args.dir) as root:
        # nasbox's own state (what each run saw) in the scratch directory, not the machine's /config.
        os.environ["NASBOX_HOME"], os.environ["NASBOX_RUN_DIR"] = str(root / "home"), str(root / "run")
        s = Setup(args, root, nasbox_par2.binary(), [])
        print(describe(s), flush=True)
        for name in chosen:
            workloads[name](s)
    if s.targets:
        print("\nTargets")
        print_targets(s.targets)
    print(f"\ntotal run time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
