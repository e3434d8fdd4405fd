"""nasbox offsite against bare `restic backup` of the same tree, in the same run: what the
job costs around restic (a Python process, the configuration, locks, history, the guards, the
deletion count, and with --keep the retention's own restic call).

    python3 bench/offsite.py [--files 20000] [--size-mib 2048] [--runs 3] [--keep] [--commands] [--dir /var/tmp]

Workloads: a first backup into a new local repository (nasbox creates it; the bare run times
`restic init` with its backup), and a backup of the unchanged tree. Each is timed five ways,
the page cache dropped before each, in rotating order: restic as a person runs it (`restic
backup`, and with --keep `restic forget` with the same policy after it); `nasbox offsite bench
--now` from the command's start to its end, handed to a `nasbox runner` as in the container
(the configuration, locks, history included); a scheduled run, handed to the same runner
from this process as the scheduler hands it (no `nasbox` process of its own); the command
without a runner (Python's start and nasbox's imports included); and the job's run alone in
this process (the engine: guards, restic, the deletion count, the record, with --keep the
retention).

--container: the unchanged tree in the image (nasbox:latest) as users run it: bare `restic
backup` and `nasbox offsite bench --now`, each through `docker exec` and timed inside the
container (so without docker exec's own cost), the page cache dropped before each.

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


def scheduled(source: Path, work: Path, keep: bool, runner: Path) -> float:
    """A scheduled run, handed to the runner as the scheduler hands it: from this process,
    with its environment (the job's, for the while) and standard descriptors (/dev/null)."""
    from nasbox.relay import Handed
    from nasbox.scheduler import start_run
    from nasbox.schedules import ScheduleEntry

    saved_environment, saved_descriptors = dict(os.environ), [os.dup(1), os.dup(2)]
    os.environ.clear()
    os.environ.update(job_env(source, work, keep, runner))
    quiet = os.open(os.devnull, os.O_WRONLY)
    try:
        drop_caches()
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        started = time.perf_counter()
        run = start_run(ScheduleEntry("offsite", "bench", "30 2 * * *"), "scheduled")
        code = run.wait()
        seconds = time.perf_counter() - started
    finally:
        for fd, saved in zip((1, 2), saved_descriptors, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        os.close(quiet)
        os.environ.clear()
        os.environ.update(saved_environment)
    if not isinstance(run, Handed) or code != 0:
        raise RuntimeError(f"the scheduled run: {'exit ' + str(code) if isinstance(run, Handed) else 'no runner'}")
    return seconds


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
             "scheduled": lambda place: scheduled(source, place, keep, runner),
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


CONTAINER_WORK = "/bench"


def in_the_container(work: Path, runs: int, tree: str, version: str) -> None:
    """Bare restic and `nasbox offsite bench --now` on the unchanged tree, inside the image as
    users run it (its runner up), each through `docker exec`, timed inside the container."""
    c.require_image()
    (work / "share").mkdir()
    name = f"{c.NAME_PREFIX}offsite-{os.getpid()}"
    env = {"OFFSITE_BENCH": f"{CONTAINER_WORK}/source {CONTAINER_WORK}/nasbox-repo daily",
           "OFFSITE_BENCH_PASSWORD": PASSWORD, "RESTIC_PASSWORD": PASSWORD,
           "RESTIC_REPOSITORY": f"{CONTAINER_WORK}/bare-repo"}
    c.docker("run", "-d", "--name", name, *(arg for key, value in env.items() for arg in ("-e", f"{key}={value}")),
             "-v", f"{work}:{CONTAINER_WORK}", *c.nasbox_args(work / "share"))
    try:
        deadline = time.monotonic() + 60
        while "runner: taking commands" not in c.docker("logs", name):
            if time.monotonic() > deadline:
                raise RuntimeError("the container's runner did not start")
            time.sleep(0.2)
        bare = f"restic --cache-dir {CONTAINER_WORK}/bare-cache backup --host bench {CONTAINER_WORK}/source"
        commands = {"restic": bare, "nasbox": "nasbox offsite bench --now"}
        theirs_version = c.docker("exec", name, "restic", "version").split()[1]
        inside(name, "restic init")  # the first backups, untimed: the timed ones find nothing new
        for command in commands.values():
            inside(name, command)
        times: dict[str, list[float]] = {tool: [] for tool in commands}
        for run in range(runs):
            for tool in list(commands)[run % 2:] + list(commands)[:run % 2]:
                drop_caches()
                times[tool].append(inside(name, commands[tool]))
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    theirs, ours = c.median(times["restic"]), c.median(times["nasbox"])
    print(f"in {c.IMAGE} (restic {theirs_version}; on the host: {version}); median of {runs} runs, alternating; "
          "page cache dropped before each\n")
    c.print_table(["workload", "bare restic, s", "`nasbox offsite bench --now`, s"],
                  [[f"unchanged, {tree}", f"{theirs:.2f}", f"{ours:.2f} ({ours / theirs:.2f}x)"]])


def inside(name: str, command: str) -> float:
    """command run in the container by bash; its time as bash inside measures it."""
    script = (f"s=$EPOCHREALTIME; {command} > /tmp/bench.out 2>&1 || {{ cat /tmp/bench.out; exit 1; }}; "
              'echo "$s $EPOCHREALTIME"')
    out = c.docker("exec", name, "bash", "-c", script).split()
    return float(out[-1]) - float(out[-2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="give the job `keep` (a forget after each backup)")
    parser.add_argument("--dir", default="/var/tmp")
    parser.add_argument("--commands", action="store_true",
                        help="time starting each command (--help, status, offsite --now) instead")
    parser.add_argument("--container", action="store_true",
                        help="time the unchanged tree's backup in the image instead (bare restic and nasbox)")
    args = parser.parse_args()
    version = subprocess.run(["restic", "version"], capture_output=True, text=True, check=True).stdout.split()[1]
    work = Path(tempfile.mkdtemp(prefix="nasbox-bench-offsite-", dir=args.dir))
    try:
        source = work / "source"
        make_tree(source, args.files, args.size_mib * MIB)
        if args.commands:
            commands_table(work, args.runs)
            return
        if args.container:
            in_the_container(work, args.runs, f"{args.files} files, {args.size_mib} MiB", version)
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
