"""nasbox offsite against bare `restic backup` of the same tree, in the same run: what the
job costs around restic (a Python process, the configuration, locks, history, the guards, the
deletion count, and with --keep the retention's own restic call).

    python3 bench/offsite.py [--files 20000] [--size-mib 2048] [--runs 3] [--keep] [--commands] [--dir /var/tmp]

Workloads: a first backup into a new local repository (nasbox creates it; the bare run times
`restic init` with its backup), and a backup of the unchanged tree. Each is timed five ways,
the page cache dropped before each, in rotating order: restic as a person runs it (`restic
backup`, and with --keep `restic forget` with the same policy after it); `nasbox offsite bench
--now` from the command's start to its end, handed to a `nasbox runner` as in the container
(the configuration, locks, history included); the scheduler's command line for the job (the
same, started as the scheduler starts it); the command without a runner (Python's start and
nasbox's imports included); and the job's run alone in this process (the engine: guards,
restic, the deletion count, the record, with --keep the retention).

nasbox's modules are compiled to bytecode first, as an installed package's are (with
PYTHONDONTWRITEBYTECODE set every command would compile them again).
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


KEEP_LAST = 30


def nasbox(source: Path, work: Path, keep: bool, argv: list[str], runner: Path | None = None) -> float:
    """argv timed with the job's environment; runner: the run directory of the runner to hand
    the command to (else there is none)."""
    return timed(argv, job_env(source, work, keep, runner))


def job_env(source: Path, work: Path, keep: bool, runner: Path | None = None) -> dict[str, str]:
    env = c.nasbox_command_env(work, OFFSITE_BENCH=f"{source} {work / 'repo'} daily", OFFSITE_BENCH_PASSWORD=PASSWORD)
    if keep:
        env["OFFSITE_BENCH_KEEP"] = f"last={KEEP_LAST}"
    if runner:
        env["NASBOX_RUN_DIR"] = str(runner)
    return env


def command() -> list[str]:
    return [sys.executable, "-m", "nasbox", "offsite", "bench", "--now"]


def scheduled() -> list[str]:
    """What the scheduler starts when the job is due."""
    from nasbox.schedules import ScheduleEntry

    return ScheduleEntry("offsite", "bench", "30 2 * * *").argv("scheduled")


def engine(source: Path, work: Path, keep: bool) -> float:
    """The job's run alone, in this process: what nasbox adds around restic, without Python's
    start, the configuration's loading and the history."""
    from nasbox.config import load_config
    from nasbox.offsite.engine import Offsite

    env = {"NASBOX_CONFIG": "/dev/null", "OFFSITE_BENCH": f"{source} {work / 'repo'} daily",
           "OFFSITE_BENCH_PASSWORD": PASSWORD, **({"OFFSITE_BENCH_KEEP": f"last={KEEP_LAST}"} if keep else {})}
    config = load_config(env)
    drop_caches()
    started = time.perf_counter()
    result = Offsite(config.jobs["offsite"]["bench"], config, state_dir=work / "home" / "state").run()
    seconds = time.perf_counter() - started
    if result.status != "good":
        raise RuntimeError(f"the engine's run: {result.status}: {result.summary}")
    return seconds


def bare(source: Path, work: Path, keep: bool) -> float:
    """restic as a person runs it: init the first time, backup, and with keep the same
    forget nasbox runs (this host's snapshots of this source, the same policy)."""
    env = {**os.environ, "RESTIC_REPOSITORY": str(work / "repo"), "RESTIC_PASSWORD": PASSWORD}
    restic = ["restic", "--cache-dir", str(work / "cache")]
    seconds = 0.0
    if not (work / "repo").exists():
        seconds += timed(["restic", "init"], env)
    seconds += timed([*restic, "backup", "--host", "bench", str(source)], env)
    if keep:
        seconds += timed([*restic, "forget", "--host", "bench", "--path", str(source), f"--keep-last={KEEP_LAST}"],
                         env)
    return seconds


def compare(label: str, source: Path, work: Path, runs: int, first: bool, keep: bool, runner: Path) -> list[str]:
    tools = {"restic": lambda place: bare(source, place, keep),
             "nasbox": lambda place: nasbox(source, place, keep, command(), runner),
             "scheduled": lambda place: nasbox(source, place, keep, scheduled(), runner),
             "alone": lambda place: nasbox(source, place, keep, command()),
             "engine": lambda place: engine(source, place, keep)}
    times: dict[str, list[float]] = {tool: [] for tool in tools}
    for run in range(runs):
        for tool in list(tools)[run % len(tools):] + list(tools)[:run % len(tools)]:  # none always first
            place = work / tool
            if first:
                shutil.rmtree(place, ignore_errors=True)
            elif not place.exists():  # the unchanged case starts from a finished first backup
                place.mkdir(parents=True)
                tools[tool](place)
            place.mkdir(parents=True, exist_ok=True)
            times[tool].append(tools[tool](place))
    theirs, *ours = (c.median(times[tool]) for tool in tools)
    return [label, f"{theirs:.2f}", *(f"{seconds:.2f} ({seconds / theirs:.2f}x)" for seconds in ours)]


def commands_table(work: Path, runs: int) -> None:
    """What starting a command costs: `python3 -c pass`, `nasbox --help`, `nasbox status` and
    `nasbox offsite bench --now` of an unchanged tree, cold (page cache dropped) and warm; for
    the offsite run also the time until restic starts (a wrapper notes when it is run)."""
    source = work / "source"
    place = work / "commands"
    nasbox(source, place, False, command())  # the first backup: the timed ones find nothing new
    stamps, wrapper = work / "restic-started", work / "bin" / "restic"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/bash\necho "$EPOCHREALTIME" >> {stamps}\nexec {shutil.which("restic")} "$@"\n')
    wrapper.chmod(0o755)
    env = c.nasbox_command_env(place, OFFSITE_BENCH=f"{source} {place / 'repo'} daily",
                               OFFSITE_BENCH_PASSWORD=PASSWORD, PATH=f"{wrapper.parent}:{os.environ['PATH']}")
    argvs = {"python3 -c pass": [sys.executable, "-c", "pass"],
             "nasbox --help": [sys.executable, "-m", "nasbox", "--help"],
             "nasbox status": [sys.executable, "-m", "nasbox", "status"],
             "nasbox offsite bench --now": command()}
    until_restic = "nasbox offsite bench --now, until restic starts"
    with_runner = {**env, "NASBOX_RUN_DIR": str(work / "runner")}
    times: dict[tuple[str, str], list[float]] = {}
    with c.nasbox_runner(with_runner):
        for _ in range(runs):
            for name, argv in argvs.items():
                for mode in MODES:  # warm: straight after the cold run, all in the page cache
                    timed_start(argv, with_runner if "runner" in mode else env, mode, stamps, name, times,
                                until_restic)
    print(f"median of {runs} runs; cold: page cache dropped before; warm: right after; the runner: "
          "`nasbox runner` up, as in the container (`--help` is never handed to it)\n")
    c.print_table(["command", *(f"{mode}, s" for mode in MODES)],
                  [[name, *(f"{c.median(times[name, mode]):.3f}" for mode in MODES)]
                   for name in [*argvs, until_restic]])


MODES = ("cold", "warm", "cold, the runner", "warm, the runner")


def timed_start(argv: list[str], env: dict[str, str], mode: str, stamps: Path, name: str,
                times: dict[tuple[str, str], list[float]], until_restic: str) -> None:
    """One start of argv, its time (and until restic starts, when it runs it) noted under mode."""
    stamps.unlink(missing_ok=True)
    if mode.startswith("cold"):
        drop_caches()
    started = time.time()
    subprocess.run(argv, env=env, capture_output=True, check=True)
    times.setdefault((name, mode), []).append(time.time() - started)
    if stamps.exists():
        first = float(stamps.read_text().split()[0])
        times.setdefault((until_restic, mode), []).append(first - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="give the job `keep` (a forget after each backup)")
    parser.add_argument("--dir", default="/var/tmp")
    parser.add_argument("--commands", action="store_true",
                        help="time starting each command (--help, status, offsite --now) instead")
    args = parser.parse_args()
    version = subprocess.run(["restic", "version"], capture_output=True, text=True, check=True).stdout.split()[1]
    work = Path(tempfile.mkdtemp(prefix="nasbox-bench-offsite-", dir=args.dir))
    try:
        source = work / "source"
        make_tree(source, args.files, args.size_mib * MIB)
        if args.commands:
            commands_table(work, args.runs)
            return
        tree = f"{args.files} files, {args.size_mib} MiB"
        runner = work / "runner"
        with c.nasbox_runner(job_env(source, work / "runner-home", args.keep, runner)):
            rows = [
                compare(f"first backup, {tree}", source, work / "first", args.runs, True, args.keep, runner),
                compare(f"unchanged, {tree}", source, work / "again", args.runs, False, args.keep, runner),
            ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    kept = f"; keep: last={KEEP_LAST} (restic forget after each backup, bare and nasbox)" if args.keep else ""
    print(f"restic {version}; median of {args.runs} runs, alternating; page cache dropped before each; "
          f"local repository{kept}\n")
    c.print_table(["workload", "bare restic, s", "`nasbox offsite --now`, s", "scheduled run, s",
                   "the command without the runner, s", "the job's run in-process, s"], rows)


if __name__ == "__main__":
    main()
