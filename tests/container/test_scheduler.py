"""The container left alone: a job scheduled a minute ahead runs by itself and notifies a
server on the host; `docker stop` during a scheduled scrub leaves consistent parity, and the
next run completes it.

The container uses the host's network here, so that it reaches the test's HTTP server on
127.0.0.1 (this workplace allows traffic to loopback only)."""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from testcontainers.core.container import DockerContainer

from nasbox.health import smb_answers
from nasbox.scrub import par2
from nasbox.scrub.kind import ScrubJob
from tests.support.parity import stock_par2
from tests.container.helpers import CAPS, IMAGE, NAME_PREFIX, docker, workspace

pytestmark = pytest.mark.container

FILES = 6000


class Receiver(BaseHTTPRequestHandler):
    seen: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def receiver() -> Iterator[tuple[int, list[tuple[str, bytes]]]]:
    seen: list[tuple[str, bytes]] = []
    handler = type("Handler", (Receiver,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()


@contextmanager
def host_network_nasbox(env: dict[str, str], mounts: dict[Path, str]) -> Iterator[str]:
    container = DockerContainer(IMAGE).with_name(f"{NAME_PREFIX}sched-{uuid.uuid4().hex[:8]}")
    container.with_kwargs(cap_add=CAPS, network_mode="host")
    for host_dir, inside in mounts.items():
        container.with_volume_mapping(host_dir, inside, "rw")
    for key, value in env.items():
        container.with_env(key, value)
    try:
        container.start()
        name = container.get_wrapped_container().name
        deadline = time.monotonic() + 60
        while not smb_answers("127.0.0.1", 445, timeout=2)[0]:
            assert time.monotonic() < deadline, container.get_wrapped_container().logs().decode()
            time.sleep(0.3)
        yield name
    finally:
        container.stop()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_scheduled_jobs_run_by_themselves_notify_and_survive_docker_stop(tmp_path: Path) -> None:
    if smb_answers("127.0.0.1", 445, timeout=1)[0]:
        pytest.fail("host port 445 is taken; this test runs nasbox on the host's network")
    with workspace() as ws, receiver() as (port, seen):
        big = ws.root / "big"
        big.mkdir()
        for i in range(FILES):  # many files: the scrub is still making their parity when stopped
            (big / f"f{i:05}.bin").write_bytes(os.urandom(160 * 1024))
        (ws.docs / "report.txt").write_text("quarterly\n")
        backup = ws.root / "backup"
        backup.mkdir()
        fire = datetime.now(timezone.utc) + timedelta(minutes=1)
        if fire.second > 50:  # leave the container time to start before that minute
            fire += timedelta(minutes=1)
        cron = f"{fire.minute} {fire.hour} * * *"
        env = {"USER_ALICE": "alice:alice-pw", "SHARE_DOCS": "write docs /data/docs alice",
               "SYNC_DOCS": f"/data/docs /backup/docs '{cron}'",
               "SCRUB_BIG": f"/big .pardatabase 5% '{cron}'",
               "NOTIFY_HOOK": f"webhook http://127.0.0.1:{port}/hook"}
        # A healthchecks check watches one job: the scrub.
        (ws.config / "nasbox.yaml").write_text(json.dumps({"notify": {"ping": {
            "type": "healthchecks", "target": f"http://127.0.0.1:{port}/ping/big", "jobs": ["big"]}}}))
        mounts = {ws.config: "/config", ws.docs: "/data/docs", backup: "/backup", big: "/big"}
        with host_network_nasbox(env, mounts) as name:
            wait_for(lambda: any(p == "/hook" and json.loads(b)["job"] == "sync docs" for p, b in seen), 150,
                     "the scheduled sync's webhook")
            payload = next(json.loads(b) for p, b in seen if p == "/hook" and json.loads(b)["job"] == "sync docs")
            assert payload["status"] == "good" and payload["subject"] == "[nasbox nasbox] sync docs: good"
            assert (backup / "docs" / "report.txt").read_text() == "quarterly\n"
            logs = docker("logs", name).stdout
            assert "runner: `nasbox sync docs --now --trigger scheduled` for pid" in logs, logs  # the runner ran it

            wait_for(lambda: any(p == "/ping/big/start" for p, _ in seen), 60, "the scheduled scrub's start ping")
            time.sleep(1)  # well into making parity (about 10 s of it; the stop reaches it within 3 s)
            stopped = time.monotonic()
            assert docker("stop", "-t", "30", name).returncode == 0
            assert time.monotonic() - stopped < 25
            assert docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "0"
            assert (big / ".pardatabase" / ".nasbox-scrub" / "catalog.sqlite").exists()
            assert not any(p == "/ping/big" for p, _ in seen)  # it did not finish

            assert docker("start", name).returncode == 0
            wait_for(lambda: smb_answers("127.0.0.1", 445, timeout=2)[0], 60, "smbd after the restart")
            status = json.loads(docker("exec", name, "nasbox", "status", "--json").stdout)
            last = next(j["last_run"] for j in status["jobs"] if j["name"] == "big")
            assert last["trigger"] == "scheduled" and last["summary"].startswith("interrupted"), last
            done = docker("exec", name, "scrub", "big", "--now", timeout=600)
            assert done.returncode == 0, done.stdout + done.stderr

        names = sorted(p.name for p in big.iterdir() if p.is_file())
        assert len(names) == FILES
        assert not list((big / ".pardatabase" / ".nasbox-scrub" / "staging").iterdir())
        job = ScrubJob(name="big", directory=str(big), database=str(big / ".pardatabase"), redundancy=5,
                       schedule="daily")
        for sample in names[::1000]:  # stock par2 agrees with the set of every sampled file
            assert stock_par2(par2.binary(), "verify", job, sample), sample
