"""nasbox offsite against bare `restic backup` of the same tree, in the same run: what the
job costs around restic (a Python process, the configuration, locks, history, the guards, the
deletion count, and with --keep the retention's own restic call).

    python3 bench/offsite.py [--files 20000] [--size-mib 2048] [--runs 3] [--keep] [--dir /var/tmp]

Workloads: a first backup into a new local repository (nasbox creates it; the bare run times
`restic init` with its backup), and a backup of the unchanged tree. Each is timed three ways,
the page cache dropped before each, in rotating order: `restic backup` as a person runs it;
`nasbox offsite bench --now` from the command's start to its end (Python's start, the
configuration, locks, history included); and the job's run alone in this process (the
engine: guards, restic, the deletion count, the record).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c

MIB = 1 << 20
PASSWORD = "bench-restic-password"
REPO_ROOT = Path(__file__).resolve().parents[1]


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def make_tree(root: Path, files: int, total: int) -> None:
    size = total // files
    for i in range(files):
        directory = root / f"d{i // 200:03}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i:06}.bin").write_bytes(os.urandom(size))


def timed(argv: list[str], env: dict[str, str]) -> float:
    drop_caches()
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed ({result.returncode}): {(result.stdout + result.stderr)[-2000:]}")
    return seconds


def nasbox(source: Path, work: Path, keep: bool) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NASBOX_CONFIG": "/dev/null",
           "NASBOX_HOME": str(work / "home"), "NASBOX_RUN_DIR": str(work / "run"),
           "OFFSITE_BENCH": f"{source} {work / 'repo'} daily", "OFFSITE_BENCH_PASSWORD": PASSWORD}
    if keep:
        env["OFFSITE_BENCH_KEEP"] = "last=30"
    return timed([sys.executable, "-m", "nasbox", "offsite", "bench", "--now"], env)


def engine(source: Path, work: Path, keep: bool) -> float:
    """The job's run alone, in this process: what nasbox adds around restic, without Python's
    start, the configuration's loading and the history."""
    from nasbox.config import load_config
    from nasbox.offsite.engine import Offsite

    env = {"NASBOX_CONFIG": "/dev/null", "OFFSITE_BENCH": f"{source} {work / 'repo'} daily",
           "OFFSITE_BENCH_PASSWORD": PASSWORD, **({"OFFSITE_BENCH_KEEP": "last=30"} if keep else {})}
    config = load_config(env)
    drop_caches()
    started = time.perf_counter()
    result = Offsite(config.jobs["offsite"]["bench"], config, state_dir=work / "home" / "state").run()
    seconds = time.perf_counter() - started
    if result.status != "good":
        raise RuntimeError(f"the engine's run: {result.status}: {result.summary}")
    return seconds


def bare(source: Path, work: Path) -> float:
    env = {**os.environ, "RESTIC_REPOSITORY": str(work / "repo"), "RESTIC_PASSWORD": PASSWORD}
    seconds = 0.0
    if not (work / "repo").exists():
        seconds += timed(["restic", "init"], env)
    return seconds + timed(["restic", "--cache-dir", str(work / "cache"), "backup", "--host", "bench", str(source)],
                           env)


def compare(label: str, source: Path, work: Path, runs: int, first: bool, keep: bool) -> list[str]:
    tools = {"restic": lambda place: bare(source, place), "nasbox": lambda place: nasbox(source, place, keep),
             "engine": lambda place: engine(source, place, keep)}
    times: dict[str, list[float]] = {tool: [] for tool in tools}
    for run in range(runs):
        for tool in list(tools)[run % 3:] + list(tools)[:run % 3]:  # none always first
            place = work / tool
            if first:
                shutil.rmtree(place, ignore_errors=True)
            elif not place.exists():  # the unchanged case starts from a finished first backup
                place.mkdir(parents=True)
                tools[tool](place)
            place.mkdir(parents=True, exist_ok=True)
            times[tool].append(tools[tool](place))
    theirs, ours, run_only = (c.median(times[tool]) for tool in tools)
    return [label, f"{theirs:.2f}", f"{ours:.2f} ({ours / theirs:.2f}x)", f"{run_only:.2f} ({run_only / theirs:.2f}x)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="give the job `keep` (a forget after each backup)")
    parser.add_argument("--dir", default="/var/tmp")
    args = parser.parse_args()
    version = subprocess.run(["restic", "version"], capture_output=True, text=True, check=True).stdout.split()[1]
    work = Path(tempfile.mkdtemp(prefix="nasbox-bench-offsite-", dir=args.dir))
    try:
        source = work / "source"
        make_tree(source, args.files, args.size_mib * MIB)
        tree = f"{args.files} files, {args.size_mib} MiB"
        rows = [
            compare(f"first backup, {tree}", source, work / "first", args.runs, True, args.keep),
            compare(f"unchanged, {tree}", source, work / "again", args.runs, False, args.keep),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"restic {version}; median of {args.runs} runs, alternating; page cache dropped before each; "
          f"local repository{'; job with keep (restic forget after each backup)' if args.keep else ''}\n")
    c.print_table(["workload", "bare restic, s", "`nasbox offsite --now`, s", "the job's run in-process, s"], rows)


if __name__ == "__main__":
    main()
