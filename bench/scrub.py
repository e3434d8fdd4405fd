"""The scrub engine against par2cmdline-turbo and md5sum run by hand, on the workloads users
meet: parity overhead on disk for files of one size, 100,000 small files, one large file
(verify with the cache dropped, repair of one corrupt byte), and a mixed tree like a photo
library.

Every size is shown twice: apparent (st_size, what `ls -l` shows) and allocated
(st_blocks * 512, what `du` shows). Parity is every *.par2 file anywhere under DATABASE,
wherever the engine keeps it. Times are wall time (time.perf_counter) around the engine call
or the whole command. Each target is printed beside what was measured; nothing is asserted.

    python3 bench/scrub.py [--only overhead,small,large,mixed] [--runs 3] [--dir /var/tmp]
    python3 bench/scrub.py --quick      # smoke run, 2-3 min: smaller workloads
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import math
import os
import platform
import random
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import _common as c

from nasbox.result import JobResult
from nasbox.scrub import par2 as nasbox_par2
from nasbox.scrub.engine import Scrub
from nasbox.scrub.kind import ScrubJob

REDUNDANCY = 5
SEED = 20261128  # file sizes and layouts are the same in every run
MB = 1e6
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
BLOCK = 4 * KIB  # the allocation unit assumed when estimating the space a workload needs
SMALL_SIZES = (1 * KIB, 4 * KIB)  # the small workload: uniform random sizes in this range
SMALL_DIRS = 100
OVERHEAD_SIZES = (4 * KIB, 64 * KIB, 1 * MIB, 100 * MIB)
MIXED_MIN = 4 * KIB
FILES_PER_MIXED_DIR = 100  # 20,000 files: 200 directories
MD5SUM_BATCH = 500
IONICE_CLASSES = {"realtime": 1, "best-effort": 2, "idle": 3}  # ionice -c
# Space a workload may take beyond its data, for the estimate made before writing anything:
# nasbox's parity (5% plus packets and block rounding per file), turbo's per-file parity
# (index and recovery packets of par2's default 2000 blocks: ~150 KB for a 4 KiB file).
PARITY_SHARE, PARITY_PER_FILE, TURBO_PER_FILE = 0.10, 8 * KIB, 400 * KIB
DISK_MARGIN = 1 * GIB


# ---- targets ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Goal:
    what: str
    goal: str  # in words; kind and limit say the same for the comparison
    kind: str  # "at most", "under" or "at least"
    limit: float

    def met(self, value: float) -> bool:
        return {"at most": value <= self.limit, "under": value < self.limit, "at least": value >= self.limit}[self.kind]


SMALL_TARGET_FILES = 100_000
LARGE_TARGET_MIB = 1024
SMALL_PARITY = Goal("parity allocated on disk at 5%, 100,000 files of 1-4 KiB",
                    "at most 15% of the data's allocated size", "at most", 0.15)
LARGE_PARITY = Goal("parity allocated on disk at 5%, 1 MiB files and larger", "at most 6%", "at most", 0.06)
SMALL_VERIFY = Goal("full verify, warm, 100,000 small files, `nasbox scrub JOB --now` with the runner",
                    "at most 2x md5sum's time with `xargs -P2`",
                    "at most", 2.0)
LARGE_VERIFY = Goal("full verify, one 1 GiB file, cache dropped", "at most 1.2x md5sum", "at most", 1.2)
SMALL_CREATE = Goal("first scrub of 100,000 small files", "at least 2,000 files/s", "at least", 2000)
NOOP_UPDATE = Goal("no-op update, 100,000 files", "under 1 s", "under", 1.0)
REPAIR = Goal("repair of one flipped byte in a 1 GiB file", "under 3x the time of verifying it", "under", 3.0)
GOALS = (SMALL_PARITY, LARGE_PARITY, SMALL_VERIFY, LARGE_VERIFY, SMALL_CREATE, NOOP_UPDATE, REPAIR)


@dataclass(frozen=True)
class Measured:
    shown: str
    met: bool


def measure(goal: Goal, value: float, shown: str) -> tuple[Goal, Measured]:
    return goal, Measured(shown, goal.met(value))


# ---- sizes -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Sizes:
    """Regular files: how many, their apparent bytes (st_size), their allocated bytes."""
    files: int = 0
    apparent: int = 0
    allocated: int = 0


def files_sizes(stats: Iterable[os.stat_result]) -> Sizes:
    stats = list(stats)
    return Sizes(len(stats), sum(st.st_size for st in stats), sum(st.st_blocks * 512 for st in stats))


def sizes_under(root: Path, wanted: Callable[[str], bool] = lambda name: True) -> Sizes:
    """The regular files under root whose name is wanted (directories themselves not counted)."""
    found = (os.lstat(os.path.join(top, name)) for top, _dirs, names in os.walk(root) for name in names
             if wanted(name))
    return files_sizes(st for st in found if stat.S_ISREG(st.st_mode))


def parity_sizes(database: Path) -> Sizes:
    """All parity, wherever the engine keeps it under DATABASE (its catalog and lock are not parity)."""
    return sizes_under(database, lambda name: name.endswith(".par2"))


def ratio(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def human(size: float) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"


@dataclass
class SizeRow:
    label: str
    parity: Sizes
    data: Sizes  # the files this parity protects

    def overhead(self) -> tuple[float, float]:
        """(apparent, allocated) parity / data."""
        return ratio(self.parity.apparent, self.data.apparent), ratio(self.parity.allocated, self.data.allocated)

    def cells(self) -> list[str]:
        apparent, allocated = self.overhead()
        return [self.label, f"{self.data.files:,}", f"{self.data.apparent:,}", f"{self.data.allocated:,}",
                f"{self.parity.files:,}", f"{self.parity.apparent:,}", f"{self.parity.allocated:,}",
                f"{apparent:.1%}", f"{allocated:.1%}"]


SIZE_HEADERS = ["parity", "data files", "data apparent B", "data allocated B", "parity files",
                "parity apparent B", "parity allocated B", "apparent overhead", "allocated overhead"]


# ---- timings ---------------------------------------------------------------------------

@dataclass
class Row:
    """One timed line: the median of `runs` for `files` files holding `nbytes` bytes."""
    label: str
    files: int
    runs: list[float]
    nbytes: int
    total_files: int  # the workload's file count; > files when a subset was measured

    @property
    def seconds(self) -> float:
        return c.median(self.runs)

    @property
    def per_file(self) -> float:
        return self.seconds / self.files

    def whole(self) -> str:
        """Seconds for the whole workload; scaled linearly (and marked ~) for a subset."""
        if self.files == self.total_files:
            return f"{self.seconds:.2f}"
        return f"~{self.per_file * self.total_files:.2f}"

    def cells(self) -> list[str]:
        return [self.label, f"{self.files:,}", f"{len(self.runs)}", f"{self.seconds:.2f}", self.whole(),
                f"{self.nbytes / self.seconds / MB:,.1f}", f"{self.files / self.seconds:,.0f}"]


def print_times(title: str, rows: Sequence[Row], baseline: Row | None) -> None:
    """rows, with each one's time per file relative to baseline's (so a subset compares fairly)."""
    print(f"\n{title}\n")
    headers = [title.split(":")[0], "files", "runs", "median s", "all files, s", "MB/s", "files/s"]
    if baseline is None:
        c.print_table(headers, [row.cells() for row in rows])
        return
    c.print_table(headers + ["time per file vs baseline"],
                  [row.cells() + [vs(row, baseline)] for row in rows])


def vs(row: Row, baseline: Row) -> str:
    return "baseline" if row is baseline else f"{row.per_file / baseline.per_file:.2f}x"


def print_sizes(title: str, rows: Sequence[SizeRow]) -> None:
    print(f"\n{title}\n")
    c.print_table(SIZE_HEADERS, [row.cells() for row in rows])


# ---- environment -----------------------------------------------------------------------

def settle(cold: bool) -> None:
    """Before every timed run: sync (writeback of earlier steps stays out of the run); with
    cold, drop the page cache, dentries and inodes too."""
    os.sync()
    if cold:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


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


@contextlib.contextmanager
def ext4_image(image: Path, size: int, mount: Path) -> Iterator[Path]:
    """A fresh ext4 filesystem in a sparse image file, loop-mounted on mount; always unmounted.
    -I 256: nanosecond timestamps, whatever the image's size."""
    with image.open("wb") as f:
        f.truncate(size)
    c.timed(["mkfs.ext4", "-q", "-F", "-I", "256", str(image)])
    mount.mkdir()
    c.timed(["mount", "-o", "loop", str(image), str(mount)])
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)]).returncode != 0:
            # still busy (a par2 that a SIGTERM left running): detached now, released when it ends
            subprocess.run(["umount", "-l", str(mount)])
        image.unlink()


def write_random(path: Path, size: int, chunk: int = 4 * MIB) -> None:
    with path.open("wb") as f:
        for offset in range(0, size, chunk):
            f.write(os.urandom(min(chunk, size - offset)))


def make_tree(data: Path, sizes: Sequence[int], dirs: int) -> list[str]:
    """Files of the given sizes (random bytes) spread over dirs directories; their relative paths."""
    names = [f"d{i % dirs:03d}/f{i:06d}" for i in range(len(sizes))]
    for d in range(dirs):
        (data / f"d{d:03d}").mkdir(parents=True)
    for name, size in zip(names, sizes, strict=True):
        write_random(data / name, size)
    return sorted(names)


def small_sizes(count: int) -> list[int]:
    low, high = SMALL_SIZES
    rng = random.Random(SEED)
    return [rng.randint(low, high) for _ in range(count)]


def mixed_sizes(count: int, max_mib: float) -> list[int]:
    """Log-uniform between MIXED_MIN and max_mib MiB, as in a photo library (thumbnails to raw files)."""
    rng = random.Random(SEED)
    low, high = math.log(MIXED_MIN), math.log(max_mib * MIB)
    return [int(math.exp(rng.uniform(low, high))) for _ in range(count)]


def space_needed(sizes: Sequence[int], turbo_files: int) -> int:
    """A generous estimate of the disk a workload takes at its peak: data, both parities, margin."""
    data = sum(-(-size // BLOCK) * BLOCK for size in sizes)
    parity = data * PARITY_SHARE + len(sizes) * PARITY_PER_FILE
    return int(data + 2 * parity + turbo_files * TURBO_PER_FILE) + DISK_MARGIN


# ---- timed runs ------------------------------------------------------------------------

@dataclass
class Workload:
    """A data directory and its DATABASE beside it (not inside: every file of data is data)."""
    name: str
    root: Path
    names: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def database(self) -> Path:
        return self.root / "parity"

    @cached_property
    def nbytes(self) -> int:
        """Apparent bytes of the data (read once names is set)."""
        return files_sizes((self.data / n).lstat() for n in self.names).apparent

    def job(self) -> ScrubJob:
        return ScrubJob(name=f"bench-{self.name}", directory=str(self.data), database=str(self.database),
                        redundancy=REDUNDANCY, schedule="daily")


def counter(result: JobResult, key: str) -> int:
    """A counter of the engine's result; -1 where this engine does not report it."""
    return int(result.stats.get(key, -1))


def run_nasbox(w: Workload, cold: bool, update_only: bool = False, force: bool = False) -> tuple[float, JobResult]:
    settle(cold)
    t0 = time.perf_counter()
    result = Scrub(w.job(), update_only=update_only, force=force).run()
    seconds = time.perf_counter() - t0
    if result.status == "error" or counter(result, "skipped") > 0 or counter(result, "failed") > 0:
        print(f"  ODD: nasbox run ended {result.status}: {result.summary}")
    return seconds, result


def expect(result: JobResult, key: str, wanted: int, what: str) -> None:
    if (got := counter(result, key)) not in (wanted, -1):
        print(f"  ODD: {what}: stats[{key!r}] is {got}, expected {wanted} ({result.summary})")


def timed_runs(label: str, runs: int, once: Callable[[int], float]) -> list[float]:
    return interleaved(runs, [Timing(label, once, 0, 0, 0)])[0].runs


@dataclass
class Timing:
    """Something to time: once(run) runs it and returns its seconds; the rest is its Row's."""
    label: str
    once: Callable[[int], float]
    files: int
    nbytes: int
    total_files: int


def interleaved(runs: int, timings: Sequence[Timing]) -> list[Row]:
    """Each timing `runs` times, round robin (nasbox, its baselines, then nasbox again...), so
    that a busy spell of a shared machine falls on all of them alike; each run is printed
    with the load average (1 minute) after it."""
    times: list[list[float]] = [[] for _ in timings]
    for run in range(1, runs + 1):
        for timing, done in zip(timings, times, strict=True):
            done.append(timing.once(run))
            print(f"  {timing.label}, run {run}: {done[-1]:.2f} s (load {os.getloadavg()[0]:.2f})", flush=True)
    return [Row(t.label, t.files, done, t.nbytes, t.total_files) for t, done in zip(timings, times, strict=True)]


def busy_elsewhere() -> str:
    """What else uses the CPU now: top's second sample over one second, processes above 10%
    (the benchmark runs nothing meanwhile)."""
    out = subprocess.run(["top", "-b", "-n", "2", "-d", "1", "-o", "%CPU", "-w", "200"],
                         capture_output=True, text=True).stdout
    last = out[out.rfind("\ntop -"):].splitlines()
    table = last[last.index(next(line for line in last if line.lstrip().startswith("PID"))) + 1:]
    busy = [f"{fields[11]} {float(fields[8]):.0f}%" for fields in (line.split() for line in table)
            if len(fields) >= 12 and float(fields[8]) > 10 and int(fields[0]) != os.getpid()]
    return f"load {os.getloadavg()[0]:.2f}; " + (", ".join(busy) or "no process above 10% CPU")


def nasbox_create(w: Workload, runs: int) -> Row:
    """The first scrub, warm (the files were just written); each later run starts from an
    empty DATABASE again (force: a DATABASE that earlier runs made and is now gone would
    otherwise be taken for a disk that did not mount)."""
    def once(run: int) -> float:
        if run > 1:
            shutil.rmtree(w.database)
        seconds, result = run_nasbox(w, cold=False, force=run > 1)
        expect(result, "new", len(w.names), "first scrub")
        return seconds
    label = "nasbox, first scrub (creation)"
    return Row(label, len(w.names), timed_runs(label, runs, once), w.nbytes, len(w.names))


def nasbox_verify(w: Workload, cold: bool) -> Timing:
    def once(_run: int) -> float:
        seconds, result = run_nasbox(w, cold=cold)
        expect(result, "verified", len(w.names), "full scrub")
        return seconds
    return Timing(f"nasbox, full scrub (verify), {cache_state(cold)}", once, len(w.names), w.nbytes, len(w.names))


def command_env(w: Workload, runner: bool) -> dict[str, str]:
    """The environment of `nasbox scrub bench --now` (the job configured by environment, its
    DATABASE the one the engine's runs use); with and without the runner, apart: each has a
    run directory of its own, where the runner's socket is looked for."""
    work = w.root / ("command-runner" if runner else "command")
    return c.nasbox_command_env(work, SCRUB_BENCH=f"{w.data} {w.database} {REDUNDANCY}% daily")


def nasbox_command_verify(w: Workload, runner: bool) -> Timing:
    """The same full scrub as a user starts it, `nasbox scrub JOB --now`: the configuration,
    locks and history included; Python's start and nasbox's imports too without the runner
    (as the container runs it, with the runner, they are done once)."""
    env = command_env(w, runner)

    def once(_run: int) -> float:
        settle(cold=False)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "nasbox", "scrub", "bench", "--now"], env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            print(f"  ODD: `nasbox scrub bench --now` exited {done.returncode}: {done.stderr[-500:]}")
        return seconds
    how = "with the runner, as in the container" if runner else "without the runner"
    return Timing(f"`nasbox scrub JOB --now` (verify), {how}, warm", once, len(w.names), w.nbytes, len(w.names))


def nasbox_noop(w: Workload) -> Timing:
    def once(_run: int) -> float:
        seconds, result = run_nasbox(w, cold=False, update_only=True)
        for key in ("new", "updated", "removed"):
            expect(result, key, 0, "no-op update")
        return seconds
    return Timing("nasbox, no-op update (update_only=True), warm", once, len(w.names), w.nbytes, len(w.names))


def cache_state(cold: bool) -> str:
    return "cache dropped" if cold else "warm"


def md5sum(w: Workload, cold: bool, as_the_job: bool = False) -> Timing:
    """md5sum over the data with two processes, as a user checks a tree by hand; as_the_job:
    at the CPU and I/O priority nasbox's job runs at (on a busy machine that is what tells
    them apart)."""
    job = w.job()
    priority = f"nice -n {job.nice} ionice -c {IONICE_CLASSES[job.ionice]} " if as_the_job else ""
    command = (f"find {shlex.quote(str(w.data))} -type f -print0"
               f" | {priority}xargs -0 -P2 -n {MD5SUM_BATCH} md5sum > /dev/null")

    def once(_run: int) -> float:
        settle(cold)
        return c.timed(["bash", "-o", "pipefail", "-c", command])[0]
    label = f"md5sum, xargs -P2 -n {MD5SUM_BATCH}, {cache_state(cold)}"
    if as_the_job:
        label += f", nice {job.nice}, ionice {job.ionice}"
    return Timing(label, once, len(w.names), w.nbytes, len(w.names))


def subset(names: list[str], limit: int) -> list[str]:
    """At most limit names, taken evenly across the list (so their sizes are representative)."""
    step = max(1, math.ceil(len(names) / limit))
    return names[::step]


def turbo_create(w: Workload, turbo: str, limit: int) -> tuple[Row, SizeRow]:
    """par2cmdline-turbo, `par2 create -r5 -n1` in one process per file in sequence, warm,
    on an even subset of at most limit files; its parity goes beside DATABASE."""
    chosen = subset(w.names, limit)
    out = w.root / "turbo"
    argvs = []
    for name in chosen:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        argvs.append([turbo, "create", f"-r{REDUNDANCY}", "-n1", "-q", "-q", "-B", str(w.data),
                      str(out / f"{name}.par2"), "--", str(w.data / name)])
    settle(cold=False)
    t0 = time.perf_counter()
    for argv in argvs:
        result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if result.returncode != 0:
            raise RuntimeError(f"{shlex.join(argv)} exited {result.returncode}: {result.stderr.decode()[-300:]}")
    seconds = time.perf_counter() - t0
    label = f"par2cmdline-turbo per file, -r{REDUNDANCY} -n1"
    if len(chosen) < len(w.names):
        label += f" [{len(chosen):,} of {len(w.names):,} files]"
    print(f"  {label}: {seconds:.2f} s", flush=True)
    data = files_sizes((w.data / n).lstat() for n in chosen)
    sizes = SizeRow(label, sizes_under(out), data)
    shutil.rmtree(out)
    return Row(label, len(chosen), [seconds], data.apparent, len(w.names)), sizes


def nasbox_sizes(w: Workload) -> SizeRow:
    return SizeRow("nasbox", parity_sizes(w.database), sizes_under(w.data))


# ---- the workloads ---------------------------------------------------------------------

@dataclass
class Setup:
    args: argparse.Namespace
    root: Path
    turbo: str
    measured: dict[Goal, Measured] = field(default_factory=dict)

    def workload(self, name: str) -> Workload:
        w = Workload(name, self.root / name)
        w.root.mkdir()
        return w


def versus(row: Row, baseline: Row) -> str:
    return f"({row.seconds:.2f} s vs {baseline.seconds:.2f} s)"


def measured_on(count: int, target: int) -> str:
    """Said beside a target's figure when the workload was smaller than the target's."""
    return "" if count == target else f" [on {count:,} files]"


def overhead_counts(args: argparse.Namespace) -> list[tuple[int, int]]:
    """(file size, file count) of the overhead workload."""
    return list(zip(OVERHEAD_SIZES, (int(n) for n in args.overhead_counts.split(",")), strict=True))


def overhead(s: Setup) -> None:
    """Parity / data, apparent and allocated, for many files of each size."""
    print(f"\n== overhead: parity at {REDUNDANCY}% for files of one size ==", flush=True)
    rows: list[SizeRow] = []
    times: list[Row] = []
    for size, count in overhead_counts(s.args):
        w = s.workload(f"overhead-{size}")
        w.names = make_tree(w.data, [size] * count, dirs=max(1, count // 1000))
        created = nasbox_create(w, runs=1)
        turbo_row, turbo_sizes = turbo_create(w, s.turbo, s.args.turbo_count)
        for row in (created, turbo_row):
            row.label = f"{human(size)}: {row.label}"
        times += [created, turbo_row]
        rows += [SizeRow(f"{human(size)} x {count:,}: nasbox", parity_sizes(w.database), sizes_under(w.data)),
                 SizeRow(f"{human(size)} x {count:,}: {turbo_sizes.label}", turbo_sizes.parity, turbo_sizes.data)]
        shutil.rmtree(w.root)
    print_sizes(f"Overhead: parity / data at {REDUNDANCY}% (apparent: st_size; allocated: st_blocks * 512, as du)",
                rows)
    print_times("creation: first scrub and turbo per file, warm, one run each", times, None)
    large = [(size, row) for size, row in zip(OVERHEAD_SIZES, rows[::2], strict=True) if size >= MIB]
    if large:
        shares = [row.overhead()[1] for _size, row in large]
        value = ", ".join(f"{share:.1%} ({human(size)})" for (size, _row), share in zip(large, shares, strict=True))
        s.measured.update([measure(LARGE_PARITY, max(shares), value)])


def small(s: Setup) -> None:
    a = s.args
    low, high = SMALL_SIZES
    print(f"\n== small: {a.small_count:,} files of {human(low)}-{human(high)} in {SMALL_DIRS} directories ==",
          flush=True)
    w = s.workload("small")
    w.names = make_tree(w.data, small_sizes(a.small_count), SMALL_DIRS)
    created = nasbox_create(w, a.runs)
    sizes = nasbox_sizes(w)
    turbo_row, turbo_sizes = turbo_create(w, s.turbo, a.turbo_count)
    print(f"  other processes using the CPU: {busy_elsewhere()}", flush=True)
    with c.nasbox_runner(command_env(w, runner=True)):
        verify, alone, command, md5, md5_niced, noop = interleaved(
            a.runs, [nasbox_verify(w, cold=False), nasbox_command_verify(w, runner=False),
                     nasbox_command_verify(w, runner=True), md5sum(w, cold=False),
                     md5sum(w, cold=False, as_the_job=True), nasbox_noop(w)])
    print(f"  other processes using the CPU: {busy_elsewhere()}", flush=True)
    shutil.rmtree(w.root)

    print_times("small files, creation: warm", [created, turbo_row], turbo_row)
    print_times("small files, verify: warm", [verify, alone, command, md5, md5_niced], md5)
    print_times("small files, no-op update: warm", [noop], None)
    print_sizes(f"small files: parity / data at {REDUNDANCY}%", [sizes, turbo_sizes])

    note = measured_on(len(w.names), SMALL_TARGET_FILES)
    share = sizes.overhead()[1]
    times = command.seconds / md5.seconds  # as users start it
    rate = created.files / created.seconds
    scaled = noop.per_file * SMALL_TARGET_FILES
    noop_shown = f"{scaled:.2f} s"
    if note:
        noop_shown = f"~{noop_shown} [extrapolated from {noop.seconds:.2f} s on {len(w.names):,} files]"
    s.measured.update([measure(SMALL_PARITY, share, f"{share:.1%}{note}"),
                       measure(SMALL_VERIFY, times, f"{times:.2f}x {versus(command, md5)}{note}"),
                       measure(SMALL_CREATE, rate, f"{rate:,.0f} files/s{note}"),
                       measure(NOOP_UPDATE, scaled, noop_shown)])


def middle_byte(path: Path, image: Path) -> int:
    """Where the middle byte of path lies in image, the file holding its filesystem (filefrag)."""
    middle = path.stat().st_size // 2
    report = c.timed(["filefrag", "-s", "-v", "-b1", str(path)])[1].stdout  # -s: allocated first
    for logical, last, physical in re.findall(r"^\s*\d+:\s*(\d+)\.\.\s*(\d+):\s*(\d+)\.\.", report, re.M):
        if int(logical) <= middle <= int(last):
            return int(physical) + middle - int(logical)
    raise RuntimeError(f"no extent of {path} holds byte {middle}:\n{report}")


def middle_of(path: Path) -> bytes:
    with path.open("rb") as f:
        f.seek(path.stat().st_size // 2)
        return f.read(1)


def flip_below(image: Path, offset: int) -> None:
    """Corruption as a failing disk makes it: one byte changed in the image under the
    filesystem, so the file's size, mtime and ctime stay; the cache is dropped afterwards so
    the filesystem reads the changed byte."""
    fd = os.open(image, os.O_RDWR)
    try:
        os.pwrite(fd, bytes([os.pread(fd, 1, offset)[0] ^ 0xFF]), offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def large(s: Setup) -> None:
    a = s.args
    size = a.large_mib * MIB
    print(f"\n== large: one file of {human(size)} on a loop-mounted ext4 image ==", flush=True)
    root = s.workload("large").root
    image = root / "ext4.img"
    with ext4_image(image, large_image_size(a), root / "mnt") as mount:
        w = Workload("large", mount)
        w.data.mkdir()
        write_random(w.data / "large.bin", size)
        w.names = ["large.bin"]
        created = nasbox_create(w, a.runs)
        sizes = nasbox_sizes(w)
        turbo_row, turbo_sizes = turbo_create(w, s.turbo, 1)
        print(f"  other processes using the CPU: {busy_elsewhere()}", flush=True)
        verify, md5_cold, md5_niced, md5_warm, repair = interleaved(
            a.runs, [nasbox_verify(w, cold=True), md5sum(w, cold=True), md5sum(w, cold=True, as_the_job=True),
                     md5sum(w, cold=False), nasbox_repair(w, image)])
        print(f"  other processes using the CPU: {busy_elsewhere()}", flush=True)

    print_times("large file, creation: warm", [created, turbo_row], turbo_row)
    print_times("large file, verify", [verify, md5_cold, md5_niced, md5_warm], md5_cold)
    print_times("large file, repair of one flipped byte: cache dropped", [repair, verify], verify)
    print_sizes(f"large file: parity / data at {REDUNDANCY}%", [sizes, turbo_sizes])

    note = "" if a.large_mib == LARGE_TARGET_MIB else f" [on a {human(size)} file]"
    verify_times, repair_times = verify.seconds / md5_cold.seconds, repair.seconds / verify.seconds
    s.measured.update([measure(LARGE_VERIFY, verify_times, f"{verify_times:.2f}x {versus(verify, md5_cold)}{note}"),
                       measure(REPAIR, repair_times, f"{repair_times:.2f}x {versus(repair, verify)}{note}")])


def large_image_size(args: argparse.Namespace) -> int:
    """The large file, its parity from nasbox and turbo, and ext4's own metadata."""
    return args.large_mib * MIB * 5 // 4 + 256 * MIB


def nasbox_repair(w: Workload, image: Path) -> Timing:
    """Each run: one byte flipped below the filesystem, then a full scrub with the cache dropped."""
    path = w.data / w.names[0]
    original = middle_of(path)

    def once(_run: int) -> float:
        flip_below(image, middle_byte(path, image))
        seconds, result = run_nasbox(w, cold=True)
        expect(result, "repaired", 1, "repair")
        if middle_of(path) != original:
            print("  ODD: the flipped byte was not repaired")
        return seconds
    label = "nasbox, full scrub repairing one flipped byte, cache dropped"
    return Timing(label, once, 1, path.stat().st_size, 1)


def mixed(s: Setup) -> None:
    a = s.args
    sizes = mixed_sizes(a.mixed_count, a.mixed_max_mib)
    dirs = max(1, a.mixed_count // FILES_PER_MIXED_DIR)
    print(f"\n== mixed: {a.mixed_count:,} files of {human(MIXED_MIN)}-{human(a.mixed_max_mib * MIB)}, log-uniform, "
          f"{human(sum(sizes))}, in {dirs} directories ==", flush=True)
    w = s.workload("mixed")
    t0 = time.perf_counter()
    w.names = make_tree(w.data, sizes, dirs)
    print(f"  tree written in {time.perf_counter() - t0:.1f} s", flush=True)
    created = nasbox_create(w, runs=1)
    nasbox = nasbox_sizes(w)
    turbo_row, turbo_sizes = turbo_create(w, s.turbo, a.turbo_count)
    print(f"  other processes using the CPU: {busy_elsewhere()}", flush=True)
    verify, md5 = interleaved(a.runs, [nasbox_verify(w, cold=False), md5sum(w, cold=False)])
    print(f"  other processes using the CPU: {busy_elsewhere()}", flush=True)
    shutil.rmtree(w.root)
    warm = "warm" if sum(sizes) < memory_bytes() else "sync only (the tree is larger than RAM)"
    for row in (verify, md5):
        row.label = row.label.replace(", warm", f", {warm.split(' (')[0]}")
    print_times(f"mixed tree, creation: {warm}; one run", [created, turbo_row], turbo_row)
    print_times(f"mixed tree, verify: {warm}", [verify, md5], md5)
    print_sizes(f"mixed tree: parity / data at {REDUNDANCY}%", [nasbox, turbo_sizes])


WORKLOADS: dict[str, Callable[[Setup], None]] = {"overhead": overhead, "small": small, "large": large,
                                                  "mixed": mixed}


def needs(args: argparse.Namespace) -> dict[str, int]:
    """Disk space each workload takes at its peak (one runs at a time and removes its files)."""
    return {
        "overhead": max(space_needed([size] * n, min(n, args.turbo_count)) for size, n in overhead_counts(args)),
        "small": space_needed([SMALL_SIZES[1]] * args.small_count, args.turbo_count),
        "large": large_image_size(args) + DISK_MARGIN,
        "mixed": space_needed(mixed_sizes(args.mixed_count, args.mixed_max_mib), args.turbo_count),
    }


def check_space(args: argparse.Namespace, chosen: list[str]) -> None:
    free = shutil.disk_usage(args.dir).free
    for name in chosen:
        if (need := needs(args)[name]) > free:
            sys.exit(f"the {name} workload needs about {human(need)} under --dir {args.dir}, "
                     f"which has {human(free)} free: choose a smaller workload"
                     + (" (--mixed-count, --mixed-max-mib)" if name == "mixed" else "") + " or another --dir")


# ---- report ----------------------------------------------------------------------------

def print_targets(measured: dict[Goal, Measured]) -> None:
    print("\nTargets\n")
    rows = []
    for goal in GOALS:
        m = measured.get(goal)
        rows.append([goal.what, goal.goal, m.shown if m else "not run", ("met" if m.met else "NOT MET") if m else "-"])
    c.print_table(["target", "goal", "measured", "met?"], rows)


def describe(s: Setup) -> str:
    job = Workload("x", s.root).job()
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(s.root)], capture_output=True, text=True).stdout.strip()
    return (f"scrub benchmark, {datetime.date.today()}, {os.cpu_count()} cores, kernel {platform.release()}, "
            f"Python {platform.python_version()}\n"
            f"nasbox: ScrubJob defaults (redundancy {REDUNDANCY}%, nice {job.nice}, ionice {job.ionice}), "
            "workers = cores; the baselines run at the bench's normal priority\n"
            f"par2cmdline-turbo: {s.turbo} ({version([s.turbo, '--version'])})\n"
            f"scratch: {s.root} ({fs}); the large file on a loop-mounted ext4 image inside it")


# --quick: a smoke run of every workload in 2-3 minutes; figures for the targets are then
# measured on smaller workloads (and said so) or extrapolated (marked ~).
QUICK = {"small_count": 5000, "large_mib": 64, "mixed_count": 300, "mixed_max_mib": 4,
         "overhead_counts": "2000,200,16,1", "turbo_count": 200, "runs": 3}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smaller defaults for a smoke run: " + " ".join(f"--{k.replace('_', '-')} {v}"
                                                                       for k, v in QUICK.items()))
    p.add_argument("--only", default=",".join(WORKLOADS), help=f"workloads to run (default {','.join(WORKLOADS)})")
    p.add_argument("--runs", type=int, default=3, help="timed runs per figure, median shown (default 3)")
    p.add_argument("--dir", default="/var/tmp", help="parent of the scratch directory (default /var/tmp)")
    p.add_argument("--overhead-counts", default="20000,2000,128,2",
                   help="files of 4 KiB, 64 KiB, 1 MiB, 100 MiB in the overhead workload (default 20000,2000,128,2)")
    p.add_argument("--small-count", type=int, default=SMALL_TARGET_FILES, help="files of 1-4 KiB (default 100000)")
    p.add_argument("--large-mib", type=int, default=LARGE_TARGET_MIB, help="size of the large file (default 1024)")
    p.add_argument("--mixed-count", type=int, default=20000, help="files in the mixed tree (default 20000)")
    p.add_argument("--mixed-max-mib", type=float, default=20, help="largest file of the mixed tree (default 20)")
    p.add_argument("--turbo-count", type=int, default=2000,
                   help="files per workload given to par2cmdline-turbo (default 2000; times scale, marked ~)")
    if p.parse_known_args(argv)[0].quick:
        p.set_defaults(**QUICK)  # options given explicitly still win
    args = p.parse_args(argv)
    if len(args.overhead_counts.split(",")) != len(OVERHEAD_SIZES):
        p.error(f"--overhead-counts: expected {len(OVERHEAD_SIZES)} comma-separated counts")
    return args


def main() -> None:
    args = parse(sys.argv[1:])
    c.exit_cleanly_on_sigterm()
    if os.geteuid() != 0:
        sys.exit("run as root: the page cache is dropped and the large file's filesystem is loop-mounted")
    chosen = args.only.split(",")
    if unknown := set(chosen) - set(WORKLOADS):
        sys.exit(f"unknown workloads: {', '.join(sorted(unknown))}; expected some of {','.join(WORKLOADS)}")
    check_space(args, chosen)

    started = time.perf_counter()
    with scratch(args.dir) as root:
        # nasbox's own state (what each run saw) in the scratch directory, not the machine's /config.
        os.environ["NASBOX_HOME"], os.environ["NASBOX_RUN_DIR"] = str(root / "home"), str(root / "run")
        s = Setup(args, root, nasbox_par2.binary())
        print(describe(s), flush=True)
        for name in chosen:
            WORKLOADS[name](s)
    print_targets(s.measured)
    print(f"\ntotal run time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
