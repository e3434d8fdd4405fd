"""The scheduler daemon at rest: CPU and memory over a minute with 50 jobs configured, next
to an idle Python interpreter (the floor any Python daemon starts from).

    python3 bench/scheduler.py [--jobs 50] [--seconds 60]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from _common import print_table


def jobs_env(count: int, root: Path) -> dict[str, str]:
    """Half syncs, half scrubs (each with its hourly parity update), none due in the window."""
    env = {}
    for i in range(count // 2):
        env[f"SYNC_J{i}"] = f"{root}/src{i} {root}/dst{i} daily"
        env[f"SCRUB_J{i}"] = f"{root}/dst{i} .par 5% weekly"
    return env


def measure(argv: list[str], env: dict[str, str], seconds: float) -> tuple[float, float]:
    """(CPU seconds used in the window, resident MiB at its end), after a 5 s settling time."""
    process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)
        probe = psutil.Process(process.pid)
        before = probe.cpu_times()
        time.sleep(seconds)
        after = probe.cpu_times()
        rss = probe.memory_info().rss / 2**20
    finally:
        process.terminate()
        process.wait(30)
    return (after.user + after.system) - (before.user + before.system), rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {"NASBOX_CONFIG": "/dev/null", "NASBOX_HOME": str(root / "home"), "NASBOX_RUN_DIR": str(root / "run"),
               **jobs_env(args.jobs, root)}
        rows = []
        for label, argv in (("nasbox scheduler", [sys.executable, "-m", "nasbox", "scheduler"]),
                            ("baseline: idle python3", [sys.executable, "-c", "import time; time.sleep(3600)"])):
            cpu_s, rss = measure(argv, env, args.seconds)
            rows.append([label, f"{cpu_s:.2f}", f"{100 * cpu_s / args.seconds:.2f}%", f"{rss:.1f}"])
    print(f"{args.jobs} jobs configured, measured over {args.seconds:.0f} s after 5 s of settling\n")
    print_table(["process", "CPU s", "CPU %", "RSS MiB"], rows)


if __name__ == "__main__":
    main()
