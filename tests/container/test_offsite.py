"""An offsite job in the real container (the image's restic, 0.18 from Debian 13): scheduled
every minute, it runs by itself, creates its repository on a bind-mounted disk and backs up
under the server's name (not the container's hostname); a wrong password is a clear error
that creates nothing; restic's command lines never hold the password."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.container.helpers import nasbox_container, workspace

pytestmark = pytest.mark.container

PASSWORD = "offsite-Pa55-in-a-file"
SCHEDULED_WITHIN_S = 150  # the next minute, with the container's start and the run itself


def host_snapshots(repository: Path) -> list[dict]:
    """The repository read by the host's own restic (Debian 12's), as a user would check it."""
    listed = subprocess.run(["restic", "snapshots", "--json", "--no-lock", "--no-cache"], capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, "RESTIC_REPOSITORY": str(repository), "RESTIC_PASSWORD": PASSWORD})
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout) or []


def last_run(box, name: str) -> dict | None:
    shown = box.exec("nasbox", "status", "--json")
    assert shown.returncode == 0, shown.stderr
    job = next(j for j in json.loads(shown.stdout)["jobs"] if (j["kind"], j["name"]) == ("offsite", name))
    return job["last_run"]


def test_a_scheduled_offsite_job_runs_by_itself(tmp_path: Path) -> None:
    with workspace() as ws:
        disk = ws.root / "offsite"
        disk.mkdir()
        (ws.config / "offsite-password").write_text(PASSWORD + "\n")
        env = {"USER_ALICE": "alice:alice-pw", "SHARE_DOCS": "write docs /data/docs alice", "NAS_NAME": "offsitebox",
               "OFFSITE_DOCS": "/data/docs /offsite/repo '* * * * *'",
               "OFFSITE_DOCS_PASSWORD_FILE": "/config/offsite-password", "OFFSITE_DOCS_KEEP": "last=2",
               "OFFSITE_WRONG": "/data/docs /offsite/repo monthly", "OFFSITE_WRONG_PASSWORD": "not-the-password"}
        with nasbox_container(ws, env, "offsite", extra_mounts={disk: "/offsite"}) as box:
            deadline = time.monotonic() + SCHEDULED_WITHIN_S
            while (run := last_run(box, "docs")) is None or run["status"] == "running":
                assert time.monotonic() < deadline, f"no scheduled offsite run finished\n{box.logs()[-3000:]}"
                time.sleep(2)
            assert run["trigger"] == "scheduled" and run["status"] == "good", run
            assert "files new" in run["summary"]
            snapshots = host_snapshots(disk / "repo")
            assert snapshots and {s["hostname"] for s in snapshots} == {"offsitebox"}
            assert snapshots[0]["paths"] == ["/data/docs"]

            made = sorted(p.name for p in (disk / "repo" / "keys").iterdir())
            wrong = box.exec("nasbox", "offsite", "wrong", "--now")
            assert wrong.returncode == 1, wrong.stdout + wrong.stderr
            assert "wrong password" in wrong.stdout and "not-the-password" not in wrong.stdout
            assert sorted(p.name for p in (disk / "repo" / "keys").iterdir()) == made
            assert len(host_snapshots(disk / "repo")) >= len(snapshots)

            seen = box.exec("sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '; "
                                        "cat /config/logs/offsite-docs.log")
            assert PASSWORD not in seen.stdout
