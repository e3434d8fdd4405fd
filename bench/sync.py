"""nasbox sync against bare `rsync -a --delete` on the same trees: the cost of the guards
(a dry run that counts deletions, a count of DESTINATION's files) and of the job around it.

    python3 bench/sync.py [--large-mib 256 --large-count 4] [--small-count 20000] [--runs 3]

Workloads: a first copy of 1 GiB in large files, a first copy of 20,000 files of 4 KiB, and a
no-op re-run over the small tree. The page cache is dropped before every timed run, and
every run is timed until its data is on disk.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import _common as c
from nasbox.config import load_config
from nasbox.sync.engine import Sync

MIB = 1 << 20


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def make_tree(root: Path, count: int, size: int) -> None:
    for i in range(count):
        directory = root / f"d{i % 100:02}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i:05}").write_bytes(os.urandom(size))


def time_nasbox(source: Path, destination: Path, state: Path) -> float:
    """Seconds until the copy is on disk (the run, then sync(2)): writeback that outlasts
    the process would otherwise land in whichever run comes next."""
    config = load_config({"NASBOX_CONFIG": "/dev/null", "SYNC_B": f"{source} {destination} daily"})
    drop_caches()
    started = time.perf_counter()
    result = Sync(config.sync["b"], config, state_dir=state).run()
    os.sync()
    seconds = time.perf_counter() - started
    assert result.status == "good", result.summary
    return seconds


def time_rsync(source: Path, destination: Path) -> float:
    drop_caches()
    started = time.perf_counter()
    c.timed(["rsync", "-a", "--delete", f"{source}/", f"{destination}/"])
    os.sync()
    return time.perf_counter() - started


def compare(label: str, source: Path, work: Path, runs: int, fresh: bool) -> list[str]:
    """Median seconds of both, each on its own destination; fresh: a first copy every run."""
    times: dict[str, list[float]] = {"nasbox": [], "rsync": []}
    work.mkdir(parents=True, exist_ok=True)
    for run in range(runs):
        for tool in ("rsync", "nasbox") if run % 2 == 0 else ("nasbox", "rsync"):  # neither always second
            destination = work / f"dst-{tool}"
            if fresh:
                shutil.rmtree(destination, ignore_errors=True)
            elif not destination.exists():  # the no-op case starts from a finished copy
                c.timed(["rsync", "-a", "--delete", f"{source}/", f"{destination}/"])
            runner = time_rsync if tool == "rsync" else lambda s, d: time_nasbox(s, d, work / "state")
            times[tool].append(runner(source, destination))
    nasbox, rsync = c.median(times["nasbox"]), c.median(times["rsync"])
    return [label, f"{rsync:.2f}", f"{nasbox:.2f}", f"{100 * (nasbox / rsync - 1):+.1f}%"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-mib", type=int, default=256)
    parser.add_argument("--large-count", type=int, default=4)
    parser.add_argument("--small-count", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dir", default="/var/tmp")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nasbox-bench-sync-", dir=args.dir))
    try:
        large, small = work / "large", work / "small"
        for i in range(args.large_count):
            large.mkdir(exist_ok=True)
            with open(large / f"big{i}.bin", "wb") as f:
                for _ in range(args.large_mib // 4):
                    f.write(os.urandom(4 * MIB))
        make_tree(small, args.small_count, 4096)
        rows = [
            compare(f"first copy, {args.large_count} x {args.large_mib} MiB", large, work / "l", args.runs, True),
            compare(f"first copy, {args.small_count} x 4 KiB", small, work / "s", args.runs, True),
            compare(f"no-op re-run, {args.small_count} x 4 KiB", small, work / "n", args.runs, False),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"median of {args.runs} runs, alternating; page cache dropped before each; "
          "each timed until the copy is on disk (sync)\n")
    c.print_table(["workload", "rsync -a --delete, s", "nasbox sync, s", "nasbox overhead"], rows)


if __name__ == "__main__":
    main()
