"""The web dashboard: render time of the overview and of a job page with 10,000 runs in the
history, and the idle memory and CPU of the `nasbox web` process.

    python3 bench/web.py [--runs 10000] [--requests 200] [--idle-seconds 30]

Targets: p95 under 100 ms per page, under 60 MiB resident when idle.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from _common import print_table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nasbox import history as history_module  # noqa: E402
from nasbox.history import History  # noqa: E402
from nasbox.result import JobResult  # noqa: E402

ADMIN_PASSWORD = "bench-admin-pw"


def seed(home: Path, runs: int) -> None:
    """runs finished runs of sync `docs`, one an hour back from now (the history keeps no
    more than its limit per job, so the limit is lifted while seeding)."""
    os.environ["NASBOX_HOME"] = str(home)
    history_module.KEEP_RUNS_PER_JOB = runs
    history = History()
    now = time.time()
    try:
        history.db.execute("BEGIN")
        for i in range(runs):
            started = now - (runs - i) * 3600
            run_id = history.start("sync", "docs", "schedule")
            history.db.execute("UPDATE runs SET started = ? WHERE id = ?", (started, run_id))
            stats = {"transferred": i % 50, "bytes_transferred": 1000 * (i % 97), "duration_s": 30}
            history.finish(run_id, JobResult("docs", "sync", "good", f"copied {i % 50} files", started, started + 30,
                                             stats=stats))
        history.db.execute("COMMIT")
    finally:
        history.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timings(session: requests.Session, url: str, count: int) -> list[float]:
    found = []
    for _ in range(count + 1):  # the first warms up
        started = time.perf_counter()
        answer = session.get(url, timeout=30, allow_redirects=False)
        found.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:  # a redirect to the sign-in would time the wrong page
            sys.exit(f"{url}: {answer.status_code}")
    return found[1:]


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the job's history")
    parser.add_argument("--requests", type=int, default=200, help="requests per page")
    parser.add_argument("--idle-seconds", type=float, default=30, help="idle window for CPU and memory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nasbox-bench-web-") as tmp:
        root = Path(tmp)
        for name in ("data", "backup"):
            (root / name).mkdir()
        seed(root / "home", args.runs)
        (root / "nasbox.yaml").write_text("{}\n")
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "NASBOX_CONFIG": str(root / "nasbox.yaml"),
            "NASBOX_HOME": str(root / "home"),
            "NASBOX_RUN_DIR": str(root / "run"),
            "SHARE_DATA": f"write data {root / 'data'} alice:alice-pw",
            "SYNC_DOCS": f"{root / 'data'} {root / 'backup'} daily",
            "WEB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "WEB_PORT": str(port),
            "LOG_LEVEL": "warning",
        }
        process = subprocess.Popen([sys.executable, "-m", "nasbox", "web"], env=env, stdout=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    requests.get(f"{base}/login", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.1)
            probe = psutil.Process(process.pid)
            time.sleep(2)
            before = probe.cpu_times()
            time.sleep(args.idle_seconds)
            after = probe.cpu_times()
            idle_rss = probe.memory_info().rss / 2**20
            idle_cpu = (after.user + after.system - before.user - before.system) / args.idle_seconds * 100

            session = requests.Session()
            session.post(f"{base}/login", data={"user": "admin", "password": ADMIN_PASSWORD}, timeout=10)
            rows = []
            for label, path in (("overview", "/"), (f"job page ({args.runs} runs)", "/jobs/sync/docs")):
                found = timings(session, base + path, args.requests)
                rows.append([label, f"{statistics.median(found):.1f}", f"{p95(found):.1f}", "< 100"])
            busy_rss = probe.memory_info().rss / 2**20
        finally:
            process.terminate()
            process.wait(timeout=10)
    print_table(["page", "median ms", "p95 ms", "target p95 ms"], rows)
    print()
    print_table(
        ["web process", "value", "target"],
        [
            ["idle RSS MiB", f"{idle_rss:.1f}", "< 60"],
            ["idle CPU %", f"{idle_cpu:.2f}", ""],
            ["RSS after the renders MiB", f"{busy_rss:.1f}", ""],
        ],
    )


if __name__ == "__main__":
    main()
